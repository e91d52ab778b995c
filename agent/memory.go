package agent

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The daemon's resident memory is mostly pages of its own executable, not
// heap: the kernel maps file pages 64 KiB around each one touched
// (fault_around_bytes, mm/memory.c do_fault_around), and before serving
// anything the probe has run the init functions of some 190 packages, built
// its itab table (runtime/iface.go itabsinit, which reads type descriptors
// all over the read-only data) and parsed its flags, configuration and
// checks. Those pages stay mapped, and counted in its RSS, for the life of
// the process, though serving needs a fraction of them.
//
// releaseExecutablePages unmaps the executable's pages that are mapped
// read-only and hold nothing private (its code and read-only data) with
// madvise(MADV_DONTNEED): the pages stay in the page cache, and those that
// serving touches again are mapped again on their next access, as at start.
// A read-only mapping with anonymous pages (the relocated RELRO of a PIE
// build, which MADV_DONTNEED would reset to the file's bytes) and every
// writable one are left alone. It returns the resident bytes released.
func releaseExecutablePages() (int64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	// The process's own memory map, not a fact about the host: it is read
	// from this process's /proc whatever --path.procfs says.
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	var released int64
	for _, m := range releasableMappings(smaps, exe) {
		// The raw call: the range is an address from the map, not memory
		// Go allocated (madvise(2)).
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_DONTNEED); e != 0 {
			return released, fmt.Errorf("madvise %x-%x: %w", m.start, m.end, e)
		}
		released += m.rss
	}
	return released, nil
}

// releasePages releases the executable's pages and logs how much at debug
// level; a failure only costs memory, so it is a warning.
func releasePages(logger *slog.Logger, when string) {
	n, err := releaseExecutablePages()
	if err != nil {
		logger.Warn("release the executable's pages", "when", when, "err", err)
		return
	}
	logger.Debug("released the executable's pages", "when", when, "bytes", n)
}

// mapping is one entry of /proc/PID/smaps (proc(5)).
type mapping struct {
	start, end uintptr
	perms      string
	path       string
	rss, anon  int64 // bytes
}

// releasableMappings returns the mappings of exe in smaps that are not
// writable, hold no anonymous (copied-on-write) pages and have resident
// pages.
func releasableMappings(smaps []byte, exe string) []mapping {
	var out []mapping
	for _, m := range parseSmaps(smaps) {
		if m.path == exe && !strings.Contains(m.perms, "w") && m.anon == 0 && m.rss > 0 {
			out = append(out, m)
		}
	}
	return out
}

// maxMappings bounds parseSmaps; a Go process has a few dozen.
const maxMappings = 4096

// parseSmaps reads the header line and the Rss and Anonymous fields of each
// mapping; a malformed entry is skipped, so that it is never released.
func parseSmaps(smaps []byte) []mapping {
	var out []mapping
	var cur *mapping
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() && len(out) <= maxMappings {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(f[0], "-"); ok && len(f) >= 5 {
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil || end <= start {
				cur = nil
				continue
			}
			out = append(out, mapping{start: uintptr(start), end: uintptr(end), perms: f[1], anon: -1})
			cur = &out[len(out)-1]
			if len(f) >= 6 {
				cur.path = strings.Join(f[5:], " ")
			}
			continue
		}
		if cur == nil || len(f) != 3 || f[2] != "kB" {
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "Rss:":
			cur.rss = v << 10
		case "Anonymous:":
			cur.anon = v << 10
		}
	}
	return out
}
