package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/agent"
	"github.com/azurelinux-probe/azurelinux-probe/internal/systemdtest"
)

// TestSystemdGolden runs `facts` with the systemd collector against the test
// double of systemd on a private bus (a degraded, confidential Azure Linux 4.0
// VM: see systemdtest.NewFake) and compares the output with
// golden/systemd-fake.prom. The fixture trees have no bus, so this is the
// golden output that covers every systemd metric.
func TestSystemdGolden(t *testing.T) {
	b := systemdtest.StartBus(t, t.TempDir())
	systemdtest.NewFake().Serve(t, b)
	config := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(config, []byte("collectors:\n  systemd:\n    address: "+b.Addr+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs(filepath.Join(treesDir, "azl4-azure-gen2"))
	var out bytes.Buffer
	code := agent.Main([]string{"facts", "--format=prometheus", "--log.level=error", "--path.rootfs=" + root,
		"--config.file=" + config, "--collector.disable-defaults", "--collector.systemd"}, &out, io.Discard)
	if code != 0 {
		t.Fatalf("facts exit status %d:\n%s", code, out.String())
	}
	golden(t, filepath.Join(goldenDir, "systemd-fake.prom"), out.String())
}

// TestServeSystemdReloadKeepsOneConnection: the serving probe holds one
// go-systemd connection (two bus peers) to systemd's bus, and SIGHUP, which
// rebuilds the collectors, closes the old one instead of leaking it.
func TestServeSystemdReloadKeepsOneConnection(t *testing.T) {
	b := systemdtest.StartBus(t, t.TempDir())
	systemdtest.NewFake().Serve(t, b)
	base := b.Peers(1) // the fake
	config := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(config, []byte("collectors:\n  systemd:\n    interval: 1s\n    timeout: 1s\n    address: "+b.Addr+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty, _ := filepath.Abs(filepath.Join(treesDir, "empty"))
	p := startProbe(t, "--web.listen-address=127.0.0.1:0", "--path.rootfs="+empty, "--config.file="+config,
		"--collector.disable-defaults", "--collector.systemd")
	p.waitLog("first snapshot complete")
	if n := b.Peers(base + 2); n != base+2 {
		t.Fatalf("the probe has %d bus peers, want 2 (one go-systemd connection)", n-base)
	}
	for range 3 {
		reload := time.Now()
		p.cmd.Process.Signal(syscall.SIGHUP)
		p.waitLog("configuration reloaded")
		// The rebuilt collector has dialled once it has refreshed.
		p.waitSuccessAfter(t, "systemd", reload)
	}
	// Each reload's collector dialled: leaked connections would keep the
	// count above one connection for good.
	if n := b.Peers(base + 2); n != base+2 {
		t.Errorf("after 3 reloads the probe has %d bus peers, want 2 (one go-systemd connection)", n-base)
	}
	if _, body := p.get("/metrics"); !strings.Contains(body, `azurelinux_probe_collector_success{collector="systemd"} 1`) ||
		!strings.Contains(body, `azurelinux_systemd_system_state{state="degraded"} 1`) {
		t.Errorf("systemd facts missing after reloads:\n%s", body)
	}
}

var lastSuccessRE = regexp.MustCompile(`(?m)^azurelinux_probe_collector_last_success_timestamp_seconds\{collector="([^"]+)"\} (\S+)$`)

// waitSuccessAfter waits (up to 20s) until collector has a successful
// refresh that finished after t.
func (p *probe) waitSuccessAfter(t *testing.T, collector string, after time.Time) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		_, body := p.get("/metrics")
		for _, m := range lastSuccessRE.FindAllStringSubmatch(body, -1) {
			if ts, err := strconv.ParseFloat(m[2], 64); err == nil && m[1] == collector && ts >= float64(after.UnixNano())/1e9 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond) // polling /metrics for a condition, bounded by the deadline
	}
	t.Fatalf("no successful %s refresh after %s", collector, after)
}
