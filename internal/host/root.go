// Package host is the probe's one way to read the system it describes: a
// file tree (the live root, a fixture tree, a mounted image) opened once as a
// directory and read only through paths that the kernel resolves inside it,
// the guarded readers that refuse what a fact file never is (a FIFO, a
// device, a gigabyte), and the parsers of the files several collectors and
// the checks share (os-release, /proc/modules, DMI, the rpm database
// locations). Subprocesses run only through [Run].
//
// Confinement is the kernel's, not ours: every open is an openat2(2) from the
// root's directory descriptor with RESOLVE_IN_ROOT, so "..", absolute
// symbolic links and links to links are all resolved as if the root were
// "/", with no window between a check and the open, and RESOLVE_NO_MAGICLINKS
// so that /proc/<pid>/fd/N and /proc/<pid>/root cannot lead out. Past the
// kernel's limit of 40 links the open fails with ELOOP; no path is ever
// handed on unresolved. Where openat2 is missing (kernels before 5.6, or a
// seccomp filter that refuses it), github.com/cyphar/filepath-securejoin
// does the same walk in user space from the same descriptor.
package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	securejoin "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// Root is a directory tree opened once. Its descriptor stays open for the
// life of the process (the finalizer of its *os.File closes it when a Root
// is dropped), so a tree renamed or replaced after the probe started is not
// followed.
type Root struct {
	dir  string // as the operator named it, for messages
	real string // absolute, links resolved: what the descriptor is
	f    *os.File
	err  error
}

// OpenRoot opens dir as a root. dir is the operator's choice (a flag), so
// links in it are followed; messages name paths under dir as it is spelled,
// relative or not. A root that cannot be opened
// is still a Root: every read under it fails with the open's error, which
// for a missing directory satisfies errors.Is(err, fs.ErrNotExist).
func OpenRoot(dir string) *Root {
	if dir == "" {
		dir = "/"
	}
	dir = filepath.Clean(dir)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return &Root{dir: dir, real: dir, err: err}
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	f, err := os.OpenFile(abs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	return &Root{dir: dir, real: abs, f: f, err: err}
}

// Dir returns the root's path as the operator named it, for messages.
func (r *Root) Dir() string { return r.dir }

// Abs returns the root's absolute path with links resolved.
func (r *Root) Abs() string { return r.real }

// Err returns the error of opening the root, if any.
func (r *Root) Err() error { return r.err }

// Path returns the path elem under the root. The elements are joined and
// cleaned as an absolute path, so ".." cannot climb above the root even
// before the kernel resolves it.
func (r *Root) Path(elem ...string) Path {
	rel := filepath.Join(append([]string{"/"}, elem...)...)
	return Path{root: r, rel: strings.TrimPrefix(rel, "/")}
}

// Path is a path inside a Root. The zero Path is invalid: every read fails.
type Path struct {
	root *Root
	rel  string // relative to the root, cleaned, "" for the root itself
}

// String returns the path as it lies on the host, for messages.
func (p Path) String() string {
	if p.root == nil {
		return "<no root>"
	}
	return filepath.Join(p.root.dir, p.rel)
}

// Abs returns the path on the host, absolute, through the root's real
// directory. Only for handing to something that takes a name (a
// subprocess, a D-Bus address) where nothing else will do: the name is
// resolved again, outside the root's confinement, so resolve p first.
func (p Path) Abs() string {
	if p.root == nil {
		return ""
	}
	return filepath.Join(p.root.real, p.rel)
}

// InRoot returns the path as the tree itself names it: "/" joined with the
// path relative to the root.
func (p Path) InRoot() string { return "/" + p.rel }

// Root returns the root the path lies in.
func (p Path) Root() *Root { return p.root }

// Join returns the path elem under p.
func (p Path) Join(elem ...string) Path {
	if p.root == nil {
		return p
	}
	return p.root.Path(append([]string{p.rel}, elem...)...)
}

// Base returns the last element of the path.
func (p Path) Base() string { return filepath.Base(p.InRoot()) }

// Dir returns the path's parent.
func (p Path) Dir() Path {
	if p.root == nil {
		return p
	}
	return p.root.Path(filepath.Dir(p.InRoot()))
}

// resolveFlags confine every resolution to the root.
const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// noOpenat2 is set once openat2 has failed with ENOSYS (or EPERM from a
// seccomp filter): the user-space walk takes over for good.
var noOpenat2 atomic.Bool

// maxOpenat2Tries bounds openat2Retry. A rename anywhere on the system
// during a resolution is enough for one EAGAIN, about 1 in 20 lookups
// through a sysfs-style "../../.." link while another process renames as
// fast as it can (TestConcurrentRenamesDoNotFailReads).
const maxOpenat2Tries = 32

// openat2Retry is openat2 that tries again on EAGAIN: with RESOLVE_IN_ROOT
// the kernel returns it when a rename or mount raced a ".." it resolved and
// it cannot prove the walk stayed inside the root, and "the caller may
// choose to retry" (openat2(2)). A rename storm that outlasts the tries
// gets the error, not an unconfined walk.
func openat2Retry(dirfd int, path string, how *unix.OpenHow) (int, error) {
	for try := 1; ; try++ {
		fd, err := unix.Openat2(dirfd, path, how)
		if err != unix.EAGAIN || try == maxOpenat2Tries {
			return fd, err
		}
	}
}

// openFlags opens p with flags (O_CLOEXEC is added). O_NOFOLLOW in flags
// applies to the last element only, as with open(2).
func (p Path) openFlags(flags int) (*os.File, error) {
	if p.root == nil {
		return nil, &fs.PathError{Op: "open", Path: p.String(), Err: errors.New("no root")}
	}
	if p.root.err != nil {
		return nil, &fs.PathError{Op: "open", Path: p.String(), Err: unwrapPathErr(p.root.err)}
	}
	rel := p.rel
	if rel == "" {
		rel = "."
	}
	if !noOpenat2.Load() {
		fd, err := openat2Retry(int(p.root.f.Fd()), rel, &unix.OpenHow{
			Flags:   uint64(flags | unix.O_CLOEXEC),
			Resolve: resolveFlags,
		})
		if err == nil {
			return os.NewFile(uintptr(fd), p.String()), nil
		}
		if !errors.Is(err, unix.ENOSYS) {
			return nil, &fs.PathError{Op: "open", Path: p.String(), Err: err}
		}
		noOpenat2.Store(true)
	}
	return p.openSecurejoin(flags)
}

// openSecurejoin is openFlags without openat2. The live root needs no
// walk (nothing lies above "/"), and pathrs-lite refuses it as a root
// ("possible breakout detected": it compares "/sys" with "//sys").
func (p Path) openSecurejoin(flags int) (*os.File, error) {
	if p.root.real == "/" {
		fd, err := unix.Open("/"+p.rel, flags|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: p.String(), Err: err}
		}
		return os.NewFile(uintptr(fd), p.String()), nil
	}
	var handle *os.File
	var err error
	if flags&unix.O_NOFOLLOW != 0 && p.rel != "" {
		// Resolve the parent, then open the last element without following it.
		parent, perr := securejoin.OpenatInRoot(p.root.f, filepath.Dir(p.rel))
		if perr != nil {
			return nil, &fs.PathError{Op: "open", Path: p.String(), Err: unwrapPathErr(perr)}
		}
		defer parent.Close()
		fd, oerr := unix.Openat(int(parent.Fd()), filepath.Base(p.rel), flags|unix.O_CLOEXEC, 0)
		if oerr != nil {
			return nil, &fs.PathError{Op: "open", Path: p.String(), Err: oerr}
		}
		return os.NewFile(uintptr(fd), p.String()), nil
	}
	handle, err = securejoin.OpenatInRoot(p.root.f, p.rel)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p.String(), Err: unwrapPathErr(err)}
	}
	if flags&unix.O_PATH != 0 {
		return handle, nil
	}
	defer handle.Close()
	f, err := securejoin.Reopen(handle, flags)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p.String(), Err: unwrapPathErr(err)}
	}
	return f, nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Stat returns the file information of p, following links inside the root.
func (p Path) Stat() (fs.FileInfo, error) {
	f, err := p.openFlags(unix.O_PATH)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: p.String(), Err: unwrapPathErr(err)}
	}
	return fi, nil
}

// Lstat returns the file information of p itself (a link is not followed).
func (p Path) Lstat() (fs.FileInfo, error) {
	f, err := p.openFlags(unix.O_PATH | unix.O_NOFOLLOW)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: p.String(), Err: unwrapPathErr(err)}
	}
	return fi, nil
}

// Statfs returns the information of the file system p lies on.
func (p Path) Statfs() (unix.Statfs_t, error) {
	var st unix.Statfs_t
	f, err := p.openFlags(unix.O_PATH)
	if err != nil {
		return st, err
	}
	defer f.Close()
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return st, &fs.PathError{Op: "statfs", Path: p.String(), Err: err}
	}
	return st, nil
}

// Exists reports whether p exists, following links inside the root.
func (p Path) Exists() bool {
	_, err := p.Stat()
	return err == nil
}

// maxLinkSize bounds a link target: PATH_MAX.
const maxLinkSize = 4096

// Readlink returns the target of the symbolic link p, as stored: the caller
// resolves it only through [Path.Resolve] or by joining it onto the root.
func (p Path) Readlink() (string, error) {
	f, err := p.openFlags(unix.O_PATH | unix.O_NOFOLLOW)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, maxLinkSize)
	// readlinkat(2) with an empty path reads the link the O_PATH descriptor
	// names (Linux 2.6.39).
	n, err := unix.Readlinkat(int(f.Fd()), "", buf)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) {
			err = unix.EINVAL // not a link
		}
		return "", &fs.PathError{Op: "readlink", Path: p.String(), Err: err}
	}
	return string(buf[:n]), nil
}

// Resolve returns p with every link in it resolved inside the root: where
// the kernel's open lands. It fails where the open would (a missing
// component, a loop).
func (p Path) Resolve() (Path, error) {
	f, err := p.openFlags(unix.O_PATH)
	if err != nil {
		return Path{}, err
	}
	defer f.Close()
	real, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		return Path{}, &fs.PathError{Op: "resolve", Path: p.String(), Err: unwrapPathErr(err)}
	}
	rootDir := p.root.real
	if rootDir == "/" {
		return p.root.Path(real), nil
	}
	if real != rootDir && !strings.HasPrefix(real, rootDir+"/") {
		// The kernel stayed in the root, so this can only be a root reached
		// through another mount of the same directory: name it by what is
		// left after the last component the root shares.
		return Path{}, &fs.PathError{Op: "resolve", Path: p.String(), Err: errors.New("resolved outside the root's name")}
	}
	return p.root.Path(strings.TrimPrefix(real, rootDir)), nil
}
