// Package heapprofile turns off the Go runtime's sampling of heap
// allocations for heap profiles, before the other packages of the program
// allocate, and turns it back on for a daemon that serves profiles.
//
// Why: with sampling on (runtime.MemProfileRate, one sample per 512 KiB
// allocated on average), every sample records the allocating stack, which
// walks the function tables of the binary and maps their pages, and the
// samples pile up in the profiler's buckets. Nothing reads them unless
// --web.enable-pprof serves them.
//
// What it cannot save: the profiler's bucket hash table, 1.4 MiB of address
// space (runtime/mprof.go buckhash), is mapped all the same, because in
// Go 1.26 changing the rate makes each P record one sample on its next
// allocation (runtime/malloc.go, MemProfileRate != c.memProfRate). Little of
// it is resident, but the runtime counts it against the daemon's soft memory
// limit (--runtime.memory-limit, docs/benchmarks.md); only
// GODEBUG=memprofilerate=0 from the start avoids it.
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
