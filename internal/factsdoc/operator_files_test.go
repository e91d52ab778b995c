package factsdoc

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLoadFIFO: a FIFO or a link to /dev/zero as --baseline.file fails at
// once with an error naming it, instead of blocking in open(2) until a
// writer comes (issue 14, case 8).
func TestLoadFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "baseline.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero.json")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, zero} {
		done := make(chan error, 1)
		go func() { _, err := Load(p); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), p+": not a regular file") {
				t.Errorf("Load(%s): %v", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Load(%s) still blocked after 5s", p)
		}
	}
}

// TestSaveMode: a new baseline is 0600 (it holds the host's facts); one
// written over an existing file keeps that file's mode.
func TestSaveMode(t *testing.T) {
	dir := t.TempDir()
	b, _ := json.Marshal(doc(kernelFacts("6.18.31", 0, "y")))
	path := filepath.Join(dir, "baseline.json")
	if err := Save(path, b); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new baseline: %v %v, want 0600", st.Mode(), err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, b); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("replaced baseline: %v %v, want the 0640 it had", st.Mode(), err)
	}
}
