package collectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
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
