//go:build linux

package host

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A Capability is a Linux capability number (include/uapi/linux/
// capability.h).
type Capability uint

// The capabilities the probe hands on to a child.
const (
	CapSetGID    Capability = 6
	CapSetUID    Capability = 7
	CapSetPCAP   Capability = 8
	CapSysChroot Capability = 18
	CapNetAdmin  Capability = 12
	CapSysAdmin  Capability = 21
	CapPerfmon   Capability = 38
	CapBPF       Capability = 39
)

// capMask is a set of capabilities as the kernel's 64-bit masks.
type capMask uint64

func maskOf(caps []Capability) capMask {
	var m capMask
	for _, c := range caps {
		if c < 64 {
			m |= 1 << c
		}
	}
	return m
}

// threadCaps returns the calling thread's effective, permitted and
// inheritable sets (capget(2), which reads the thread, not the process).
func threadCaps() (eff, perm, inh capMask, err error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, 0, 0, fmt.Errorf("capget: %w", err)
	}
	join := func(lo, hi uint32) capMask { return capMask(lo) | capMask(hi)<<32 }
	return join(data[0].Effective, data[1].Effective), join(data[0].Permitted, data[1].Permitted),
		join(data[0].Inheritable, data[1].Inheritable), nil
}

// confineThread cuts the calling thread's credentials down to keep (what it
// holds of it) so that a program it then starts gets exactly those
// capabilities (capabilities(7), "Transformation of capabilities during
// execve()"): no_new_privs, so no set-user-ID or file capability adds any;
// for a root thread the bounding set too, since root gets its whole bounding
// set at execve (that needs CAP_SETPCAP: without it root cannot drop, and
// the start fails rather than run the child with root's capabilities); the
// effective, permitted and inheritable sets; and the ambient set, which is
// how a non-root child gets keep. The thread must be locked and never
// unlocked: it exits with its goroutine.
func confineThread(keep capMask) error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	eff, perm, _, err := threadCaps()
	if err != nil {
		return err
	}
	keep &= perm
	if eff&(1<<CapSetPCAP) != 0 {
		for c := Capability(0); c < 64; c++ {
			if keep&(1<<c) != 0 {
				continue
			}
			// EINVAL past the kernel's last capability.
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
			}
		}
	} else if os.Geteuid() == 0 || os.Getuid() == 0 {
		return errors.New("running as root without CAP_SETPCAP: cannot drop the bounding set, so the child would get root's capabilities")
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	lo, hi := uint32(keep), uint32(keep>>32)
	data := [2]unix.CapUserData{{Effective: lo, Permitted: lo, Inheritable: lo}, {Effective: hi, Permitted: hi, Inheritable: hi}}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear the ambient set: %w", err)
	}
	for c := Capability(0); c < 64; c++ {
		if keep&(1<<c) != 0 {
			if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
				return fmt.Errorf("raise ambient capability %d: %w", c, err)
			}
		}
	}
	return nil
}

// startConfined starts cmd from a new locked OS thread whose credentials
// confineThread cut down to keep. Go cannot run code between fork and exec,
// but a child inherits the credentials of the thread that forks it; the
// thread is never unlocked, so the Go runtime ends it with its goroutine
// and no other goroutine ever runs with its credentials.
func startConfined(cmd *exec.Cmd, keep []Capability) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread: its credentials are what /proc/self/status
			// shows for the whole process, and Go parks rather than ends
			// it. Hold it (locked, so no goroutine can run on it) while
			// another thread does the work, then let it go untouched.
			defer runtime.UnlockOSThread()
			errc <- startConfined(cmd, keep)
			return
		}
		if err := confineThread(maskOf(keep)); err != nil {
			errc <- fmt.Errorf("confine the child's capabilities: %w", err)
			return
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

// ClearAmbient empties the ambient capability set of every thread of the
// process, so that no child started by any other path than Run inherits the
// unit's capabilities (systemd's AmbientCapabilities= is how a non-root
// service gets them; the permitted and inheritable sets keep them for the
// children Run raises them for). It needs a binary without cgo
// (syscall.AllThreadsSyscall); with cgo it returns the error, and Run's
// per-child confinement still holds.
func ClearAmbient() error {
	_, _, errno := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0)
	if errno != 0 {
		return fmt.Errorf("clear the ambient capability set: %w", errno)
	}
	return nil
}

// ProcessCaps is the process's capability sets as /proc/self/status prints
// them (CapInh, CapPrm, CapEff, CapBnd, CapAmb), for logs and tests.
func ProcessCaps() (string, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "", err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Cap") {
			out = append(out, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(out, " "), nil
}

// ClearAmbientThisThread empties the calling thread's ambient set. Called
// from a package init function it reaches the main thread (the Go runtime
// runs initialisation locked to it), whose sets /proc/PID/status shows,
// in a cgo binary too, where ClearAmbient cannot reach every thread.
func ClearAmbientThisThread() error {
	return unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
}
