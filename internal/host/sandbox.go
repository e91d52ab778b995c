package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A sandboxed command runs a program of an image inside the image: chrooted
// into the image's root, so that it loads the image's own libraries and
// reports the image's versions, in new mount, PID, network, IPC and UTS
// namespaces (no network: only a loopback that is down), as the unprivileged
// nobody user with no capabilities and no_new_privs (a setuid binary in the
// image gains nothing), under resource limits and the runner's timeout. The
// probe's own binary does the set-up: Run starts it again with
// sandboxEnv set, and its init hands over to sandboxMain before main runs,
// the re-exec pattern of runc and docker's reexec package.

// sandboxEnv marks the probe's own binary started as the sandbox's set-up.
const sandboxEnv = "_AZURELINUX_PROBE_SANDBOX"

// SandboxUID and SandboxGID are the user and group a sandboxed command runs
// as: nobody and nogroup, which own no file in an image.
const (
	SandboxUID = 65534
	SandboxGID = 65534
)

// Resource limits of a sandboxed command: a version banner needs a fraction
// of each.
var sandboxLimits = []struct {
	resource int
	value    uint64
}{
	{unix.RLIMIT_AS, 1 << 30},
	{unix.RLIMIT_CPU, 10},
	{unix.RLIMIT_FSIZE, 16 << 20},
	{unix.RLIMIT_NOFILE, 256},
	{unix.RLIMIT_NPROC, 64},
	{unix.RLIMIT_CORE, 0},
}

func init() {
	if os.Getenv(sandboxEnv) == "1" {
		os.Exit(sandboxMain(os.Args[1:]))
	}
}

// SandboxCmd returns c changed to run c.Path, a path inside root, inside the
// image at root. The caller runs it with Run. It needs root (CAP_SYS_ADMIN
// for the namespaces and CAP_SYS_CHROOT).
func SandboxCmd(root *Root, c Cmd) (Cmd, error) {
	if root.Err() != nil {
		return c, root.Err()
	}
	self, err := os.Executable()
	if err != nil {
		return c, fmt.Errorf("sandbox: %w", err)
	}
	env := c.Env
	if env == nil {
		env = MinimalEnv
	}
	args := append([]string{root.Abs(), strconv.Itoa(len(env))}, env...)
	args = append(append(args, c.Path), c.Args...)
	c.Path, c.Args = self, args
	c.Env = []string{sandboxEnv + "=1"}
	// The set-up needs these to make its namespaces, chroot and become
	// nobody; the program it execs has none (setresuid from 0 clears them).
	c.Caps = []Capability{CapSysAdmin, CapSysChroot, CapSetUID, CapSetGID}
	c.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET |
			syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
		// No Pdeathsig: host.Run starts commands from a thread of their
		// own that ends right after, which would fire it.
	}
	return c, nil
}

// RunSandboxed runs c inside the image at root (see SandboxCmd).
func RunSandboxed(ctx context.Context, root *Root, c Cmd) (Result, error) {
	sc, err := SandboxCmd(root, c)
	if err != nil {
		return Result{}, err
	}
	return Run(ctx, sc)
}

// sandboxMain is the set-up, in the new namespaces, as root: args are the
// image root, the environment's length and entries, the program and its
// arguments. It never returns on success: the program replaces it.
func sandboxMain(args []string) int {
	// no_new_privs is a property of the thread that sets it, and exec
	// must happen on that thread.
	runtime.LockOSThread()
	fail := func(step string, err error) int {
		fmt.Fprintf(os.Stderr, "sandbox: %s: %v\n", step, err)
		return 126
	}
	if len(args) < 3 {
		return fail("arguments", fmt.Errorf("want root, env count, program"))
	}
	root := args[0]
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 0 || len(args) < 3+n {
		return fail("arguments", fmt.Errorf("bad environment count %q", args[1]))
	}
	env, rest := args[2:2+n], args[2+n:]
	prog := rest[0]
	// Nothing mounted here reaches the host's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail("make mounts private", err)
	}
	// A procfs of the new PID namespace, where the image has a /proc to
	// mount it on: it shows only the sandbox's own processes.
	if fi, err := os.Lstat(filepath.Join(root, "proc")); err == nil && fi.IsDir() {
		if err := unix.Mount("proc", filepath.Join(root, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fail("mount proc", err)
		}
	}
	if err := unix.Chroot(root); err != nil {
		return fail("chroot "+root, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fail("chdir", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fail("no_new_privs", err)
	}
	// syscall's (not x/sys/unix's) credential calls change every thread of
	// the process, as the kernel requires of a Go program.
	if err := syscall.Setgroups(nil); err != nil {
		return fail("setgroups", err)
	}
	if err := syscall.Setresgid(SandboxGID, SandboxGID, SandboxGID); err != nil {
		return fail("setgid", err)
	}
	// Leaving uid 0 for good clears the permitted, effective and ambient
	// capability sets (capabilities(7), "Effect of user ID changes").
	if err := syscall.Setresuid(SandboxUID, SandboxUID, SandboxUID); err != nil {
		return fail("setuid", err)
	}
	// The program is looked up inside the image only.
	if !filepath.IsAbs(prog) {
		return fail("program", fmt.Errorf("%q is not an absolute path in the image", prog))
	}
	// The limits come last, with execve's arguments converted before:
	// under RLIMIT_AS the Go runtime itself could not allocate.
	progp, err := syscall.BytePtrFromString(prog)
	if err != nil {
		return fail("program", err)
	}
	argvp, err := syscall.SlicePtrFromStrings(rest)
	if err != nil {
		return fail("arguments", err)
	}
	envp, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return fail("environment", err)
	}
	for _, l := range sandboxLimits {
		if err := unix.Setrlimit(l.resource, &unix.Rlimit{Cur: l.value, Max: l.value}); err != nil {
			return fail("rlimit", err)
		}
	}
	_, _, errno := syscall.RawSyscall(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(progp)),
		uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])))
	err = errno
	return fail("exec "+prog, err)
}
