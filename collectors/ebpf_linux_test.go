//go:build linux

package collectors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/azurelinux-probe/azurelinux-probe/bpf"
)

// ebpfRequireRoot skips a live test outside CI when not root; CI runs as root
// and must run every test.
func ebpfRequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("live eBPF tests need root in CI")
	}
	t.Skip("live eBPF test: needs root")
}

func ebpfLivePaths(t testing.TB) Paths {
	t.Helper()
	p := DefaultPaths("/")
	if !p.Live() {
		t.Fatal("/proc is not this process's procfs")
	}
	return p
}

func ebpfSysctl(t *testing.T, path string) float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// ebpfTestObjects loads objects of types nothing else on a test host uses:
// cgroup_sysctl programs, stack maps, and one raw tracepoint link.
type ebpfTestObjects struct {
	progs []*ebpf.Program
	maps  []*ebpf.Map
	link  link.Link
}

func ebpfLoadTestObjects(t testing.TB, progs, maps int) *ebpfTestObjects {
	t.Helper()
	o := &ebpfTestObjects{}
	t.Cleanup(o.close)
	for range progs {
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Type: ebpf.CGroupSysctl, AttachType: ebpf.AttachCGroupSysctl, License: "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()},
		})
		if err != nil {
			t.Fatalf("load a cgroup_sysctl program: %v", err)
		}
		o.progs = append(o.progs, p)
	}
	for range maps {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Stack, ValueSize: 4, MaxEntries: 1})
		if err != nil {
			t.Fatalf("create a stack map: %v", err)
		}
		o.maps = append(o.maps, m)
	}
	return o
}

func (o *ebpfTestObjects) attachRawTracepoint(t testing.TB) {
	t.Helper()
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.RawTracepoint, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		t.Fatalf("load a raw_tracepoint program: %v", err)
	}
	o.progs = append(o.progs, p)
	if o.link, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sched_process_free", Program: p}); err != nil {
		t.Fatalf("attach to raw tracepoint sched_process_free: %v", err)
	}
}

func (o *ebpfTestObjects) close() {
	if o.link != nil {
		o.link.Close()
		o.link = nil
	}
	for _, p := range o.progs {
		p.Close()
	}
	for _, m := range o.maps {
		m.Close()
	}
	o.progs, o.maps = nil, nil
}

// TestEBPFLive runs the collector against this machine's kernel (6.18 in
// the project's CI) and checks real values: file facts equal the sysctls,
// the feature matrix has the types every supported kernel loads, the
// inventory counts objects the test itself loaded, and the canary reaches
// its run stage.
func TestEBPFLive(t *testing.T) {
	ebpfRequireRoot(t)
	c := newTestEBPF(t, ebpfLivePaths(t), nil, nil)
	m := &Metrics{}
	if err := c.Update(context.Background(), m); err != nil {
		t.Fatalf("Update: %v", err)
	}
	before := ebpfSamples(t, m)

	objs := ebpfLoadTestObjects(t, 5, 3)
	objs.attachRawTracepoint(t)
	m = &Metrics{}
	if err := c.Update(context.Background(), m); err != nil {
		t.Fatalf("Update: %v", err)
	}
	got := ebpfSamples(t, m)

	want := map[string]float64{
		"azurelinux_ebpf_unprivileged_disabled": ebpfSysctl(t, "/proc/sys/kernel/unprivileged_bpf_disabled"),
		"azurelinux_ebpf_stats_enabled":         ebpfSysctl(t, "/proc/sys/kernel/bpf_stats_enabled"),
		"azurelinux_ebpf_jit_enabled":           ebpfSysctl(t, "/proc/sys/net/core/bpf_jit_enable"),
		"azurelinux_ebpf_jit_harden":            ebpfSysctl(t, "/proc/sys/net/core/bpf_jit_harden"),
		"azurelinux_ebpf_jit_kallsyms":          ebpfSysctl(t, "/proc/sys/net/core/bpf_jit_kallsyms"),
		"azurelinux_ebpf_jit_limit_bytes":       ebpfSysctl(t, "/proc/sys/net/core/bpf_jit_limit"),
		"azurelinux_ebpf_btf_available":         1,
		"azurelinux_ebpf_bpffs_mounted":         b2f(ebpfIsBPFFS("/sys/fs/bpf")),

		`azurelinux_ebpf_probe_capability{capability="bpf"}`:       1,
		`azurelinux_ebpf_probe_capability{capability="perfmon"}`:   1,
		`azurelinux_ebpf_probe_capability{capability="net_admin"}`: 1,
		`azurelinux_ebpf_probe_capability{capability="sys_admin"}`: 1,

		// Loadable on every kernel the probe supports (Azure Linux 3.0's 6.6 on).
		`azurelinux_ebpf_program_type_supported{type="socket_filter"}`:  1,
		`azurelinux_ebpf_program_type_supported{type="raw_tracepoint"}`: 1,
		`azurelinux_ebpf_program_type_supported{type="xdp"}`:            1,
		`azurelinux_ebpf_program_type_supported{type="sched_cls"}`:      1,
		`azurelinux_ebpf_program_type_supported{type="cgroup_skb"}`:     1,
		`azurelinux_ebpf_program_type_supported{type="tracepoint"}`:     1,
		`azurelinux_ebpf_program_type_supported{type="syscall"}`:        1,
		`azurelinux_ebpf_map_type_supported{type="hash"}`:               1,
		`azurelinux_ebpf_map_type_supported{type="ringbuf"}`:            1,
		`azurelinux_ebpf_map_type_supported{type="lpm_trie"}`:           1,
		`azurelinux_ebpf_map_type_supported{type="task_storage"}`:       1,

		`azurelinux_ebpf_canary_success{stage="load"}`:   1,
		`azurelinux_ebpf_canary_success{stage="attach"}`: 1,
		`azurelinux_ebpf_canary_success{stage="run"}`:    1,

		// The test's own objects, on top of what was there before.
		`azurelinux_ebpf_programs_loaded{type="cgroup_sysctl"}`: before[`azurelinux_ebpf_programs_loaded{type="cgroup_sysctl"}`] + 5,
		`azurelinux_ebpf_maps_loaded{type="stack"}`:             before[`azurelinux_ebpf_maps_loaded{type="stack"}`] + 3,
		`azurelinux_ebpf_links{type="raw_tracepoint"}`:          before[`azurelinux_ebpf_links{type="raw_tracepoint"}`] + 1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if v := got["azurelinux_ebpf_canary_verified_instructions"]; v <= 0 {
		t.Errorf("canary_verified_instructions = %v", v)
	}
	if v := got["azurelinux_ebpf_canary_load_duration_seconds"]; v <= 0 || v > 10 {
		t.Errorf("canary_load_duration_seconds = %v", v)
	}
	// Every watched type has exactly one answer: supported 0/1 or
	// inconclusive, never both; and a count, 0 when none is loaded.
	for _, tc := range []struct {
		kind, supported, loaded string
		types                   []string
	}{
		{"program", "program_type_supported", "programs_loaded", c.opts.ProgramTypes},
		{"map", "map_type_supported", "maps_loaded", c.opts.MapTypes},
	} {
		for _, typ := range tc.types {
			_, answered := got[fmt.Sprintf(`azurelinux_ebpf_%s{type=%q}`, tc.supported, typ)]
			_, inconclusive := got[fmt.Sprintf(`azurelinux_ebpf_feature_probe_inconclusive{kind=%q,type=%q}`, tc.kind, typ)]
			if answered == inconclusive {
				t.Errorf("%s type %s: supported series %v, inconclusive series %v", tc.kind, typ, answered, inconclusive)
			}
			if _, ok := got[fmt.Sprintf(`azurelinux_ebpf_%s{type=%q}`, tc.loaded, typ)]; !ok {
				t.Errorf("no %s series for watched type %s", tc.loaded, typ)
			}
		}
	}
	t.Logf("features: %s", ebpfFeatureSummary(got))

	// Closed objects leave the inventory.
	objs.close()
	m = &Metrics{}
	if err := c.Update(context.Background(), m); err != nil {
		t.Fatalf("Update: %v", err)
	}
	after := ebpfSamples(t, m)
	for _, k := range []string{`azurelinux_ebpf_programs_loaded{type="cgroup_sysctl"}`, `azurelinux_ebpf_maps_loaded{type="stack"}`} {
		if after[k] != before[k] {
			t.Errorf("%s = %v after the test's objects were closed, %v before", k, after[k], before[k])
		}
	}
}

func ebpfFeatureSummary(got map[string]float64) string {
	var yes, no, unknown []string
	for k, v := range got {
		switch {
		case strings.HasPrefix(k, "azurelinux_ebpf_feature_probe_inconclusive"):
			unknown = append(unknown, k[strings.Index(k, "{"):])
		case strings.Contains(k, "_type_supported{"):
			if v == 1 {
				yes = append(yes, k[strings.Index(k, "{"):])
			} else {
				no = append(no, k[strings.Index(k, "{"):])
			}
		}
	}
	sort.Strings(yes)
	sort.Strings(no)
	sort.Strings(unknown)
	return fmt.Sprintf("supported %v; unsupported %v; inconclusive %v", yes, no, unknown)
}

// ebpfIsBPFFS reports whether path is a bpf file system mount (BPF_FS_MAGIC),
// independently of the collector's reading of /proc/self/mounts.
func ebpfIsBPFFS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && uint32(st.Type) == unix.BPF_FS_MAGIC
}

// ebpfLoadedPrograms lists the IDs of all programs on the host.
func ebpfLoadedPrograms(t testing.TB) map[ebpf.ProgramID]bool {
	t.Helper()
	out := map[ebpf.ProgramID]bool{}
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		id = next
		out[id] = true
	}
}

// ebpfProgramNames describes programs by ID and name, for a failure message.
func ebpfProgramNames(ids []ebpf.ProgramID) string {
	var out []string
	for _, id := range ids {
		name := "?"
		if p, err := ebpf.NewProgramFromID(id); err == nil {
			if info, err := p.Info(); err == nil {
				name = info.Name
			}
			p.Close()
		}
		out = append(out, fmt.Sprintf("%d (%s)", id, name))
	}
	return strings.Join(out, ", ")
}

// ebpfOpenFDs counts this process's open descriptors.
func ebpfOpenFDs(t testing.TB) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestEBPFRefreshesLeakNothing refreshes the collector repeatedly: the
// process's descriptors must be exactly as before, and every program a
// refresh loaded (each canary, the inventory's iterators) must leave the
// kernel: the host's program list must be as before. The kernel frees a raw tracepoint link's program
// only after an RCU grace period (about 250ms for the faultable syscall
// tracepoints of 6.18) and tells user space nothing when it does, so the
// program list is polled under a deadline; descriptors, which the collector
// controls, are compared at once.
func TestEBPFRefreshesLeakNothing(t *testing.T) {
	ebpfRequireRoot(t)
	c := newTestEBPF(t, ebpfLivePaths(t), nil, nil)
	refresh := func() {
		m := &Metrics{}
		if err := c.Update(context.Background(), m); err != nil {
			t.Fatalf("Update: %v", err)
		}
		if got := ebpfSamples(t, m)[`azurelinux_ebpf_canary_success{stage="run"}`]; got != 1 {
			t.Fatalf("canary run stage = %v", got)
		}
	}
	refresh() // cilium/ebpf keeps a few descriptors for good after first use
	fds, progs := ebpfOpenFDs(t), ebpfLoadedPrograms(t)
	const n = 10
	for range n {
		refresh()
	}
	if got := ebpfOpenFDs(t); got != fds {
		t.Errorf("open descriptors: %d before %d refreshes, %d after", fds, n, got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var extra []ebpf.ProgramID
		for id := range ebpfLoadedPrograms(t) {
			if !progs[id] {
				extra = append(extra, id)
			}
		}
		if len(extra) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10s after %d refreshes, programs loaded that were not before: %s", n, ebpfProgramNames(extra))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEBPFInventoryLimit(t *testing.T) {
	ebpfRequireRoot(t)
	ebpfLoadTestObjects(t, 3, 0)
	c := newTestEBPF(t, ebpfLivePaths(t), nil, func(o *ebpfOptions) { o.InventoryLimit = 2; o.Canary = false })
	m := &Metrics{}
	err := c.Update(context.Background(), m)
	if err == nil || !strings.Contains(err.Error(), "inventory of programs: more than inventory_limit (2)") {
		t.Fatalf("Update = %v, want the inventory limit error", err)
	}
	for k := range ebpfSamples(t, m) {
		if strings.HasPrefix(k, "azurelinux_ebpf_programs_loaded") {
			t.Errorf("%s served from a truncated inventory", k)
		}
	}
}

const ebpfDropCapsEnv = "AZURELINUX_PROBE_TEST_EBPF_CAPS"

// TestEBPFUnprivileged runs the collector in a child process without any
// capability (as root with an empty bounding set, as a unit with
// CapabilityBoundingSet= would): it must succeed with the facts it can
// read, and log why each other part is skipped, one line each.
func TestEBPFUnprivileged(t *testing.T) {
	switch os.Getenv(ebpfDropCapsEnv) {
	case "":
		ebpfRequireRoot(t)
		cmd := exec.Command(os.Args[0], "-test.run=^TestEBPFUnprivileged$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), ebpfDropCapsEnv+"=drop")
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestEBPFUnprivileged")) {
			t.Fatalf("unprivileged child: %v\n%s", err, out)
		}
		t.Logf("child:\n%s", out)
	case "drop":
		// The bounding set is per thread and applies at execve, so drop it
		// on this locked thread and exec from it: the new image then starts
		// with no capability at all, though it runs as uid 0.
		runtime.LockOSThread()
		for cp := 0; cp < 64; cp++ {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(cp), 0, 0, 0); err != nil && cp <= capBPF {
				t.Fatalf("drop capability %d from the bounding set: %v", cp, err)
			}
		}
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, ebpfDropCapsEnv+"=") {
				env = append(env, kv)
			}
		}
		err := syscall.Exec(os.Args[0], os.Args, append(env, ebpfDropCapsEnv+"=dropped"))
		t.Fatalf("exec: %v", err)
	case "dropped":
		ebpfUnprivilegedChild(t)
	}
}

func ebpfUnprivilegedChild(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c := newTestEBPF(t, ebpfLivePaths(t), logger, nil)
	caps, err := c.capabilities()
	if err != nil || caps != 0 {
		t.Fatalf("child capabilities %x, %v; want none", uint64(caps), err)
	}
	m := &Metrics{}
	if err := c.Update(context.Background(), m); err != nil {
		t.Fatalf("Update without capabilities: %v", err)
	}
	got := ebpfSamples(t, m)
	for _, k := range []string{
		"azurelinux_ebpf_unprivileged_disabled", "azurelinux_ebpf_jit_enabled", "azurelinux_ebpf_stats_enabled",
		"azurelinux_ebpf_btf_available", "azurelinux_ebpf_bpffs_mounted",
	} {
		if _, ok := got[k]; !ok {
			t.Errorf("%s missing: readable without capabilities", k)
		}
	}
	for _, name := range []string{"bpf", "perfmon", "net_admin", "sys_admin"} {
		if v, ok := got[fmt.Sprintf(`azurelinux_ebpf_probe_capability{capability=%q}`, name)]; !ok || v != 0 {
			t.Errorf("probe_capability %s = %v (present %v), want 0", name, v, ok)
		}
	}
	for k := range got {
		for _, absent := range []string{
			"azurelinux_ebpf_jit_harden", "azurelinux_ebpf_jit_kallsyms", "azurelinux_ebpf_jit_limit_bytes",
			"azurelinux_ebpf_program_type_supported", "azurelinux_ebpf_map_type_supported",
			"azurelinux_ebpf_feature_probe_inconclusive", "azurelinux_ebpf_programs_loaded",
			"azurelinux_ebpf_maps_loaded", "azurelinux_ebpf_links", "azurelinux_ebpf_canary_",
		} {
			if strings.HasPrefix(k, absent) {
				t.Errorf("%s served without the capability it needs", k)
			}
		}
	}
	text := logs.String()
	t.Logf("log of the refresh:\n%s", text)
	for _, want := range []string{
		"eBPF feature probes skipped: the probe lacks CAP_BPF",
		"eBPF inventory skipped: its iterators need CAP_BPF and CAP_PERFMON",
		"eBPF canary skipped: loading and attaching it needs CAP_BPF and CAP_PERFMON",
		"bpf_jit_harden", "bpf_jit_kallsyms", "bpf_jit_limit",
	} {
		if n := strings.Count(text, want); n != 1 {
			t.Errorf("log has %d lines with %q, want 1:\n%s", n, want, text)
		}
	}
}

// BenchmarkEBPFInventory measures an inventory refresh with 500 programs
// and 100 maps loaded by the benchmark on top of the host's, from a new
// collector each time, as each refresh's child process runs it. With the
// BPF iterators (bpf/inventory.c) a refresh loads the three iterator
// programs, whose CO-RE relocation decodes kernel BTF: about 60 ms and 12 MB
// allocated per refresh on 6.18, against 3.3 ms for the former GET_NEXT_ID
// walk; the daemon's eBPF child, which decodes kernel BTF for the canary
// anyway, measured 0.42 s and 24.8 MB peak RSS per refresh, against 0.40 s
// and 23.8 MB before.
func BenchmarkEBPFInventory(b *testing.B) {
	ebpfRequireRoot(b)
	ebpfLoadTestObjects(b, 500, 100)
	paths := ebpfLivePaths(b)
	b.ReportAllocs()
	for b.Loop() {
		c := newTestEBPF(b, paths, nil, nil)
		if err := c.updateInventory(context.Background(), &Metrics{}, true); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEBPFFeatureAnswers: only success and ErrNotSupported are answers;
// anything else is an inconclusive series and one error log line, never a
// false 0.
func TestEBPFFeatureAnswers(t *testing.T) {
	eperm := fmt.Errorf("detect support for XDP: load program: %w", unix.EPERM)
	for _, tc := range []struct {
		err                error
		lacking            []string
		want, inconclusive string // series expected, "" for none
		log                string
	}{
		{nil, nil, "1", "", ""},
		{fmt.Errorf("xdp: %w", ebpf.ErrNotSupported), nil, "0", "", ""},
		{eperm, []string{"CAP_NET_ADMIN"}, "", "1", `hint="the probe lacks CAP_NET_ADMIN, which some types need"`},
		{eperm, nil, "", "1", "operation not permitted"},
		{errors.New("no feature probe for 99"), []string{"CAP_PERFMON"}, "", "1", "no feature probe for 99"},
	} {
		var logs bytes.Buffer
		c := newTestEBPF(t, DefaultPaths("/"), slog.New(slog.NewTextHandler(&logs, nil)), nil)
		m := &Metrics{}
		c.feature(m, ebpfProgramTypeSupportedFact, "program", "xdp", tc.err, tc.lacking)
		got := ebpfSamples(t, m)
		if v, ok := got[`azurelinux_ebpf_program_type_supported{type="xdp"}`]; tc.want == "" && ok ||
			tc.want != "" && (!ok || strconv.FormatFloat(v, 'g', -1, 64) != tc.want) {
			t.Errorf("%v: supported series %v (present %v), want %q", tc.err, v, ok, tc.want)
		}
		if _, ok := got[`azurelinux_ebpf_feature_probe_inconclusive{kind="program",type="xdp"}`]; ok != (tc.inconclusive != "") {
			t.Errorf("%v: inconclusive series present %v", tc.err, ok)
		}
		lines := strings.Count(logs.String(), "\n")
		switch {
		case tc.log == "" && lines != 0:
			t.Errorf("%v: logged %q", tc.err, logs.String())
		case tc.log != "" && (lines != 1 || !strings.Contains(logs.String(), tc.log) || !strings.Contains(logs.String(), "level=ERROR")):
			t.Errorf("%v: log %q, want one error line with %q", tc.err, logs.String(), tc.log)
		}
	}
}

// TestEBPFInventoryFallback: on a kernel whose iterators do not load (the
// stand-in here fails every one with bpf.ErrNoIterator), a probe with
// CAP_SYS_ADMIN counts through BPF_*_GET_NEXT_ID and gets the same counts
// as the iterators; without CAP_SYS_ADMIN programs and maps are an error
// naming the iterator, and links are logged as unavailable.
func TestEBPFInventoryFallback(t *testing.T) {
	ebpfRequireRoot(t)
	objs := ebpfLoadTestObjects(t, 4, 2)
	objs.attachRawTracepoint(t)
	count := func(sysAdmin bool) (map[string]float64, error) {
		c := newTestEBPF(t, ebpfLivePaths(t), nil, nil)
		m := &Metrics{}
		err := c.updateInventory(context.Background(), m, sysAdmin)
		return ebpfSamples(t, m), err
	}
	want, err := count(true)
	if err != nil {
		t.Fatal(err)
	}
	orig := ebpfIterate
	t.Cleanup(func() { ebpfIterate = orig })
	ebpfIterate = func(context.Context, *bpf.Inventory, bpf.Kind, int) ([]bpf.Object, error) {
		return nil, fmt.Errorf("%w: load the test iterator: %w", bpf.ErrNoIterator, ebpf.ErrNotSupported)
	}
	got, err := count(true)
	if err != nil {
		t.Fatalf("fallback: %v", err)
	}
	for _, k := range []string{`azurelinux_ebpf_programs_loaded{type="cgroup_sysctl"}`, `azurelinux_ebpf_maps_loaded{type="stack"}`,
		`azurelinux_ebpf_links{type="raw_tracepoint"}`} {
		if got[k] != want[k] || want[k] == 0 {
			t.Errorf("%s: fallback %v, iterators %v", k, got[k], want[k])
		}
	}
	got, err = count(false)
	if err == nil || !strings.Contains(err.Error(), "inventory of programs: iterator unavailable") ||
		!strings.Contains(err.Error(), "inventory of maps: iterator unavailable") {
		t.Errorf("without CAP_SYS_ADMIN: %v", err)
	}
	for k := range got {
		if strings.HasPrefix(k, "azurelinux_ebpf_links") {
			t.Errorf("%s served without any way to list links", k)
		}
	}
}
