package checks

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
	"github.com/azurelinux-probe/azurelinux-probe/internal/treetest"
)

// run loads one check from YAML and evaluates it against env.
func run(t *testing.T, env *Env, check string) (bool, string) {
	t.Helper()
	list, err := Load("t.yml", []byte("checks:\n  - name: c\n    category: test\n    "+check+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := Evaluate(context.Background(), env, list)[0]
	return r.Pass, r.Reason
}

func envAt(root string) *Env { return &Env{Paths: collectors.DefaultPaths(root)} }

// verdict loads one check and returns its status and reason.
func verdict(t *testing.T, env *Env, check string) (Status, string) {
	t.Helper()
	list, err := Load("t.yml", []byte("checks:\n  - name: c\n    category: test\n    "+check+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := Evaluate(context.Background(), env, list)[0]
	return r.Status, r.Reason
}

type statusCase struct {
	check  string
	status Status
	reason string
}

func runStatusCases(t *testing.T, env *Env, cases []statusCase) {
	t.Helper()
	for _, tc := range cases {
		st, reason := verdict(t, env, tc.check)
		if st != tc.status || !strings.Contains(reason, tc.reason) {
			t.Errorf("%s: %s %q; want %s and %q", tc.check, st, reason, tc.status, tc.reason)
		}
	}
}

type kindCase struct {
	check  string
	pass   bool
	reason string
}

func runCases(t *testing.T, env *Env, cases []kindCase) {
	t.Helper()
	for _, tc := range cases {
		pass, reason := run(t, env, tc.check)
		if pass != tc.pass || !strings.Contains(reason, tc.reason) {
			t.Errorf("%s: pass %v reason %q; want %v and %q", tc.check, pass, reason, tc.pass, tc.reason)
		}
	}
}

func TestFactKind(t *testing.T) {
	env := &Env{Facts: &Facts{
		Series: map[string][]Series{
			"azurelinux_kernel_info":    {{Name: "azurelinux_kernel_info", Labels: map[string]string{"series": "6.18"}, Value: 1}},
			"azurelinux_kernel_tainted": {{Name: "azurelinux_kernel_tainted", Labels: map[string]string{}, Value: 4096}},
		},
		Collectors: map[string]CollectorState{
			"kernel": {Success: true},
			"os":     {Success: false, Err: "no os-release"},
		},
	}}
	runCases(t, env, []kindCase{
		{`fact: azurelinux_kernel_info{series="6.18"}`, true, `azurelinux_kernel_info{series="6.18"} 1`},
		{`fact: azurelinux_kernel_tainted == 0`, false, "azurelinux_kernel_tainted 4096"},
		// The collector ran and found no such source: only "none" holds.
		{`fact: azurelinux_kernel_lockdown_info{mode="integrity"}`, false, "the kernel collector found no such source on this host"},
		{`fact: none azurelinux_kernel_lockdown_info{mode="none"}`, true, "no series azurelinux_kernel_lockdown_info"},
		// The collector failed.
		{`fact: azurelinux_os_version >= 4`, false, "no series azurelinux_os_version: the os collector failed: no os-release"},
		// The collector is not enabled, or not in this build.
		{`fact: azurelinux_systemd_version >= 258`, false, "no series azurelinux_systemd_version: is the systemd collector enabled?"},
		{`fact: none azurelinux_gpu_device_info{driver=""}`, false, "is the gpu collector enabled?"},
		{`fact: azurelinux_selinux_mode == 2`, false, "is the userland collector enabled?"},
	})
}

func TestCommandKind(t *testing.T) {
	root := treetest.New(t, map[string]string{
		"usr/bin/dnf5":      "#!/bin/sh\n",
		"usr/bin/tdnf":      "->dnf5",
		"usr/sbin/bpftool":  "#!/bin/sh\n",
		"usr/bin/notexec":   "data",
		"usr/bin/dangling":  "->missing",
		"usr/bin/escape":    "->/usr/bin/dnf5", // absolute: resolved inside the root
		"usr/local/bin/":    "",
		"usr/bin/kubectl/":  "",
		"bin":               "->usr/bin",
		"usr/bin/crictl":    "->/opt/bin/crictl",
		"opt/bin/crictl":    "#!/bin/sh\n",
		"usr/bin/hostleak":  "->/bin/sh", // exists on the host, not in the root
		"usr/local/sbin/jq": "#!/bin/sh\n",
	})
	runCases(t, envAt(root), []kindCase{
		{"command: dnf5", true, "/usr/bin/dnf5"},
		{"command: tdnf", true, "/usr/bin/tdnf (symlink to dnf5)"},
		{"command: bpftool", true, "/usr/sbin/bpftool"},
		{"command: jq", true, "/usr/local/sbin/jq"},
		{"command: escape", true, "symlink to /usr/bin/dnf5"},
		{"command: crictl", true, "/usr/bin/crictl (symlink to /opt/bin/crictl)"},
		{"command: notexec", false, "notexec not found on the PATH"},
		{"command: dangling", false, "not found"},
		{"command: kubectl", false, "not found"},
		{"command: sh", false, "sh not found"},
		{"command: hostleak", false, "not found"},
	})
}

func TestFileKind(t *testing.T) {
	root := treetest.New(t, map[string]string{
		"etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem": "pem",
		"etc/pki/tls/certs/ca-bundle.crt":                  "->/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
		"var/log/journal/":                                 "",
		"etc/shadow":                                       "x",
	})
	if err := os.Chmod(filepath.Join(root, "etc/shadow"), 0o600); err != nil {
		t.Fatal(err)
	}
	runCases(t, envAt(root), []kindCase{
		{"file: /etc/pki/tls/certs/ca-bundle.crt", true, "/etc/pki/tls/certs/ca-bundle.crt (file, mode 0644)"},
		{"file: {path: /etc/pki/tls/certs/ca-bundle.crt, type: file, mode: '0644'}", true, ""},
		{"file: {path: /etc/pki/tls/certs/ca-bundle.crt, type: dir}", false, "is a file, not a directory"},
		{"file: {path: /var/log/journal, type: dir}", true, "directory"},
		{"file: {path: /var/log/journal, type: file}", false, "is a directory, not a regular file"},
		{"file: {path: /etc/shadow, mode: '0600'}", true, ""},
		{"file: {path: /etc/shadow, mode: '0640'}", false, "/etc/shadow has mode 0600, want 0640"},
		{"file: /var/log/messages", false, "/var/log/messages does not exist"},
	})
}

func TestRPMKind(t *testing.T) {
	root := "../collectors/testdata/trees/azl4-azure-gen2"
	runCases(t, envAt(root), []kindCase{
		{"rpm: dnf5", true, "dnf5-5.2.18.0-1.azl4.x86_64"},
		{"rpm: {name: rpm, min_version: '6.0'}", true, "rpm-6.0.1-1.azl4.x86_64 >= 6.0"},
		{"rpm: {name: rpm, min_version: '6.0.1-2'}", false, "rpm-6.0.1-1.azl4.x86_64 is older than 6.0.1-2"},
		{"rpm: {name: systemd, min_version: '258'}", true, ""},
		{"rpm: {name: systemd, min_version: '259'}", false, "older than 259"},
		{"rpm: {name: openssl-libs, min_version: '3.5'}", true, "openssl-libs-1:3.5.4-3.azl4.x86_64 >= 3.5"},
		{"rpm: {name: openssl-libs, min_version: '2:3.0'}", false, "older than 2:3.0"},
		{"rpm: tdnf", false, "package tdnf is not installed (rpm database /usr/lib/sysimage/rpm/rpmdb.sqlite)"},
	})
	// Azure Linux 3.0 keeps the database under /var/lib/rpm.
	runCases(t, envAt("../collectors/testdata/trees/azl3"), []kindCase{
		{"rpm: {name: rpm, min_version: '6.0'}", false, "rpm-4.18.2-1.azl3.x86_64 is older than 6.0"},
		{"rpm: tdnf", true, "tdnf-3.5.8-8.azl3.x86_64"},
	})
	// The package list is read once while the database is unchanged.
	found, err := host.FindRPMDB(collectors.DefaultPaths(root).Root())
	if err != nil {
		t.Fatal(err)
	}
	a, err1 := host.ReadRPMPackages(found)
	b, err2 := host.ReadRPMPackages(found)
	if err1 != nil || err2 != nil || len(a) == 0 || &a[0] != &b[0] {
		t.Errorf("database read twice: %v %v", err1, err2)
	}
	runCases(t, envAt(t.TempDir()), []kindCase{{"rpm: rpm", false, "no rpm database under"}})
	corrupt := treetest.New(t, map[string]string{"var/lib/rpm/rpmdb.sqlite": "SQLite format 3\x00garbage"})
	runCases(t, envAt(corrupt), []kindCase{{"rpm: rpm", false, "rpm database /var/lib/rpm/rpmdb.sqlite:"}})
}

// TestRPMDBNotWritten: reading a database leaves the image untouched (no
// -shm, -wal or lock files appear next to it).
func TestRPMDBNotWritten(t *testing.T) {
	root := t.TempDir()
	src, err := os.ReadFile("../collectors/testdata/trees/azl4-azure-gen2/usr/lib/sysimage/rpm/rpmdb.sqlite")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "usr/lib/sysimage/rpm")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "rpmdb.sqlite"), src, 0o444); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)
	runCases(t, envAt(root), []kindCase{{"rpm: dnf5", true, "dnf5-5.2.18.0"}})
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("database directory holds %d entries after reading, want 1", len(entries))
	}
}

func TestCompareEVR(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0", "1.1", -1},
		{"258.4", "258", 1},
		{"6.0.1", "6.0", 1},
		{"2.42", "2.9", 1},
		{"1.0a", "1.0", 1},
		{"1.0", "1.0a", -1},
		{"1.0~rc1", "1.0", -1},
		{"1.0~rc1", "1.0~rc2", -1},
		{"1.0^git1", "1.0", 1},
		{"1.0^git1", "1.0.1", -1},
		{"1.010", "1.9", 1},
		{"1.a", "1.1", -1},
		{"1:1.0", "2.0", 1},
		{"3.5.4-3.azl4", "3.5.4-2.azl4", 1},
		{"3.5.4-3.azl4", "3.5.4", 0},
		{"6.18.31-1.3.azl4", "6.18.5-1.8.azl4", 1},
	} {
		if got := compareEVR(tc.a, tc.b); got != tc.want {
			t.Errorf("compareEVR(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := compareEVR(tc.b, tc.a); got != -tc.want {
			t.Errorf("compareEVR(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestUnitKind(t *testing.T) {
	root := treetest.New(t, map[string]string{
		"etc/systemd/system/multi-user.target.wants/waagent.service":   "->/usr/lib/systemd/system/waagent.service",
		"etc/systemd/system/sockets.target.requires/containerd.socket": "->/usr/lib/systemd/system/containerd.socket",
	})
	env := envAt(root)
	runCases(t, env, []kindCase{
		{"unit: waagent", true, "waagent.service is enabled (/etc/systemd/system/multi-user.target.wants/waagent.service)"},
		{"unit: {name: containerd.socket, state: enabled}", true, ""},
		{"unit: kubelet.service", false, "kubelet.service is not enabled"},
		// Without the systemd collector, "active" cannot be known.
		{"unit: {name: waagent, state: active}", false, "not evaluable without the live systemd: no series azurelinux_systemd_unit_info"},
	})
	env.Facts = &Facts{
		Series: map[string][]Series{"azurelinux_systemd_unit_info": {
			{Name: "azurelinux_systemd_unit_info", Labels: map[string]string{"name": "waagent.service", "load_state": "loaded", "active_state": "active", "sub_state": "running"}, Value: 1},
			{Name: "azurelinux_systemd_unit_info", Labels: map[string]string{"name": "kubelet", "load_state": "not-found", "active_state": "inactive", "sub_state": "dead"}, Value: 1},
		}},
		Collectors: map[string]CollectorState{"systemd": {Success: true}},
	}
	runCases(t, env, []kindCase{
		{"unit: {name: waagent, state: active}", true, "waagent.service is active (running)"},
		{"unit: {name: kubelet, state: active}", false, "kubelet.service is inactive (load state not-found, sub state dead)"},
		{"unit: {name: mdatp, state: active}", false, "not evaluable: mdatp.service is not in the systemd collector's watch list"},
	})
}

func TestSysctlKind(t *testing.T) {
	root := treetest.New(t, map[string]string{
		"proc/sys/kernel/kptr_restrict":             "1\n",
		"proc/sys/kernel/unprivileged_bpf_disabled": "2\n",
		"proc/sys/net/ipv4/tcp_rmem":                "4096\t131072\t6291456\n",
	})
	runCases(t, envAt(root), []kindCase{
		{"sysctl: {name: kernel.kptr_restrict, value: '1'}", true, "kernel.kptr_restrict = 1"},
		{"sysctl: {name: kernel.kptr_restrict, value: '2'}", false, "kernel.kptr_restrict = 1, want 2"},
		{"sysctl: {name: kernel.unprivileged_bpf_disabled, value: ['1', '2']}", true, ""},
		{"sysctl: {name: net.ipv4.tcp_rmem, value: '4096 131072  6291456'}", true, ""},
		{"sysctl: {name: kernel/kptr_restrict, value: '1'}", true, ""},
		{"sysctl: {name: kernel.bpf_stats_enabled, value: '0'}", false, "sysctl kernel.bpf_stats_enabled does not exist on this kernel"},
	})
}

func TestModuleKind(t *testing.T) {
	root := treetest.New(t, map[string]string{
		"proc/sys/kernel/osrelease": "6.18.31-1.3.azl4.x86_64\n",
		"proc/modules":              "hv_netvsc 98304 0 - Live 0x0000000000000000\nnvidia 1 0 - Live 0\n",
		"usr/lib/modules/6.18.31-1.3.azl4.x86_64/modules.builtin":        "kernel/drivers/hv/hv_vmbus.ko\n",
		"sys/module/nvidia/parameters/NVreg_OpenRmEnableUnsupportedGpus": "1\n",
		"sys/module/nvme/": "",
	})
	runCases(t, envAt(root), []kindCase{
		{"module: hv_netvsc", true, "module hv_netvsc is loaded"},
		{"module: hv-vmbus", true, ""},
		{"module: nvme", true, ""},
		{"module: amdgpu", false, "module amdgpu is neither loaded nor built in"},
		{"module: {name: nvidia, parameter: NVreg_OpenRmEnableUnsupportedGpus, value: '1'}", true, "= 1"},
		{"module: {name: nvidia, parameter: NVreg_OpenRmEnableUnsupportedGpus, value: '0'}", false, "want 0"},
		{"module: {name: nvidia, parameter: NVreg_Missing, value: '0'}", false, "parameter NVreg_Missing"},
	})
}

func TestRepoKind(t *testing.T) {
	var hits []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits = append(hits, r.URL.Path)
		if r.URL.Path == "/azurelinux/4.0/beta/base/x86_64/repodata/repomd.xml" {
			fmt.Fprintln(w, "<repomd/>")
			return
		}
		if r.URL.Path == "/slow/repodata/repomd.xml" {
			<-r.Context().Done()
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	root := treetest.New(t, map[string]string{
		"etc/os-release": "ID=azurelinux\nVERSION_ID=4.0\n",
		"etc/yum.repos.d/azurelinux.repo": "# comment\n[azurelinux-base]\nname=Base\nbaseurl=" + srv.URL + "/azurelinux/$releasever/beta/base/$basearch\n" +
			"        " + srv.URL + "/mirror\nenabled=1\n\n[azurelinux-debuginfo]\nbaseurl=" + srv.URL + "/debuginfo\nenabled=0\n",
		"etc/yum.repos.d/broken.repo":   "[slow]\nbaseurl=" + srv.URL + "/slow\n[gone]\nbaseurl=" + srv.URL + "/gone/\n",
		"etc/distro.repos.d/extra.repo": "[extras]\nbaseurl=https://packages.example.com/extras\nenabled = 0\n",
		"etc/yum.repos.d/garbage.repo":  "not ini\n",
	})
	env := envAt(root)
	env.Arch = "x86_64"
	runCases(t, env, []kindCase{
		{"repo: azurelinux-base", true, "[azurelinux-base] in /etc/yum.repos.d/azurelinux.repo is enabled"},
		{"repo: 'azurelinux-*'", true, "azurelinux-base"},
		{"repo: {url: " + srv.URL + "}", true, ""},
		{"repo: azurelinux-debuginfo", false, "no enabled repository matches id azurelinux-debuginfo; disabled: [azurelinux-debuginfo] in /etc/yum.repos.d/azurelinux.repo"},
		{"repo: extras", false, "disabled: [extras] in /etc/distro.repos.d/extra.repo"},
		{"repo: epel", false, "garbage.repo:1: want key=value inside a [repository] section"},
		// Metadata: fetched only when asked, over loopback here.
		{"repo: {id: azurelinux-base, metadata: true}", true, "is enabled and its first baseurl answers with repository metadata (10 bytes)"},
		{"repo: {id: gone, metadata: true}", false, "404 Not Found"},
		{"repo: {id: slow, metadata: true, timeout: 100ms}", false, "not reachable within 100ms"},
	})
	for _, h := range hits {
		if strings.Contains(h, "debuginfo") || strings.Contains(h, "mirror") {
			t.Errorf("fetched %s, which no check asked for", h)
		}
	}
	runCases(t, envAt(t.TempDir()), []kindCase{{"repo: base", false, "no repository files in /etc/yum.repos.d"}})
}

func TestExecKind(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := script("ok.sh", `echo "checked $AZURELINUX_PROBE_ROOTFS with $1"`+"\n")
	fail := script("fail.sh", "echo starting\necho 'tdnf: command not found' >&2\nexit 3\n")
	// The script's child keeps the output pipe open: the timeout must kill
	// the whole process group, not wait for the child.
	hang := script("hang.sh", "sleep 30 &\nsleep 30\n")
	// Under any root but the live one nothing runs without sandbox.
	runStatusCases(t, envAt(t.TempDir()), []statusCase{
		{"exec: [" + ok + "]", StatusSkipped, "exec checks run programs only on the live root (/), not under /tmp/"},
	})
	env := envAt("/")
	runCases(t, env, []kindCase{
		{"exec: [" + ok + ", '$(rm -rf /)']", true, "exited 0 in"},
		{"exec: [" + ok + ", '$(rm -rf /)']", true, "checked / with $(rm -rf /)"},
		{"exec: {argv: [" + fail + "], timeout: 5s}", false, "exit status 3: tdnf: command not found"},
		{"exec: [" + filepath.Join(dir, "missing.sh") + "]", false, "no such file or directory"},
	})
	start := time.Now()
	runCases(t, env, []kindCase{{"exec: {argv: [" + hang + "], timeout: 200ms}", false, "timed out after 200ms"}})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a timed-out exec check took %s", d)
	}
}

// TestEvaluateOrderAndContext: results come back in the checks' order, and
// a cancelled context fails the checks not yet run, with the reason.
func TestEvaluateOrderAndContext(t *testing.T) {
	var src strings.Builder
	src.WriteString("checks:\n")
	for i := range 20 {
		fmt.Fprintf(&src, "  - name: c%d\n    category: test\n    file: /nonexistent-%d\n", i, i)
	}
	list, err := Load("t.yml", []byte(src.String()))
	if err != nil {
		t.Fatal(err)
	}
	res := Evaluate(context.Background(), envAt(t.TempDir()), list)
	for i, r := range res {
		if r.Name != fmt.Sprintf("c%d", i) || r.Pass || r.Reason != fmt.Sprintf("/nonexistent-%d does not exist", i) {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, r := range Evaluate(ctx, envAt(t.TempDir()), list) {
		if r.Pass || !strings.Contains(r.Reason, "not evaluated: context canceled") {
			t.Errorf("cancelled: %+v", r)
		}
	}
}
