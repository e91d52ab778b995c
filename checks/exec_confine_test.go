//go:build linux

package checks

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// TestMain lets the test binary act as the probe's reaper, as the probe's
// own binary does (agent.Main).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == host.ReaperArg {
		os.Exit(host.ReaperMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// TestExecConfined: an exec check runs with no capabilities (the test runs
// as root: root's are the hardest to shed), with host.MinimalEnv plus
// AZURELINUX_PROBE_ROOTFS and nothing of the probe's environment, and a
// setsid grandchild it leaves behind at its timeout dies with it under the
// reaper.
func TestExecConfined(t *testing.T) {
	if os.Geteuid() != 0 && os.Getenv("CI") != "true" {
		t.Skip("needs root")
	}
	t.Setenv("AZURELINUX_PROBE_TEST_CANARY", "secret-canary")
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caps := script("caps.sh", `grep -h '^Cap' /proc/self/status | tr -s '\t\n' '  '; echo`+"\n")
	// (sh itself sets PWD.)
	env := script("env.sh", `env | grep -v '^PWD=' | LC_ALL=C sort | tr '\n' ' '; echo`+"\n")
	pidFile := filepath.Join(dir, "grandchild")
	hang := script("hang.sh", `setsid sleep 300 </dev/null >/dev/null 2>&1 &
p=$!; while ! grep -q "^$p (sleep)" /proc/$p/stat 2>/dev/null; do :; done
echo $p > `+pidFile+`
sleep 300
`)
	// The live root: under any other, exec checks run only sandboxed.
	root := "/"
	e := envAt(root)
	_, reason := run(t, e, "exec: ["+caps+"]")
	for _, set := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		if !strings.Contains(reason, set+": 0000000000000000") {
			t.Errorf("exec check capabilities: %q, want %s all zero", reason, set)
		}
	}
	_, reason = run(t, e, "exec: ["+env+"]")
	want := strings.Join(append(append([]string(nil), host.MinimalEnv...), "AZURELINUX_PROBE_ROOTFS="+root), " ")
	got := strings.TrimSpace(reason[strings.Index(reason, ": ")+2:])
	if strings.Join(strings.Fields(got), " ") != sortedFields(want) {
		t.Errorf("exec check environment %q, want %q", got, sortedFields(want))
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	host.ReaperExecutable = exe
	defer func() { host.ReaperExecutable = "" }()
	start := time.Now()
	pass, reason := run(t, e, "exec: {argv: ["+hang+"], timeout: 1s}")
	if pass || !strings.Contains(reason, "timed out after 1s") || time.Since(start) > 5*time.Second {
		t.Errorf("hang: pass %v, %q after %v", pass, reason, time.Since(start))
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && !strings.Contains(string(st), ") Z ") {
		t.Errorf("the check's setsid grandchild %d outlived it", pid)
	}
}

func sortedFields(s string) string {
	f := strings.Fields(s)
	sort.Strings(f)
	return strings.Join(f, " ")
}
