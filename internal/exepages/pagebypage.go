package exepages

import (
	"errors"
	"syscall"
	"unsafe"
)

// On a read fault in a file mapping the kernel maps not only the faulting
// page but every page of the file already in the page cache within
// fault_around_bytes of it, 64 KiB by default (mm/memory.c do_read_fault
// and do_fault_around). For the probe's binary that turns the pages its
// package inits and the runtime touch before main into 13 MB mapped
// (docs/benchmarks.md, "Resident memory"). fault_around_bytes is one
// debugfs knob for the whole host, and madvise(MADV_RANDOM) does not turn it
// off.
//
// The kernel does skip fault-around in a mapping registered with a
// userfaultfd(2) for write-protect faults (mm/memory.c
// should_fault_around, include/linux/userfaultfd_k.h
// uffd_disable_fault_around), since the pages it would map around a fault
// would miss their write-protect markers. Registering the executable's code
// and read-only data that way costs nothing else: nothing writes them, so
// the registration never produces an event; with UFFD_FEATURE_WP_ASYNC
// (Linux 6.7) the kernel would resolve a write fault itself, and only with
// it may a regular file's mapping be registered at all
// (Documentation/admin-guide/mm/userfaultfd.rst). UFFD_USER_MODE_ONLY
// (Linux 5.11) lets an unprivileged process have one whatever
// vm.unprivileged_userfaultfd says: it cannot stall a fault taken inside the
// kernel, which is what that sysctl guards against. systemd's
// @system-service set, which the unit allows, has the system call.
//
// It happens in this package's init, among the first (exepages.go). Where
// the kernel refuses (older than 6.7, built without CONFIG_USERFAULTFD, a
// seccomp filter without the call) the process runs as before, with
// fault-around.

// The userfaultfd ABI (include/uapi/linux/userfaultfd.h); the syscall
// package has none of it (sysUserfaultfd is in sys_GOARCH.go).
const (
	uffdAPI              = 0xAA
	uffdUserModeOnly     = 1
	uffdFeatureWPAsync   = 1 << 15
	uffdioRegisterModeWP = 1 << 1
	// _IOWR(0xAA, 0x3F, struct uffdio_api) and
	// _IOWR(0xAA, 0x00, struct uffdio_register), the same on amd64 and
	// arm64, which share the generic ioctl encoding.
	uffdioAPI      = 0xc018aa3f
	uffdioRegister = 0xc020aa00
)

type uffdioAPIArg struct{ api, features, ioctls uint64 }

type uffdioRegisterArg struct{ start, len, mode, ioctls uint64 }

// PageByPage says what this package's init did: Bytes of the executable's
// mappings are mapped a page at a time, or Err says why fault-around is
// still on.
var PageByPage struct {
	Bytes uint64
	Err   error
}

// uffd is held open for the life of the process: closing it would end the
// registration. It is close-on-exec: a child the probe starts registers its
// own.
var uffd = -1

func init() {
	PageByPage.Bytes, PageByPage.Err = mapPageByPage()
}

func mapPageByPage() (uint64, error) {
	maps, exe, err := self()
	if err != nil {
		return 0, err
	}
	fd, err := newWPAsync()
	if err != nil {
		return 0, err
	}
	n, err := registerWP(fd, readOnly(maps, exe))
	if n == 0 {
		syscall.Close(fd)
		if err == nil {
			err = errors.New("no read-only mapping of " + exe + " in /proc/self/smaps")
		}
		return 0, err
	}
	uffd = fd
	return n, err
}

// readOnly returns the ranges of the mappings of exe that are not writable:
// its code and read-only data. Its writable data is left alone: the pages
// written there are anonymous, not the file's.
func readOnly(maps []mapping, exe string) [][2]uintptr {
	var out [][2]uintptr
	for _, m := range maps {
		if m.path == exe && !m.writable() {
			out = append(out, [2]uintptr{m.start, m.end})
		}
	}
	return out
}

// newWPAsync returns a userfaultfd for asynchronous write-protect faults.
func newWPAsync() (int, error) {
	r, _, e := syscall.Syscall(sysUserfaultfd, syscall.O_CLOEXEC|syscall.O_NONBLOCK|uffdUserModeOnly, 0, 0)
	if e != 0 {
		return -1, &opError{"userfaultfd", e}
	}
	fd := int(r)
	api := uffdioAPIArg{api: uffdAPI, features: uffdFeatureWPAsync}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, r, uffdioAPI, uintptr(unsafe.Pointer(&api))); e != 0 {
		syscall.Close(fd)
		return -1, &opError{"userfaultfd UFFDIO_API with UFFD_FEATURE_WP_ASYNC", e}
	}
	return fd, nil
}

// registerWP registers each range with fd for write-protect faults and
// returns the bytes registered and the errors of the ranges it could not.
func registerWP(fd int, ranges [][2]uintptr) (uint64, error) {
	var n uint64
	var errs []error
	for _, r := range ranges {
		reg := uffdioRegisterArg{start: uint64(r[0]), len: uint64(r[1] - r[0]), mode: uffdioRegisterModeWP}
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), uffdioRegister, uintptr(unsafe.Pointer(&reg))); e != 0 {
			errs = append(errs, &opError{"userfaultfd UFFDIO_REGISTER " + hex(r[0]) + "-" + hex(r[1]), e})
			continue
		}
		n += uint64(r[1] - r[0])
	}
	return n, errors.Join(errs...)
}
