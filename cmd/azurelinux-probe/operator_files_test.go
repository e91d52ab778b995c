package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestServeOperatorFIFOs: FIFOs as a checks.d file and as --baseline.file
// do not hang the daemon's start; a --config.file replaced by a FIFO does
// not wedge the reload loop, and SIGTERM still ends the daemon (issue 14,
// case 8).
func TestServeOperatorFIFOs(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(config, []byte("collectors:\n  os:\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	checksDir := filepath.Join(dir, "checks.d")
	if err := os.Mkdir(checksDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(checksDir, "10-fifo.yml"), filepath.Join(dir, "baseline.json")} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tree, _ := filepath.Abs(filepath.Join(treesDir, "broken"))
	p := startProbe(t, "--web.listen-address=127.0.0.1:0", "--path.rootfs="+tree, "--config.file="+config,
		"--checks.dir="+checksDir, "--baseline.file="+filepath.Join(dir, "baseline.json"),
		"--collector.disable-defaults", "--collector.os")
	p.waitLog("first snapshot complete")
	// Logged before "Listening on", so in what startProbe already read.
	for _, want := range []string{"10-fifo.yml: not a regular file (a FIFO)", "baseline.json: not a regular file (a FIFO)"} {
		if !strings.Contains(p.log.String(), want) {
			t.Errorf("start log lacks %q", want)
		}
	}

	if err := os.Remove(config); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(config, 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	if line := p.waitLog("reload: invalid configuration, keeping the running collectors"); !strings.Contains(line, "config.yml: not a regular file (a FIFO)") {
		t.Errorf("config FIFO: %s", line)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog("shutting down")
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}
