//go:build linux

package bpf

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// requireBPF skips a live test where the process cannot load tracing
// programs, except in CI, which runs as root and must run every test.
func requireBPF(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("live eBPF tests need root in CI")
	}
	t.Skip("live eBPF test: needs root (CAP_BPF and CAP_PERFMON)")
}

func self(t *testing.T) Target {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/pid", &st); err != nil {
		t.Fatal(err)
	}
	return Target{PIDNamespaceDev: uint64(st.Dev), PIDNamespaceIno: uint64(st.Ino), TGID: uint32(os.Getpid())}
}

// TestRun runs the canary on this machine's kernel: it must load through
// CO-RE relocations, attach, fire for exactly the probe's own trigger
// syscalls, and be gone afterwards.
func TestRun(t *testing.T) {
	requireBPF(t)
	res := Run(self(t))
	if res.Err != nil {
		t.Fatalf("canary failed after stage %q: %v", res.Passed, res.Err)
	}
	for _, s := range Stages {
		if !res.Succeeded(s) {
			t.Errorf("stage %s did not succeed", s)
		}
	}
	if res.Hits < triggers {
		t.Errorf("hits = %d, want at least %d", res.Hits, triggers)
	}
	if res.LoadDuration <= 0 {
		t.Errorf("load duration %v", res.LoadDuration)
	}
	// Every kernel this project supports (5.16+) reports the count.
	if !res.HaveVerifiedInstructions || res.VerifiedInstructions == 0 {
		t.Errorf("verified instructions = %d (reported: %v)", res.VerifiedInstructions, res.HaveVerifiedInstructions)
	}
	if res.ProgramID == 0 {
		t.Fatal("no program ID")
	}
	awaitUnloaded(t, res.ProgramID)
}

// awaitUnloaded fails unless the programs ids are unloaded within 10s. Run
// has closed every descriptor when it returns, but the kernel releases a raw
// tracepoint link's program only after an RCU grace period (RCU tasks trace
// for the faultable syscall tracepoints: about 250ms on 6.18), and user space
// has nothing to wait on for that, so this polls.
func awaitUnloaded(t *testing.T, ids ...ebpf.ProgramID) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids {
		for {
			p, err := ebpf.NewProgramFromID(id)
			if errors.Is(err, os.ErrNotExist) {
				break
			}
			if err != nil {
				t.Fatalf("look up program %d: %v", id, err)
			}
			p.Close()
			if time.Now().After(deadline) {
				t.Fatalf("program %d is still loaded 10s after its run", id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestRunOtherProcess points the canary at a process that makes no trigger
// syscalls: it loads and attaches, but the run stage must fail, which shows
// that "run" proves the program fired for the probe and not merely that it
// was attached.
func TestRunOtherProcess(t *testing.T) {
	requireBPF(t)
	tgt := self(t)
	tgt.TGID = ^uint32(0)
	res := Run(tgt)
	if res.Passed != StageAttach || res.Succeeded(StageRun) {
		t.Fatalf("passed %q, want %q", res.Passed, StageAttach)
	}
	if res.Err == nil || !strings.Contains(res.Err.Error(), "fired 0 times") {
		t.Errorf("error %v, want one saying the program fired 0 times", res.Err)
	}
}

func TestSucceeded(t *testing.T) {
	for _, tc := range []struct {
		passed Stage
		want   map[Stage]bool
	}{
		{"", map[Stage]bool{StageLoad: false, StageAttach: false, StageRun: false}},
		{StageLoad, map[Stage]bool{StageLoad: true, StageAttach: false, StageRun: false}},
		{StageAttach, map[Stage]bool{StageLoad: true, StageAttach: true, StageRun: false}},
		{StageRun, map[Stage]bool{StageLoad: true, StageAttach: true, StageRun: true}},
	} {
		for s, want := range tc.want {
			if got := (Result{Passed: tc.passed}).Succeeded(s); got != want {
				t.Errorf("passed %q: Succeeded(%s) = %v, want %v", tc.passed, s, got, want)
			}
		}
	}
	if (Result{Passed: StageRun}).Succeeded("verify") {
		t.Error("an unknown stage succeeded")
	}
}

func TestCheck(t *testing.T) {
	good := canaryCanaryResult{Hits: triggers, CorePid: 7, CoreTgid: 5, CoreLeaderPid: 5, HelperPid: 7, HelperTgid: 5}
	if err := check(good); err != nil {
		t.Fatalf("check(%+v) = %v", good, err)
	}
	for name, mutate := range map[string]func(*canaryCanaryResult){
		"fired":        func(r *canaryCanaryResult) { r.Hits = triggers - 1 },
		"task->pid":    func(r *canaryCanaryResult) { r.CorePid = 0 },
		"task->tgid":   func(r *canaryCanaryResult) { r.CoreTgid = 6 },
		"group_leader": func(r *canaryCanaryResult) { r.CoreLeaderPid = 7 },
	} {
		r := good
		mutate(&r)
		if err := check(r); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: check(%+v) = %v", name, r, err)
		}
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestRunLeaksNothing runs the canary repeatedly: the process's descriptors
// and the kernel's program list must be as they were.
func TestRunLeaksNothing(t *testing.T) {
	requireBPF(t)
	tgt := self(t)
	Run(tgt) // the first run lets cilium/ebpf open what it keeps for good
	fds := openFDs(t)
	var ids []ebpf.ProgramID
	for range 20 {
		res := Run(tgt)
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		ids = append(ids, res.ProgramID)
	}
	if got := openFDs(t); got != fds {
		t.Errorf("open descriptors: %d before, %d after 20 runs", fds, got)
	}
	awaitUnloaded(t, ids...)
}

// TestVerifierLogInError: a program the verifier rejects fails with the
// verifier's own log, not only its last line, which the collector logs.
func TestVerifierLogInError(t *testing.T) {
	requireBPF(t)
	_, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.RawTracepoint, License: "GPL",
		// Returns R2, which was never written.
		Instructions: asm.Instructions{asm.Mov.Reg(asm.R0, asm.R2), asm.Return()},
	})
	if err == nil {
		t.Fatal("the verifier accepted a read of an uninitialised register")
	}
	got := withVerifierLog(err).Error()
	for _, want := range []string{"R2 !read_ok", "\n\tprocessed 1 insns"} {
		if !strings.Contains(got, want) {
			t.Errorf("error lacks %q from the verifier log:\n%s", want, got)
		}
	}
}
