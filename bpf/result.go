package bpf

import (
	"slices"
	"time"

	"github.com/cilium/ebpf"
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
