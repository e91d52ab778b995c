package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/agent"
)

func factsJSON(t *testing.T, tree string) string {
	t.Helper()
	root, _ := filepath.Abs(filepath.Join(treesDir, tree))
	var out, errb bytes.Buffer
	agent.Main([]string{"facts", "--format=json", "--log.level=error", "--no-collector.azure", "--path.rootfs=" + root}, &out, &errb)
	if !json.Valid(out.Bytes()) {
		t.Fatalf("facts of %s: %s", tree, errb.String())
	}
	path := filepath.Join(t.TempDir(), tree+".json")
	writeFile(t, path, out.String())
	return path
}

// TestDiffTrees: `diff` of the Azure Linux 3.0 and 4.0 trees names what
// differs fact by fact (the OS version, the kernel, rpm and systemd) in
// every format; a tree against itself, and a file against the probe that
// serves the same tree (its /status.json), differ in nothing.
func TestDiffTrees(t *testing.T) {
	azl3, azl4 := factsJSON(t, "azl3"), factsJSON(t, "azl4-azure-gen2")
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := agent.Main(append([]string{"diff"}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, stderr := run("--format=json", azl3, azl4)
	var res struct {
		Differences []struct{ Collector, Fact, Was, Now string } `json:"differences"`
	}
	if code != 1 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	found := map[string]string{}
	for _, d := range res.Differences {
		found[d.Fact] = d.Was + " -> " + d.Now
	}
	for fact, want := range map[string]string{
		`azurelinux_os_version{id="azurelinux"}`: "3 -> 4",
	} {
		if found[fact] != want {
			t.Errorf("%s: %q, want %q", fact, found[fact], want)
		}
	}
	for _, prefix := range []string{"azurelinux_os_info", "azurelinux_kernel_info", "azurelinux_rpmdb_info", "azurelinux_userland_tool_info"} {
		ok := false
		for f := range found {
			ok = ok || strings.HasPrefix(f, prefix)
		}
		if !ok {
			t.Errorf("no difference in %s*: %v", prefix, found)
		}
	}
	if code, out, _ := run("--format=table", azl3, azl4); code != 1 || !regexp.MustCompile(`\n\s*os\s+azurelinux_os_version\{id="azurelinux"\}\s+3\s+4\n`).MatchString(out) ||
		!strings.Contains(out, "facts differ between") {
		t.Errorf("table (exit %d):\n%s", code, out)
	}
	if code, out, _ := run("--format=markdown", azl3, azl4); code != 1 || !strings.Contains(out, "| os | `azurelinux_os_version{id=\"azurelinux\"}` | 3 | 4 |") {
		t.Errorf("markdown (exit %d):\n%s", code, out)
	}
	if code, out, _ := run(azl4, azl4); code != 0 || !strings.Contains(out, "0 facts differ") {
		t.Errorf("a document against itself: exit %d\n%s", code, out)
	}
	root, _ := filepath.Abs(filepath.Join(treesDir, "azl4-azure-gen2"))
	p := startProbe(t, "--web.listen-address=127.0.0.1:0", "--path.rootfs="+root, "--no-collector.azure", "--checks.dir="+t.TempDir())
	// The probe publishes its first snapshots in the background: poll
	// /-/ready with a deadline rather than sleep.
	eventuallyReady(t, p)
	if code, out, stderr := run("http://"+p.addr, azl4); code != 0 {
		t.Errorf("the probe's /status.json against its tree's facts: exit %d\n%s\n%s", code, out, stderr)
	}
	for name, args := range map[string][]string{
		"missing file":         {filepath.Join(t.TempDir(), "nope.json"), azl4},
		"not a probe":          {"http://" + freeAddr(t), azl4},
		"not a facts document": {"http://" + p.addr + "/metrics", azl4},
	} {
		if code, _, stderr := run(args...); code != 2 || stderr == "" {
			t.Errorf("%s: exit %d %q", name, code, stderr)
		}
	}
}

func eventuallyReady(t *testing.T, p *probe) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if code, _ := p.get("/-/ready"); code == 200 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("probe not ready within 30s")
}
