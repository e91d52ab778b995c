package collectors

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// Paths is the root-prefixed, confined view of the file system that
// collectors read. On a live host RootFS is "/", ProcFS "/proc" and SysFS
// "/sys"; a test points them into a fixture tree, an image pipeline at a
// mounted image. Each is a [host.Root]: a path built with Root, Proc or Sys
// is resolved by the kernel inside it, whatever links the tree holds.
type Paths struct {
	RootFS string
	ProcFS string
	SysFS  string

	root      *host.Root
	proc, sys host.Path
}

// NewPaths opens the roots. procfs and sysfs default to <rootfs>/proc and
// <rootfs>/sys; relative paths are taken from the working directory when
// the roots are opened, and kept as spelled in messages. A
// procfs or sysfs inside rootfs is read through rootfs's root, so the
// absolute links of a copied tree (/sys/devices/...) resolve inside it;
// one elsewhere is a root of its own.
func NewPaths(rootfs, procfs, sysfs string) Paths {
	if rootfs == "" {
		rootfs = "/"
	}
	rootfs = filepath.Clean(rootfs)
	if procfs == "" {
		procfs = filepath.Join(rootfs, "proc")
	}
	if sysfs == "" {
		sysfs = filepath.Join(rootfs, "sys")
	}
	p := Paths{RootFS: rootfs, ProcFS: filepath.Clean(procfs), SysFS: filepath.Clean(sysfs), root: host.OpenRoot(rootfs)}
	p.proc = p.subRoot(p.ProcFS)
	p.sys = p.subRoot(p.SysFS)
	return p
}

func (p Paths) subRoot(dir string) host.Path {
	if rel, err := filepath.Rel(p.RootFS, dir); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return p.root.Path(rel)
	}
	return host.OpenRoot(dir).Path()
}

// DefaultPaths returns the paths under rootfs: procfs and sysfs default to
// <rootfs>/proc and <rootfs>/sys.
func DefaultPaths(rootfs string) Paths { return NewPaths(rootfs, "", "") }

// liveRoots serves the zero Paths: the live host's.
var liveRoots = sync.OnceValue(func() Paths { return NewPaths("/", "", "") })

func (p Paths) orLive() Paths {
	if p.root == nil {
		return liveRoots()
	}
	return p
}

// Root returns elem under the root file system. Links are resolved as if
// RootFS were "/": on Azure Linux /etc/os-release links to
// ../usr/lib/os-release, other images use absolute targets, and none may
// lead into the probe's own file system when it reads a host mounted at
// --path.rootfs=/host or an image.
func (p Paths) Root(elem ...string) host.Path { return p.orLive().root.Path(elem...) }

// Proc returns elem under procfs.
func (p Paths) Proc(elem ...string) host.Path { return p.orLive().proc.Join(elem...) }

// Sys returns elem under sysfs.
func (p Paths) Sys(elem ...string) host.Path { return p.orLive().sys.Join(elem...) }

// IsLiveRoot reports whether RootFS is this system's "/".
func (p Paths) IsLiveRoot() bool { return p.orLive().root.Abs() == "/" }

// Live reports whether ProcFS is the procfs of the kernel this process runs
// on, which is what facts that ask the kernel directly (syscalls, not files)
// require: the directory is a procfs mount (statfs magic) and its "self"
// names this process. A tree that merely holds a proc directory is not live.
func (p Paths) Live() bool {
	st, err := p.Proc().Statfs()
	if err != nil || st.Type != unix.PROC_SUPER_MAGIC {
		return false
	}
	self, err := p.Proc("self").Readlink()
	return err == nil && self == strconv.Itoa(os.Getpid())
}

// Image reports whether the root is an image rather than a system: not
// this system's "/", and no kernel state under procfs and sysfs (each is
// missing or an empty directory, as in an image built offline or a mounted
// disk). Fixture trees, which carry a captured procfs and sysfs, are not
// images: they report what was captured.
func (p Paths) Image() bool {
	if p.IsLiveRoot() || p.Live() || p.LiveSys() {
		return false
	}
	return emptyDir(p.Proc()) && emptyDir(p.Sys())
}

// emptyDir reports whether dir is missing or holds no entry.
func emptyDir(dir host.Path) bool {
	entries, err := dir.ReadDir()
	if isNotExist(err) {
		return true
	}
	return err == nil && len(entries) == 0
}

// LiveSys reports whether SysFS is a sysfs mount.
func (p Paths) LiveSys() bool {
	st, err := p.Sys().Statfs()
	return err == nil && st.Type == unix.SYSFS_MAGIC
}

// Size limits for files read whole.
const (
	maxValueSize  = host.MaxValueSize
	maxFileSize   = host.MaxFileSize
	maxDirEntries = host.MaxDirEntries
)

// errNotText marks a file that holds binary data where text was expected.
var errNotText = host.ErrNotText

// isNotExist reports whether err says a file is missing.
func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }

// Shorthands for the host layer's guarded readers (internal/host/read.go).

func readFile(p host.Path, limit int64) ([]byte, error) { return p.ReadFile(limit) }
func readText(p host.Path, limit int64) (string, error) { return p.ReadText(limit) }
func readValue(p host.Path) (string, error)             { return p.ReadValue() }
func readUint(p host.Path) (uint64, error)              { return p.ReadUint() }
func openRegular(p host.Path) (*os.File, error)         { return p.Open() }
func readDir(p host.Path) ([]os.DirEntry, error)        { return p.ReadDir() }
func readLink(p host.Path) (string, error)              { return p.Readlink() }
func stat(p host.Path) (os.FileInfo, error)             { return p.Stat() }
func lstat(p host.Path) (os.FileInfo, error)            { return p.Lstat() }
func exists(p host.Path) bool                           { return p.Exists() }

// openStream opens the character device p (a stream such as /dev/kmsg) for
// reading without blocking, so that reads go through the Go runtime's
// poller and a Close ends a blocked read; anything but a character device
// is refused (host.Path.OpenDevice).
func openStream(p host.Path) (*os.File, error) { return p.OpenDevice(unix.O_RDONLY | unix.O_NONBLOCK) }
