/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * The kernel definitions inventory.c needs, like canary.h instead of a
 * multi-megabyte vmlinux.h. The iterator contexts (struct bpf_iter__*) are
 * matched by name against the running kernel's BTF when the program is
 * loaded (kernel/bpf/bpf_iter.c, bpf_iter_prog_supported); the internal
 * structs carry preserve_access_index, so every field access is a CO-RE
 * relocation that cilium/ebpf rewrites from /sys/kernel/btf/vmlinux, and the
 * layout written here only has to name the fields.
 */
#pragma once

/* What bpf/bpf_helper_defs.h names. */
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

/* include/uapi/linux/bpf.h: only the names, the values come from the kernel. */
enum bpf_prog_type { BPF_PROG_TYPE_UNSPEC = 0 };
enum bpf_map_type { BPF_MAP_TYPE_UNSPEC = 0 };
enum bpf_link_type { BPF_LINK_TYPE_UNSPEC = 0 };

struct seq_file;

/* include/linux/bpf.h */
struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
} __attribute__((preserve_access_index));

struct bpf_prog_aux {
	__u32 id;
} __attribute__((preserve_access_index));

struct bpf_prog {
	enum bpf_prog_type type;
	struct bpf_prog_aux *aux;
} __attribute__((preserve_access_index));

struct bpf_map {
	enum bpf_map_type map_type;
	__u32 id;
} __attribute__((preserve_access_index));

struct bpf_link {
	__u32 id;
	enum bpf_link_type type;
} __attribute__((preserve_access_index));

/* kernel/bpf/prog_iter.c, map_iter.c, link_iter.c */
struct bpf_iter__bpf_prog {
	struct bpf_iter_meta *meta;
	struct bpf_prog *prog;
} __attribute__((preserve_access_index));

struct bpf_iter__bpf_map {
	struct bpf_iter_meta *meta;
	struct bpf_map *map;
} __attribute__((preserve_access_index));

struct bpf_iter__bpf_link {
	struct bpf_iter_meta *meta;
	struct bpf_link *link;
} __attribute__((preserve_access_index));
