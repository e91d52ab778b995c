package exepages

import (
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestReleasable: in the real smaps of a PIE Go binary, the code and the
// read-only data are released; the RELRO mapping (read-only, but
// relocated, so holding anonymous pages), the writable data and the dynamic
// loader's mappings are not. Registered for write-protect faults are the
// code, the read-only data and the RELRO mapping.
func TestReleasable(t *testing.T) {
	smaps, err := os.ReadFile("testdata/smaps-pie")
	if err != nil {
		t.Fatal(err)
	}
	all := parseSmaps(smaps)
	if len(all) != 8 {
		t.Fatalf("parsed %d mappings, want 8", len(all))
	}
	if m := all[2]; m.perms != "r--p" || m.anon != 152<<10 {
		t.Errorf("RELRO mapping parsed as %+v, want r--p with 152 kB anonymous", m)
	}
	if !strings.HasPrefix(all[0].flags, "rd ex mr mw me") {
		t.Errorf("VmFlags of the first mapping parsed as %q", all[0].flags)
	}
	var got []string
	for _, m := range releasable(all, "/tmp/hellopie") {
		got = append(got, m.perms)
		if m.start != 0x55c53a7cb000 && m.start != 0x55c53a876000 {
			t.Errorf("releases %x-%x (%s)", m.start, m.end, m.perms)
		}
	}
	if strings.Join(got, ",") != "r-xp,r--p" {
		t.Errorf("releasable %v, want the code (r-xp) and the read-only data (r--p)", got)
	}
	if ro := readOnly(all, "/tmp/hellopie"); len(ro) != 3 || ro[0][0] != 0x55c53a7cb000 {
		t.Errorf("read-only ranges %x, want the code, the read-only data and RELRO", ro)
	}
	// A truncated or garbled entry is never released.
	garbled := regexp.MustCompile(`Anonymous: +0 kB`).ReplaceAllString(string(smaps), "Anonymous: x kB")
	if n := len(releasable(parseSmaps([]byte(garbled)), "/tmp/hellopie")); n != 0 {
		t.Errorf("released %d mappings whose Anonymous field did not parse", n)
	}
}

// TestRelease: on this process (the test binary), the release drops
// resident pages of its code, and the code runs on, faulted back in from
// the page cache.
func TestRelease(t *testing.T) {
	resident := func() (n int64) {
		maps, exe, err := self()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range releasable(maps, exe) {
			n += m.rss
		}
		return n
	}
	before := resident()
	released, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	after := resident()
	if released < before/2 || after >= before {
		t.Errorf("resident %d bytes before, %d after, %d reported released", before, after, released)
	}
	// Code that had run before runs again, and the heap is untouched.
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	if m.HeapAlloc == 0 || strings.ToUpper("ok") != "OK" {
		t.Error("the process does not run on after the release")
	}
}

// TestPageByPage: this kernel (6.18) takes the registration, the test
// binary's code and read-only data carry the userfaultfd write-protect flag
// (smaps VmFlags "uw"), and it does what it is for: a read of one page of a
// file mapping maps 64 KiB of it without the registration and one page with
// it.
func TestPageByPage(t *testing.T) {
	if PageByPage.Err != nil || PageByPage.Bytes == 0 || uffd < 0 {
		t.Fatalf("init registered %d bytes (userfaultfd %d): %v", PageByPage.Bytes, uffd, PageByPage.Err)
	}
	maps, exe, err := self()
	if err != nil {
		t.Fatal(err)
	}
	var registered uint64
	for _, m := range maps {
		if m.path != exe {
			continue
		}
		uw := strings.Contains(" "+m.flags+" ", " uw ")
		if uw == m.writable() {
			t.Errorf("%x-%x %s has VmFlags %q", m.start, m.end, m.perms, m.flags)
		}
		if uw {
			registered += uint64(m.end - m.start)
		}
	}
	if registered != PageByPage.Bytes {
		t.Errorf("%d bytes carry the flag, init reported %d", registered, PageByPage.Bytes)
	}

	// Two fresh mappings of the executable, whose pages are in the page
	// cache (it is running, and read here whole): one left alone, one
	// registered.
	if _, err := os.ReadFile(exe); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 1 << 20
	mapped := func() []byte {
		b, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_PRIVATE)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Munmap(b) })
		return b
	}
	plain, registeredMap := mapped(), mapped()
	fd, err := newWPAsync()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	start := uintptr(unsafe.Pointer(&registeredMap[0]))
	if n, err := registerWP(fd, [][2]uintptr{{start, start + size}}); n != size || err != nil {
		t.Fatalf("registered %d bytes: %v", n, err)
	}
	// Read one byte in the middle of each and count the pages present.
	const page = size / 2
	sink += plain[page] + registeredMap[page]
	t.Logf("one read mapped %d pages without the registration, %d with it", present(t, plain), present(t, registeredMap))
	if n := present(t, plain); n < 2 {
		t.Errorf("without the registration one read mapped %d pages: fault-around is off on this host (fault_around_bytes), so the test proves nothing", n)
	}
	if n := present(t, registeredMap); n != 1 {
		t.Errorf("with the registration one read mapped %d pages, want 1", n)
	}
}

// sink keeps the reads of TestPageByPage from being compiled away.
var sink byte

// present counts the pages of b mapped in this process (/proc/self/pagemap,
// bit 63: Documentation/admin-guide/mm/pagemap.rst).
func present(t *testing.T, b []byte) int {
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Fatal(err)
	}
	defer pm.Close()
	ps := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(&b[0]))
	entries := make([]byte, 8*(uintptr(len(b))/ps))
	if _, err := pm.ReadAt(entries, int64(start/ps*8)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := 7; i < len(entries); i += 8 {
		if entries[i]&0x80 != 0 {
			n++
		}
	}
	return n
}

// FuzzParseSmaps: whatever the bytes, the parser returns mappings whose
// ranges are ordered and never panics.
func FuzzParseSmaps(f *testing.F) {
	if smaps, err := os.ReadFile("testdata/smaps-pie"); err == nil {
		f.Add(smaps)
	}
	f.Add([]byte("1000-2000 r-xp 00000000 08:01 12 /x y\nRss: 4 kB\nAnonymous: 0 kB\nVmFlags: rd ex\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range parseSmaps(b) {
			if m.end <= m.start || m.rss < 0 || m.anon < -1 {
				t.Fatalf("parsed %+v", m)
			}
		}
	})
}
