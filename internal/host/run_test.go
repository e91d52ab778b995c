//go:build linux

package host

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain makes the test binary the reaper too, as the probe's binary is.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == ReaperArg {
		os.Exit(ReaperMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root in CI")
		}
		t.Skip("needs root")
	}
}

// capLines returns the Cap* lines of a command's /proc/self/status.
func capLines(t *testing.T, caps []Capability) map[string]string {
	t.Helper()
	res, err := Run(context.Background(), Cmd{Path: "/bin/grep", Args: []string{"^Cap", "/proc/self/status"}, Caps: caps})
	if err != nil {
		t.Fatalf("grep: %v: %s", err, res.Output)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(res.Output), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// TestRunCapabilities: as root (the hardest case: root gets its bounding set
// at execve), a command gets no capability at all by default, and exactly
// CAP_BPF and CAP_PERFMON when it asks for them; the test process keeps
// its own.
func TestRunCapabilities(t *testing.T) {
	requireRoot(t)
	before, _ := ProcessCaps()
	for _, tc := range []struct {
		name string
		caps []Capability
		want string
	}{
		{"none", nil, "0000000000000000"},
		{"bpf+perfmon", []Capability{CapBPF, CapPerfmon}, "000000c000000000"},
	} {
		got := capLines(t, tc.caps)
		for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd"} {
			if got[k] != tc.want {
				t.Errorf("%s: %s = %s, want %s", tc.name, k, got[k], tc.want)
			}
		}
		if got["CapAmb"] != tc.want {
			t.Errorf("%s: CapAmb = %s, want %s", tc.name, got["CapAmb"], tc.want)
		}
	}
	if after, _ := ProcessCaps(); after != before {
		t.Errorf("the test process's capabilities changed: %s, then %s", before, after)
	}
}

// TestRunEnvironment: a command gets MinimalEnv, never the probe's own.
func TestRunEnvironment(t *testing.T) {
	t.Setenv("AZURELINUX_PROBE_TEST_SECRET", "canary")
	res, err := Run(context.Background(), Cmd{Path: "/usr/bin/env"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Fields(res.Output), MinimalEnv; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("environment %q, want %q", got, want)
	}
}

// waitExec prints the PID of the background job once it runs sleep (so
// setsid(2) is done and it has left the group), polling /proc.
const waitExec = `p=$!; while ! grep -q "^$p (sleep)" /proc/$p/stat 2>/dev/null; do :; done; echo $p`

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// TestRunKillsWhole: a command that leaves a setsid grandchild behind, on
// exit or at its timeout, holding the output pipe or not: with the reaper,
// the grandchild is gone when Run returns; without it (the control), it
// outlives the command, which is what the reaper is for.
func TestRunKillsWhole(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid (util-linux)")
	}
	for _, tc := range []struct {
		name, script string
		timeout      time.Duration
		wantErr      error
	}{
		{"exits, grandchild detached", `setsid sleep 300 </dev/null >/dev/null 2>&1 & ` + waitExec, 5 * time.Second, nil},
		{"exits, grandchild holds the pipe", `setsid sleep 300 & ` + waitExec, 5 * time.Second, nil},
		{"times out", `setsid sleep 300 </dev/null >/dev/null 2>&1 & ` + waitExec + `; sleep 300`, 2 * time.Second, ErrTimeout},
	} {
		for _, reaper := range []string{exe, ""} {
			ReaperExecutable = reaper
			start := time.Now()
			res, err := Run(context.Background(), Cmd{Path: "/bin/sh", Args: []string{"-c", tc.script}, Timeout: tc.timeout})
			elapsed := time.Since(start)
			ReaperExecutable = ""
			if reaper != "" && (tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Errorf("%s (reaper %v): err %v, want %v", tc.name, reaper != "", err, tc.wantErr)
			}
			pid, perr := strconv.Atoi(strings.Fields(res.Output + " x")[0])
			if perr != nil {
				t.Fatalf("%s: no grandchild PID in %q", tc.name, res.Output)
			}
			if reaper != "" {
				if alive(pid) {
					t.Errorf("%s: grandchild %d alive after Run returned", tc.name, pid)
				}
				if elapsed > tc.timeout+2*time.Second {
					t.Errorf("%s: Run took %v", tc.name, elapsed)
				}
			} else {
				if !alive(pid) {
					t.Errorf("%s (control, no reaper): grandchild %d is gone; the test proves nothing", tc.name, pid)
				}
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Logf("%s (reaper %v): %v, %v", tc.name, reaper != "", elapsed.Round(time.Millisecond), err)
		}
	}
}
