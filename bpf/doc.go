// Package bpf holds azurelinux-probe's eBPF canary: canary.c, compiled by
// cilium/ebpf's bpf2go into canary_bpfel.o and the Go bindings in
// canary_bpfel.go. Both generated files are committed, so building the probe
// needs no clang; `make generate` (or `go generate ./bpf/...`) rebuilds them
// and TestGeneratedUpToDate checks that the committed files are what the
// source produces.
package bpf

//go:generate go tool bpf2go -target bpfel -type canary_result canary canary.c -- -Wall -Werror
