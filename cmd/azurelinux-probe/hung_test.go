package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeHungSources: a D-Bus that never answers (a socket nobody
// accepts on) and a tool that hangs (the broken tree's python3, run under
// exec: always) never delay a scrape: /metrics answers at once from the
// snapshots, with both collectors reporting success 0.
func TestServeHungSources(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "mute")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	config := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(config, []byte(`collectors:
  systemd:
    interval: 5s
    timeout: 4s
    address: unix:path=`+sock+`
    call_timeout: 300ms
  userland:
    interval: 5s
    timeout: 4s
    exec: always
    command_timeout: 600ms
`), 0o644); err != nil {
		t.Fatal(err)
	}
	broken, _ := filepath.Abs(filepath.Join(treesDir, "broken"))
	p := startProbe(t, "--web.listen-address=127.0.0.1:0", "--path.rootfs="+broken, "--config.file="+config,
		"--collector.disable-defaults", "--collector.systemd", "--collector.userland")
	p.waitLog("first snapshot complete")
	for range 5 {
		start := time.Now()
		code, body := p.get("/metrics")
		if d := time.Since(start); d > time.Second {
			t.Errorf("scrape took %s", d)
		}
		if code != 200 {
			t.Fatalf("/metrics: %d", code)
		}
		for _, want := range []string{
			`azurelinux_probe_collector_success{collector="systemd"} 0`,
			`azurelinux_probe_collector_success{collector="userland"} 0`,
			`azurelinux_userland_tool_present{tool="python3"} 1`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	}
	for _, want := range []string{"no answer within 300ms during connection set-up", "python3 --version: no answer within 600ms"} {
		if !strings.Contains(p.log.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	// A clean stop cancels a refresh in flight, which kills a hung tool's
	// process group; a killed probe would leave it running.
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog("shutting down")
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}
