package agent

import (
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestReleasableMappings: in the real smaps of a PIE Go binary, the code
// and the read-only data are released; the RELRO mapping (read-only, but
// relocated, so holding anonymous pages), the writable data and the dynamic
// loader's mappings are not.
func TestReleasableMappings(t *testing.T) {
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
	var got []string
	for _, m := range releasableMappings(smaps, "/tmp/hellopie") {
		got = append(got, m.perms)
		if m.start != 0x55c53a7cb000 && m.start != 0x55c53a876000 {
			t.Errorf("releases %x-%x (%s)", m.start, m.end, m.perms)
		}
	}
	if strings.Join(got, ",") != "r-xp,r--p" {
		t.Errorf("releasable %v, want the code (r-xp) and the read-only data (r--p)", got)
	}
	// A truncated or garbled entry is never released.
	garbled := regexp.MustCompile(`Anonymous: +0 kB`).ReplaceAllString(string(smaps), "Anonymous: x kB")
	if n := len(releasableMappings([]byte(garbled), "/tmp/hellopie")); n != 0 {
		t.Errorf("released %d mappings whose Anonymous field did not parse", n)
	}
}

// TestReleaseExecutablePages: on this process (the test binary), the
// release drops resident pages of its code, and the code runs on, faulted
// back in from the page cache.
func TestReleaseExecutablePages(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	resident := func() (n int64) {
		smaps, err := os.ReadFile("/proc/self/smaps")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range releasableMappings(smaps, exe) {
			n += m.rss
		}
		return n
	}
	before := resident()
	released, err := releaseExecutablePages()
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
