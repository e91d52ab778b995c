/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * The few kernel definitions canary.c needs, instead of a multi-megabyte
 * vmlinux.h: UAPI types whose layout is fixed by the kernel ABI, and the
 * internal struct task_struct reduced to the fields the canary reads. The
 * latter carries preserve_access_index, so clang records a CO-RE relocation
 * for every access and the loader (cilium/ebpf) rewrites each offset from the
 * running kernel's BTF (/sys/kernel/btf/vmlinux): the layout written here
 * only has to name the fields, not match the kernel's.
 */
#pragma once

typedef unsigned char __u8;
typedef short int __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

/* include/uapi/linux/bpf.h */
enum bpf_map_type {
	BPF_MAP_TYPE_ARRAY = 2,
};

enum {
	BPF_ANY = 0,
};

struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

struct bpf_pidns_info {
	__u32 pid;
	__u32 tgid;
};

/* include/linux/sched.h, CO-RE relocated */
struct task_struct {
	int pid;
	int tgid;
	struct task_struct *group_leader;
} __attribute__((preserve_access_index));
