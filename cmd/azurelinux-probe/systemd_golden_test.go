package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

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
