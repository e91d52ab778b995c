package factsdoc

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/treetest"
)

// TestLoadFIFO: a FIFO or a link to /dev/zero as --baseline.file fails at
// once with an error naming it, instead of blocking in open(2) until a
// writer comes (issue 14, case 8).
func TestLoadFIFO(t *testing.T) {
	_, fifo, zero := treetest.Traps(t, "baseline.json", "zero.json")
	for _, p := range []string{fifo, zero} {
		treetest.Within(t, 5*time.Second, func() {
			if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p+": not a regular file") {
				t.Errorf("Load(%s): %v", p, err)
			}
		})
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
