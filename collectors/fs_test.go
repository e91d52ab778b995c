package collectors

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadFileLimits(t *testing.T) {
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	// 64 MiB of a "value" file: read up to the limit, then refused.
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := readFile(huge, maxFileSize); err == nil || !strings.Contains(err.Error(), "larger than the 4194304-byte limit") {
		t.Errorf("huge file: %v", err)
	}

	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	// A FIFO with no writer would block a plain open forever.
	if _, err := readValue(fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("fifo: %v", err)
	}

	bin := filepath.Join(dir, "bin")
	os.WriteFile(bin, []byte("12\x0034"), 0o644)
	if _, err := readValue(bin); !errors.Is(err, errNotText) {
		t.Errorf("binary: %v", err)
	}

	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte(" \n"), 0o644)
	if _, err := readValue(empty); err == nil || !strings.HasSuffix(err.Error(), ": empty") {
		t.Errorf("empty: %v", err)
	}

	if _, err := readValue(filepath.Join(dir, "missing")); !isNotExist(err) {
		t.Errorf("missing: %v", err)
	}

	ok := filepath.Join(dir, "ok")
	os.WriteFile(ok, []byte("  42\n"), 0o644)
	if v, err := readUint(ok); err != nil || v != 42 {
		t.Errorf("readUint = %d, %v", v, err)
	}
}

func TestRootResolvesLinksInsideRoot(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/lib/os-release"), []byte("ID=inside\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	p := DefaultPaths(root)
	for _, tc := range []struct{ link, target string }{
		{"etc/os-release", "/usr/lib/os-release"},             // absolute: must not escape to the host
		{"etc/os-release2", "../usr/lib/os-release"},          // relative, as Azure Linux ships it
		{"etc/os-release3", "../../../../usr/lib/os-release"}, // climbing above the root stops at the root
	} {
		if err := os.Symlink(tc.target, filepath.Join(root, tc.link)); err != nil {
			t.Fatal(err)
		}
		got := p.Root(tc.link)
		if want := filepath.Join(root, "usr/lib/os-release"); got != want {
			t.Errorf("Root(%s -> %s) = %s, want %s", tc.link, tc.target, got, want)
		}
	}
	// lib -> usr/lib, as on a merged-/usr system.
	os.Symlink("usr/lib", filepath.Join(root, "lib"))
	if got, want := p.Root("lib/os-release"), filepath.Join(root, "usr/lib/os-release"); got != want {
		t.Errorf("Root(lib/os-release) = %s, want %s", got, want)
	}
	// A link loop ends instead of spinning.
	os.Symlink("loop2", filepath.Join(root, "loop1"))
	os.Symlink("loop1", filepath.Join(root, "loop2"))
	if _, err := readValue(p.Root("loop1")); err == nil {
		t.Error("link loop read without error")
	}
	if got := DefaultPaths("/").Root("etc/os-release"); got != "/etc/os-release" {
		t.Errorf("live Root = %s", got)
	}
}

func TestLive(t *testing.T) {
	if !DefaultPaths("/").Live() {
		t.Error("/proc is not recognised as the live procfs")
	}
	if DefaultPaths(t.TempDir()).Live() {
		t.Error("an empty tree is taken for the live procfs")
	}
}
