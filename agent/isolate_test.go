package agent

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// fakeChild writes a script that stands in for `azurelinux-probe collect`:
// it prints stdout and exits with status.
func fakeChild(t *testing.T, stdout string, status int) *isolation {
	t.Helper()
	p := filepath.Join(t.TempDir(), "child")
	script := "#!/bin/sh\ncat >/dev/null\ncat <<'EOF'\n" + stdout + "EOF\nexit " + string(rune('0'+status)) + "\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return &isolation{exe: p, stderr: io.Discard}
}

const childFacts = `# HELP azurelinux_ebpf_btf_available BTF.
# TYPE azurelinux_ebpf_btf_available gauge
azurelinux_ebpf_btf_available 1
# HELP azurelinux_ebpf_canary_success Canary.
# TYPE azurelinux_ebpf_canary_success gauge
azurelinux_ebpf_canary_success{stage="load"} 0
`

func TestIsolatedCollector(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stdout  string
		status  int
		metrics int
		err     string
		noData  bool
	}{
		{"facts", childFacts, 0, 2, "", false},
		{"partial facts and an error", childFacts + collectErrorPrefix + "canary: load: permission denied\n", 1, 2, "canary: load: permission denied", false},
		{"no data", collectNoDataPrefix + "not a Hyper-V guest\n", exitNoData, 0, "not a Hyper-V guest", true},
		{"crash", "", 2, 0, "collector process: exit status 2", false},
		{"garbage", "azurelinux_x{ 1\n", 0, 0, "collector process output", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &isolatedCollector{name: "ebpf", iso: fakeChild(t, tc.stdout, tc.status)}
			m := &collectors.Metrics{}
			err := c.Update(context.Background(), m)
			if len(m.List()) != tc.metrics {
				t.Errorf("%d metrics, want %d", len(m.List()), tc.metrics)
			}
			if errors.Is(err, collectors.ErrNoData) != tc.noData {
				t.Errorf("error %v: no data %v, want %v", err, !tc.noData, tc.noData)
			}
			if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

// TestIsolatedCollectorTimeout: a child that hangs is killed at the
// refresh's deadline.
func TestIsolatedCollectorTimeout(t *testing.T) {
	p := filepath.Join(t.TempDir(), "child")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nsleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := &isolatedCollector{name: "ebpf", iso: &isolation{exe: p, stderr: io.Discard}}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := c.Update(ctx, &collectors.Metrics{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a hung child held the refresh for %v", d)
	}
}

// TestIsolatedLogOnce: a line the child logs on every refresh reaches the
// daemon's log once; a new line still shows, once while it lasts, and
// again when it comes back after a refresh without it.
func TestIsolatedLogOnce(t *testing.T) {
	p := filepath.Join(t.TempDir(), "child")
	// Refresh n (1-based, counted in $0.n): "inventory skipped" on every
	// refresh, "new trouble" on refreshes 2, 3 and 5, twice on 5.
	script := "#!/bin/sh\ncat >/dev/null\n" +
		"n=$(( $(cat \"$0.n\" 2>/dev/null || echo 0) + 1 )); echo $n >\"$0.n\"\n" +
		"echo \"time=$(date +%s%N) level=WARN msg=\\\"eBPF inventory skipped: needs CAP_SYS_ADMIN\\\"\" >&2\n" +
		"case $n in 2|3|5) echo \"time=$n level=ERROR msg=\\\"new trouble\\\"\" >&2;; esac\n" +
		"[ $n = 5 ] && echo 'time=y level=ERROR msg=\"new trouble\"' >&2\n" +
		"exit 0\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	c := &isolatedCollector{name: "ebpf", iso: &isolation{exe: p, stderr: &log}}
	for range 5 {
		if err := c.Update(context.Background(), &collectors.Metrics{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(log.String(), "inventory skipped"); n != 1 {
		t.Errorf("repeated line logged %d times in 5 refreshes, want 1:\n%s", n, log.String())
	}
	if n := strings.Count(log.String(), "new trouble"); n != 2 {
		t.Errorf("line of refreshes 2, 3 and 5 logged %d times, want 2 (refreshes 2 and 5):\n%s", n, log.String())
	}
}
