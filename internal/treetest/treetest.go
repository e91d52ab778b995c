// Package treetest builds file trees for tests: a root file system, a
// sysfs or procfs fragment, a checks directory. It is the one helper the
// packages' tests share instead of each writing files its own way.
package treetest

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// New builds files (see Build) in a new temporary directory and returns it.
func New(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	Build(t, root, files)
	return root
}

// Build writes files under root. Each key is a slash-separated path
// relative to root and each value its content, except that a value
// "->target" makes a symbolic link to target (as written: relative, as
// sysfs's, or absolute, to test re-rooting), and a key ending in "/" makes
// a directory. Parent directories are created. A file whose content starts
// with "#!" is executable.
func Build(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		full := filepath.Join(root, filepath.FromSlash(rel))
		switch target, isLink := strings.CutPrefix(content, "->"); {
		case strings.HasSuffix(rel, "/"):
			mkdir(t, full)
		case isLink:
			Link(t, full, target)
		default:
			File(t, full, content)
		}
	}
}

// File writes content at path, creating its parent directories; mode 0644,
// or 0755 when content starts with "#!".
func File(t testing.TB, path, content string) {
	t.Helper()
	mkdir(t, filepath.Dir(path))
	mode := os.FileMode(0o644)
	if strings.HasPrefix(content, "#!") {
		mode = 0o755
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// Link makes path a symbolic link to target, creating its parent
// directories.
func Link(t testing.TB, path, target string) {
	t.Helper()
	mkdir(t, filepath.Dir(path))
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// Traps makes a FIFO named fifoName and a symbolic link to /dev/zero named
// zeroName in a new temporary directory and returns the three paths: the
// operator files (a configuration, a checks file, a baseline) that would
// block open(2) until a writer comes, or never end, where a reader does not
// check what it opens.
func Traps(t testing.TB, fifoName, zeroName string) (dir, fifo, zero string) {
	t.Helper()
	dir = t.TempDir()
	fifo = filepath.Join(dir, fifoName)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	zero = filepath.Join(dir, zeroName)
	Link(t, zero, "/dev/zero")
	return dir, fifo, zero
}

// Within fails the test when f has not returned after d: a read that
// blocks on a FIFO would otherwise hang the suite.
func Within(t testing.TB, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("still running after %s", d)
	}
}
