//go:build ignore

// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// The eBPF canary of azurelinux-probe: a minimal CO-RE program that proves,
// on the running kernel, the path every eBPF agent depends on: BTF-based
// relocation, verification, attachment and execution.
//
// It attaches to the raw tracepoint sys_enter and fires only for the syscall
// the probe issues itself (target_syscall from target_tgid, pid-namespace
// aware), so that other processes' syscalls cost one comparison while it is
// attached (a few milliseconds per refresh). Each hit reads fields of the
// current task_struct through BPF_CORE_READ and stores them next to what the
// helpers report, so user space can check that the relocations resolved to
// the right offsets, not merely that the program ran.
//
// Minimum kernel: 5.7 (bpf_get_ns_current_pid_tgid; raw tracepoints 4.17,
// bpf_probe_read_kernel 5.5, kernel BTF 5.4).

#include "canary.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char __license[] SEC("license") = "Dual MIT/GPL";

// Set by the loader before the program is loaded (read-only data).
const volatile __u64 target_ns_dev = 0;  // st_dev of /proc/self/ns/pid
const volatile __u64 target_ns_ino = 0;  // st_ino of /proc/self/ns/pid
const volatile __u32 target_tgid = 0;    // getpid() in that namespace
const volatile __s64 target_syscall = -1; // syscall number of the trigger

struct canary_result {
	__u64 hits;
	// Read from task_struct through CO-RE relocations.
	__u32 core_pid;
	__u32 core_tgid;
	__u32 core_leader_pid; // task->group_leader->pid: a relocated pointer chase
	// Reported by bpf_get_current_pid_tgid(), for comparison.
	__u32 helper_pid;
	__u32 helper_tgid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct canary_result);
} results SEC(".maps");

SEC("raw_tracepoint/sys_enter")
int canary(struct bpf_raw_tracepoint_args *ctx)
{
	// sys_enter(struct pt_regs *regs, long id)
	if ((__s64)ctx->args[1] != target_syscall)
		return 0;

	struct bpf_pidns_info ns = {};
	if (bpf_get_ns_current_pid_tgid(target_ns_dev, target_ns_ino, &ns, sizeof(ns)))
		return 0; // not in the probe's pid namespace
	if (ns.tgid != target_tgid)
		return 0;

	__u32 key = 0;
	struct canary_result *r = bpf_map_lookup_elem(&results, &key);
	if (!r)
		return 0;

	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();

	r->core_pid = BPF_CORE_READ(task, pid);
	r->core_tgid = BPF_CORE_READ(task, tgid);
	r->core_leader_pid = BPF_CORE_READ(task, group_leader, pid);
	r->helper_pid = (__u32)id;
	r->helper_tgid = id >> 32;
	__sync_fetch_and_add(&r->hits, 1);
	return 0;
}
