package collectors

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/azurelinux-probe/azurelinux-probe/internal/treetest"
)

// treePaths returns the paths of a fixture tree under testdata/trees.
func treePaths(t *testing.T, tree string) Paths {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("testdata", "trees", tree))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Fatal(err)
	}
	return DefaultPaths(root)
}

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

// runCollector builds the registered collector name with its default
// options, runs one Update against paths and returns the samples keyed as
// in the text exposition format, name{label="value",...} with labels
// sorted by name.
func runCollector(t *testing.T, name string, paths Paths) (map[string]float64, error) {
	t.Helper()
	spec, ok := Lookup(name)
	if !ok {
		t.Fatalf("collector %q is not registered", name)
	}
	var opts any
	if spec.Options != nil {
		opts = spec.Options()
	}
	c, err := spec.New(Env{Paths: paths, Logger: slog.New(slog.DiscardHandler)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	m := &Metrics{}
	uerr := c.Update(context.Background(), m)
	if err := m.Err(); err != nil {
		t.Fatalf("building metrics: %v", err)
	}
	out := map[string]float64{}
	for _, metric := range m.List() {
		g := fqNameRE.FindStringSubmatch(metric.Desc().String())
		if g == nil {
			t.Fatalf("no fqName in %s", metric.Desc())
		}
		var pb dto.Metric
		if err := metric.Write(&pb); err != nil {
			t.Fatal(err)
		}
		var labels []string
		for _, lp := range pb.GetLabel() {
			labels = append(labels, lp.GetName()+`="`+lp.GetValue()+`"`)
		}
		sort.Strings(labels)
		key := g[1]
		if len(labels) > 0 {
			key += "{" + strings.Join(labels, ",") + "}"
		}
		if _, dup := out[key]; dup {
			t.Errorf("duplicate series %s", key)
		}
		out[key] = pb.GetGauge().GetValue()
	}
	return out, uerr
}

// seriesOf returns the keys of got that belong to metric name, sorted.
func seriesOf(got map[string]float64, name string) []string {
	var out []string
	for k := range got {
		if k == name || strings.HasPrefix(k, name+"{") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// fsBuilder writes a small sysfs/procfs tree for a test.
type fsBuilder struct {
	t    testing.TB
	root string
}

func newFS(t testing.TB) *fsBuilder { return &fsBuilder{t: t, root: t.TempDir()} }

func (b *fsBuilder) paths() Paths { return DefaultPaths(b.root) }

// file writes content at the relative path rel.
func (b *fsBuilder) file(rel, content string) *fsBuilder {
	b.t.Helper()
	treetest.File(b.t, filepath.Join(b.root, rel), content)
	return b
}

// link makes rel a symbolic link to target (relative, as sysfs does).
func (b *fsBuilder) link(rel, target string) *fsBuilder {
	b.t.Helper()
	treetest.Link(b.t, filepath.Join(b.root, rel), target)
	return b
}

// pci writes a PCI function under sys/devices/<parent>/<addr> with its
// /sys/bus/pci/devices link and, when driver is set, its driver link.
func (b *fsBuilder) pci(parent, addr, vendor, device, class, driver string) *fsBuilder {
	rel := filepath.Join("sys/devices", parent, addr)
	b.file(rel+"/vendor", vendor+"\n").file(rel+"/device", device+"\n").file(rel+"/class", class+"\n")
	depth := strings.Count(filepath.Join("devices", parent, addr), "/") + 1
	if driver != "" {
		b.link(rel+"/driver", strings.Repeat("../", depth)+"bus/pci/drivers/"+driver)
	}
	return b.link("sys/bus/pci/devices/"+addr, "../../../"+filepath.Join("devices", parent, addr))
}

// vmbus writes a VMBus device under the Gen2 VMBus node with its
// /sys/bus/vmbus/devices link and, when driver is set, its driver link.
func (b *fsBuilder) vmbus(instance, classID, driver string) *fsBuilder {
	const node = "devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00"
	rel := "sys/" + node + "/" + instance
	if classID != "" {
		b.file(rel+"/class_id", "{"+classID+"}\n")
	}
	b.file(rel+"/device_id", "{"+instance+"}\n")
	if driver != "" {
		b.link(rel+"/driver", "../../../../../../bus/vmbus/drivers/"+driver)
	}
	return b.link("sys/bus/vmbus/devices/"+instance, "../../../"+node+"/"+instance)
}

// wantOutcome checks the error of an Update: an error containing every
// string of errContain when there are any, else ErrNoData when noData, else
// none.
func wantOutcome(t *testing.T, err error, noData bool, errContain ...string) {
	t.Helper()
	switch {
	case len(errContain) > 0:
		if err == nil || errors.Is(err, ErrNoData) {
			t.Fatalf("err = %v, want an error", err)
		}
		for _, s := range errContain {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error lacks %q:\n%v", s, err)
			}
		}
	case noData:
		if !errors.Is(err, ErrNoData) {
			t.Fatalf("err = %v, want ErrNoData", err)
		}
	case err != nil:
		t.Fatalf("err = %v", err)
	}
}

// wantValues checks that got holds every sample of want with its value.
func wantValues(t *testing.T, got, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}
