// Command bpfcheck makes the bpf() calls the eBPF collector depends on and
// prints one "call errno" line each (0: allowed). scripts/package-test.sh
// runs it under the packaged unit's sandbox to show which capability each
// needs: the program and map inventory CAP_SYS_ADMIN, the canary program
// and map CAP_BPF, a tracing (kprobe) program CAP_BPF and CAP_PERFMON.
package main

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

func bpf(cmd uintptr, attr []byte) (uintptr, unix.Errno) {
	r, _, e := unix.Syscall(unix.SYS_BPF, cmd, uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))
	return r, e
}

func put32(b []byte, off int, v uint32) { *(*uint32)(unsafe.Pointer(&b[off])) = v }
func put64(b []byte, off int, v uint64) { *(*uint64)(unsafe.Pointer(&b[off])) = v }

// report prints the errno, treating ENOENT (nothing to list) as allowed.
func report(name string, fd uintptr, e unix.Errno) {
	if e == unix.ENOENT {
		e = 0
	}
	if e == 0 && fd > 2 && name != "prog_get_next_id" && name != "map_get_next_id" {
		unix.Close(int(fd))
	}
	fmt.Printf("%s %d\n", name, int(e))
}

func main() {
	next := make([]byte, 12)
	_, e := bpf(unix.BPF_PROG_GET_NEXT_ID, next)
	report("prog_get_next_id", 0, e)
	_, e = bpf(unix.BPF_MAP_GET_NEXT_ID, make([]byte, 12))
	report("map_get_next_id", 0, e)

	// r0 = 0; exit
	insns := []uint64{0x00000000000000b7, 0x0000000000000095}
	license := []byte("GPL\x00")
	load := func(progType uint32) (uintptr, unix.Errno) {
		attr := make([]byte, 128)
		put32(attr, 0, progType)
		put32(attr, 4, uint32(len(insns)))
		put64(attr, 8, uint64(uintptr(unsafe.Pointer(&insns[0]))))
		put64(attr, 16, uint64(uintptr(unsafe.Pointer(&license[0]))))
		return bpf(unix.BPF_PROG_LOAD, attr)
	}
	fd, e := load(unix.BPF_PROG_TYPE_SOCKET_FILTER)
	report("prog_load_socket_filter", fd, e)
	fd, e = load(unix.BPF_PROG_TYPE_KPROBE)
	report("prog_load_kprobe", fd, e)

	attr := make([]byte, 72)
	put32(attr, 0, unix.BPF_MAP_TYPE_ARRAY)
	put32(attr, 4, 4)
	put32(attr, 8, 8)
	put32(attr, 12, 1)
	fd, e = bpf(unix.BPF_MAP_CREATE, attr)
	report("map_create_array", fd, e)
}
