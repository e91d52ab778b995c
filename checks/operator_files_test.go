package checks

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// within fails the test when f has not returned by the deadline: a read
// that blocks on a FIFO would otherwise hang `check` and the suite with it.
func within(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("still running after %s", d)
	}
}

// TestOperatorFilesFIFO: a FIFO (or a link to /dev/zero) as a checks.d file
// fails at once with an error naming it, instead of
// blocking in open(2) until a writer comes (issue 14, case 8).
func TestOperatorFilesFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "50-fifo.yml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "60-zero.yml")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, func() {
		_, err := LoadAll(true, dir)
		if err == nil || !strings.Contains(err.Error(), fifo+": not a regular file (a FIFO)") ||
			!strings.Contains(err.Error(), zero+": not a regular file (a character device)") {
			t.Errorf("LoadAll: %v", err)
		}
	})
}
