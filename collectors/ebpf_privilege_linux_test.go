//go:build linux

package collectors

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// The capability tests run the packaged unit's capability set
// (AmbientCapabilities= of packaging/azurelinux-probe.service) as the
// unprivileged uid 65534 with setpriv(1), as systemd would grant it, against
// objects the test creates as root, and check that this set cannot do what
// the reproductions did with CAP_SYS_ADMIN (freeze a file system,
// rewrite another agent's BPF map, detach its cgroup link, delete root's
// SysV shared memory) while the eBPF inventory still counts the programs,
// maps and links loaded on this machine. The unit's former set is run too, as
// the control: with it every one of those attacks succeeds.

const (
	ebpfPrivChildEnv = "AZURELINUX_PROBE_TEST_PRIV_CHILD"
	// ebpfFormerUnitCaps is the unit's set before issue 14.
	ebpfFormerUnitCaps = "CAP_DAC_READ_SEARCH CAP_BPF CAP_PERFMON CAP_SYS_ADMIN"
)

// FIFREEZE and FITHAW, _IOWR('X', 119 and 120, int) in
// include/uapi/linux/fs.h (golang.org/x/sys/unix has neither).
const (
	ioctlFIFREEZE = 0xc0045877
	ioctlFITHAW   = 0xc0045878
)

// unitCapabilities reads AmbientCapabilities= from the packaged unit.
func unitCapabilities(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "packaging", "azurelinux-probe.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "AmbientCapabilities="); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("the unit has no AmbientCapabilities=")
	return ""
}

// setprivCaps turns "CAP_BPF CAP_PERFMON" into setpriv's "-all,+bpf,+perfmon".
func setprivCaps(caps string) string {
	out := "-all"
	for _, c := range strings.Fields(caps) {
		out += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
	}
	return out
}

// ebpfPrivTargets are the root-owned objects the child attacks.
type ebpfPrivTargets struct {
	mapID, linkID uint32
	shmID         int
	freezeDir     string
}

func TestEBPFUnitCapabilities(t *testing.T) {
	if os.Getenv(ebpfPrivChildEnv) != "" {
		ebpfPrivChild(t)
		return
	}
	ebpfRequireRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}

	// Known objects: 7 cgroup_sysctl programs and 3 stack maps (types
	// nothing else here uses), a raw tracepoint link.
	objs := ebpfLoadTestObjects(t, 7, 3)
	objs.attachRawTracepoint(t)
	tg := ebpfPrivSetup(t)

	// The probe's own count as root, the reference.
	c := newTestEBPF(t, ebpfLivePaths(t), nil, func(o *ebpfOptions) { o.Canary = false })
	m := &Metrics{}
	if err := c.Update(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	root := ebpfSamples(t, m)
	counted := []string{
		`azurelinux_ebpf_programs_loaded{type="cgroup_sysctl"}`, `azurelinux_ebpf_programs_loaded{type="cgroup_skb"}`,
		`azurelinux_ebpf_maps_loaded{type="stack"}`, `azurelinux_ebpf_maps_loaded{type="array"}`,
		`azurelinux_ebpf_links{type="raw_tracepoint"}`, `azurelinux_ebpf_links{type="cgroup"}`,
	}
	if root[counted[0]] < 7 || root[counted[2]] < 3 || root[counted[4]] < 1 || root[counted[5]] < 1 {
		t.Fatalf("root's inventory misses the test's objects: %v", root)
	}

	// The binary must be executable by uid 65534 (go test's build directory
	// is root's 0700).
	dir, err := os.MkdirTemp("", "azurelinux-probe-captest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "collectors.test")
	ebpfCopyFile(t, os.Args[0], bin)

	for _, tc := range []struct {
		name, caps string
		attacks    bool // whether the attacks succeed
	}{
		{"unit", unitCapabilities(t), false},
		{"former unit (control)", ebpfFormerUnitCaps, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := setprivCaps(tc.caps)
			cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
				"--inh-caps="+sp, "--ambient-caps="+sp, "--bounding-set="+sp, "--no-new-privs", "--",
				bin, "-test.run=^TestEBPFUnitCapabilities$", "-test.count=1")
			cmd.Dir = dir
			cmd.Env = []string{"PATH=/usr/bin:/bin", ebpfPrivChildEnv + "=" + fmt.Sprintf("%d,%d,%d,%s",
				tg.mapID, tg.linkID, tg.shmID, tg.freezeDir)}
			out, err := cmd.CombinedOutput()
			t.Logf("setpriv %s (uid 65534):\n%s", sp, out)
			if err != nil {
				t.Fatalf("child: %v", err)
			}
			got := map[string]string{}
			for _, line := range strings.Split(string(out), "\n") {
				if f := strings.Fields(line); len(f) >= 3 && f[0] == "RESULT" {
					got[f[1]] = strings.Join(f[2:], " ")
				}
			}
			for _, attack := range []string{"fifreeze", "map_write", "link_detach", "shm_rmid"} {
				succeeded := got[attack] == "ok"
				if succeeded != tc.attacks {
					t.Errorf("%s with %s: %q, want success %v", attack, tc.caps, got[attack], tc.attacks)
				}
			}
			for _, k := range counted {
				if got[k] != strconv.FormatFloat(root[k], 'g', -1, 64) {
					t.Errorf("inventory with %s: %s = %q, root counts %v", tc.caps, k, got[k], root[k])
				}
			}
			if got["update"] != "ok" {
				t.Errorf("collector Update with %s: %s", tc.caps, got["update"])
			}
		})
		// The control's attacks are real: restore what they undid.
		tg = ebpfPrivRestore(t, tg)
	}
}

// ebpfPrivSetup creates, as root, a map with a value, a cgroup_skb program
// attached to a fresh cgroup v2 through a link, a 0600 SysV shared memory
// segment, and a tmpfs to freeze (never a file system anyone else uses).
func ebpfPrivSetup(t *testing.T) ebpfPrivTargets {
	t.Helper()
	var tg ebpfPrivTargets
	mp, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mp.Close() })
	info, _ := mp.Info()
	id, _ := info.ID()
	tg.mapID = uint32(id)

	cg := t.TempDir()
	if err := unix.Mount("none", cg, "cgroup2", 0, ""); err != nil {
		t.Skipf("mount cgroup2: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(cg, unix.MNT_DETACH) })
	sub := filepath.Join(cg, fmt.Sprintf("azurelinux-probe-test-%d", os.Getpid()))
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(sub) })
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.CGroupSKB, AttachType: ebpf.AttachCGroupInetIngress, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	l, err := link.AttachCgroup(link.CgroupOptions{Path: sub, Attach: ebpf.AttachCGroupInetIngress, Program: prog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	li, err := l.Info()
	if err != nil {
		t.Fatal(err)
	}
	tg.linkID = uint32(li.ID)

	shm, err := unix.SysvShmGet(unix.IPC_PRIVATE, 4096, unix.IPC_CREAT|0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.SysvShmCtl(shm, unix.IPC_RMID, nil) })
	tg.shmID = shm

	fz := t.TempDir()
	os.Chmod(filepath.Dir(fz), 0o755)
	if err := unix.Mount("tmpfs", fz, "tmpfs", 0, "size=1m,mode=0755"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if f, err := os.Open(fz); err == nil {
			unix.IoctlSetInt(int(f.Fd()), ioctlFITHAW, 0)
			f.Close()
		}
		unix.Unmount(fz, unix.MNT_DETACH)
	})
	tg.freezeDir = fz
	// The test's temporary directories are root's 0700.
	for d := filepath.Dir(fz); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	return tg
}

// ebpfPrivRestore thaws the tmpfs and recreates the shared memory segment
// and the link if the control removed them.
func ebpfPrivRestore(t *testing.T, tg ebpfPrivTargets) ebpfPrivTargets {
	t.Helper()
	if f, err := os.Open(tg.freezeDir); err == nil {
		unix.IoctlSetInt(int(f.Fd()), ioctlFITHAW, 0)
		f.Close()
	}
	if _, err := unix.SysvShmCtl(tg.shmID, unix.IPC_STAT, &unix.SysvShmDesc{}); err != nil {
		shm, err := unix.SysvShmGet(unix.IPC_PRIVATE, 4096, unix.IPC_CREAT|0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.SysvShmCtl(shm, unix.IPC_RMID, nil) })
		tg.shmID = shm
	}
	return tg
}

func ebpfCopyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// ebpfPrivChild runs under setpriv: each attack, then the collector's
// inventory, printed as RESULT lines.
func ebpfPrivChild(t *testing.T) {
	f := strings.SplitN(os.Getenv(ebpfPrivChildEnv), ",", 4)
	if len(f) != 4 {
		t.Fatalf("bad %s", ebpfPrivChildEnv)
	}
	mapID, _ := strconv.Atoi(f[0])
	linkID, _ := strconv.Atoi(f[1])
	shmID, _ := strconv.Atoi(f[2])
	res := func(k string, err error) {
		v := "ok"
		if err != nil {
			v = err.Error()
		}
		fmt.Printf("RESULT %s %s\n", k, v)
	}
	caps, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(caps), "\n") {
		if strings.HasPrefix(line, "Cap") || strings.HasPrefix(line, "Uid") {
			fmt.Println(line)
		}
	}

	// FIFREEZE through a descriptor of the file system (fs/ioctl.c,
	// ioctl_fsfreeze: ns_capable(CAP_SYS_ADMIN) comes first).
	res("fifreeze", func() error {
		d, err := os.Open(f[3])
		if err != nil {
			return err
		}
		defer d.Close()
		err = unix.IoctlSetInt(int(d.Fd()), ioctlFIFREEZE, 0)
		if errors.Is(err, unix.EOPNOTSUPP) {
			return nil // past the capability check: a freezable file system would be frozen
		}
		return err
	}())
	res("map_write", func() error {
		m, err := ebpf.NewMapFromID(ebpf.MapID(mapID))
		if err != nil {
			return err
		}
		defer m.Close()
		return m.Update(uint32(0), uint32(0xdead), ebpf.UpdateAny)
	}())
	res("link_detach", func() error {
		l, err := link.NewFromID(link.ID(linkID))
		if err != nil {
			return err
		}
		defer l.Close()
		return l.Detach()
	}())
	res("shm_rmid", func() error {
		_, err := unix.SysvShmCtl(shmID, unix.IPC_RMID, nil)
		return err
	}())

	c := newTestEBPF(t, ebpfLivePaths(t), nil, func(o *ebpfOptions) { o.Canary = false })
	m := &Metrics{}
	res("update", c.Update(context.Background(), m))
	for k, v := range ebpfSamples(t, m) {
		if strings.Contains(k, "_loaded{") || strings.HasPrefix(k, "azurelinux_ebpf_links{") {
			fmt.Printf("RESULT %s %s\n", k, strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
}
