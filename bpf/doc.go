// Package bpf holds azurelinux-probe's eBPF programs. The inventory
// (inventory.c, Inventory) lists the host's programs, maps and links with BPF
// iterators, which need CAP_BPF and CAP_PERFMON rather than the
// CAP_SYS_ADMIN of BPF_*_GET_NEXT_ID. The canary: canary.c, compiled by
// cilium/ebpf's bpf2go into canary_bpfel.o (little-endian: x86_64, aarch64)
// and canary_bpfeb.o (big-endian, so that every Linux architecture builds),
// with their Go bindings in canary_bpfel.go and canary_bpfeb.go. The
// generated files are committed, so building the probe needs no clang;
// `make generate` (or `go generate ./bpf/...`) rebuilds them, and
// TestGeneratedUpToDate checks that the committed files are what the source
// produces. Run and Inventory are Linux-only; elsewhere they report
// ErrNotSupported. Each C file compiles the same way, into <stem>_bpf{el,eb}.
package bpf

//go:generate go tool bpf2go -target bpfel,bpfeb -type canary_result canary canary.c -- -Wall -Werror
//go:generate go tool bpf2go -target bpfel,bpfeb inventory inventory.c -- -Wall -Werror
