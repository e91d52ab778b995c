package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The adversarial tree suite: trees built the way an attacker would build an
// image for `check --path.rootfs=IMAGE`, run through facts, check (table and
// JUnit) and serve. A canary file outside every tree must never appear in
// any output or written file; each run must end within its timeout, with a
// bounded peak RSS, no process left behind and no temporary file left in
// its TMPDIR.

const (
	adversarialTimeout = 60 * time.Second
	maxAdversarialRSS  = 200 << 20
)

// hostile is one case: build lays out the tree under root; canary is the
// path and content of the host file the tree tries to reach.
type hostile struct {
	name  string
	build func(t *testing.T, root, canary string)
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

var hostileTrees = []hostile{
	{"proc-links-to-host-file", func(t *testing.T, root, canary string) {
		// A tree's procfs is a plain directory: its sysctls may be links
		// to any host file.
		for _, f := range []string{"proc/sys/kernel/kptr_restrict", "proc/sys/kernel/osrelease",
			"proc/sys/kernel/tainted", "proc/cmdline", "proc/modules", "proc/cpuinfo", "proc/meminfo",
			"proc/sys/net/core/bpf_jit_enable", "sys/kernel/security/lockdown"} {
			symlink(t, canary, filepath.Join(root, f))
		}
	}},
	{"os-release-to-own-absolute-path", func(t *testing.T, root, canary string) {
		// IMAGE/etc/os-release -> /etc/os-release made the image report
		// the host's OS; here the target is the canary's absolute path.
		symlink(t, canary, filepath.Join(root, "etc/os-release"))
		symlink(t, filepath.Join(root, "..", filepath.Base(filepath.Dir(canary)), filepath.Base(canary)), filepath.Join(root, "usr/lib/os-release"))
	}},
	{"link-chain-past-the-limit", func(t *testing.T, root, canary string) {
		for i := 0; i < 41; i++ {
			symlink(t, fmt.Sprintf("l%d", i+1), filepath.Join(root, "etc", fmt.Sprintf("l%d", i)))
		}
		symlink(t, canary, filepath.Join(root, "etc/l41"))
		symlink(t, "l0", filepath.Join(root, "etc/os-release"))
		symlink(t, "../../etc/l0", filepath.Join(root, "proc/sys/kernel/osrelease"))
	}},
	{"directory-entries-link-out", func(t *testing.T, root, canary string) {
		os.WriteFile(filepath.Join(mkdir(t, root, "etc"), "os-release"), []byte("ID=azurelinux\nVERSION_ID=4.0\n"), 0o644)
		symlink(t, canary, filepath.Join(root, "etc/yum.repos.d/evil.repo"))
		symlink(t, canary, filepath.Join(root, "etc/dnf/vars/releasever"))
		symlink(t, filepath.Dir(canary), filepath.Join(root, "etc/crypto-policies/state"))
		symlink(t, filepath.Dir(canary), filepath.Join(root, "sys/bus/pci/devices/0000:00:01.0"))
		symlink(t, filepath.Dir(canary), filepath.Join(root, "sys/bus/vmbus/devices/f8615163-df3e-46c5-913f-f2d2f965ed0e"))
	}},
	{"dev-zero-and-fifos", func(t *testing.T, root, canary string) {
		// gopsutil followed a link to /dev/zero at a cpufreq file to
		// gigabytes; a FIFO hung the host collector.
		for _, f := range []string{"proc/cpuinfo", "proc/zoneinfo", "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",
			"sys/kernel/btf/vmlinux", "proc/stat"} {
			symlink(t, "/dev/zero", filepath.Join(root, f))
		}
		for _, f := range []string{"etc/os-release", "proc/meminfo", "proc/sys/kernel/osrelease", "var/lib/hyperv/.kvp_pool_3",
			"etc/selinux/config", "etc/crypto-policies/config"} {
			mkfifo(t, filepath.Join(root, f))
		}
	}},
	{"rpm-database-fill-and-hang", func(t *testing.T, root, canary string) {
		// A -wal linked to /dev/zero filled a tmpfs; a sparse 50 GB
		// database was copied whole; a FIFO hung check.
		dir := mkdir(t, root, "usr/lib/sysimage/rpm")
		f, err := os.Create(filepath.Join(dir, "rpmdb.sqlite"))
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("SQLite format 3\x00")
		if err := f.Truncate(50 << 30); err != nil {
			t.Fatal(err)
		}
		f.Close()
		symlink(t, "/dev/zero", filepath.Join(dir, "rpmdb.sqlite-wal"))
		mkfifo(t, filepath.Join(root, "var/lib/rpm/rpmdb.sqlite"))
	}},
	{"sockets-devices-and-huge-directories", func(t *testing.T, root, canary string) {
		l, err := net.Listen("unix", filepath.Join(mkdir(t, root, "run/dbus"), "system_bus_socket-not"))
		if err == nil {
			t.Cleanup(func() { l.Close() })
		}
		os.Rename(filepath.Join(root, "run/dbus/system_bus_socket-not"), filepath.Join(root, "etc-os-release-socket"))
		// A character device node in the tree (1:5 is /dev/zero).
		if err := syscall.Mknod(filepath.Join(mkdir(t, root, "proc"), "meminfo"), syscall.S_IFCHR|0o644, 1<<8|5); err != nil {
			t.Fatal(err)
		}
		pci := mkdir(t, root, "sys/bus/pci/devices")
		for i := 0; i < 100000; i++ {
			if err := os.WriteFile(filepath.Join(pci, fmt.Sprintf("0000:%02x:%02x.%d", i>>8&0xff, i&0xff>>3, i&7)+strconv.Itoa(i)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// Names and contents that are not UTF-8.
		os.WriteFile(filepath.Join(mkdir(t, root, "etc"), "os-release"), []byte("ID=azure\xfflinux\nVERSION_ID=\"4.0\x1b[2J\"\nPRETTY_NAME=\"\x1b]0;owned\x07Azure\"\n"), 0o644)
		os.WriteFile(filepath.Join(mkdir(t, root, "etc/yum.repos.d"), "\xff\xfe.repo"), []byte("[\x1b[31mx]\nbaseurl=http://127.0.0.1:1/\n"), 0o644)
	}},
}

func mkdir(t *testing.T, root, rel string) string {
	t.Helper()
	d := filepath.Join(root, rel)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// runBounded runs the probe with args in its own process group, with TMPDIR
// set to tmp, and returns its output, exit code and peak RSS. It fails the
// test when the run passes adversarialTimeout.
func runBounded(t *testing.T, tmp string, args ...string) (out string, code int, maxRSS int64) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), adversarialTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "TMPDIR="+tmp)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%v did not finish within %s", args, adversarialTimeout)
	}
	if err := syscall.Kill(-cmd.Process.Pid, 0); err == nil {
		t.Errorf("%v left processes in its group behind", args)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	t.Logf("%s: exit %d in %s, peak RSS %d KiB", strings.Join(args[1:3], " "), cmd.ProcessState.ExitCode(), time.Since(start).Round(time.Millisecond), ru.Maxrss)
	return buf.String(), cmd.ProcessState.ExitCode(), ru.Maxrss << 10
}

func TestAdversarialTrees(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mknod of the device-node case needs root")
	}
	canaryDir := t.TempDir()
	canary := filepath.Join(canaryDir, "probe-canary-shadow")
	secret := fmt.Sprintf("CANARY-%d-%d", os.Getpid(), time.Now().UnixNano())
	if err := os.WriteFile(canary, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range hostileTrees {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.build(t, root, canary)
			tmp := t.TempDir()
			outDir := t.TempDir()
			baseline := filepath.Join(outDir, "baseline.json")
			common := []string{"--path.rootfs=" + root, "--no-collector.azure"}
			runs := [][]string{
				append([]string{"facts", "--format=prometheus"}, append(common, allCollectors()...)...),
				append([]string{"facts", "--format=table"}, append(common, allCollectors()...)...),
				append([]string{"check"}, common...),
				append([]string{"check", "--format=junit"}, common...),
				append([]string{"baseline", "save", baseline}, common...),
			}
			for _, args := range runs {
				out, code, rss := runBounded(t, tmp, withoutAzure(args)...)
				if code == 2 && !strings.HasPrefix(args[0], "check") {
					t.Errorf("%v: usage error: %s", args[:2], out)
				}
				if strings.Contains(out, secret) {
					t.Errorf("%s: the host's canary appears in the output", args[0])
				}
				if rss > maxAdversarialRSS {
					t.Errorf("%s: peak RSS %d MiB, limit %d MiB", args[0], rss>>20, maxAdversarialRSS>>20)
				}
			}
			// serve: the daemon's first snapshot, /metrics and its log.
			p := startProbeEnv(t, []string{"TMPDIR=" + tmp}, append([]string{"--web.listen-address=127.0.0.1:0", "--log.level=debug"}, withoutAzure(append(common, allCollectors()...))...)...)
			p.waitLog("first snapshot complete")
			if _, body := p.get("/metrics"); strings.Contains(body, secret) {
				t.Error("serve: the host's canary appears in /metrics")
			}
			p.cmd.Process.Signal(syscall.SIGTERM)
			p.waitLog("shutting down")
			p.cmd.Wait()
			if strings.Contains(p.log.String(), secret) {
				t.Error("serve: the host's canary appears in the log")
			}
			for _, f := range []string{baseline} {
				if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(secret)) {
					t.Errorf("%s holds the host's canary", filepath.Base(f))
				}
			}
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				t.Errorf("temporary files left behind: %v", left)
			}
		})
	}
}
