package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/agent"
	"github.com/azurelinux-probe/azurelinux-probe/collectors"
	"github.com/azurelinux-probe/azurelinux-probe/internal/treetest"
)

// wantMatrixFailures lists, per fixture tree, the checks of the embedded
// Azure Linux 4.0 matrix that must fail there, and only those. Checks that
// read the facts of a collector this build does not have yet (ebpf) fail
// with "this build has no X collector" and are accepted as pending; once that collector is merged they must pass
// on the tree or be added here.
var wantMatrixFailures = map[string][]string{
	"azl4-azure-gen2": {
		"ebpf-canary-runs", // live only: the canary never runs against a fixture tree
	},
	"azl3": {
		"ebpf-canary-runs",        // live only: the canary never runs against a fixture tree
		"os-azurelinux-4.0",       // VERSION_ID 3.0
		"next-boot-kernel-ready",  // the fixture's module tree holds no files of the modules it has loaded
		"kernel-series-6.18",      // 6.6
		"systemd-258",             // 255
		"selinux-enforcing",       // selinux=0
		"kernel-hardening-sysctl", // the fixture has no kptr_restrict
		"dnf5-on-path",            // tdnf only
		"dnf5-5.2",                // not installed
		"rpm-6",                   // 4.18.2
		"rpmdb-sqlite",            // under /var/lib/rpm
		"openssl-3.5",             // 3.3.5
		"bpf-lsm-active",          // bpf not in the LSM list
		// LISA's checks: the 3.0 tree was captured without the time, KVP and
		// channel files, and its A100's VMBus offer carries no GPU id.
		"lisa-core-verify_vmbus_devices_channels",
		"lisa-core-verify_kvp",
		"lisa-core-verify_hv_kvp_daemon_installed",
		"lisa-core-verify_timesync_ptp",
		"chrony-uses-hyperv-ptp",
		"lisa-core-verify_timesync_unbind_clockevent",
		"lisa-core-verify_serial_console_is_enabled",
		"lisa-gpu-verify_gpu_adapter_count",
		"crypto-policy-not-legacy", // the 3.0 tree has no /etc/crypto-policies/config
		"tls-ca-bundle-pem",        // nor the extracted PEM bundle
	},
	// LISA's Hyper-V checks on the trees made for them
	// (scripts/fixtures/lisa-trees.py).
	"azl4-azure-d8": {
		"ebpf-canary-runs",
	},
	"azl4-azure-d8-lostvf": {
		"ebpf-canary-runs",
		"lisa-core-verify_vmbus_devices_channels", // storvsc opened 4 channels, LISA's rule wants 8
		"lisa-network-verify_sriov_basic",         // eth0 lost its MANA VF
	},
	"azl4-nd-h100-v5": {
		"ebpf-canary-runs",
		"gpus-bound",                        // the eighth H100 has no driver
		"lisa-gpu-verify_gpu_adapter_count", // 8 offered, 8 enumerated, 7 bound
	},
	"azl4-arm64-cobalt": {
		"ebpf-canary-runs",
	},
}

// notCaptured are the seed's checks whose files no fixture tree holds: the
// trees were captured with what the collectors read (scripts/fixtures), not
// whole images, so bash, /bin/sh, /var/log/journal, the CA anchors
// directory, the OpenSSL FIPS provider, the cgroup2 mount, the Kubernetes
// node tools and the responder tools are absent from every one. They fail
// on every tree (the absence is what the test proves of them); the kinds'
// passing cases are in checks/eval_test.go.
var notCaptured = []string{
	"openssl-fips-provider", "cgroup2-unified", "ca-trust-anchors-dir", "journal-persistent", "bin-sh-present",
	"bash-on-path", "crictl-on-path", "ctr-on-path", "kubectl-on-path", "nsenter-on-path",
	"tcpdump-on-path", "strace-on-path", "gdb-on-path", "perf-on-path", "bpftool-on-path", "bpftrace-on-path", "sos-on-path",
	// Live only, like ebpf-canary-runs: the attach attempts never run
	// against a fixture tree.
	"ebpf-kprobe-multi-link", "ebpf-uprobe-multi-link", "ebpf-fentry-link",
}

type checkJSON struct {
	Checks []struct {
		Name, Category, Kind, Reason string
		Pass                         bool
	} `json:"checks"`
	Drift []struct {
		Collector, Fact, Was, Now string
	} `json:"drift"`
	Summary struct{ Checks, Passed, Failed, Drifted int } `json:"summary"`
}

func runCheck(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	// The 4.0 trees are Azure VMs: without --no-collector.azure the probe
	// would ask the real instance metadata address. No test may.
	code := agent.Main(append([]string{"check", "--log.level=error"}, withoutAzure(args)...), &out, &errb)
	return code, out.String(), errb.String()
}

// TestMatrixGPUWithoutDriver: on the Azure VM whose GPU lost its driver
// after a kernel update, the drivers check fails and names the device.
func TestMatrixGPUWithoutDriver(t *testing.T) {
	for tree, wantPass := range map[string]bool{"azure-gpu-nodriver": false, "azl4-azure-gen2": true} {
		root, _ := filepath.Abs(filepath.Join(treesDir, tree))
		_, out, _ := runCheck(t, append([]string{"--format=json", "--path.rootfs=" + root, "--checks.dir=" + t.TempDir()}, allCollectors()...)...)
		var rep checkJSON
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		for _, c := range rep.Checks {
			if c.Name == "gpus-bound" && (c.Pass != wantPass || !wantPass && !strings.Contains(c.Reason, `driver="",model="",pci_address="0001:00:00.0"`)) {
				t.Errorf("%s: gpus-bound pass %v: %s", tree, c.Pass, c.Reason)
			}
		}
	}
}

var pendingRE = regexp.MustCompile(`this build has no (\w+) collector`)

// TestMatrixOnTrees: the embedded matrix passes on the Azure Linux 4.0 tree
// and fails exactly the expected checks on the Azure Linux 3.0 tree.
func TestMatrixOnTrees(t *testing.T) {
	if len(collectors.Specs()) < 6 {
		t.Fatalf("want the os, kernel, hyperv, gpu, systemd and userland collectors, have %d", len(collectors.Specs()))
	}
	for tree, want := range wantMatrixFailures {
		want = append(slices.Clone(want), notCaptured...)
		t.Run(tree, func(t *testing.T) {
			root, _ := filepath.Abs(filepath.Join(treesDir, tree))
			code, out, stderr := runCheck(t, append([]string{"--format=json", "--path.rootfs=" + root,
				"--checks.dir=" + t.TempDir()}, allCollectors()...)...)
			var rep checkJSON
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("check --format=json: %v\n%s\n%s", err, out, stderr)
			}
			var failed []string
			for _, c := range rep.Checks {
				if c.Pass {
					continue
				}
				if m := pendingRE.FindStringSubmatch(c.Reason); m != nil && c.Kind == "fact" {
					if _, built := collectors.Lookup(m[1]); built {
						t.Errorf("%s: %q, but this build has the %s collector", c.Name, c.Reason, m[1])
					}
					continue
				}
				failed = append(failed, c.Name)
				if !slices.Contains(want, c.Name) {
					t.Errorf("%s failed unexpectedly: %s", c.Name, c.Reason)
				}
			}
			for _, w := range want {
				if !slices.Contains(failed, w) {
					t.Errorf("%s passed, want it to fail on %s", w, tree)
				}
			}
			if code != 1 && rep.Summary.Failed > 0 || code != 0 && rep.Summary.Failed == 0 {
				t.Errorf("exit %d with %d failed", code, rep.Summary.Failed)
			}
		})
	}
}

func writeChecks(t *testing.T, dir, name, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

const passingChecks = `checks:
  - name: os-release
    category: golden_image
    description: os-release is there
    file: {path: /etc/os-release, type: file}
  - name: kernel
    category: golden_image
    fact: azurelinux_kernel_info{series=~"6\\..*"}
`

// TestCheckExitCodes: 0 when every check passes, 1 when one fails, 2 when
// the checks or the baseline cannot be loaded (with file, line and reason).
func TestCheckExitCodes(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join(treesDir, "azl4-azure-gen2"))
	dir := t.TempDir()
	writeChecks(t, dir, "ok.yml", passingChecks)
	args := []string{"--path.rootfs=" + root, "--checks.dir=" + dir, "--no-checks.embedded"}
	if code, out, stderr := runCheck(t, args...); code != 0 || !strings.Contains(out, "2 checks: 2 passed, 0 failed") {
		t.Errorf("passing: exit %d\n%s%s", code, out, stderr)
	}

	writeChecks(t, dir, "zz-fail.yml", "checks:\n  - name: kubectl\n    category: k8s_debug\n    command: kubectl\n")
	code, out, _ := runCheck(t, args...)
	if code != 1 || !strings.Contains(out, "kubectl not found on the PATH") {
		t.Errorf("failing: exit %d\n%s", code, out)
	}

	writeChecks(t, dir, "zz-fail.yml", "checks:\n  - name: kubectl\n    category: k8s_debug\n    command: /usr/bin/kubectl\n")
	code, out, stderr := runCheck(t, args...)
	wantErr := filepath.Join(dir, "zz-fail.yml") + `:4: check "kubectl": command: "/usr/bin/kubectl": want a command name`
	if code != 2 || out != "" || !strings.Contains(stderr, wantErr) {
		t.Errorf("invalid: exit %d, stdout %q, stderr %q; want 2 and %q", code, out, stderr, wantErr)
	}
	os.Remove(filepath.Join(dir, "zz-fail.yml"))

	bad := filepath.Join(t.TempDir(), "baseline.json")
	os.WriteFile(bad, []byte(`{"collectors":[{"name":"kernel","success":tr`), 0o644)
	code, _, stderr = runCheck(t, append(args, "--baseline.file="+bad)...)
	if code != 2 || !strings.Contains(stderr, bad+" is corrupt or truncated") {
		t.Errorf("corrupt baseline: exit %d, %q", code, stderr)
	}
	if b, _ := os.ReadFile(bad); string(b) != `{"collectors":[{"name":"kernel","success":tr` {
		t.Errorf("the corrupt baseline was rewritten: %q", b)
	}
	if code, _, stderr := runCheck(t, "--format=yaml"); code != 2 || !strings.Contains(stderr, "table,json,junit") {
		t.Errorf("unknown format: exit %d %q", code, stderr)
	}
}

type junit struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Suites   []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// TestCheckJUnit: the JUnit report of the 3.0 tree is valid XML with one
// test case per check, the failures carrying their reason.
func TestCheckJUnit(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join(treesDir, "azl3"))
	code, out, stderr := runCheck(t, "--format=junit", "--path.rootfs="+root, "--checks.dir="+t.TempDir())
	if code != 1 {
		t.Errorf("exit %d, want 1: %s", code, stderr)
	}
	var j junit
	dec := xml.NewDecoder(strings.NewReader(out))
	dec.Strict = true
	if err := dec.Decode(&j); err != nil {
		t.Fatalf("invalid JUnit XML: %v\n%s", err, out)
	}
	var (
		cases  int
		reason string
	)
	for _, s := range j.Suites {
		for _, c := range s.Cases {
			cases++
			if c.Name == "rpm-6" && c.Failure != nil {
				reason = c.Failure.Message
			}
		}
	}
	if cases != j.Tests || j.Tests < 15 || j.Failures < len(wantMatrixFailures["azl3"]) {
		t.Errorf("tests %d (cases %d), failures %d", j.Tests, cases, j.Failures)
	}
	if reason != "rpm-4.18.2-1.azl3.x86_64 is older than 6.0" {
		t.Errorf("rpm-6 failure message %q", reason)
	}
	if _, err := exec.LookPath("xmllint"); err == nil {
		cmd := exec.Command("xmllint", "--noout", "-")
		cmd.Stdin = strings.NewReader(out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("xmllint: %v\n%s", err, b)
		}
	}
}

// copyTree copies a fixture tree, links included, to a temporary directory.
func copyTree(t *testing.T, tree string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), tree)
	if out, err := exec.Command("cp", "-a", filepath.Join(treesDir, tree), dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	return dst
}

// TestBaselineDrift: a baseline saved on the Azure Linux 4.0 host (two
// H100s on the open driver), compared with the same host after a kernel
// update that left one GPU without its driver: exactly those facts drift.
func TestBaselineDrift(t *testing.T) {
	before := copyTree(t, "azl4-azure-gen2")
	after := copyTree(t, "azl4-azure-gen2")
	const newRelease = "6.18.44-1.1.azl4.x86_64"
	treetest.File(t, filepath.Join(after, "proc/sys/kernel/osrelease"), newRelease+"\n")
	treetest.File(t, filepath.Join(after, "proc/sys/kernel/version"), "#1 SMP PREEMPT_DYNAMIC Fri Nov 20 10:00:00 UTC 2026\n")
	if err := os.Rename(filepath.Join(after, "usr/lib/modules/6.18.31-1.3.azl4.x86_64"), filepath.Join(after, "usr/lib/modules", newRelease)); err != nil {
		t.Fatal(err)
	}
	// Unbind GPU 0002:00:00.0: no driver link, not in the driver's device
	// list, unknown to the driver's procfs.
	dev, err := filepath.EvalSymlinks(filepath.Join(after, "sys/bus/pci/devices/0002:00:00.0"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dev, "driver"), filepath.Join(after, "sys/bus/pci/drivers/nvidia/0002:00:00.0"),
		filepath.Join(after, "proc/driver/nvidia/gpus/0002:00:00.0")} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}

	// Never the real metadata address. The boot collector is left out: a
	// module tree renamed to another release is, to it, a kernel whose
	// modules were built for another one (TestBootTrees covers that).
	var collectorArgs []string
	for _, a := range withoutAzure(allCollectors()) {
		if a != "--collector.boot" {
			collectorArgs = append(collectorArgs, a)
		}
	}
	collectorArgs = append(collectorArgs, "--no-collector.boot")
	baseline := filepath.Join(t.TempDir(), "baseline.json")
	var errb bytes.Buffer
	if code := agent.Main(append([]string{"baseline", "save", baseline, "--log.level=error", "--path.rootfs=" + before}, collectorArgs...), io.Discard, &errb); code != 0 {
		t.Fatalf("baseline save: exit %d: %s", code, errb.String())
	}
	// The baseline is exactly what facts --format=json prints.
	var facts bytes.Buffer
	agent.Main(append([]string{"facts", "--format=json", "--log.level=error", "--path.rootfs=" + before}, collectorArgs...), &facts, io.Discard)
	saved, _ := os.ReadFile(baseline)
	if !bytes.Equal(stripDurations(saved), stripDurations(facts.Bytes())) {
		t.Errorf("baseline differs from facts --format=json:\n%s", lineDiff(string(stripDurations(facts.Bytes())), string(stripDurations(saved))))
	}

	args := append([]string{"--no-checks.embedded", "--checks.dir=" + t.TempDir(), "--format=json"}, collectorArgs...)
	code, out, stderr := runCheck(t, append(args, "--path.rootfs="+before, "--baseline.file="+baseline)...)
	if code != 0 || !strings.Contains(out, `"drifted": 0`) {
		t.Errorf("same tree: exit %d %s %s", code, out, stderr)
	}

	code, out, _ = runCheck(t, append(args, "--path.rootfs="+after, "--baseline.file="+baseline)...)
	var rep checkJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range rep.Drift {
		got = append(got, d.Collector+" "+d.Fact+": "+d.Was+" -> "+d.Now)
	}
	want := []string{
		`gpu azurelinux_gpu_device_info{pci_address="0002:00:00.0"}: ` +
			`{class="0x030200",device_id="0x2321",driver="nvidia",model="NVIDIA H100 NVL",uuid="GPU-8b41e7d0-2c95-4f6a-b3e8-71d0c4a95f12",vendor="nvidia",vendor_id="0x10de"} -> ` +
			`{class="0x030200",device_id="0x2321",driver="",model="",uuid="",vendor="nvidia",vendor_id="0x10de"}`,
		`gpu azurelinux_gpu_devices{driver="",vendor="nvidia"}:  -> 1`,
		`gpu azurelinux_gpu_devices{driver="nvidia",vendor="nvidia"}: 2 -> 1`,
		`gpu azurelinux_gpu_layer_devices{layer="driver"}: 2 -> 1`,
		`gpu azurelinux_gpu_layers_consistent: 1 -> 0`,
		`hyperv azurelinux_hyperv_pci_passthrough_device_info{pci_address="0002:00:00.0"}: ` +
			`{class="0x030200",device_id="0x2321",driver="nvidia",vendor_id="0x10de"} -> {class="0x030200",device_id="0x2321",driver="",vendor_id="0x10de"}`,
		`kernel azurelinux_kernel_info: {release="6.18.31-1.3.azl4.x86_64",series="6.18",version="#1 SMP PREEMPT_DYNAMIC Tue Sep 15 18:22:41 UTC 2026"} -> ` +
			`{release="6.18.44-1.1.azl4.x86_64",series="6.18",version="#1 SMP PREEMPT_DYNAMIC Fri Nov 20 10:00:00 UTC 2026"}`,
	}
	if code != 1 || !slices.Equal(got, want) {
		t.Errorf("exit %d, drift:\n%s\nwant 1 and:\n%s", code, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Table output names the baseline and each drifted fact.
	_, table, _ := runCheck(t, append([]string{"--no-checks.embedded", "--checks.dir=" + t.TempDir(), "--path.rootfs=" + after, "--baseline.file=" + baseline}, collectorArgs...)...)
	if !strings.Contains(table, "baseline "+baseline+": 7 facts drifted") ||
		!regexp.MustCompile(`gpu +azurelinux_gpu_devices\{driver="nvidia",vendor="nvidia"\} +2 +1\n`).MatchString(table) {
		t.Errorf("table:\n%s", table)
	}
}

var durationRE = regexp.MustCompile(`"duration_seconds": [0-9.e-]+`)

func stripDurations(b []byte) []byte {
	return durationRE.ReplaceAll(b, []byte(`"duration_seconds": 0`))
}

// TestServeChecks runs the daemon as a user would: it serves the check
// metrics and the baseline drift; a user's checks file added later works
// after SIGHUP; an invalid one is reported and the previous checks keep
// running.
func TestServeChecks(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join(treesDir, "azl4-azure-gen2"))
	dir := t.TempDir()
	baseline := filepath.Join(t.TempDir(), "baseline.json")
	collectorArgs := []string{"--path.rootfs=" + root, "--collector.disable-defaults", "--collector.os", "--collector.kernel"}
	if code := agent.Main(append([]string{"baseline", "save", baseline, "--log.level=error"}, collectorArgs...), io.Discard, io.Discard); code != 0 {
		t.Fatalf("baseline save: exit %d", code)
	}
	p := startProbe(t, append([]string{"--web.listen-address=127.0.0.1:0", "--checks.dir=" + dir, "--baseline.file=" + baseline}, collectorArgs...)...)
	p.waitLog("first snapshot complete")

	body := p.waitMetrics(`azurelinux_checks_config_valid 1`)
	for _, want := range []string{
		`azurelinux_check_status{category="golden_image",check="kernel-series-6.18"} 1`,
		`azurelinux_check_status{category="package_manager",check="rpm-6"} 1`,
		`azurelinux_check_status{category="drivers",check="gpus-bound"} 0`,
		`azurelinux_checks_failed{category="golden_image"} 0`,
		// gpus-bound reads the gpu collector, which is not enabled here:
		// the reason says so.
		`azurelinux_check_reason_info{category="drivers",check="gpus-bound",reason="no series azurelinux_gpu_device_info`,
		`azurelinux_baseline_facts_drifted 0`,
		`azurelinux_probe_collector_success{collector="checks"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	promtoolCheck(t, body)
	if missing := undocumented(t, body); len(missing) > 0 {
		t.Errorf("served metrics missing from docs/metrics.md: %v", missing)
	}

	writeChecks(t, dir, "team.yml", "checks:\n  - name: dnf5-here\n    category: my_team\n    command: dnf5\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog("checks loaded")
	p.waitMetrics(`azurelinux_check_status{category="my_team",check="dnf5-here"} 1`)

	writeChecks(t, dir, "team.yml", "checks:\n  - name: dnf5-here\n    category: my_team\n    comand: dnf5\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	line := p.waitLog("invalid checks, keeping the previous checks")
	if !strings.Contains(line, `team.yml:4: check: unknown key \"comand\"`) {
		t.Errorf("log line lacks the file, line and reason: %s", line)
	}
	body = p.waitMetrics(`azurelinux_checks_config_valid 0`)
	if !strings.Contains(body, `azurelinux_check_status{category="my_team",check="dnf5-here"} 1`) {
		t.Errorf("the previous user check is no longer served after an invalid reload")
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// waitMetrics scrapes until the body contains want, for up to 20 s: the
// checks job publishes asynchronously after a start or reload.
func (p *probe) waitMetrics(want string) string {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		_, body = p.get("/metrics")
		if strings.Contains(body, want) {
			return body
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("/metrics lacks %q after 20s:\n%s", want, grepLines(body, "azurelinux_check"))
	return ""
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return fmt.Sprint(strings.Join(out, "\n"))
}

// withoutAzure returns args with the azure collector disabled: the 4.0
// trees are Azure VMs, and the collector would ask the real instance
// metadata address, which no test may.
func withoutAzure(args []string) []string {
	out := []string{"--no-collector.azure"}
	for _, a := range args {
		if a != "--collector.azure" && a != "--no-collector.azure" {
			out = append(out, a)
		}
	}
	return out
}
