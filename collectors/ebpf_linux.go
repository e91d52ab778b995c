package collectors

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The parts of the ebpf collector that only Linux can compile; its live facts
// run only against a live Linux /proc anyway.

// linkGetNextID is BPF_LINK_GET_NEXT_ID, which cilium/ebpf exposes only
// through link.Iterator, which opens every link. Before Linux 5.8 the
// command does not exist (EINVAL).
func linkGetNextID(id uint32) (uint32, error) {
	attr := struct{ startID, nextID, openFlags uint32 }{startID: id}
	_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_LINK_GET_NEXT_ID,
		uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	switch {
	case errno == 0:
		return attr.nextID, nil
	case errno == unix.ENOENT:
		return 0, os.ErrNotExist
	case errno == unix.EINVAL && id == 0:
		return 0, errNoLinkIteration
	}
	return 0, errno
}
