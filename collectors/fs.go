package collectors

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Paths is the root-prefixed view of the file system that collectors read.
// On a live host RootFS is "/", ProcFS "/proc" and SysFS "/sys"; a test points
// them into a fixture tree.
type Paths struct {
	RootFS string
	ProcFS string
	SysFS  string
}

// DefaultPaths returns the paths under rootfs: procfs and sysfs default to
// <rootfs>/proc and <rootfs>/sys.
func DefaultPaths(rootfs string) Paths {
	if rootfs == "" {
		rootfs = "/"
	}
	return Paths{RootFS: rootfs, ProcFS: filepath.Join(rootfs, "proc"), SysFS: filepath.Join(rootfs, "sys")}
}

// Root joins elem under the root file system. Symbolic links on the way are
// resolved as if RootFS were "/": on Azure Linux /etc/os-release links to
// ../usr/lib/os-release, but other images use absolute targets, which must
// not escape into the probe's own file system when it reads a host mounted at
// --path.rootfs=/host.
func (p Paths) Root(elem ...string) string {
	if p.RootFS == "/" || p.RootFS == "" {
		return join("/", elem)
	}
	return resolveIn(p.RootFS, join("/", elem))
}

// Proc joins elem under procfs.
func (p Paths) Proc(elem ...string) string { return join(p.ProcFS, elem) }

// Sys joins elem under sysfs.
func (p Paths) Sys(elem ...string) string { return join(p.SysFS, elem) }

func join(base string, elem []string) string {
	return filepath.Join(append([]string{base}, elem...)...)
}

// resolveIn returns root joined with the absolute path rel, with every
// symbolic link in rel resolved inside root. A component that does not exist
// is kept as it is, so the caller's open reports it missing.
func resolveIn(root, rel string) string {
	parts := strings.Split(rel, "/")
	cur := "/"
	for hops := 0; len(parts) > 0; {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, part)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil || fi.Mode()&os.ModeSymlink == 0 || hops >= 40 {
			cur = next
			continue
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			cur = next
			continue
		}
		hops++
		if filepath.IsAbs(target) {
			cur = "/"
		}
		parts = append(strings.Split(target, "/"), parts...)
	}
	return filepath.Join(root, cur)
}

// Live reports whether ProcFS is the procfs of the kernel this process runs
// on, which is what facts that ask the kernel directly (syscalls, not files)
// require. It holds when <procfs>/self names this process.
func (p Paths) Live() bool {
	self, err := os.Readlink(p.Proc("self"))
	return err == nil && self == strconv.Itoa(os.Getpid())
}

// Size limits for files read whole. A procfs or sysfs attribute fits in one
// page; anything larger in its place is not what the collector expects.
const (
	maxValueSize = 4096
	maxFileSize  = 4 << 20
)

// errNotText marks a file that holds binary data where text was expected.
var errNotText = errors.New("binary data where text was expected")

// readFile reads the regular file at path, failing (rather than truncating)
// when it is larger than limit. It opens without blocking and refuses anything
// but a regular file, so a FIFO or device planted in a tree cannot hang a
// collector.
func readFile(path string, limit int64) ([]byte, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// procfs and sysfs files report a size of 0 or 4096 whatever they hold,
	// so the size is checked on what is read, not on what Stat says.
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than the %d-byte limit", path, limit)
	}
	return b, nil
}

// openRegular opens path for reading without blocking and refuses anything
// but a regular file.
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, st.Mode().Type())
	}
	return f, nil
}

// readText reads a text file of at most limit bytes.
func readText(path string, limit int64) (string, error) {
	b, err := readFile(path, limit)
	if err != nil {
		return "", err
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return "", fmt.Errorf("%s: %w", path, errNotText)
	}
	return string(b), nil
}

// readValue reads a one-value procfs or sysfs file and trims the white space
// around it. An empty file is an error: every attribute the collectors read
// has a value when the kernel provides it.
func readValue(path string) (string, error) {
	s, err := readText(path, maxValueSize)
	if err != nil {
		return "", err
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("%s: empty", path)
	}
	return s, nil
}

// readUint reads a one-value file holding a decimal unsigned integer.
func readUint(path string) (uint64, error) {
	s, err := readValue(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// exists reports whether path exists (following links).
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// isNotExist reports whether err says a file is missing.
func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }

// maxDirEntries bounds the entries read from one directory: a real sysfs or
// /lib/modules directory holds at most a few thousand, and a hostile tree
// with millions must not cost memory in proportion.
const maxDirEntries = 10000

// readDir lists the directory at path, sorted by name, failing when it holds
// more than maxDirEntries entries.
func readDir(path string) ([]os.DirEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(maxDirEntries + 1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(entries) > maxDirEntries {
		return nil, fmt.Errorf("%s: more than %d entries", path, maxDirEntries)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	return entries, nil
}

// readLink returns the target of the symbolic link at path.
func readLink(path string) (string, error) { return os.Readlink(path) }

// stat returns the file information of path, following links.
func stat(path string) (os.FileInfo, error) { return os.Stat(path) }

// lstat returns the file information of path itself.
func lstat(path string) (os.FileInfo, error) { return os.Lstat(path) }

// openStream opens the character device at path (a stream such as
// /dev/kmsg) for reading without blocking, so that reads go through the Go
// runtime's poller and a Close ends a blocked read, and refuses anything
// but a character device.
func openStream(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.Mode()&os.ModeCharDevice == 0 {
		f.Close()
		return nil, fmt.Errorf("%s: not a character device (%s)", path, st.Mode().Type())
	}
	return f, nil
}
