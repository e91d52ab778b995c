package collectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/azurelinux-probe/azurelinux-probe/internal/treetest"
)

// ebpfSamples renders what an Update emitted as name{label="value",...} -> value.
func ebpfSamples(t testing.TB, m *Metrics) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, metric := range m.List() {
		var pb dto.Metric
		if err := metric.Write(&pb); err != nil {
			t.Fatal(err)
		}
		name := ebpfDescName(metric.Desc())
		var labels []string
		for _, l := range pb.GetLabel() {
			labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		sort.Strings(labels)
		key := name
		if len(labels) > 0 {
			key += "{" + strings.Join(labels, ",") + "}"
		}
		if _, dup := out[key]; dup {
			t.Errorf("duplicate series %s", key)
		}
		out[key] = pb.GetGauge().GetValue()
	}
	return out
}

func ebpfDescName(d *prometheus.Desc) string {
	s := d.String()
	_, rest, _ := strings.Cut(s, `fqName: "`)
	name, _, _ := strings.Cut(rest, `"`)
	return name
}

func newTestEBPF(t testing.TB, paths Paths, logger *slog.Logger, mutate func(*ebpfOptions)) *ebpfCollector {
	t.Helper()
	o := defaultEBPFOptions()
	if mutate != nil {
		mutate(o)
	}
	c, err := newEBPFCollector(Env{Paths: paths, Logger: logger}, o)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*ebpfCollector)
}

func ebpfTreePaths(t testing.TB, tree string) Paths {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("testdata", "trees", tree))
	if err != nil {
		t.Fatal(err)
	}
	return DefaultPaths(root)
}

// ebpfLiveOnly are the metric families that ask the kernel, never a file.
var ebpfLiveOnly = []string{
	"azurelinux_ebpf_probe_capability", "azurelinux_ebpf_program_type_supported",
	"azurelinux_ebpf_map_type_supported", "azurelinux_ebpf_feature_probe_inconclusive",
	"azurelinux_ebpf_programs_loaded", "azurelinux_ebpf_maps_loaded", "azurelinux_ebpf_links",
	"azurelinux_ebpf_canary_success", "azurelinux_ebpf_canary_load_duration_seconds",
	"azurelinux_ebpf_canary_verified_instructions",
}

// TestEBPFFixtures reads the file facts of each fixture tree; the live facts
// must be skipped there, without an error.
func TestEBPFFixtures(t *testing.T) {
	for _, tc := range []struct {
		tree    string
		want    map[string]float64
		errs    []string // substrings of the error, in order
		noData  bool
		missing []string
	}{
		{tree: "azl4-azure-gen2", want: map[string]float64{
			"azurelinux_ebpf_unprivileged_disabled": 2, // CONFIG_BPF_UNPRIV_DEFAULT_OFF=y
			"azurelinux_ebpf_stats_enabled":         0,
			"azurelinux_ebpf_jit_enabled":           1,
			"azurelinux_ebpf_jit_harden":            0,
			"azurelinux_ebpf_jit_kallsyms":          1,
			"azurelinux_ebpf_jit_limit_bytes":       264241152,
			"azurelinux_ebpf_btf_available":         1,
			"azurelinux_ebpf_bpffs_mounted":         1,
		}},
		{tree: "azl3", want: map[string]float64{
			"azurelinux_ebpf_unprivileged_disabled": 1, // sysctl.d sets 1
			"azurelinux_ebpf_btf_available":         1,
			"azurelinux_ebpf_bpffs_mounted":         1,
		}},
		{tree: "broken", want: map[string]float64{
			"azurelinux_ebpf_stats_enabled": 0,
		}, errs: []string{
			`unprivileged_bpf_disabled: not an unsigned integer (invalid value, 8 bytes)`,
			"bpf_jit_enable: binary data",
			"bpf_jit_harden: empty",
			`bpf_jit_kallsyms: not an unsigned integer (invalid value, 2 bytes)`,
			"btf/vmlinux: empty",
			"self/mounts: line 2: 4 fields, want 6",
		}, missing: []string{
			"azurelinux_ebpf_unprivileged_disabled", "azurelinux_ebpf_jit_enabled", "azurelinux_ebpf_btf_available",
			"azurelinux_ebpf_bpffs_mounted", "azurelinux_ebpf_jit_limit_bytes",
		}},
		{tree: "empty", noData: true},
	} {
		t.Run(tc.tree, func(t *testing.T) {
			paths := ebpfTreePaths(t, tc.tree)
			if paths.Live() {
				t.Fatal("a fixture tree counts as the live /proc")
			}
			c := newTestEBPF(t, paths, nil, nil)
			m := &Metrics{}
			err := c.Update(context.Background(), m)
			got := ebpfSamples(t, m)
			switch {
			case tc.noData:
				if !errors.Is(err, ErrNoData) || len(got) != 0 {
					t.Fatalf("Update = %v with %v, want ErrNoData and nothing", err, got)
				}
			case len(tc.errs) == 0 && err != nil:
				t.Fatalf("Update: %v", err)
			case len(tc.errs) > 0:
				if err == nil {
					t.Fatal("Update succeeded on a broken tree")
				}
				rest := err.Error()
				for _, want := range tc.errs {
					i := strings.Index(rest, want)
					if i < 0 {
						t.Errorf("error lacks %q (in order):\n%v", want, err)
						continue
					}
					rest = rest[i+len(want):]
				}
			}
			for k, v := range tc.want {
				if g, ok := got[k]; !ok || g != v {
					t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
				}
			}
			for _, k := range tc.missing {
				if _, ok := got[k]; ok {
					t.Errorf("%s present, want no series", k)
				}
			}
			for k := range got {
				for _, live := range ebpfLiveOnly {
					if strings.HasPrefix(k, live) {
						t.Errorf("live fact %s served from a fixture tree", k)
					}
				}
			}
		})
	}
}

func TestEBPFBTFAndMounts(t *testing.T) {
	for _, tc := range []struct {
		name, mounts string
		btf          any // nil: absent, string: file content, true: a directory
		wantBTF      string
		wantBPFFS    string
	}{
		{"no bpffs, no btf", "proc /proc proc rw 0 0\n", nil, "0", "0"},
		{"bpffs elsewhere", "none /run/bpf bpf rw,relatime,mode=700 0 0\n", "x", "1", "1"},
		{"blank lines", "\nproc /proc proc rw 0 0\n\n", "x", "1", "0"},
		{"too many fields", "a b bpf d 0 0 extra\n", "x", "1", "error: line 1: 7 fields"},
		{"btf directory", "proc /proc proc rw 0 0\n", true, "error: not a regular file", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			treetest.File(t, filepath.Join(root, "proc/self/mounts"), tc.mounts)
			if err := os.MkdirAll(filepath.Join(root, "sys/kernel"), 0o755); err != nil {
				t.Fatal(err)
			}
			switch v := tc.btf.(type) {
			case string:
				treetest.File(t, filepath.Join(root, "sys/kernel/btf/vmlinux"), v)
			case bool:
				if err := os.MkdirAll(filepath.Join(root, "sys/kernel/btf/vmlinux"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			c := newTestEBPF(t, DefaultPaths(root), nil, nil)
			m := &Metrics{}
			err := c.Update(context.Background(), m)
			got := ebpfSamples(t, m)
			check := func(metric, want string) {
				if msg, ok := strings.CutPrefix(want, "error: "); ok {
					if err == nil || !strings.Contains(err.Error(), msg) {
						t.Errorf("%s: error %v, want one containing %q", metric, err, msg)
					}
					if _, ok := got[metric]; ok {
						t.Errorf("%s served despite the error", metric)
					}
					return
				}
				if g := strconv.FormatFloat(got[metric], 'g', -1, 64); g != want {
					t.Errorf("%s = %s, want %s", metric, g, want)
				}
			}
			check("azurelinux_ebpf_btf_available", tc.wantBTF)
			check("azurelinux_ebpf_bpffs_mounted", tc.wantBPFFS)
		})
	}
}

func TestEBPFCapabilities(t *testing.T) {
	for _, tc := range []struct {
		status  string
		want    capSet
		wantErr string
	}{
		{"Name:\tprobe\nCapEff:\t000001ffffffffff\n", 0x1ffffffffff, ""},
		{"CapEff:\t000000c000201000\n", 1<<capBPF | 1<<capPerfmon | 1<<capSysAdmin | 1<<capNetAdmin, ""},
		{"CapEff:\t0000000000000000\n", 0, ""},
		{"CapInh:\t0\n", 0, "no CapEff line"},
		{"CapEff:\tzz\n", 0, "CapEff: strconv.ParseUint"},
	} {
		root := t.TempDir()
		treetest.File(t, filepath.Join(root, "proc/self/status"), tc.status)
		c := newTestEBPF(t, DefaultPaths(root), nil, nil)
		got, err := c.capabilities()
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.status, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %x, %v; want %x", tc.status, uint64(got), err, uint64(tc.want))
		}
	}
}

func TestEBPFOptions(t *testing.T) {
	for _, tc := range []struct {
		mutate  func(*ebpfOptions)
		wantErr string
	}{
		{func(o *ebpfOptions) { o.ProgramTypes = append(o.ProgramTypes, "kprobes") }, `program_types: unknown type "kprobes"`},
		{func(o *ebpfOptions) { o.MapTypes = []string{"unspec"} }, `map_types: unknown type "unspec"`},
		{func(o *ebpfOptions) { o.InventoryLimit = 0 }, "inventory_limit: 0 is not positive"},
		{func(o *ebpfOptions) { o.ProgramTypes, o.MapTypes = nil, nil }, ""},
	} {
		o := defaultEBPFOptions()
		tc.mutate(o)
		_, err := newEBPFCollector(Env{Paths: DefaultPaths("/")}, o)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("error %v, want %q", err, tc.wantErr)
		}
	}
}

// TestEBPFTypeNames checks the kernel names against cilium/ebpf's constants,
// whose values are the kernel's: the names differ only in spelling.
func TestEBPFTypeNames(t *testing.T) {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }
	respelled := map[string]string{
		"Extension": "ext", "ProgramArray": "prog_array", "LRUCPUHash": "lru_percpu_hash",
		"StructOpsMap": "struct_ops", "CgroupStorage": "cgrp_storage",
		"UnspecifiedProgram": "unspec", "UnspecifiedMap": "unspec",
	}
	for i, name := range progTypeNames {
		cilium := ebpf.ProgramType(i).String()
		if r, ok := respelled[cilium]; ok {
			cilium = r
		}
		if norm(cilium) != norm(name) {
			t.Errorf("program type %d: %q here, %q in cilium/ebpf", i, name, cilium)
		}
	}
	for i, name := range mapTypeNames {
		cilium := ebpf.MapType(i).String()
		if r, ok := respelled[cilium]; ok {
			cilium = r
		}
		if norm(cilium) != norm(name) {
			t.Errorf("map type %d: %q here, %q in cilium/ebpf", i, name, cilium)
		}
	}
	if got := typeName(linkTypeNames, 1); got != "raw_tracepoint" {
		t.Errorf("link type 1 = %q", got)
	}
	if got := typeName(progTypeNames, 4096); got != "unknown_4096" {
		t.Errorf("type 4096 = %q", got)
	}
}

// FuzzHasBPFFS: any input gives an answer or an error naming a line, and a
// table with a bpf line among well-formed ones is always found.
func FuzzHasBPFFS(f *testing.F) {
	f.Add("bpf /sys/fs/bpf bpf rw,nosuid,nodev,noexec,relatime,mode=700 0 0\n")
	f.Add("proc /proc proc rw 0 0\n\n")
	f.Add("a b c\n")
	f.Fuzz(func(t *testing.T, text string) {
		found, err := hasBPFFS(text)
		if err != nil {
			if found || !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("hasBPFFS(%q) = %v, %v", text, found, err)
			}
			return
		}
		withBPF := text + "\nbpf /sys/fs/bpf bpf rw 0 0\n"
		if ok, err := hasBPFFS(withBPF); err != nil || !ok {
			t.Fatalf("hasBPFFS(%q) = %v, %v after appending a bpf mount", withBPF, ok, err)
		}
	})
}
