//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// triggers is how many trigger syscalls the canary issues per run.
const triggers = 3

// Run loads the canary, attaches it to the sys_enter raw tracepoint, issues
// getppid(2) from the calling process to trigger it, checks what it read from
// the current task through CO-RE relocations against the BPF helpers, and
// then detaches and closes everything, whatever happened: no program, map,
// link or file descriptor survives a run.
//
// It needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) and a kernel with BTF
// (CONFIG_DEBUG_INFO_BTF); the program itself needs Linux 5.7.
func Run(t Target) (res Result) {
	spec, err := loadCanary()
	if err != nil {
		res.Err = fmt.Errorf("load: %w", err)
		return res
	}
	for name, v := range map[string]any{
		canaryVarTargetNsDev:   t.PIDNamespaceDev,
		canaryVarTargetNsIno:   t.PIDNamespaceIno,
		canaryVarTargetTgid:    t.TGID,
		canaryVarTargetSyscall: int64(syscall.SYS_GETPPID),
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			res.Err = fmt.Errorf("load: set %s: %w", name, err)
			return res
		}
	}

	var objs canaryObjects
	start := time.Now()
	err = spec.LoadAndAssign(&objs, nil)
	res.LoadDuration = time.Since(start)
	if err != nil {
		res.Err = fmt.Errorf("load: %w", withVerifierLog(err))
		return res
	}
	defer objs.Close()
	if info, err := objs.Canary.Info(); err == nil {
		res.VerifiedInstructions, res.HaveVerifiedInstructions = info.VerifiedInstructions()
		res.ProgramID, _ = info.ID()
	}
	res.Passed = StageLoad

	lnk, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: AttachPoint, Program: objs.Canary})
	if err != nil {
		res.Err = fmt.Errorf("attach to raw tracepoint %s: %w", AttachPoint, err)
		return res
	}
	res.Passed = StageAttach
	for range triggers {
		syscall.Getppid()
	}
	// Detach before reading, so the result cannot change under the read.
	if err := lnk.Close(); err != nil {
		res.Err = fmt.Errorf("detach from raw tracepoint %s: %w", AttachPoint, err)
		return res
	}

	var r canaryCanaryResult
	if err := objs.Results.Lookup(uint32(0), &r); err != nil {
		res.Err = fmt.Errorf("run: read the results map: %w", err)
		return res
	}
	res.Hits = r.Hits
	if err := check(r); err != nil {
		res.Err = fmt.Errorf("run: %w", err)
		return res
	}
	res.Passed = StageRun
	return res
}

// check verifies what the program recorded: that it fired for every trigger
// and that the fields it read through CO-RE relocations agree with the
// helpers, which a relocation to a wrong offset would break.
func check(r canaryCanaryResult) error {
	switch {
	case r.Hits < triggers:
		return fmt.Errorf("the program fired %d times for %d getppid calls", r.Hits, triggers)
	case r.CorePid != r.HelperPid:
		return fmt.Errorf("CO-RE read task->pid %d, bpf_get_current_pid_tgid says %d", r.CorePid, r.HelperPid)
	case r.CoreTgid != r.HelperTgid:
		return fmt.Errorf("CO-RE read task->tgid %d, bpf_get_current_pid_tgid says %d", r.CoreTgid, r.HelperTgid)
	case r.CoreLeaderPid != r.CoreTgid:
		return fmt.Errorf("CO-RE read task->group_leader->pid %d, want the tgid %d", r.CoreLeaderPid, r.CoreTgid)
	}
	return nil
}

// withVerifierLog appends the end of the verifier's log, which says why a
// program was rejected, to a load error.
func withVerifierLog(err error) error {
	var verr *ebpf.VerifierError
	if errors.As(err, &verr) && len(verr.Log) > 0 {
		return fmt.Errorf("%w\n%-20v", err, verr)
	}
	return err
}
