package collectors

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/azurelinux-probe/azurelinux-probe/internal/treetest"
)

// run builds the named collector with its default options over root and
// runs one Update.
func run(t *testing.T, name, root string) (*Metrics, error) {
	t.Helper()
	spec, ok := Lookup(name)
	if !ok {
		t.Fatalf("no collector %q", name)
	}
	var opts any
	if spec.Options != nil {
		opts = spec.Options()
	}
	c, err := spec.New(Env{Paths: DefaultPaths(root)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	m := &Metrics{}
	err = c.Update(context.Background(), m)
	return m, err
}

// samples returns the samples of the metric called name, keyed by their
// labels as `k="v",…` in label-name order.
func samples(t *testing.T, m *Metrics, name string) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metricsCollector(m.List()))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			var parts []string
			for _, l := range s.GetLabel() {
				parts = append(parts, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			out[strings.Join(parts, ",")] = s.GetGauge().GetValue() + s.GetCounter().GetValue() + s.GetUntyped().GetValue()
		}
	}
	return out
}

type metricsCollector []prometheus.Metric

func (l metricsCollector) Describe(chan<- *prometheus.Desc) {}
func (l metricsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range l {
		ch <- m
	}
}

func TestKernelSeries(t *testing.T) {
	for release, series := range map[string]string{
		"6.18.31-1.3.azl4.x86_64": "6.18",
		"6.18.31-1.6.azl4":        "6.18",
		"6.6.104.2-4.azl3":        "6.6",
		"6.18.44-fc-v595":         "6.18",
		"10.2.0":                  "10.2",
	} {
		root := treetest.New(t, map[string]string{"proc/sys/kernel/osrelease": release + "\n", "proc/sys/kernel/tainted": "0\n"})
		m, err := run(t, "kernel", root)
		if err != nil {
			t.Fatalf("%s: %v", release, err)
		}
		want := `azurelinux_kernel_info{release="` + release + `",series="` + series + `",version=""} 1`
		if err := testutil.CollectAndCompare(metricsCollector(m.List()), strings.NewReader(
			"# HELP azurelinux_kernel_info Running kernel; series is major.minor of the release. Constant 1.\n"+
				"# TYPE azurelinux_kernel_info gauge\n"+want+"\n"), "azurelinux_kernel_info"); err != nil {
			t.Errorf("%s: %v", release, err)
		}
	}
}

func TestKernelTaint(t *testing.T) {
	// P, O, E (a proprietary, unsigned, out-of-tree NVIDIA driver), J (fwctl,
	// new in 6.15) and two bits no kernel documents yet.
	const mask = 1 | 1<<12 | 1<<13 | 1<<19 | 1<<20 | 1<<33
	root := treetest.New(t, map[string]string{
		"proc/sys/kernel/osrelease": "6.18.31-1.3.azl4.x86_64\n",
		"proc/sys/kernel/tainted":   strconv.Itoa(mask) + "\n",
	})
	m, err := run(t, "kernel", root)
	if err != nil {
		t.Fatal(err)
	}
	flags := samples(t, m, "azurelinux_kernel_taint_flag")
	if len(flags) != 22 {
		t.Errorf("%d taint_flag series, want 22 (20 documented bits + 2 unknown set bits)", len(flags))
	}
	var set []string
	for labels, v := range flags {
		if v == 1 {
			set = append(set, labels)
		}
	}
	sort.Strings(set)
	want := []string{
		`flag="E",reason="unsigned_module"`, `flag="J",reason="fwctl"`, `flag="O",reason="oot_module"`,
		`flag="P",reason="proprietary_module"`, `flag="unknown_20",reason="unknown"`, `flag="unknown_33",reason="unknown"`,
	}
	if strings.Join(set, " ") != strings.Join(want, " ") {
		t.Errorf("set flags %v, want %v", set, want)
	}
	if got := samples(t, m, "azurelinux_kernel_tainted")[""]; got != mask {
		t.Errorf("tainted = %v, want %d", got, mask)
	}
}

func TestParseKconfig(t *testing.T) {
	cfg, err := parseKconfig([]byte("#\n# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_LSM=\"lockdown,yama,bpf\"\nCONFIG_HZ=100\nNOT_CONFIG=1\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_LSM": "lockdown,yama,bpf", "CONFIG_HZ": "100"}
	if len(cfg) != len(want) {
		t.Errorf("got %v, want %v", cfg, want)
	}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("%s = %q, want %q", k, cfg[k], v)
		}
	}
	if _, err := parseKconfig([]byte("hello\x00world")); err == nil {
		t.Error("binary config accepted")
	}
	if _, err := parseKconfig([]byte("# nothing here\n")); err == nil {
		t.Error("config without CONFIG_ lines accepted")
	}
}

func TestBracketed(t *testing.T) {
	for in, want := range map[string]string{
		"none [integrity] confidentiality": "integrity",
		"[none] integrity confidentiality": "none",
		"always [madvise] never":           "madvise",
		"none integrity":                   "",
		"[]":                               "",
	} {
		got, ok := bracketed(in)
		if got != want || ok != (want != "") {
			t.Errorf("bracketed(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// TestKernelModulesWithoutModuleSupport covers kernels built without
// CONFIG_MODULES (no /proc/modules): built-in code shows in /sys/module.
func TestKernelModulesWithoutModuleSupport(t *testing.T) {
	root := treetest.New(t, map[string]string{
		"proc/sys/kernel/osrelease":                 "6.18.5\n",
		"proc/sys/kernel/tainted":                   "0\n",
		"sys/module/nvme/parameters/io_queue_depth": "1024\n",
	})
	m, err := run(t, "kernel", root)
	if err != nil {
		t.Fatal(err)
	}
	mods := samples(t, m, "azurelinux_kernel_module_loaded")
	if len(mods) != len(defaultKernelOptions().Modules) {
		t.Errorf("%d module series, want one per watched module", len(mods))
	}
	for labels, v := range mods {
		if want := b2f(labels == `module="nvme"`); v != want {
			t.Errorf("%s = %v, want %v", labels, v, want)
		}
	}
}

// TestKernelConfigKeepsWhatItReads checks that the parsed configuration
// kept between refreshes holds only the options the collector reads, and
// that both of its readers still get their answers from it: a watched
// option set, one absent ("n"), and a Hyper-V driver built in.
func TestKernelConfigKeepsWhatItReads(t *testing.T) {
	cfg := "CONFIG_HYPERV_STORAGE=y\nCONFIG_LOCALVERSION=\"-x\"\n# CONFIG_SUSPEND is not set\n"
	cfg += strings.Repeat("CONFIG_UNWATCHED=m\n", 3000)
	root := treetest.New(t, map[string]string{
		"proc/sys/kernel/osrelease": "6.18.5\n",
		"proc/sys/kernel/tainted":   "0\n",
		"boot/config-6.18.5":        cfg,
		"proc/cmdline":              "console=ttyS0\n",
	})
	spec, _ := Lookup("kernel")
	opts := spec.Options().(*kernelOptions)
	opts.ConfigOptions = []string{"CONFIG_LOCALVERSION", "CONFIG_SUSPEND", "CONFIG_NOT_THERE"}
	c, err := spec.New(Env{Paths: DefaultPaths(root)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := collectOnce(t, c)
	for series, want := range map[string]float64{
		`azurelinux_kernel_config_info{option="CONFIG_LOCALVERSION",value="-x"}`: 1,
		`azurelinux_kernel_config_info{option="CONFIG_SUSPEND",value="n"}`:       1,
		`azurelinux_kernel_config_info{option="CONFIG_NOT_THERE",value="n"}`:     1,
		`azurelinux_kernel_driver_available{module="hv_storvsc"}`:                1,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	kc := c.(*kernelCollector)
	for opt := range kc.configCache {
		if !kc.configWanted[opt] {
			t.Errorf("kept %s, which nothing reads", opt)
		}
	}
	if n := len(kc.configCache); n != 3 {
		t.Errorf("kept %d options, want the 3 set that are read", n)
	}
}
