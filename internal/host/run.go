package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Cmd is one subprocess, stated in full by its caller: nothing is inherited
// by accident. There is no shell; Path is run with Args as they are.
type Cmd struct {
	Path string
	Args []string
	// Env is the whole environment of the command. Nil means MinimalEnv,
	// never the probe's own.
	Env []string
	// Dir is the working directory; "" means "/".
	Dir string
	// Stdin feeds the command; nil means /dev/null.
	Stdin io.Reader
	// Timeout bounds the run; the command's process group is killed when
	// it passes. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxOutput bounds stdout and stderr together; past it the command is
	// killed and Run fails with ErrOutputLimit. Zero means DefaultMaxOutput.
	MaxOutput int
	// SysProcAttr, when set, replaces the default (a process group of its
	// own); callers that change it keep Setpgid, which the kill relies on.
	SysProcAttr *syscall.SysProcAttr
	// ExtraFiles are passed to the command as fds 3, 4, ...
	ExtraFiles []*os.File
	// Caps are the capabilities the command runs with, of those the probe
	// holds; nil means none, whatever the probe holds, root included (see
	// confineThread). Only the eBPF collector's child names any.
	Caps []Capability
	// Stdout and Stderr, when set, take the command's streams instead of
	// Result.Output; the caller bounds what it keeps.
	Stdout, Stderr io.Writer
}

// Defaults of a Cmd's zero fields.
const (
	DefaultTimeout   = 3 * time.Second
	DefaultMaxOutput = 64 << 10
)

// MinimalEnv is the environment of a command whose caller names none: a
// fixed PATH and the C locale, so output parses the same everywhere.
var MinimalEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "LANG=C"}

// ErrOutputLimit marks a command killed for printing too much.
var ErrOutputLimit = errors.New("output limit exceeded")

// ErrTimeout marks a command killed at its timeout.
var ErrTimeout = errors.New("timed out")

// limitError says which limit ended a command, in words, and unwraps to
// ErrOutputLimit or ErrTimeout.
type limitError struct {
	msg  string
	kind error
}

func (e *limitError) Error() string { return e.msg }
func (e *limitError) Unwrap() error { return e.kind }

// Result is what a command left behind.
type Result struct {
	// Output is stdout and stderr together, up to the limit.
	Output string
	// Exited is true when the command ended by itself, whatever its
	// status; false when it was killed or could not start.
	Exited   bool
	ExitCode int
}

// Run runs c and waits for it. The command runs with c.Caps (none by
// default) and c.Env (MinimalEnv by default), in its own process group,
// which is killed whole on timeout or when the output limit is hit, so that
// a script's children cannot keep the output pipe (and the caller) waiting.
// With ReaperExecutable set, the command runs under the reaper (reaper.go),
// which also kills what left the group (a setsid grandchild, a daemon).
// The error says which limit ended it, or wraps the exit status.
func Run(ctx context.Context, c Cmd) (Result, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	limit := c.MaxOutput
	if limit <= 0 {
		limit = DefaultMaxOutput
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	path, args := c.Path, c.Args
	reaper := ReaperExecutable
	if reaper != "" {
		path, args = reaper, append([]string{ReaperArg, "--", c.Path}, c.Args...)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = c.Env
	if cmd.Env == nil {
		cmd.Env = MinimalEnv
	}
	cmd.Dir = c.Dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.Stdin = c.Stdin
	out := &limitWriter{limit: limit, cancel: cancel}
	cmd.Stdout, cmd.Stderr = out, out
	if c.Stdout != nil {
		cmd.Stdout = c.Stdout
	}
	if c.Stderr != nil {
		cmd.Stderr = c.Stderr
	}
	cmd.SysProcAttr = c.SysProcAttr
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.ExtraFiles = c.ExtraFiles
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if reaper != "" {
		// The reaper kills its command's whole tree on SIGTERM, then
		// exits; os/exec kills it WaitDelay later if it has not.
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	}
	cmd.WaitDelay = time.Second
	err := startConfined(cmd, c.Caps)
	if err == nil {
		err = cmd.Wait()
	}
	// Whatever is left of the group (a child that outlived its parent) goes
	// with it; ESRCH when none is.
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	res := Result{Output: out.buf.String()}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	switch {
	case out.hit:
		return res, &limitError{fmt.Sprintf("output exceeds %d KiB", limit>>10), ErrOutputLimit}
	case ctx.Err() != nil:
		return res, &limitError{fmt.Sprintf("no answer within %s", timeout), ErrTimeout}
	}
	var exitErr *exec.ExitError
	res.Exited = err == nil || errors.As(err, &exitErr)
	return res, err
}

// limitWriter keeps what is written up to its limit, then fails, which
// cancels the command, which kills it.
type limitWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	limit  int
	hit    bool
	cancel context.CancelFunc
}

func (w *limitWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len()+len(p) > w.limit {
		w.hit = true
		w.cancel()
		return 0, ErrOutputLimit
	}
	return w.buf.Write(p)
}
