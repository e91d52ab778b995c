package host

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// canary writes a file outside every tree the test builds, whose content
// must never come back through a Root.
func canary(t *testing.T) (path, content string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "probe-canary-shadow")
	content = fmt.Sprintf("CANARY-%d", os.Getpid())
	if err := os.WriteFile(path, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, content
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadFileLimits(t *testing.T) {
	dir := t.TempDir()
	r := OpenRoot(dir)
	f, err := os.Create(filepath.Join(dir, "huge"))
	if err != nil {
		t.Fatal(err)
	}
	// 64 MiB of a "value" file: read up to the limit, then refused.
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := r.Path("huge").ReadFile(MaxFileSize); err == nil || !strings.Contains(err.Error(), "larger than the 4194304-byte limit") {
		t.Errorf("huge file: %v", err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A FIFO with no writer would block a plain open forever.
	if _, err := r.Path("fifo").ReadValue(); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("fifo: %v", err)
	}
	write(t, filepath.Join(dir, "bin"), "12\x0034")
	if _, err := r.Path("bin").ReadValue(); !errors.Is(err, ErrNotText) {
		t.Errorf("binary: %v", err)
	}
	write(t, filepath.Join(dir, "empty"), " \n")
	if _, err := r.Path("empty").ReadValue(); err == nil || !strings.HasSuffix(err.Error(), ": empty") {
		t.Errorf("empty: %v", err)
	}
	if _, err := r.Path("missing").ReadValue(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	write(t, filepath.Join(dir, "ok"), "  42\n")
	if v, err := r.Path("ok").ReadUint(); err != nil || v != 42 {
		t.Errorf("ReadUint = %d, %v", v, err)
	}
	if _, err := r.Path("dev-null-link").ReadValue(); err == nil {
		t.Error("missing link read")
	}
	os.Symlink("/dev/zero", filepath.Join(dir, "zero"))
	if _, err := r.Path("zero").ReadValue(); err == nil {
		t.Error("a link to /dev/zero was read (it resolves inside the root, where there is none)")
	}
	if _, err := OpenRoot("/").Path("dev/zero").ReadFile(10); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("/dev/zero: %v", err)
	}
}

func TestLinksResolveInsideRoot(t *testing.T) {
	shadow, secret := canary(t)
	root := t.TempDir()
	write(t, filepath.Join(root, "usr/lib/os-release"), "ID=inside\n")
	r := OpenRoot(root)
	for _, tc := range []struct{ link, target string }{
		{"etc/os-release", "/usr/lib/os-release"},             // absolute: must not escape to the host
		{"etc/os-release2", "../usr/lib/os-release"},          // relative, as Azure Linux ships it
		{"etc/os-release3", "../../../../usr/lib/os-release"}, // climbing above the root stops at the root
	} {
		os.MkdirAll(filepath.Join(root, "etc"), 0o755)
		if err := os.Symlink(tc.target, filepath.Join(root, tc.link)); err != nil {
			t.Fatal(err)
		}
		got, err := r.Path(tc.link).ReadValue()
		if err != nil || got != "ID=inside" {
			t.Errorf("%s -> %s: %q, %v", tc.link, tc.target, got, err)
		}
		res, err := r.Path(tc.link).Resolve()
		if err != nil || res.InRoot() != "/usr/lib/os-release" {
			t.Errorf("Resolve(%s) = %s, %v", tc.link, res.InRoot(), err)
		}
	}
	// lib -> usr/lib, as on a merged-/usr system.
	os.Symlink("usr/lib", filepath.Join(root, "lib"))
	if got, err := r.Path("lib/os-release").ReadValue(); err != nil || got != "ID=inside" {
		t.Errorf("lib/os-release: %q, %v", got, err)
	}

	// Escapes that worked against the user-space resolver: a link to a host
	// file by its absolute path, a link to the root's own absolute path, and
	// a directory entry that is a link.
	os.Symlink(shadow, filepath.Join(root, "abs-host"))
	os.Symlink(filepath.Join(root, "..", filepath.Base(filepath.Dir(shadow)), filepath.Base(shadow)), filepath.Join(root, "abs-own"))
	os.MkdirAll(filepath.Join(root, "etc/yum.repos.d"), 0o755)
	os.Symlink(shadow, filepath.Join(root, "etc/yum.repos.d/evil.repo"))
	for _, p := range []Path{r.Path("abs-host"), r.Path("abs-own"), r.Path("etc/yum.repos.d").Join("evil.repo")} {
		b, err := p.ReadFile(1 << 10)
		if strings.Contains(string(b), secret) {
			t.Errorf("%s: read the host's canary", p)
		}
		if err == nil {
			t.Errorf("%s: read %q", p, b)
		}
	}
	matches, err := r.Path("etc/yum.repos.d").Glob("*.repo")
	if err != nil || len(matches) != 1 {
		t.Fatalf("Glob = %v, %v", matches, err)
	}
	if b, _ := matches[0].ReadFile(1 << 10); strings.Contains(string(b), secret) {
		t.Error("glob match read the canary")
	}
}

func TestLinkChainPastTheLimitFails(t *testing.T) {
	shadow, secret := canary(t)
	root := t.TempDir()
	// 41 links: link0 -> link1 -> ... -> link40 -> the host file. The old
	// resolver left the 41st unresolved and the kernel followed it on the
	// host; the kernel's own limit (40) gives ELOOP.
	for i := 0; i < 41; i++ {
		os.Symlink(fmt.Sprintf("link%d", i+1), filepath.Join(root, fmt.Sprintf("link%d", i)))
	}
	os.Symlink(shadow, filepath.Join(root, "link41"))
	b, err := OpenRoot(root).Path("link0").ReadFile(1 << 10)
	if strings.Contains(string(b), secret) {
		t.Fatal("read the canary through a link chain")
	}
	if !errors.Is(err, syscall.ELOOP) {
		t.Errorf("err = %v, want ELOOP", err)
	}
	os.Symlink("loop2", filepath.Join(root, "loop1"))
	os.Symlink("loop1", filepath.Join(root, "loop2"))
	if _, err := OpenRoot(root).Path("loop1").ReadValue(); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("loop: %v", err)
	}
}

// TestSwappedLinkRace renames a directory back and forth with a link to the
// host while reads go on: a check-then-open resolver leaked 5 in 400.
func TestSwappedLinkRace(t *testing.T) {
	shadow, secret := canary(t)
	root := t.TempDir()
	write(t, filepath.Join(root, "good/os-release"), "ID=inside\n")
	os.Symlink(filepath.Dir(shadow), filepath.Join(root, "evil"))
	os.Rename(filepath.Join(shadow), filepath.Join(filepath.Dir(shadow), "os-release"))
	r := OpenRoot(root)
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a, b, tmp := filepath.Join(root, "good"), filepath.Join(root, "evil"), filepath.Join(root, "tmp")
		for !stop.Load() {
			os.Rename(a, tmp)
			os.Rename(b, a)
			os.Rename(a, b)
			os.Rename(tmp, a)
		}
	}()
	leaks := 0
	for i := 0; i < 2000; i++ {
		if b, err := r.Path("good/os-release").ReadFile(1 << 10); err == nil && strings.Contains(string(b), secret) {
			leaks++
		}
	}
	stop.Store(true)
	wg.Wait()
	if leaks > 0 {
		t.Errorf("%d of 2000 reads returned the host file", leaks)
	}
}

func TestReadDirBounded(t *testing.T) {
	root := t.TempDir()
	for i := 0; i < MaxDirEntries+1; i++ {
		if err := os.WriteFile(filepath.Join(root, fmt.Sprint(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := OpenRoot(root).Path().ReadDir(); !errors.Is(err, ErrTooMany) {
		t.Errorf("err = %v, want ErrTooMany", err)
	}
}

func TestMissingRoot(t *testing.T) {
	r := OpenRoot(filepath.Join(t.TempDir(), "nothing"))
	if _, err := r.Path("etc/os-release").ReadValue(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v", err)
	}
}

func TestReadlinkAndLstat(t *testing.T) {
	root := t.TempDir()
	os.Symlink("../../devices/pci0000:00/0000:00:01.0", filepath.Join(root, "dev0"))
	r := OpenRoot(root)
	if target, err := r.Path("dev0").Readlink(); err != nil || target != "../../devices/pci0000:00/0000:00:01.0" {
		t.Errorf("Readlink = %q, %v", target, err)
	}
	if fi, err := r.Path("dev0").Lstat(); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("Lstat = %v, %v", fi, err)
	}
	write(t, filepath.Join(root, "file"), "x")
	if _, err := r.Path("file").Readlink(); err == nil {
		t.Error("Readlink of a regular file succeeded")
	}
}

// TestFallbackWithoutOpenat2 runs the confinement cases through the
// user-space walk that takes over where openat2 is missing.
func TestFallbackWithoutOpenat2(t *testing.T) {
	noOpenat2.Store(true)
	defer noOpenat2.Store(false)
	TestLinksResolveInsideRoot(t)
	TestReadlinkAndLstat(t)
}

// TestFallbackLiveRoot reads /proc and /sys through the user-space walk, as
// a unit whose seccomp filter refuses openat2 does.
func TestFallbackLiveRoot(t *testing.T) {
	noOpenat2.Store(true)
	defer noOpenat2.Store(false)
	r := OpenRoot("/")
	if _, err := r.Path("proc/self/status").ReadText(MaxFileSize); err != nil {
		t.Errorf("proc/self/status: %v", err)
	}
	if _, err := r.Path("sys/kernel").ReadDir(); err != nil {
		t.Errorf("sys/kernel: %v", err)
	}
	if _, err := r.Path("proc/self").Readlink(); err != nil {
		t.Errorf("readlink proc/self: %v", err)
	}
}

// TestConcurrentRenamesDoNotFailReads: openat2 with RESOLVE_IN_ROOT fails
// with EAGAIN when any rename on the system races a ".." it resolves (it
// cannot prove the ".." stayed inside: openat2(2)). sysfs's device links
// are all "../../..", and a busy host renames files all the time, so the
// host layer retries; before it did, a collector's read of a fixture tree
// failed now and then while other tests ran (CI, 2026-12-01: "open
// …/vmbus/devices/…/class_id: resource temporarily unavailable").
func TestConcurrentRenamesDoNotFailReads(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "devices/vmbus/dev0/class_id"), "{57164f39-9115-4e78-ab55-382f3bd5422d}\n")
	os.MkdirAll(filepath.Join(root, "bus/vmbus/devices"), 0o755)
	os.Symlink("../../../devices/vmbus/dev0", filepath.Join(root, "bus/vmbus/devices/dev0"))
	r := OpenRoot(root)
	// Renames in an unrelated directory, outside the root.
	other := t.TempDir()
	a, b := filepath.Join(other, "a"), filepath.Join(other, "b")
	write(t, a, "x")
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			os.Rename(a, b)
			os.Rename(b, a)
		}
	}()
	failed := 0
	var last error
	for i := 0; i < 20000; i++ {
		if _, err := r.Path("bus/vmbus/devices/dev0/class_id").ReadFile(1 << 10); err != nil {
			failed++
			last = err
		}
	}
	stop.Store(true)
	wg.Wait()
	if failed > 0 {
		t.Errorf("%d of 20000 reads failed, the last with %v", failed, last)
	}
}
