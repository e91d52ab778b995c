// Package bpf holds azurelinux-probe's eBPF canary: canary.c, compiled by
// cilium/ebpf's bpf2go into canary_bpfel.o (little-endian: x86_64, aarch64)
// and canary_bpfeb.o (big-endian, so that every Linux architecture builds),
// with their Go bindings in canary_bpfel.go and canary_bpfeb.go. The
// generated files are committed, so building the probe needs no clang;
// `make generate` (or `go generate ./bpf/...`) rebuilds them, and
// TestGeneratedUpToDate checks that the committed files are what the source
// produces. Run, the canary itself, is Linux-only; elsewhere it reports
// ErrNotSupported.
package bpf

//go:generate go tool bpf2go -target bpfel,bpfeb -type canary_result canary canary.c -- -Wall -Werror
