//go:build linux

package host

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The reaper kills a command whole: the command, its process group, and
// whatever left the group (a setsid grandchild, a daemonised helper). It is
// the probe's own binary run as `azurelinux-probe __reaper -- PATH ARGS...`
// between Run and the command, and a child subreaper
// (PR_SET_CHILD_SUBREAPER, prctl(2)): every descendant orphaned while the
// command runs is reparented to it, not to init, so when the command ends
// (or Run's deadline sends SIGTERM) it finds them as its own children and
// kills and reaps them until none is left.
//
// Why not a cgroup: a cgroup per command (cgroup.kill) is the only way to
// also catch a descendant that double-forks and whose parent is still alive
// after the command, but it needs a delegated subtree (Delegate= in the
// unit, the main process moved to a leaf) or a transient scope from PID 1
// over D-Bus, which the unit's user may not create. The subreaper needs no
// privilege and catches every orphan, which is what a setsid grandchild is
// once the command exits. Why a separate process: the daemon cannot be the
// subreaper itself, since it would then have to reap orphans whose PIDs
// os/exec, waiting on its own children only, knows nothing about.

// ReaperArg is the argument that turns the probe's binary into the reaper.
const ReaperArg = "__reaper"

// ReaperExecutable is the binary Run starts the reaper from (the probe's
// own: the command line's main sets it); empty means no reaper, and a
// command's setsid grandchildren outlive it.
var ReaperExecutable string

// maxReapRounds bounds the kill-and-reap loop (a fork bomb replaces what
// it loses; TasksMax= in the unit bounds it too).
const maxReapRounds = 1000

// ReaperMain is the reaper: args are "--", the command's path and its
// arguments. It returns the command's exit status (128+N for a signal N).
func ReaperMain(args []string) int {
	if len(args) < 2 || args[0] != "--" {
		fmt.Fprintln(os.Stderr, "usage: azurelinux-probe", ReaperArg, "-- PATH [ARG...]")
		return 2
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "reaper: PR_SET_CHILD_SUBREAPER:", err)
		return 126
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	cmd := exec.Command(args[1], args[2:]...)
	cmd.Args[0] = args[1]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 127
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-term:
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = <-done
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	killOrphans()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if err != nil {
		return 126
	}
	return 0
}

// killOrphans kills and reaps every child of the reaper, and those
// reparented to it as their parents die, until it has none (ECHILD).
func killOrphans() {
	self := os.Getpid()
	for range maxReapRounds {
		for _, pid := range childrenOf(self) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.ECHILD) {
			return
		}
	}
}

// childrenOf lists the processes whose parent is pid, from /proc/PID/stat
// (the live procfs: the reaper runs only on the live system). It reads at
// most 1<<16 entries.
func childrenOf(pid int) []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(1 << 16)
	var out []int
	for _, n := range names {
		p, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + n + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) >= 2 {
			if ppid, err := strconv.Atoi(f[1]); err == nil && ppid == pid {
				out = append(out, p)
			}
		}
	}
	return out
}
