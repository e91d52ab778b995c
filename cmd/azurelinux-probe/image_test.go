package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/azurelinux-probe/azurelinux-probe/agent"
)

// debianImage is the debootstrap Debian 12 root that
// scripts/systemd-container.sh creates: a real image that never booted
// (empty /proc and /sys).
const debianImage = "/var/cache/azurelinux-probe-test/debian12-systemd"

// azl4Packages are the watched packages with the versions of the Azure
// Linux 4.0 preview tree of April 2026.
var azl4Packages = []struct{ name, epoch, version, release string }{
	{"dnf5", "", "5.2.18.0", "1.azl4"},
	{"rpm", "", "6.0.1", "1.azl4"},
	{"openssl-libs", "1", "3.5.4", "3.azl4"},
	{"systemd", "", "258.4", "4.azl4"},
	{"glibc", "", "2.42", "10.azl4"},
	{"python3", "", "3.14.3", "1.azl4"},
	{"kernel-core", "", "6.18.5.1", "8.azl4"},
}

// imageWithRPMDB returns a writable copy of the Debian image (an overlay
// over the cache, or cp -a where overlayfs is refused) with an Azure Linux
// 4.0 os-release and an rpm database made by the real rpm: rpmbuild builds
// empty packages of azl4Packages, `rpm --root … --initdb` creates the
// database in Azure Linux's place and `rpm --root … -i --justdb --nodeps`
// installs them into it.
func imageWithRPMDB(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("rpm --root and the sandbox need root")
	}
	if _, err := os.Stat(filepath.Join(debianImage, "usr/bin/dpkg")); err != nil {
		t.Skipf("no Debian image at %s (scripts/systemd-container.sh create makes it)", debianImage)
	}
	needTool(t, "rpm")
	needTool(t, "rpmbuild")
	work := t.TempDir()
	img := filepath.Join(work, "image")
	for _, d := range []string{"upper", "work", "image"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", debianImage, filepath.Join(work, "upper"), filepath.Join(work, "work"))
	if err := unix.Mount("overlay", img, "overlay", 0, opts); err == nil {
		t.Cleanup(func() { unix.Unmount(img, unix.MNT_DETACH) })
	} else if out, err := exec.Command("cp", "-a", debianImage+"/.", img).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}

	osRelease := "NAME=\"Azure Linux\"\nVERSION=\"4.0 (Cloud Variant Beta)\"\nID=azurelinux\nID_LIKE=fedora\nVERSION_ID=4.0\n" +
		"PRETTY_NAME=\"Azure Linux 4.0 (Cloud Variant Beta)\"\n"
	os.Remove(filepath.Join(img, "etc/os-release"))
	put(t, filepath.Join(img, "usr/lib/os-release"), osRelease)
	symlink(t, "../usr/lib/os-release", filepath.Join(img, "etc/os-release"))

	top := filepath.Join(work, "rpmbuild")
	var rpms []string
	for _, p := range azl4Packages {
		spec := filepath.Join(top, p.name+".spec")
		epoch := ""
		if p.epoch != "" {
			epoch = "Epoch: " + p.epoch + "\n"
		}
		put(t, spec, fmt.Sprintf("Name: %s\n%sVersion: %s\nRelease: %s\nSummary: test package %s\nLicense: MIT\n"+
			"%%description\nEmpty package standing for %s.\n%%files\n", p.name, epoch, p.version, p.release, p.name, p.name))
		cmd := exec.Command("rpmbuild", "--quiet", "--define", "_topdir "+top, "--define", "_build_id_links none",
			"--target", "x86_64", "-bb", spec)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("rpmbuild %s: %v: %s", p.name, err, out)
		}
		rpms = append(rpms, filepath.Join(top, "RPMS/x86_64", fmt.Sprintf("%s-%s-%s.x86_64.rpm", p.name, p.version, p.release)))
	}
	dbpath := []string{"--root", img, "--dbpath", "/usr/lib/sysimage/rpm"}
	if out, err := exec.Command("rpm", append(dbpath, "--initdb")...).CombinedOutput(); err != nil {
		t.Fatalf("rpm --initdb: %v: %s", err, out)
	}
	install := append(dbpath, "-i", "--justdb", "--nodeps", "--noscripts", "--ignoreos", "--ignorearch")
	if out, err := exec.Command("rpm", append(install, rpms...)...).CombinedOutput(); err != nil {
		t.Fatalf("rpm -i --justdb: %v: %s", err, out)
	}
	if out, err := exec.Command("rpm", append(dbpath, "-q", "openssl-libs")...).CombinedOutput(); err != nil ||
		strings.TrimSpace(string(out)) != "openssl-libs-3.5.4-3.azl4.x86_64" {
		t.Fatalf("rpm -q openssl-libs: %v: %s", err, out)
	}
	return img
}

// plantTools writes <img>/usr/bin/{openssl,rpm,dnf5,ldd} as scripts that
// print their tool's version banner, write a marker file at marker-<tool>
// (an absolute path: on the host if they run there, inside the image if
// they run inside it), and try to connect to the host's loopback port,
// recording whether that worked.
func plantTools(t *testing.T, img, marker string, port int) {
	t.Helper()
	banners := map[string]string{
		"openssl": "OpenSSL 3.5.4 30 Sep 2025 (Library: OpenSSL 3.5.4 30 Sep 2025)",
		"rpm":     "RPM version 6.0.1",
		"dnf5":    "dnf5 version 5.2.18.0",
		"ldd":     "ldd (GNU libc) 2.42",
	}
	for tool, banner := range banners {
		p := filepath.Join(img, "usr/bin", tool)
		os.Remove(p)
		script := fmt.Sprintf("#!/bin/bash\nm=%s-%s\necho ran > $m\n"+
			"if (echo x > /dev/tcp/127.0.0.1/%d) 2>/dev/null; then echo net=ok >> $m; else echo net=fail >> $m; fi\n"+
			"echo '%s'\n", marker, tool, port, banner)
		if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// loopbackListener counts the connections made to a port on the host's
// loopback.
func loopbackListener(t *testing.T) (port int, accepted *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted = &atomic.Int32{}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, accepted
}

// put writes a file of the image, with its directories, readable by all.
func put(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

type junitDoc struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Errors   int `xml:"errors,attr"`
	Skipped  int `xml:"skipped,attr"`
	Suites   []struct {
		Cases []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
			} `xml:"error"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// verdicts returns each test case's verdict and message.
func (d *junitDoc) verdicts() map[string]string {
	out := map[string]string{}
	for _, s := range d.Suites {
		for _, c := range s.Cases {
			switch {
			case c.Failure != nil:
				out[c.Name] = "fail: " + c.Failure.Message
			case c.Error != nil:
				out[c.Name] = "error: " + c.Error.Message
			case c.Skipped != nil:
				out[c.Name] = "skipped: " + c.Skipped.Message
			default:
				out[c.Name] = "pass"
			}
		}
	}
	return out
}

func runImage(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := agent.Main(append(args, "--log.level=error"), &out, &errb)
	return code, out.String(), errb.String()
}

// TestImageMode: `check --format=junit` and `facts` on a real image (the
// Debian root with an Azure Linux 4.0 os-release and rpm database): versions
// come from the rpm database, what needs a running kernel is skipped or not
// applicable with the reason, the exit status is what the verdicts say, and
// nothing from the image runs on the host.
func TestImageMode(t *testing.T) {
	img := imageWithRPMDB(t)
	port, accepted := loopbackListener(t)
	marker := fmt.Sprintf("/tmp/azurelinux-probe-marker-%d", os.Getpid())
	plantTools(t, img, marker, port)
	tools := []string{"openssl", "rpm", "dnf5", "ldd"}
	noMarkers := func(when string) {
		t.Helper()
		for _, tool := range tools {
			for _, p := range []string{marker + "-" + tool, filepath.Join(img, marker+"-"+tool)} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s: %s exists: the image's %s ran", when, p, tool)
				}
			}
		}
	}
	// What a pipeline's image has besides packages: a repository, the
	// configured SELinux mode, a sysctl.d file, a tdnf compatibility link.
	put(t, filepath.Join(img, "etc/yum.repos.d/azurelinux.repo"),
		"[azurelinux-base]\nname=base\nbaseurl=https://packages.microsoft.com/azurelinux/4.0/prod/base/$basearch\nenabled=1\n")
	put(t, filepath.Join(img, "etc/selinux/config"), "SELINUX=enforcing\nSELINUXTYPE=targeted\n")
	put(t, filepath.Join(img, "usr/lib/sysctl.d/50-azurelinux.conf"), "kernel.kptr_restrict = 2\n")
	put(t, filepath.Join(img, "etc/sysctl.d/60-hardening.conf"), "# the site's value wins\nkernel.kptr_restrict = 1\n")
	symlink(t, "dnf5", filepath.Join(img, "usr/bin/tdnf"))
	checksDir := t.TempDir()
	put(t, filepath.Join(checksDir, "image.yml"), `checks:
  - name: bootstrap-live-only
    category: golden_image
    exec: [/usr/bin/openssl, version]
`)
	// The seed's checks of the lab path, Kubernetes node debugging and the
	// responder tools look for files a debootstrap root does not have;
	// this test is about the verdicts, so they are left out.
	seedChecks := []string{"rpmdb-backend-sqlite", "var-lib-rpm-compat", "os-release-id-azurelinux", "crypto-policy-not-legacy",
		"openssl-fips-provider", "crictl-on-path", "ctr-on-path", "kubectl-on-path", "nsenter-on-path", "cgroup2-unified",
		"ebpf-kprobe-multi-link", "ebpf-uprobe-multi-link", "ebpf-fentry-link", "ca-trust-anchors-dir", "tls-ca-bundle-pem",
		"journal-persistent", "bin-sh-present", "bash-on-path", "tcpdump-on-path", "strace-on-path", "gdb-on-path",
		"perf-on-path", "bpftool-on-path", "bpftrace-on-path", "sos-on-path"}
	base := []string{"--path.rootfs=" + img, "--checks.dir=" + checksDir, "--no-collector.azure", "--checks.skip=" + strings.Join(seedChecks, ",")}

	t.Run("facts", func(t *testing.T) {
		code, out, stderr := runImage(t, append([]string{"facts", "--format=prometheus"}, base...)...)
		if code != 0 {
			t.Errorf("facts exit %d, want 0: %s", code, stderr)
		}
		for _, want := range []string{
			`azurelinux_os_info{build_id="",id="azurelinux",id_like="fedora",name="Azure Linux",pretty_name="Azure Linux 4.0 (Cloud Variant Beta)",release_type="",variant_id="",version="4.0 (Cloud Variant Beta)",version_id="4.0"} 1`,
			`azurelinux_userland_package_info{arch="x86_64",name="dnf5",release="1.azl4",version="5.2.18.0"} 1`,
			`azurelinux_userland_package_info{arch="x86_64",name="rpm",release="1.azl4",version="6.0.1"} 1`,
			`azurelinux_userland_package_info{arch="x86_64",name="openssl-libs",release="3.azl4",version="3.5.4"} 1`,
			`azurelinux_userland_package_info{arch="x86_64",name="systemd",release="4.azl4",version="258.4"} 1`,
			`azurelinux_userland_package_info{arch="x86_64",name="glibc",release="10.azl4",version="2.42"} 1`,
			`azurelinux_userland_package_info{arch="x86_64",name="python3",release="1.azl4",version="3.14.3"} 1`,
			`azurelinux_userland_package_info{arch="x86_64",name="kernel-core",release="8.azl4",version="6.18.5.1"} 1`,
			`azurelinux_rpmdb_info{backend="sqlite",path="/usr/lib/sysimage/rpm/rpmdb.sqlite"} 1`,
			`azurelinux_selinux_mode 2`,
			`azurelinux_probe_collector_applicable{collector="kernel"} 0`,
			`azurelinux_probe_collector_applicable{collector="systemd"} 0`,
			`azurelinux_probe_collector_applicable{collector="os"} 1`,
			`azurelinux_probe_collector_applicable{collector="userland"} 1`,
			`azurelinux_probe_collector_success{collector="kernel"} 1`,
		} {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("facts lack %s", want)
			}
		}
		if strings.Contains(out, "azurelinux_kernel_") || strings.Contains(out, "azurelinux_systemd_") {
			t.Errorf("facts of a running kernel or systemd served for an image:\n%s", grepLines(out, "azurelinux_kernel_")+grepLines(out, "azurelinux_systemd_"))
		}
		// The image's Debian libcrypto (3.0), read from the file, not the
		// planted script's banner (3.5.4).
		if !strings.Contains(out, `azurelinux_userland_tool_info{path="/usr/bin/openssl",tool="openssl",version="3.0.`) {
			t.Errorf("openssl version not from the image's library:\n%s", grepLines(out, "tool_info"))
		}
		code, table, _ := runImage(t, append([]string{"facts", "--format=table"}, base...)...)
		if code != 0 || !strings.Contains(table, "kernel: not applicable: needs a running kernel (procfs, sysfs); "+img+" is an image (no procfs or sysfs content)") {
			t.Errorf("facts table (exit %d) lacks the kernel's reason:\n%s", code, grepLines(table, "not applicable"))
		}
		noMarkers("facts")
	})

	t.Run("check", func(t *testing.T) {
		code, out, stderr := runImage(t, append([]string{"check", "--format=junit"}, base...)...)
		var doc junitDoc
		if err := xml.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("junit: %v\n%s", err, out)
		}
		got := doc.verdicts()
		want := map[string]string{
			"os-azurelinux-4.0":       "pass",
			"systemd-258":             "pass",
			"dnf5-5.2":                "pass",
			"rpm-6":                   "pass",
			"openssl-3.5":             "pass",
			"rpmdb-sqlite":            "pass",
			"dnf5-on-path":            "pass",
			"tdnf-compat":             "pass",
			"azurelinux-repo-enabled": "pass",
			"selinux-enforcing":       "pass",
			"kernel-hardening-sysctl": "pass",
			"ca-bundle":               "fail: /etc/pki/tls/certs/ca-bundle.crt does not exist",
			"kernel-series-6.18":      "skipped: azurelinux_kernel_info: the kernel collector is not applicable: needs a running kernel (procfs, sysfs); " + img + " is an image (no procfs or sysfs content)",
			"bpf-lsm-active":          "skipped: azurelinux_kernel_lsm_enabled: the kernel collector is not applicable: needs a running kernel",
			"kernel-btf":              "skipped: azurelinux_kernel_config_info: the kernel collector is not applicable",
			"ebpf-canary-runs":        "skipped: azurelinux_ebpf_canary_success: the ebpf collector is not applicable: needs a running kernel (bpf(2)",
			"vmbus-devices-bound":     "skipped: azurelinux_hyperv_vmbus_device_info: the hyperv collector is not applicable",
			"gpus-bound":              "skipped: azurelinux_gpu_device_info: the gpu collector is not applicable",
			"bootstrap-live-only":     "skipped: exec checks run programs only on the live root (/), not under " + img + "; set sandbox: true to run /usr/bin/openssl inside the image",
			"next-boot-kernel-ready":  "pass",
		}
		// LISA's checks read a running system's VMBus, clocks and kernel.
		for _, name := range []string{"lisa-core-verify_hyperv_modules", "lisa-core-verify_vmbus_devices_channels",
			"lisa-core-verify_vmbus_heartbeat_properties", "lisa-core-verify_kvp", "lisa-core-verify_hv_kvp_daemon_installed",
			"lisa-core-verify_timesync_ptp", "chrony-uses-hyperv-ptp", "lisa-core-verify_timesync_unbind_clocksource",
			"lisa-core-verify_timesync_unbind_clockevent", "lisa-core-verify_serial_console_is_enabled",
			"lisa-network-verify_sriov_basic", "lisa-gpu-verify_gpu_adapter_count"} {
			want[name] = "skipped: "
		}
		for name, w := range want {
			if !strings.HasPrefix(got[name], w) {
				t.Errorf("%s: %q, want %q", name, got[name], w)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%d test cases, want %d: %v", len(got), len(want), got)
		}
		if doc.Tests != len(want) || doc.Failures != 1 || doc.Errors != 0 || doc.Skipped != 19 {
			t.Errorf("testsuites tests=%d failures=%d errors=%d skipped=%d, want %d 1 0 19", doc.Tests, doc.Failures, doc.Errors, doc.Skipped, len(want))
		}
		if code != 1 {
			t.Errorf("check exit %d, want 1 (ca-bundle failed): %s", code, stderr)
		}
		// The team skips the one finding: all passed or skipped, exit 0.
		if code, out, stderr := runImage(t, append([]string{"check", "--checks.skip=ca-bundle"}, base...)...); code != 0 ||
			!strings.Contains(out, fmt.Sprintf("%d checks: %d passed, 0 failed, 19 skipped, 0 errors", len(want)-1, len(want)-20)) {
			t.Errorf("--checks.skip=ca-bundle: exit %d, want 0: %s\n%s", code, stderr, out)
		}
		// A check whose collector is disabled cannot be judged: exit 2.
		code, out, _ = runImage(t, append([]string{"check", "--format=junit", "--checks.skip=ca-bundle", "--no-collector.os"}, base...)...)
		doc = junitDoc{}
		if err := xml.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		if got := doc.verdicts()["os-azurelinux-4.0"]; code != 2 || got != "error: no series azurelinux_os_info: is the os collector enabled? (--collector.os)" {
			t.Errorf("--no-collector.os: exit %d, os-azurelinux-4.0 %q; want 2 and an error", code, got)
		}
		noMarkers("check")
	})

	t.Run("sandbox", func(t *testing.T) {
		config := filepath.Join(t.TempDir(), "config.yml")
		put(t, config, "collectors:\n  userland:\n    exec: sandbox\n")
		sandboxed := t.TempDir()
		put(t, filepath.Join(sandboxed, "image.yml"), `checks:
  - name: openssl-in-image
    category: golden_image
    exec: {argv: [/usr/bin/openssl, version], sandbox: true}
`)
		code, out, stderr := runImage(t, append([]string{"facts", "--format=prometheus", "--config.file=" + config}, base...)...)
		if code != 0 {
			t.Errorf("facts exit %d: %s", code, stderr)
		}
		for _, want := range []string{
			`azurelinux_userland_tool_info{path="/usr/bin/openssl",tool="openssl",version="3.5.4"} 1`,
			`azurelinux_userland_tool_info{path="/usr/bin/rpm",tool="rpm",version="6.0.1"} 1`,
			`azurelinux_userland_tool_info{path="/usr/bin/dnf5",tool="dnf5",version="5.2.18.0"} 1`,
			`azurelinux_userland_tool_info{path="/usr/bin/ldd",tool="glibc",version="2.42"} 1`,
		} {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("sandboxed facts lack %s:\n%s", want, grepLines(out, "tool_info"))
			}
		}
		code, report, _ := runImage(t, "check", "--path.rootfs="+img, "--no-checks.embedded", "--checks.dir="+sandboxed, "--no-collector.azure")
		if code != 0 || !strings.Contains(report, "openssl-in-image  golden_image  pass    /usr/bin/openssl exited 0 in") {
			t.Errorf("sandboxed exec check: exit %d\n%s", code, report)
		}
		for _, tool := range tools {
			if _, err := os.Stat(marker + "-" + tool); err == nil {
				t.Errorf("%s ran on the host: %s exists", tool, marker+"-"+tool)
			}
			b, err := os.ReadFile(filepath.Join(img, marker+"-"+tool))
			if err != nil {
				t.Errorf("%s did not run inside the image: %v", tool, err)
				continue
			}
			if string(b) != "ran\nnet=fail\n" {
				t.Errorf("%s's marker: %q, want a run whose connection failed", tool, b)
			}
		}
		if n := accepted.Load(); n != 0 {
			t.Errorf("the host's loopback listener accepted %d connections from the sandbox", n)
		}
	})
}
