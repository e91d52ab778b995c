//go:build !linux

package bpf

import (
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"
)

// Run reports that the canary needs Linux.
func Run(Target) Result {
	return Result{Err: fmt.Errorf("the eBPF canary on %s: %w", runtime.GOOS, ebpf.ErrNotSupported)}
}
