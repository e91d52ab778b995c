//go:build ignore

// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// The eBPF inventory of azurelinux-probe: three BPF iterators (Linux 5.8 for
// bpf_map, 5.9 for bpf_prog, 5.19 for bpf_link; kernel/bpf/prog_iter.c,
// map_iter.c, link_iter.c) that write one record per program, map or link
// loaded on the host, its ID and its type, to the iterator's seq_file, which
// user space reads as a plain file.
//
// Why iterators: listing objects with BPF_PROG_GET_NEXT_ID and opening them
// with BPF_PROG_GET_FD_BY_ID needs CAP_SYS_ADMIN (kernel/bpf/syscall.c,
// bpf_obj_get_next_id), and an fd of another agent's object lets its holder
// rewrite that agent's maps or detach its links. An iterator is a tracing
// program: loading it needs CAP_BPF and CAP_PERFMON, and it hands user space
// two numbers per object, never a descriptor.

#include "inventory.h"
#include <bpf/bpf_helpers.h>

char __license[] SEC("license") = "Dual MIT/GPL";

// One record per object, in the order the kernel's IDR walks them (by ID).
struct inventory_record {
	__u32 id;
	__u32 type;
};

SEC("iter/bpf_prog")
int inventory_progs(struct bpf_iter__bpf_prog *ctx)
{
	struct bpf_prog *prog = ctx->prog;
	if (!prog) // the final call, after the last object
		return 0;
	struct inventory_record r = {.id = prog->aux->id, .type = prog->type};
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}

SEC("iter/bpf_map")
int inventory_maps(struct bpf_iter__bpf_map *ctx)
{
	struct bpf_map *map = ctx->map;
	if (!map)
		return 0;
	struct inventory_record r = {.id = map->id, .type = map->map_type};
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}

SEC("iter/bpf_link")
int inventory_links(struct bpf_iter__bpf_link *ctx)
{
	struct bpf_link *link = ctx->link;
	if (!link)
		return 0;
	struct inventory_record r = {.id = link->id, .type = link->type};
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}
