package bpf

import (
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// AttachPoint is the raw tracepoint the canary attaches to. Raw tracepoints
// (Linux 4.17) attach through BPF_RAW_TRACEPOINT_OPEN with nothing but
// CAP_BPF and CAP_PERFMON: unlike a tracepoint (perf_event_open on an event
// ID read from tracefs) they need no tracefs mount, which a hardened unit or a
// minimal host may lack, and unlike kprobes they need neither CONFIG_KPROBES
// nor a kernel symbol that can disappear between releases. fentry and LSM
// programs, the other CO-RE attach types, need BPF trampolines, which some
// kernels refuse.
const AttachPoint = "sys_enter"

// triggers is how many trigger syscalls the canary issues per run.
const triggers = 3

// Target identifies the calling process to the canary, which fires only for
// it. The program compares the thread group ID as seen in the process's own
// PID namespace (bpf_get_ns_current_pid_tgid), so a probe in a container
// with a private PID namespace is recognised as well.
type Target struct {
	// PIDNamespaceDev and PIDNamespaceIno are st_dev and st_ino of
	// /proc/self/ns/pid.
	PIDNamespaceDev, PIDNamespaceIno uint64
	// TGID is getpid() of the calling process.
	TGID uint32
}

// Stage is a step of a canary run.
type Stage string

// The stages of a canary run, in order; each runs only if the one before it
// succeeded.
const (
	StageLoad   Stage = "load"
	StageAttach Stage = "attach"
	StageRun    Stage = "run"
)

// Stages lists the stages in order.
var Stages = []Stage{StageLoad, StageAttach, StageRun}

// Result is the outcome of one canary run.
type Result struct {
	// Passed is the last stage that succeeded, or "" when loading failed.
	Passed Stage
	// Err is why the next stage failed, carrying the verifier's or the
	// kernel's own error text; nil when the run reached StageRun.
	Err error
	// LoadDuration is how long loading took: parsing the object, reading the
	// kernel BTF, applying the CO-RE relocations and verification.
	LoadDuration time.Duration
	// VerifiedInstructions is the number of instructions the verifier
	// processed; HaveVerifiedInstructions is false before Linux 5.16, which
	// does not report it.
	VerifiedInstructions     uint32
	HaveVerifiedInstructions bool
	// ProgramID is the kernel's ID of the loaded program (0 if it did not
	// load). The program is gone when Run returns.
	ProgramID ebpf.ProgramID
	// Hits is how often the program fired for the trigger syscalls.
	Hits uint64
}

// Succeeded reports whether the run got through stage s.
func (r Result) Succeeded(s Stage) bool {
	want := slices.Index(Stages, s)
	return want >= 0 && r.Passed != "" && slices.Index(Stages, r.Passed) >= want
}

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
