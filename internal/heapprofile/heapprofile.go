// Package heapprofile turns off the Go runtime's sampling of heap
// allocations for heap profiles, before the other packages of the program
// allocate, and turns it back on for a daemon that serves profiles.
//
// Why: with sampling on (runtime.MemProfileRate, one sample per 512 KiB
// allocated on average), the first sample maps the profiler's bucket hash
// table, 1.4 MiB (runtime/mprof.go buckhash), and every sample records the
// allocating stack, which walks the function tables of the binary. The
// daemon runs under a soft memory limit of a few megabytes above its live
// heap (--runtime.memory-limit); the runtime counts that table against the
// limit, and what is left before the limit is reached is so little that a
// scrape load collects garbage every few hundred requests. Nothing reads
// the samples unless --web.enable-pprof serves them.
//
// The package imports nothing but runtime, so that Go's initialisation
// order (packages in import-path order, each after its imports; The Go
// Programming Language Specification, "Package initialization") runs its
// init among the first, before the packages that allocate megabytes in
// theirs. GODEBUG=memprofilerate=N (runtime package documentation) still
// sets the rate for a process that needs a profile of its start-up.
package heapprofile

import "runtime"

// DefaultRate is the runtime's default runtime.MemProfileRate.
const DefaultRate = 512 * 1024

// disabled reports whether this package turned sampling off, and not the
// GODEBUG setting.
var disabled bool

func init() {
	if runtime.MemProfileRate == DefaultRate {
		runtime.MemProfileRate = 0
		disabled = true
	}
}

// Enable turns sampling back on at the default rate, unless GODEBUG chose
// a rate. Profiles then hold the allocations from this call on. Call it
// before the program starts other goroutines: the runtime reads
// MemProfileRate without synchronisation.
func Enable() {
	if disabled {
		runtime.MemProfileRate = DefaultRate
		disabled = false
	}
}
