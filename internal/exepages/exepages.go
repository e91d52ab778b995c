// Package exepages keeps the pages of the probe's own executable that are
// mapped, and counted in its resident memory, close to those it uses.
//
// A Go daemon's RSS is as much its executable's pages as its heap: the
// probe's binary is tens of MB, and what it reads of it (init functions,
// type descriptors, the pclntab that the garbage collector and stack growth
// consult) is a few bytes here and there all over it. Two things keep that
// small: mapping it a page at a time from this package's init on
// (pagebypage.go), and Release, which unmaps what start-up touched and
// serving does not touch again.
//
// The package imports nothing but errors, syscall and unsafe, so that Go's
// initialisation order (packages in import-path order, each after its
// imports: The Go Programming Language Specification, "Package
// initialization") runs its init among the first, before the packages whose
// inits read megabytes of the binary. Hence the small parsers here instead
// of strconv and bufio.
package exepages

import (
	"errors"
	"syscall"
)

// Release unmaps the executable's pages that are mapped read-only and hold
// nothing private (its code and read-only data) with madvise(MADV_DONTNEED):
// the pages stay in the page cache, and those the process touches again are
// mapped again on their next access, as at start. A read-only mapping with
// anonymous pages (the relocated RELRO of a PIE build, which MADV_DONTNEED
// would reset to the file's bytes) and every writable one are left alone.
// It returns the resident bytes released.
func Release() (int64, error) {
	maps, exe, err := self()
	if err != nil {
		return 0, err
	}
	var released int64
	for _, m := range releasable(maps, exe) {
		// The raw call: the range is an address from the map, not memory
		// Go allocated (madvise(2)).
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, syscall.MADV_DONTNEED); e != 0 {
			return released, &opError{"madvise " + hex(m.start) + "-" + hex(m.end), e}
		}
		released += m.rss
	}
	return released, nil
}

// self returns this process's mappings and the path its executable's have
// there: /proc/self/exe, which the kernel writes the same way
// (proc(5)), " (deleted)" included once the file is replaced. The
// process's own memory map, not a fact about the host: it is read from this
// process's /proc whatever --path.procfs says.
func self() ([]mapping, string, error) {
	var buf [syscall.PathMax]byte
	n, err := syscall.Readlink("/proc/self/exe", buf[:])
	if err != nil {
		return nil, "", &opError{"readlink /proc/self/exe", err}
	}
	smaps, err := readProc("/proc/self/smaps")
	if err != nil {
		return nil, "", err
	}
	return parseSmaps(smaps), string(buf[:n]), nil
}

// maxSmaps bounds readProc: the smaps of a Go process are some tens of kB.
const maxSmaps = 4 << 20

// readProc reads a file of this process's /proc whole.
func readProc(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &opError{"open " + path, err}
	}
	defer syscall.Close(fd)
	buf := make([]byte, 0, 64<<10)
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= maxSmaps {
				return nil, &opError{"read " + path, errors.New("larger than 4 MiB")}
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &opError{"read " + path, err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// releasable returns the mappings of exe that are not writable, hold no
// anonymous (copied-on-write) pages and have resident pages.
func releasable(maps []mapping, exe string) []mapping {
	var out []mapping
	for _, m := range maps {
		if m.path == exe && !m.writable() && m.anon == 0 && m.rss > 0 {
			out = append(out, m)
		}
	}
	return out
}

// mapping is one entry of /proc/PID/smaps (proc(5)).
type mapping struct {
	start, end uintptr
	perms      string
	path       string
	rss, anon  int64  // bytes; anon is -1 until its field is read
	flags      string // VmFlags: two-letter codes, "uw" for userfaultfd write-protect
}

func (m mapping) writable() bool { return len(m.perms) != 4 || m.perms[1] != '-' }

// maxMappings bounds parseSmaps; a Go process has a few dozen.
const maxMappings = 4096

// parseSmaps reads the header line and the Rss, Anonymous and VmFlags
// fields of each mapping. A malformed header starts no mapping, and the
// fields after it are skipped, so that nothing is done to a range the parser
// did not read whole.
func parseSmaps(smaps []byte) []mapping {
	var out []mapping
	var cur *mapping
	for len(smaps) > 0 && len(out) <= maxMappings {
		var line []byte
		line, smaps = cut(smaps, '\n')
		name, rest := field(line)
		if name == nil {
			continue
		}
		if name[len(name)-1] != ':' { // a header: start-end perms offset dev inode [path]
			cur = nil
			lo, hi := cut(name, '-')
			start, ok1 := parseUint(lo, 16)
			end, ok2 := parseUint(hi, 16)
			perms, rest := field(rest)
			_, rest = field(rest) // offset
			_, rest = field(rest) // device
			inode, rest := field(rest)
			if !ok1 || !ok2 || end <= start || inode == nil {
				continue
			}
			out = append(out, mapping{start: uintptr(start), end: uintptr(end), perms: string(perms), path: string(trimSpace(rest)), anon: -1})
			cur = &out[len(out)-1]
			continue
		}
		if cur == nil {
			continue
		}
		if string(name) == "VmFlags:" {
			cur.flags = string(trimSpace(rest))
			continue
		}
		num, rest := field(rest)
		unit, rest := field(rest)
		v, ok := parseUint(num, 10)
		if !ok || string(unit) != "kB" || len(trimSpace(rest)) != 0 || v > 1<<40 {
			continue
		}
		switch string(name) {
		case "Rss:":
			cur.rss = int64(v) << 10
		case "Anonymous:":
			cur.anon = int64(v) << 10
		}
	}
	return out
}

// field returns the first space-separated field of b and what follows it.
func field(b []byte) (f, rest []byte) {
	b = trimSpace(b)
	for i, c := range b {
		if c == ' ' || c == '\t' {
			return b[:i], b[i:]
		}
	}
	if len(b) == 0 {
		return nil, nil
	}
	return b, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func cut(b []byte, sep byte) (before, after []byte) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}

// parseUint parses a number of at most 16 digits in base 10 or 16.
func parseUint(b []byte, base uint64) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		default:
			return 0, false
		}
		v = v*base + d
	}
	return v, true
}

func hex(v uintptr) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	i := len(b)
	for {
		i--
		b[i] = digits[v&0xf]
		v >>= 4
		if v == 0 {
			return string(b[i:])
		}
	}
}

// opError is an error with the operation it ended.
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }
