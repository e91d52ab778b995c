package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFactsHugePCIDirectory: a tree whose /sys/bus/pci/devices holds
// 100,000 entries (issue 14, case 5: 1 M entries gave a 105 MB log line and
// 1.9 GB RSS), or a few thousand broken ones, gives bounded log lines and
// RSS, within the collectors' timeouts.
func TestFactsHugePCIDirectory(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		entries int
		want    string
	}{
		{100000, "too many entries (more than 10000)"},
		{5000, "more errors"},
	} {
		t.Run(fmt.Sprint(tc.entries), func(t *testing.T) {
			tree := tmpfsDir(t)
			dir := filepath.Join(tree, "sys", "bus", "pci", "devices")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			// Names a PCI address matches, each a dangling symbolic link
			// (no vendor under any): symlink(2) is far cheaper than
			// mkdir(2) on a busy ext4, and has no link-count limit.
			for i := range tc.entries {
				name := fmt.Sprintf("%04x:%02x:%02x.%x", i>>13, (i>>5)&0xff, i&0x1f, 0)
				if err := os.Symlink("missing", filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(exe, "facts", "--path.rootfs="+tree, "--collector.disable-defaults",
				"--collector.gpu", "--collector.hyperv")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			cmd.Run() // exit status 1: the collectors fail, as they should
			elapsed := time.Since(start)
			if cmd.ProcessState == nil {
				t.Fatal("did not run")
			}
			rssKB := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
			longest := 0
			for _, l := range strings.Split(stderr.String(), "\n") {
				longest = max(longest, len(l))
			}
			t.Logf("%d entries: %s, max RSS %d MB, stderr %d bytes, longest line %d bytes",
				tc.entries, elapsed.Round(time.Millisecond), rssKB>>10, stderr.Len(), longest)
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("log lacks %q:\n%.2000s", tc.want, stderr.String())
			}
			if longest > 64<<10 || stderr.Len() > 256<<10 {
				t.Errorf("log of %d bytes, longest line %d bytes: want at most 256 KiB and 64 KiB", stderr.Len(), longest)
			}
			if rssKB > 200<<10 {
				t.Errorf("max RSS %d MB, want at most 200 MB", rssKB>>10)
			}
			if elapsed > 30*time.Second {
				t.Errorf("took %s", elapsed)
			}
		})
	}
}

// tmpfsDir returns a new directory on /dev/shm (tmpfs) when there is one,
// removed at the end of the test, else t.TempDir(): creating 100,000
// entries on a shared ext4 takes tens of seconds, on tmpfs a fraction of
// one.
func tmpfsDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "azurelinux-probe-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
