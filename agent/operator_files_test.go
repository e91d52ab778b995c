package agent

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestConfigFileFIFO: a FIFO or a link to /dev/zero as --config.file fails
// at once, naming the file, instead of hanging the daemon's start or its
// reload loop (issue 14, case 8).
func TestConfigFileFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "config.yml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero.yml")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, zero} {
		done := make(chan error, 1)
		go func() { _, err := loadConfig(p); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), p+": not a regular file") {
				t.Errorf("loadConfig(%s): %v", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("loadConfig(%s) still blocked after 5s", p)
		}
	}
}
