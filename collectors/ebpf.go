package collectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"

	"github.com/azurelinux-probe/azurelinux-probe/bpf"
	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// The ebpf collector answers three questions about the running kernel: what
// eBPF program and map types it can load (a feature matrix), what is loaded
// now (a host-wide inventory), and whether a real CO-RE program loads,
// attaches and runs right now (the canary in bpf/).
//
// Sysctls, the BTF file and the bpffs mount are files and are read against
// fixture trees too. Everything else asks the kernel through bpf(2) and is
// collected only when procfs is the live /proc of the kernel this process
// runs on; against a fixture tree it is skipped, not failed.
//
// Privileges (see docs/metrics.md and the README): the feature probes need
// CAP_BPF (network program and map types also CAP_NET_ADMIN, tracing types
// CAP_PERFMON), the canary and the inventory CAP_BPF and CAP_PERFMON (the
// inventory runs BPF iterators, bpf/inventory.c; only a kernel without them
// falls back to BPF_*_GET_NEXT_ID, which needs CAP_SYS_ADMIN), and reading
// net.core.bpf_jit_harden, bpf_jit_kallsyms and bpf_jit_limit needs a
// privileged reader (net/core/sysctl_net_core.c,
// proc_dointvec_minmax_bpf_restricted), which the shipped unit is not.
// CAP_SYS_ADMIN stands in for all of them. What
// the probe lacks is skipped with one log line and no series; the collector
// still succeeds.
func init() {
	register(Spec{
		Name:           "ebpf",
		Needs:          "a running kernel (bpf(2), the kernel BTF, eBPF sysctls)",
		DefaultEnabled: true,
		// The canary loads a program into the kernel and the first feature
		// probes take about half a second: refresh every few minutes.
		Interval: 5 * time.Minute,
		Timeout:  30 * time.Second,
		// Loading the canary parses the kernel's BTF (several MB of heap)
		// and creates kernel objects: a child process per refresh keeps
		// the daemon's memory that of serving cached facts, and takes
		// every program, map and fd with it when it exits. The price:
		// nothing outlives a refresh, so the feature probes run again
		// each time (about 0.4 s of CPU every 5 minutes), and each child
		// logs a lasting condition (a capability the probe lacks, a probe
		// the kernel refuses) again; the daemon forwards each distinct
		// line of its children once (agent/isolate.go).
		Isolated: true,
		Options:  func() any { return defaultEBPFOptions() },
		New:      newEBPFCollector,
	})
}

type ebpfOptions struct {
	// ProgramTypes and MapTypes are probed for
	// azurelinux_ebpf_program_type_supported and map_type_supported, and
	// reported as 0 by the inventory when none is loaded. Names are the
	// kernel's (BPF_PROG_TYPE_XDP is xdp), as bpftool prints them.
	ProgramTypes []string `yaml:"program_types"`
	MapTypes     []string `yaml:"map_types"`
	// Inventory counts the programs, maps and links loaded on the host.
	Inventory bool `yaml:"inventory" flag:"inventory" help:"Count the eBPF programs, maps and links loaded on the host (needs CAP_BPF and CAP_PERFMON)."`
	// InventoryLimit bounds the objects of each kind (programs, maps, links)
	// one refresh walks; a host with more reports an error and no counts of
	// that kind rather than a wrong count.
	InventoryLimit int `yaml:"inventory_limit"`
	// Canary loads, attaches and runs the canary program on every refresh.
	Canary bool `yaml:"canary" flag:"canary" help:"Load, attach and run the CO-RE canary program on every refresh (needs CAP_BPF and CAP_PERFMON)."`
}

func defaultEBPFOptions() *ebpfOptions {
	return &ebpfOptions{
		ProgramTypes: []string{
			"socket_filter", "kprobe", "sched_cls", "tracepoint", "xdp", "perf_event", "cgroup_skb",
			"cgroup_sock", "raw_tracepoint", "cgroup_sock_addr", "tracing", "struct_ops", "lsm",
			"sk_lookup", "syscall", "netfilter",
		},
		MapTypes: []string{
			"hash", "array", "prog_array", "perf_event_array", "percpu_hash", "percpu_array", "lru_hash",
			"lpm_trie", "sk_storage", "ringbuf", "inode_storage", "task_storage", "bloom_filter",
			"user_ringbuf", "arena",
		},
		Inventory:      true,
		InventoryLimit: 65536,
		Canary:         true,
	}
}

// progTypeNames, mapTypeNames and linkTypeNames are the kernel's names of
// enum bpf_prog_type, bpf_map_type and bpf_link_type (include/uapi/linux/
// bpf.h, as libbpf and bpftool print them), indexed by value. A value past
// the end, from a newer kernel, is reported as unknown_<value>.
var (
	progTypeNames = []string{
		"unspec", "socket_filter", "kprobe", "sched_cls", "sched_act", "tracepoint", "xdp", "perf_event",
		"cgroup_skb", "cgroup_sock", "lwt_in", "lwt_out", "lwt_xmit", "sock_ops", "sk_skb",
		"cgroup_device", "sk_msg", "raw_tracepoint", "cgroup_sock_addr", "lwt_seg6local", "lirc_mode2",
		"sk_reuseport", "flow_dissector", "cgroup_sysctl", "raw_tracepoint_writable", "cgroup_sockopt",
		"tracing", "struct_ops", "ext", "lsm", "sk_lookup", "syscall", "netfilter",
	}
	mapTypeNames = []string{
		"unspec", "hash", "array", "prog_array", "perf_event_array", "percpu_hash", "percpu_array",
		"stack_trace", "cgroup_array", "lru_hash", "lru_percpu_hash", "lpm_trie", "array_of_maps",
		"hash_of_maps", "devmap", "sockmap", "cpumap", "xskmap", "sockhash", "cgroup_storage",
		"reuseport_sockarray", "percpu_cgroup_storage", "queue", "stack", "sk_storage", "devmap_hash",
		"struct_ops", "ringbuf", "inode_storage", "task_storage", "bloom_filter", "user_ringbuf",
		"cgrp_storage", "arena",
	}
	linkTypeNames = []string{
		"unspec", "raw_tracepoint", "tracing", "cgroup", "iter", "netns", "xdp", "perf_event",
		"kprobe_multi", "struct_ops", "netfilter", "tcx", "uprobe_multi", "netkit", "sockmap",
	}
)

func typeName(names []string, v uint32) string {
	if int64(v) < int64(len(names)) {
		return names[v]
	}
	return "unknown_" + strconv.FormatUint(uint64(v), 10)
}

// typeValues maps names back to values for the configured type lists.
func typeValues(option string, names, list []string) ([]uint32, error) {
	out := make([]uint32, 0, len(list))
	for _, n := range list {
		i := indexOf(names, n)
		if i <= 0 {
			return nil, fmt.Errorf("%s: unknown type %q (known: %s)", option, n, strings.Join(names[1:], ", "))
		}
		out = append(out, uint32(i))
	}
	return out, nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// Capability bits (include/uapi/linux/capability.h). CAP_PERFMON and CAP_BPF
// arrived in Linux 5.8; before that CAP_SYS_ADMIN covers them.
const (
	capNetAdmin = 12
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

var probeCapabilities = []struct {
	name string
	bit  uint
}{{"bpf", capBPF}, {"perfmon", capPerfmon}, {"net_admin", capNetAdmin}, {"sys_admin", capSysAdmin}}

var ebpfBtfAvailableFact = declare(Fact{
	Collector: "ebpf", Name: "btf_available",
	Help: "1 when the kernel publishes its BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF, Linux 5.4), which CO-RE programs need to load.",
})

var ebpfJitEnabledFact = declare(Fact{
	Collector: "ebpf", Name: "jit_enabled",
	Help: "Raw net.core.bpf_jit_enable: 0 interpreter, 1 JIT, 2 JIT with debug output.",
})

var ebpfJitHardenFact = declare(Fact{
	Collector: "ebpf", Name: "jit_harden",
	Help: "Raw net.core.bpf_jit_harden: 0 off, 1 for unprivileged programs, 2 for all. Reading it needs CAP_SYS_ADMIN.",
})

var ebpfJitKallsymsFact = declare(Fact{
	Collector: "ebpf", Name: "jit_kallsyms",
	Help: "Raw net.core.bpf_jit_kallsyms: 1 when JITed programs appear in /proc/kallsyms for privileged users. Reading it needs CAP_SYS_ADMIN.",
})

var ebpfJitLimitBytesFact = declare(Fact{
	Collector: "ebpf", Name: "jit_limit_bytes",
	Help: "net.core.bpf_jit_limit: memory the JIT may allocate for unprivileged programs. Reading it needs CAP_SYS_ADMIN.",
})

var ebpfUnprivilegedDisabledFact = declare(Fact{
	Collector: "ebpf", Name: "unprivileged_disabled",
	Help: "Raw kernel.unprivileged_bpf_disabled: 0 unprivileged bpf(2) allowed, 1 disabled until reboot, 2 disabled but an admin may re-enable it.",
})

var ebpfStatsEnabledFact = declare(Fact{
	Collector: "ebpf", Name: "stats_enabled",
	Help: "Raw kernel.bpf_stats_enabled: 1 when the kernel accounts run time and count of every program (Linux 5.1).",
})

var ebpfBpffsMountedFact = declare(Fact{
	Collector: "ebpf", Name: "bpffs_mounted",
	Help: "1 when a bpf file system (usually /sys/fs/bpf) is mounted in the probe's mount namespace, where agents pin programs and maps.",
})

var ebpfProbeCapabilityFact = declare(Fact{
	Collector: "ebpf", Name: "probe_capability",
	Help:     "1 when the probe's own process holds the capability (bpf, perfmon, net_admin, sys_admin) that live eBPF facts need; live only.",
	Labels:   []string{"capability"},
	Identity: []string{"capability"}, Bound: "4 capabilities",
})

var ebpfProgramTypeSupportedFact = declare(Fact{
	Collector: "ebpf", Name: "program_type_supported",
	Help:     "1 when the kernel loads programs of the type, 0 when it does not (cilium/ebpf features probe); no series when the probe was inconclusive; live only.",
	Labels:   []string{"type"},
	Identity: []string{"type"}, Bound: "the watched program types (collectors.ebpf.program_types)",
})

var ebpfMapTypeSupportedFact = declare(Fact{
	Collector: "ebpf", Name: "map_type_supported",
	Help:     "1 when the kernel creates maps of the type, 0 when it does not (cilium/ebpf features probe); no series when the probe was inconclusive; live only.",
	Labels:   []string{"type"},
	Identity: []string{"type"}, Bound: "the watched map types (collectors.ebpf.map_types)",
})

var ebpfFeatureProbeInconclusiveFact = declare(Fact{
	Collector: "ebpf", Name: "feature_probe_inconclusive",
	Help:     "1 for each program or map type (kind is program or map) whose feature probe failed without an answer, for example refused with EPERM; the error is logged. Live only.",
	Labels:   []string{"kind", "type"},
	Identity: []string{"kind", "type"}, Bound: "the watched program and map types",
})

var ebpfProgramsLoadedFact = declare(Fact{
	Collector: "ebpf", Name: "programs_loaded",
	Help:     "eBPF programs loaded on the host by type, all processes; 0 for watched types with none. Counted through BPF iterators (iter/bpf_prog), which need CAP_BPF and CAP_PERFMON; live only.",
	Labels:   []string{"type"},
	Identity: []string{"type"}, Volatile: true, Bound: "the program types cilium/ebpf names, and one per unknown type number",
})

var ebpfMapsLoadedFact = declare(Fact{
	Collector: "ebpf", Name: "maps_loaded",
	Help:     "eBPF maps loaded on the host by type, all processes; 0 for watched types with none. Counted through BPF iterators (iter/bpf_map), which need CAP_BPF and CAP_PERFMON; live only.",
	Labels:   []string{"type"},
	Identity: []string{"type"}, Volatile: true, Bound: "the map types cilium/ebpf names, and one per unknown type number",
})

var ebpfLinksFact = declare(Fact{
	Collector: "ebpf", Name: "links",
	Help:     "eBPF links (program attachments) on the host by type, 0 for known types with none; absent before Linux 5.8, which cannot iterate links. Counted through BPF iterators (iter/bpf_link, Linux 5.19), which need CAP_BPF and CAP_PERFMON; live only.",
	Labels:   []string{"type"},
	Identity: []string{"type"}, Volatile: true, Bound: "the link types cilium/ebpf names, and one per unknown type number",
})

var ebpfCanarySuccessFact = declare(Fact{
	Collector: "ebpf", Name: "canary_success",
	Help:     "1 when the canary CO-RE program got through the stage (load, attach, run) in the latest refresh, 0 when it or an earlier stage failed. Live only.",
	Labels:   []string{"stage"},
	Identity: []string{"stage"}, Bound: "3 stages",
})

var ebpfCanaryLoadDurationSecondsFact = declare(Fact{
	Collector: "ebpf", Name: "canary_load_duration_seconds",
	Help:     "How long loading the canary took: kernel BTF, CO-RE relocation and verification. Live only.",
	Volatile: true,
})

var ebpfCanaryVerifiedInstructionsFact = declare(Fact{
	Collector: "ebpf", Name: "canary_verified_instructions",
	Help:     "Instructions the verifier processed for the canary (Linux 5.16). Live only.",
	Volatile: true,
})

// ebpfCollector keeps nothing from one Update to the next: it is Isolated
// (see init), so each refresh is a process of its own.
type ebpfCollector struct {
	paths  Paths
	logger *slog.Logger
	opts   *ebpfOptions

	progTypes, mapTypes []uint32
}

func newEBPFCollector(env Env, opts any) (Collector, error) {
	o := opts.(*ebpfOptions)
	progTypes, err := typeValues("program_types", progTypeNames, o.ProgramTypes)
	if err != nil {
		return nil, err
	}
	mapTypes, err := typeValues("map_types", mapTypeNames, o.MapTypes)
	if err != nil {
		return nil, err
	}
	if o.InventoryLimit <= 0 {
		return nil, fmt.Errorf("inventory_limit: %d is not positive", o.InventoryLimit)
	}
	logger := env.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &ebpfCollector{
		paths:     env.Paths,
		logger:    logger,
		opts:      o,
		progTypes: progTypes,
		mapTypes:  mapTypes,
	}, nil
}

func (c *ebpfCollector) Update(ctx context.Context, m *Metrics) error {
	n, err := c.updateFiles(m)
	if !c.paths.Live() {
		if n == 0 && err == nil {
			return ErrNoData
		}
		return err
	}
	errs := []error{err}

	caps, err := c.capabilities()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, pc := range probeCapabilities {
		m.SetBool(ebpfProbeCapabilityFact, caps.has(pc.bit), pc.name)
	}
	bpfCapable := caps.has(capBPF) || caps.has(capSysAdmin)
	perfmonCapable := caps.has(capPerfmon) || caps.has(capSysAdmin)

	if c.skipUnless(bpfCapable, "eBPF feature probes skipped: the probe lacks CAP_BPF (or CAP_SYS_ADMIN)") {
		var lacking []string
		if !caps.has(capSysAdmin) {
			for _, pc := range probeCapabilities {
				if (pc.bit == capNetAdmin || pc.bit == capPerfmon) && !caps.has(pc.bit) {
					lacking = append(lacking, "CAP_"+strings.ToUpper(pc.name))
				}
			}
		}
		c.updateFeatures(m, lacking)
	}
	if ctx.Err() != nil {
		return errors.Join(append(errs, ctx.Err())...)
	}
	// The inventory runs before the canary so that it never counts it. (The
	// kernel frees a canary's program an RCU grace period after the run,
	// about 250ms on 6.18, long before the next refresh.)
	if c.opts.Inventory && c.skipUnless(bpfCapable && perfmonCapable,
		"eBPF inventory skipped: its iterators need CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)") {
		errs = append(errs, c.updateInventory(ctx, m, caps.has(capSysAdmin)))
	}
	if ctx.Err() != nil {
		return errors.Join(append(errs, ctx.Err())...)
	}
	if c.opts.Canary && c.skipUnless(bpfCapable && perfmonCapable,
		"eBPF canary skipped: loading and attaching it needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)") {
		errs = append(errs, c.updateCanary(m))
	}
	return errors.Join(errs...)
}

// skipUnless logs why a part is skipped when ok is false, and returns ok.
func (c *ebpfCollector) skipUnless(ok bool, why string) bool {
	if !ok {
		c.logger.Warn(why)
	}
	return ok
}

// sysctls are the raw eBPF sysctls, procfs-relative. net.core.bpf_jit_*
// exist only with CONFIG_BPF_JIT, the kernel.* ones with CONFIG_BPF_SYSCALL.
func (c *ebpfCollector) sysctls() []struct {
	path string
	fact *Fact
} {
	return []struct {
		path string
		fact *Fact
	}{
		{"sys/kernel/unprivileged_bpf_disabled", ebpfUnprivilegedDisabledFact},
		{"sys/kernel/bpf_stats_enabled", ebpfStatsEnabledFact},
		{"sys/net/core/bpf_jit_enable", ebpfJitEnabledFact},
		{"sys/net/core/bpf_jit_harden", ebpfJitHardenFact},
		{"sys/net/core/bpf_jit_kallsyms", ebpfJitKallsymsFact},
		{"sys/net/core/bpf_jit_limit", ebpfJitLimitBytesFact},
	}
}

// updateFiles emits the facts read from files and returns how many it
// emitted. A missing file is no data; one the probe may not read is logged
// and skipped; a garbled one is an error naming it.
func (c *ebpfCollector) updateFiles(m *Metrics) (int, error) {
	var errs []error
	n := 0
	for _, s := range c.sysctls() {
		path := c.paths.Proc(s.path)
		v, err := readUint(path)
		switch {
		case err == nil:
			m.Set(s.fact, float64(v))
			n++
		case isNotExist(err):
		case errors.Is(err, os.ErrPermission):
			c.logger.Warn("eBPF sysctl not readable without CAP_SYS_ADMIN, skipped", "file", path)
		default:
			errs = append(errs, err)
		}
	}

	// Without a sysfs there is nothing to say about BTF; with one, a missing
	// vmlinux means a kernel built without BTF.
	if exists(c.paths.Sys("kernel")) {
		ok, err := c.btfAvailable()
		if err != nil {
			errs = append(errs, err)
		} else {
			m.SetBool(ebpfBtfAvailableFact, ok)
			n++
		}
	}

	mounted, err := c.bpffsMounted()
	switch {
	case err == nil:
		m.SetBool(ebpfBpffsMountedFact, mounted)
		n++
	case !isNotExist(err):
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// btfAvailable reports whether <sysfs>/kernel/btf/vmlinux is a non-empty
// regular file (sysfs gives the blob's real size). The blob itself, several
// megabytes, is not read.
func (c *ebpfCollector) btfAvailable() (bool, error) {
	path := c.paths.Sys("kernel/btf/vmlinux")
	st, err := path.Stat()
	switch {
	case isNotExist(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("btf: %w", err)
	case !st.Mode().IsRegular():
		return false, fmt.Errorf("btf: %s: not a regular file (%s)", path, st.Mode().Type())
	case st.Size() == 0:
		return false, fmt.Errorf("btf: %s: empty", path)
	}
	return true, nil
}

// bpffsMounted looks for a mount of file system type bpf in
// <procfs>/self/mounts.
func (c *ebpfCollector) bpffsMounted() (bool, error) {
	path := c.paths.Proc("self/mounts")
	text, err := readText(path, maxFileSize)
	if err != nil {
		return false, err
	}
	found, err := hasBPFFS(text)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return found, nil
}

// hasBPFFS reports whether a mounts table (fstab format: device, mount
// point, type, options, dump, pass) has a file system of type bpf.
func hasBPFFS(text string) (bool, error) {
	found := false
	for i, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 6 {
			return false, fmt.Errorf("line %d: %d fields, want 6", i+1, len(f))
		}
		if f[2] == "bpf" {
			found = true
		}
	}
	return found, nil
}

// capSet is an effective capability set.
type capSet uint64

func (s capSet) has(bit uint) bool { return s&(1<<bit) != 0 }

// capabilities reads the probe's effective capabilities from
// <procfs>/self/status.
func (c *ebpfCollector) capabilities() (capSet, error) {
	path := c.paths.Proc("self/status")
	text, err := readText(path, 64<<10)
	if err != nil {
		return 0, fmt.Errorf("capabilities: %w", err)
	}
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			bits, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("capabilities: %s: CapEff: %w", path, err)
			}
			return capSet(bits), nil
		}
	}
	return 0, fmt.Errorf("capabilities: %s: no CapEff line", path)
}

// updateFeatures probes each watched program and map type. cilium/ebpf
// caches conclusive answers for the life of the process, which for this
// isolated collector is one refresh: every refresh pays for them (about
// half a second; tracing and lsm parse the kernel BTF). lacking names the
// capabilities the probe lacks that some types need (CAP_NET_ADMIN for
// xdp, sched_cls, cgroup_sock..., CAP_PERFMON for tracing types), for the
// log.
func (c *ebpfCollector) updateFeatures(m *Metrics, lacking []string) {
	for _, t := range c.progTypes {
		c.feature(m, ebpfProgramTypeSupportedFact, "program", typeName(progTypeNames, t),
			features.HaveProgramType(ebpf.ProgramType(t)), lacking)
	}
	for _, t := range c.mapTypes {
		c.feature(m, ebpfMapTypeSupportedFact, "map", typeName(mapTypeNames, t),
			features.HaveMapType(ebpf.MapType(t)), lacking)
	}
}

// feature emits one probe's answer. Only success and ErrNotSupported are
// answers: any other error (EPERM from a kernel that refuses the probe
// program, or from missing capabilities) is logged and gives no series,
// never a false 0.
func (c *ebpfCollector) feature(m *Metrics, fact *Fact, kind, name string, err error, lacking []string) {
	switch {
	case err == nil:
		m.Set(fact, 1, name)
	case errors.Is(err, ebpf.ErrNotSupported):
		m.Set(fact, 0, name)
	default:
		m.Set(ebpfFeatureProbeInconclusiveFact, 1, kind, name)
		args := []any{"kind", kind, "type", name, "err", err}
		if errors.Is(err, os.ErrPermission) && len(lacking) > 0 {
			args = append(args, "hint", "the probe lacks "+strings.Join(lacking, " and ")+", which some types need")
		}
		c.logger.Error("eBPF feature probe inconclusive", args...)
	}
}

// updateCanary runs the canary and reports its stages. A failing canary is
// a fact about the kernel, not a failure of the collector: it is logged
// with the verifier's or the kernel's own error text.
func (c *ebpfCollector) updateCanary(m *Metrics) error {
	dev, ino, err := host.NamespaceID("pid")
	if err != nil {
		return fmt.Errorf("canary: %w", err)
	}
	res := bpf.Run(bpf.Target{PIDNamespaceDev: dev, PIDNamespaceIno: ino, TGID: uint32(os.Getpid())})
	for _, s := range bpf.Stages {
		m.SetBool(ebpfCanarySuccessFact, res.Succeeded(s), string(s))
	}
	if res.LoadDuration > 0 {
		m.Set(ebpfCanaryLoadDurationSecondsFact, res.LoadDuration.Seconds())
	}
	if res.HaveVerifiedInstructions {
		m.Set(ebpfCanaryVerifiedInstructionsFact, float64(res.VerifiedInstructions))
	}
	if res.Err != nil {
		c.logger.Error("eBPF canary failed", "passed", string(res.Passed), "err", res.Err)
	}
	return nil
}

// ebpfIterate lists one kind of object through the inventory's iterator;
// tests replace it to exercise the GET_NEXT_ID fallback of an older kernel.
var ebpfIterate = func(ctx context.Context, inv *bpf.Inventory, kind bpf.Kind, limit int) ([]bpf.Object, error) {
	return inv.List(ctx, kind, limit)
}

// updateInventory counts the programs, maps and links loaded on the host by
// type, with the BPF iterators of bpf/inventory.c: one pass in the kernel
// per kind, two numbers per object, no descriptor of any object opened (pain
// 15 of the anchors: opening every program on every refresh is what makes
// inventories expensive on hosts with thousands of programs). A kind whose
// iterator the kernel cannot load (bpf_map 5.8, bpf_prog 5.9, bpf_link 5.19)
// falls back, when the probe holds CAP_SYS_ADMIN, to the BPF_*_GET_NEXT_ID
// walk, which opens each object to read its type; without it that kind is
// an error (links before 5.19: logged, no series).
func (c *ebpfCollector) updateInventory(ctx context.Context, m *Metrics, sysAdmin bool) error {
	inv, err := bpf.OpenInventory()
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	defer inv.Close()
	list := func(kind bpf.Kind) (map[uint32]uint32, error) {
		objs, err := ebpfIterate(ctx, inv, kind, c.opts.InventoryLimit)
		if errors.Is(err, bpf.ErrTooMany) {
			return nil, fmt.Errorf("inventory of %s: more than inventory_limit (%d)", kind, c.opts.InventoryLimit)
		}
		if err != nil {
			return nil, fmt.Errorf("inventory of %s: %w", kind, err)
		}
		out := make(map[uint32]uint32, len(objs))
		for _, o := range objs {
			out[o.ID] = o.Type
		}
		return out, nil
	}
	// fallback is the GET_NEXT_ID walk when the iterator did not load; an
	// iterator that loaded and failed is the answer.
	fallback := func(iterErr error) bool {
		return sysAdmin && ctx.Err() == nil && errors.Is(iterErr, bpf.ErrNoIterator)
	}

	var errs []error
	progs, err := list(bpf.Programs)
	if err != nil && fallback(err) {
		progs, err = c.walk(ctx, "programs",
			func(id uint32) (uint32, error) {
				next, err := ebpf.ProgramGetNextID(ebpf.ProgramID(id))
				return uint32(next), err
			},
			func(id uint32) (uint32, error) {
				p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
				if err != nil {
					return 0, err
				}
				defer p.Close()
				return uint32(p.Type()), nil
			})
	}
	if err == nil {
		emitCounts(m, ebpfProgramsLoadedFact, progTypeNames, progs, c.progTypes)
	} else {
		errs = append(errs, err)
	}

	maps, err := list(bpf.Maps)
	if err != nil && fallback(err) {
		maps, err = c.walk(ctx, "maps",
			func(id uint32) (uint32, error) {
				next, err := ebpf.MapGetNextID(ebpf.MapID(id))
				return uint32(next), err
			},
			func(id uint32) (uint32, error) {
				mp, err := ebpf.NewMapFromID(ebpf.MapID(id))
				if err != nil {
					return 0, err
				}
				defer mp.Close()
				return uint32(mp.Type()), nil
			})
	}
	if err == nil {
		emitCounts(m, ebpfMapsLoadedFact, mapTypeNames, maps, c.mapTypes)
	} else {
		errs = append(errs, err)
	}

	links, err := list(bpf.Links)
	if err != nil && fallback(err) {
		links, err = c.walk(ctx, "links", linkGetNextID, linkType)
	} else if errors.Is(err, bpf.ErrNoIterator) {
		// A kernel before 5.19 without CAP_SYS_ADMIN: no link iterator.
		err = errNoLinkIteration
	}
	switch {
	case errors.Is(err, errNoLinkIteration):
		c.logger.Info("eBPF link inventory unavailable: the kernel has neither the bpf_link iterator (Linux 5.19) nor, for a probe with CAP_SYS_ADMIN, BPF_LINK_GET_NEXT_ID (5.8)")
	case err != nil:
		errs = append(errs, err)
	default:
		all := make([]uint32, 0, len(linkTypeNames)-1)
		for i := 1; i < len(linkTypeNames); i++ {
			all = append(all, uint32(i))
		}
		emitCounts(m, ebpfLinksFact, linkTypeNames, links, all)
	}
	return errors.Join(errs...)
}

// walk lists the IDs of one kind of object with next, looks up the type of
// each with typeOf, and returns the objects that exist now, ID to type. An
// object that disappears between the two calls is skipped. More
// than inventory_limit objects is an error.
func (c *ebpfCollector) walk(ctx context.Context, kind string,
	next func(uint32) (uint32, error), typeOf func(uint32) (uint32, error)) (map[uint32]uint32, error) {
	seen := map[uint32]uint32{}
	var id uint32
	for n := 0; ; n++ {
		if n%256 == 255 && ctx.Err() != nil {
			return nil, fmt.Errorf("inventory of %s: %w", kind, ctx.Err())
		}
		nid, err := next(id)
		if errors.Is(err, os.ErrNotExist) {
			return seen, nil
		}
		if err != nil {
			return nil, fmt.Errorf("inventory of %s: next ID after %d: %w", kind, id, err)
		}
		if n >= c.opts.InventoryLimit {
			return nil, fmt.Errorf("inventory of %s: more than inventory_limit (%d)", kind, c.opts.InventoryLimit)
		}
		id = nid
		t, err := typeOf(id)
		if errors.Is(err, os.ErrNotExist) {
			continue // unloaded meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("inventory of %s: ID %d: %w", kind, id, err)
		}
		seen[id] = t
	}
}

// emitCounts emits the number of objects per type: every type present, and
// 0 for the watched types that are not.
func emitCounts(m *Metrics, fact *Fact, names []string, objs map[uint32]uint32, watched []uint32) {
	counts := map[uint32]int{}
	for _, t := range watched {
		counts[t] = 0
	}
	for _, t := range objs {
		counts[t]++
	}
	for t, n := range counts {
		m.Set(fact, float64(n), typeName(names, t))
	}
}

// errNoLinkIteration is linkGetNextID's answer on a kernel without
// BPF_LINK_GET_NEXT_ID.
var errNoLinkIteration = errors.New("link iteration not supported")

func linkType(id uint32) (uint32, error) {
	l, err := link.NewFromID(link.ID(id))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		return 0, err
	}
	return uint32(info.Type), nil
}
