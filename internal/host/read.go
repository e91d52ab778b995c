package host

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Size limits for files read whole. A procfs or sysfs attribute fits in one
// page; anything larger in its place is not what a collector expects.
const (
	MaxValueSize = 4096
	MaxFileSize  = 4 << 20
)

// MaxDirEntries bounds the entries read from one directory: a real sysfs or
// /lib/modules directory holds at most a few thousand, and a hostile tree
// with millions must not cost memory in proportion.
const MaxDirEntries = 10000

// ErrNotText marks a file that holds binary data where text was expected.
var ErrNotText = errors.New("binary data where text was expected")

// ErrTooMany marks a directory with more than MaxDirEntries entries.
var ErrTooMany = errors.New("too many entries")

// Open opens the regular file p for reading, and refuses anything but a
// regular file before opening it for reading: a FIFO or device planted in
// a tree can neither hang a collector, stream without end, nor be opened at
// all (opening some devices acts: a watchdog node arms the watchdog). The
// type is checked on an O_PATH descriptor, which opens nothing, and the
// same inode is then reopened through /proc/self/fd, so no rename in
// between can swap the file.
func (p Path) Open() (*os.File, error) {
	h, err := p.openFlags(unix.O_PATH)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	st, err := h.Stat()
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: p.String(), Err: unwrapPathErr(err)}
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", p, typeName(st.Mode()))
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", h.Fd()), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p.String(), Err: err}
	}
	return os.NewFile(uintptr(fd), p.String()), nil
}

// typeName names a file type in words.
func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return m.Type().String()
}

// OpenDevice opens the character device p (such as /dev/kmsg) with flags,
// refusing anything else. It is for the live root only: the caller checks.
func (p Path) OpenDevice(flags int) (*os.File, error) {
	f, err := p.openFlags(flags | unix.O_NOCTTY)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.Mode()&fs.ModeCharDevice == 0 {
		f.Close()
		return nil, fmt.Errorf("%s: not a character device (%s)", p, st.Mode().Type())
	}
	return f, nil
}

// ReadFile reads the regular file p, failing (rather than truncating) when
// it is larger than limit. procfs and sysfs report a size of 0 or 4096
// whatever they hold, so the limit is checked on what is read.
func (p Path) ReadFile(limit int64) ([]byte, error) {
	f, err := p.Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than the %d-byte limit", p, limit)
	}
	return b, nil
}

// ReadText reads a text file of at most limit bytes; a NUL byte makes it
// binary.
func (p Path) ReadText(limit int64) (string, error) {
	b, err := p.ReadFile(limit)
	if err != nil {
		return "", err
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return "", fmt.Errorf("%s: %w", p, ErrNotText)
	}
	return string(b), nil
}

// ReadValue reads a one-value procfs or sysfs file and trims the white space
// around it. An empty file is an error: every attribute the collectors read
// has a value when the kernel provides it.
func (p Path) ReadValue() (string, error) {
	s, err := p.ReadText(MaxValueSize)
	if err != nil {
		return "", err
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("%s: empty", p)
	}
	return s, nil
}

// ReadUint reads a one-value file holding a decimal unsigned integer.
func (p Path) ReadUint() (uint64, error) {
	s, err := p.ReadValue()
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// The value is the tree's: described, not quoted (show.go).
		return 0, fmt.Errorf("%s: not an unsigned integer (%s)", p, Invalid(s))
	}
	return v, nil
}

// ReadDir lists the directory p, sorted by name, failing with ErrTooMany
// when it holds more than MaxDirEntries entries.
func (p Path) ReadDir() ([]fs.DirEntry, error) { return p.ReadDirLimit(MaxDirEntries) }

// ReadDirLimit is ReadDir with a limit of its own, for the directories
// that are large by nature (/proc on a busy host).
func (p Path) ReadDirLimit(limit int) ([]fs.DirEntry, error) {
	f, err := p.openFlags(unix.O_RDONLY | unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(limit + 1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if len(entries) > limit {
		return nil, fmt.Errorf("%s: %w (more than %d)", p, ErrTooMany, limit)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	return entries, nil
}

// Glob returns the entries of directory p whose names match pattern (as in
// path.Match), sorted; a missing directory matches nothing.
func (p Path) Glob(pattern string) ([]Path, error) {
	entries, err := p.ReadDir()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Path
	for _, e := range entries {
		ok, err := matchName(pattern, e.Name())
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, p.Join(e.Name()))
		}
	}
	return out, nil
}

func matchName(pattern, name string) (bool, error) { return path.Match(pattern, name) }

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
