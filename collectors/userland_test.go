package collectors

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/treetest"
)

// The outputs below are the real output formats of dnf5 (with its plugin
// list), dnf, tdnf, rpm, openssl, systemd, glibc and python3, observed
// variants included.
func TestVersionParsers(t *testing.T) {
	dnf5Plugins := "dnf5 version 5.2.16.0\ndnf5 plugin API version 2.0\nlibdnf5 version 5.2.16.0\nlibdnf5 plugin API version 2.x\n\n" +
		"Loaded dnf5 plugins:\n  name: builddep\n  version: 1.0.0\n  API version: 2.0\n\n  name: changelog\n  version: 1.0.0\n  API version: 2.0\n"
	for _, tc := range []struct {
		tool, out, want string
	}{
		{"dnf5", dnf5Plugins, "5.2.16.0"},
		{"dnf5", "dnf5 version 5.4.3.0\ndnf5 plugin API version 2.0\nlibdnf5 version 5.4.3.0\nlibdnf5 plugin API version 2.2\n", "5.4.3.0"},
		{"dnf5", "Python 3.14.0\n", ""},
		{"dnf", dnf5Plugins, "5.2.16.0"},
		{"dnf", "4.14.0\n  Installed: dnf-0:4.14.0-1.fc38.noarch at Mon 01 Jan 2024\n", "4.14.0"},
		{"dnf", "4.14.0\n", "4.14.0"},
		{"tdnf", "tdnf: 3.5.8\n", "3.5.8"},
		{"tdnf", "dnf5 version 5.2.18.0\ndnf5 plugin API version 2.0\n", "5.2.18.0"},
		{"tdnf", `{"Name":"tdnf","Version":"3.5.8"}`, ""},
		{"rpm", "RPM version 4.16.1.3\n", "4.16.1.3"},
		{"rpm", "RPM version 6.0.1\n", "6.0.1"},
		{"openssl", "OpenSSL 3.5.4 30 Sep 2025 (Library: OpenSSL 3.5.4 30 Sep 2025)\n", "3.5.4"},
		{"openssl", "OpenSSL 3.2.2 4 Jun 2024 (Library: OpenSSL 3.2.2 4 Jun 2024) FIPS\n", "3.2.2"},
		{"openssl", "LibreSSL 3.8.2\n", ""},
		{"systemd", "systemd 258 (258)\n+PAM +AUDIT -SELINUX\n", "258"},
		{"systemd", "systemd 258 (258.1-1.fc43)\n+PAM\n", "258.1-1.fc43"},
		{"systemd", "systemd 258 (258.1-1-arch)\n", "258.1-1-arch"},
		{"systemd", "systemd 258 (258.10-1.fcrawhide)\n", "258.10-1.fcrawhide"},
		{"systemd", "systemd 262~rc3 (262~rc3-1.fc45)\n", "262~rc3-1.fc45"},
		{"systemd", "systemd 255 (255.4-1ubuntu8)\n+PAM default-hierarchy=unified\n", "255.4-1ubuntu8"},
		{"systemd", "systemd 245\n", "245"},
		{"python3", "Python 3.14.0\n", "3.14.0"},
		{"python3", "Python 3.14.0rc2\n", "3.14.0rc2"},
		{"glibc", "ldd (GNU libc) 2.42\nCopyright (C) 2025 Free Software Foundation, Inc.\n", "2.42"},
		{"glibc", "ldd (Ubuntu GLIBC 2.39-0ubuntu8.4) 2.39\nCopyright (C) 2024 Free Software Foundation, Inc.\n", "2.39"},
		{"glibc", "ldd (Debian GLIBC 2.36-9+deb12u14) 2.36\n", "2.36"},
		{"glibc", "musl libc (x86_64)\nVersion 1.2.5\n", ""},
	} {
		var parse func(string) (string, bool)
		for _, tl := range tools {
			if tl.name == tc.tool {
				parse = tl.parse
			}
		}
		got, ok := parse(tc.out)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("%s parser on %q: got %q, %v; want %q", tc.tool, truncate(tc.out, 40), got, ok, tc.want)
		}
	}
}

func newTestUserland(t *testing.T, root, exec string) *userlandCollector {
	t.Helper()
	o := defaultUserlandOptions()
	o.Exec = exec
	o.CommandTimeout = 500 * time.Millisecond
	c, err := newUserlandCollector(Env{Paths: DefaultPaths(root), Logger: slog.New(slog.DiscardHandler)}, o)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*userlandCollector)
}

func tree(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata/trees", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUserlandTrees runs the stand-in tools of the fixture trees (which print
// the real output formats) and reads their files.
func TestUserlandTrees(t *testing.T) {
	for _, tc := range []struct {
		tree, exec string
		want       []string
		absent     []string
	}{
		{"azl4-azure-gen2", execAlways, []string{
			`azurelinux_userland_tool_info{path="/usr/bin/dnf5",tool="dnf5",version="5.2.18.0"} 1`,
			`azurelinux_userland_tool_info{path="/usr/bin/tdnf",tool="tdnf",version="5.2.18.0"} 1`,
			`azurelinux_userland_tool_symlink_info{target="dnf5",tool="tdnf"} 1`,
			`azurelinux_userland_tool_info{path="/usr/bin/rpm",tool="rpm",version="6.0.1"} 1`,
			`azurelinux_userland_tool_info{path="/usr/bin/openssl",tool="openssl",version="3.5.4"} 1`,
			`azurelinux_userland_tool_info{path="/usr/bin/systemctl",tool="systemd",version="258.4-4.azl4"} 1`,
			`azurelinux_userland_tool_info{path="/usr/bin/python3",tool="python3",version="3.14.3"} 1`,
			`azurelinux_userland_tool_symlink_info{target="python3.14",tool="python3"} 1`,
			`azurelinux_userland_tool_info{path="/usr/bin/ldd",tool="glibc",version="2.42"} 1`,
			`azurelinux_userland_tool_present{tool="dnf5"} 1`,
			`azurelinux_userland_tool_present{tool="tdnf"} 1`,
			`azurelinux_userland_tool_present{tool="dnf"} 0`,
			`azurelinux_rpmdb_info{backend="sqlite",path="/usr/lib/sysimage/rpm/rpmdb.sqlite"} 1`,
			`azurelinux_crypto_policy_info{policy="DEFAULT"} 1`,
			`azurelinux_selinux_mode 2`,
		}, []string{`tool="dnf",version`}},
		{"azl3", execAlways, []string{
			`azurelinux_userland_tool_info{path="/usr/bin/tdnf",tool="tdnf",version="3.5.8"} 1`,
			`azurelinux_userland_tool_present{tool="dnf5"} 0`,
			`azurelinux_userland_tool_info{path="/usr/bin/rpm",tool="rpm",version="4.18.2"} 1`,
			`azurelinux_userland_tool_info{path="/usr/bin/openssl",tool="openssl",version="3.3.5"} 1`,
			`azurelinux_userland_tool_info{path="/usr/bin/systemctl",tool="systemd",version="255"} 1`,
			`azurelinux_userland_tool_info{path="/usr/bin/python3",tool="python3",version="3.12.9"} 1`,
			`azurelinux_userland_tool_info{path="/usr/bin/ldd",tool="glibc",version="2.38"} 1`,
			`azurelinux_rpmdb_info{backend="sqlite",path="/var/lib/rpm/rpmdb.sqlite"} 1`,
			// selinux=0 world: the LSM list lacks selinux, whatever the config says.
			`azurelinux_selinux_mode 0`,
		}, []string{`tool="tdnf",target`, "azurelinux_crypto_policy_info"}},
		// With exec: live under a root that is not "/", nothing runs:
		// versions come from the libraries where they tell.
		{"azl4-azure-gen2", execLive, []string{
			`azurelinux_userland_tool_info{path="/usr/bin/ldd",tool="glibc",version="2.42"} 1`,
			`azurelinux_userland_tool_info{path="/usr/bin/openssl",tool="openssl",version="3.5.4"} 1`,
			`azurelinux_userland_tool_info{path="/usr/bin/systemctl",tool="systemd",version="258.4-4.azl4"} 1`,
			`azurelinux_userland_tool_symlink_info{target="dnf5",tool="tdnf"} 1`,
			`azurelinux_userland_tool_present{tool="rpm"} 1`,
		}, []string{`tool="rpm",version`, `tool="dnf5",version`, `tool="python3",version`}},
		{"azl3", execNever, []string{
			`azurelinux_userland_tool_info{path="/usr/bin/ldd",tool="glibc",version="2.38"} 1`,
			`azurelinux_userland_tool_info{path="/usr/bin/systemctl",tool="systemd",version="255"} 1`,
		}, []string{`tool="tdnf",version`}},
		{"empty", execAlways, []string{
			`azurelinux_userland_tool_present{tool="rpm"} 0`,
		}, []string{"azurelinux_userland_tool_info", "azurelinux_rpmdb_info", "azurelinux_selinux_mode"}},
	} {
		t.Run(tc.tree+"/"+tc.exec, func(t *testing.T) {
			c := newTestUserland(t, tree(t, tc.tree), tc.exec)
			got, err := update(t, c, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			wantSamples(t, got, tc.want...)
			for _, a := range tc.absent {
				for _, g := range got {
					if strings.Contains(g, a) {
						t.Errorf("unexpected %s", g)
					}
				}
			}
			if n := len(withPrefix(got, "azurelinux_userland_tool_present")); n != len(tools) {
				t.Errorf("%d tool_present series, want one per tool (%d)", n, len(tools))
			}
		})
	}
}

// TestUserlandBrokenTools: a hung tool times out, one that prints megabytes
// is cut off, garbage and failures are errors naming the command; none of
// them delays the refresh beyond one command timeout, and the facts that
// could be read are still served.
func TestUserlandBrokenTools(t *testing.T) {
	c := newTestUserland(t, tree(t, "broken"), execAlways)
	start := time.Now()
	got, err := update(t, c, 10*time.Second)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("refresh took %s with a 500ms command timeout", d)
	}
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"python3: /usr/bin/python3 --version: no answer within 500ms",
		"openssl: /usr/bin/openssl version: output exceeds 64 KiB",
		`rpm: /usr/bin/rpm --version: unexpected output (binary data)`,
		`glibc: /usr/bin/ldd --version: exit status 1 (output "ldd: cannot run")`,
		`dnf5: /usr/bin/dnf5 --version: unexpected output (binary data)`,
		"rpmdb: " + tree(t, "broken") + "/usr/lib/sysimage/rpm/rpmdb.sqlite is not a sqlite database",
		"crypto policy: " + tree(t, "broken") + "/etc/crypto-policies/state/current: want one policy name, got 2 lines",
		`selinux: ` + tree(t, "broken") + `/sys/fs/selinux/enforce: want 0 or 1 (invalid value, 9 bytes)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	wantSamples(t, got,
		`azurelinux_userland_tool_present{tool="python3"} 1`,
		// A dangling link is not the tool.
		`azurelinux_userland_tool_present{tool="tdnf"} 0`,
	)
	if n := len(withPrefix(got, "azurelinux_userland_tool_info")); n != 0 {
		t.Errorf("broken tools reported versions: %v", withPrefix(got, "azurelinux_userland_tool_info"))
	}
}

// TestUserlandHungToolKilledWithItsChildren: a tool that hangs in a child
// process is killed with its whole process group at the timeout, so that no
// process is left behind. The tool sleeps for a duration unique to this
// run, so that other tests running the fixture trees at the same time (go
// test runs packages in parallel) cannot be mistaken for a survivor.
func TestUserlandHungToolKilledWithItsChildren(t *testing.T) {
	root := t.TempDir()
	marker := fmt.Sprintf("597.%d", os.Getpid())
	bin := filepath.Join(root, "usr/bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nsleep " + marker + "\necho 'Python 3.14.3'\n"
	if err := os.WriteFile(filepath.Join(bin, "python3"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	c := newTestUserland(t, root, execAlways)
	_, err := update(t, c, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "python3: /usr/bin/python3 --version: no answer within 500ms") {
		t.Fatalf("error %v", err)
	}
	// SIGKILL is delivered to the whole group at once; the child's exit
	// (and its /proc entry turning into a nameless zombie) follows.
	deadline := time.Now().Add(5 * time.Second)
	for len(processesRunning("sleep\x00"+marker+"\x00")) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the hung tool's child survives: %v", processesRunning("sleep\x00"+marker+"\x00"))
		}
		runtime.Gosched()
	}
}

// processesRunning returns the PIDs of processes whose command line is
// cmdline (NUL-separated, as /proc shows it).
func processesRunning(cmdline string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && string(b) == cmdline {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestRPMDBReal: a database made by rpm itself (Debian's rpm package makes
// the same sqlite database as Azure Linux's) is recognised at the Azure
// Linux 4.0 location; ndb and bdb are recognised by their magic.
func TestRPMDBReal(t *testing.T) {
	if _, err := exec.LookPath("rpm"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("rpm is not installed (make test installs it)")
		}
		t.Skip("rpm is not installed (make test installs it)")
	}
	root := t.TempDir()
	dbpath := filepath.Join(root, "usr/lib/sysimage/rpm")
	if out, err := exec.Command("rpm", "--initdb", "--dbpath", dbpath, "--define", "_db_backend sqlite").CombinedOutput(); err != nil {
		t.Fatalf("rpm --initdb: %v\n%s", err, out)
	}
	os.MkdirAll(filepath.Join(root, "var/lib"), 0o755)
	os.Symlink("../../usr/lib/sysimage/rpm", filepath.Join(root, "var/lib/rpm"))
	got, err := update(t, newTestUserland(t, root, execNever), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wantSamples(t, got, `azurelinux_rpmdb_info{backend="sqlite",path="/usr/lib/sysimage/rpm/rpmdb.sqlite"} 1`)
	if n := len(withPrefix(got, "azurelinux_rpmdb_info")); n != 1 {
		t.Errorf("%d rpmdb series, want 1 (/var/lib/rpm links to the same database)", n)
	}

}

func TestCryptoPolicy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		want    string // "" for no sample
		wantErr string
	}{
		{"applied", map[string]string{"etc/crypto-policies/state/current": "FIPS:OSPP\n",
			"etc/crypto-policies/config": "DEFAULT\n"}, "FIPS:OSPP", ""},
		{"configured only", map[string]string{"etc/crypto-policies/config": "# set by the image\n\nFIPS\n"}, "FIPS", ""},
		{"neither", map[string]string{}, "", ""},
		{"config without a policy", map[string]string{"etc/crypto-policies/config": "# nothing\n"}, "", "no policy"},
		{"garbage", map[string]string{"etc/crypto-policies/state/current": "DEFAULT; rm -rf\n"}, "", "not a policy name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := treetest.New(t, tc.files)
			got, err := update(t, newTestUserland(t, root, execNever), 5*time.Second)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
			p := withPrefix(got, "azurelinux_crypto_policy_info")
			if tc.want == "" && len(p) != 0 || tc.want != "" && (len(p) != 1 || p[0] != `azurelinux_crypto_policy_info{policy="`+tc.want+`"} 1`) {
				t.Errorf("got %v, want %q", p, tc.want)
			}
		})
	}
}

func TestSELinuxMode(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string // "" for no sample
	}{
		{"selinuxfs enforcing", map[string]string{"sys/fs/selinux/enforce": "1"}, "2"},
		{"selinuxfs permissive", map[string]string{"sys/fs/selinux/enforce": "0", "etc/selinux/config": "SELINUX=enforcing\n"}, "1"},
		{"selinux=0 on the command line", map[string]string{"proc/cmdline": "root=/dev/sda2 ro selinux=0 console=ttyS0\n",
			"etc/selinux/config": "SELINUX=enforcing\n"}, "0"},
		{"not in the LSM list", map[string]string{"sys/kernel/security/lsm": "lockdown,capability,yama,bpf",
			"etc/selinux/config": "SELINUX=enforcing\n"}, "0"},
		{"config only", map[string]string{"etc/selinux/config": "# comment\nSELINUX=permissive\nSELINUXTYPE=targeted\n"}, "1"},
		{"config disabled", map[string]string{"etc/selinux/config": "SELINUX=disabled\n"}, "0"},
		{"nothing", map[string]string{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := treetest.New(t, tc.files)
			got, err := update(t, newTestUserland(t, root, execNever), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			mode := withPrefix(got, "azurelinux_selinux_mode")
			if tc.want == "" && len(mode) != 0 || tc.want != "" && (len(mode) != 1 || mode[0] != "azurelinux_selinux_mode "+tc.want) {
				t.Errorf("got %v, want %q", mode, tc.want)
			}
		})
	}
}

// TestUserlandLive runs the collector on this machine and compares each
// version with the tool's own answer.
func TestUserlandLive(t *testing.T) {
	c := newTestUserland(t, "/", execLive)
	c.opts.CommandTimeout = 10 * time.Second
	got, err := update(t, c, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, tl := range tools {
		path, _ := c.lookup(tl.bin)
		if path == "" {
			wantSamples(t, got, fmt.Sprintf(`azurelinux_userland_tool_present{tool="%s"} 0`, tl.name))
			continue
		}
		out, err := exec.Command(path, tl.args...).CombinedOutput()
		if err != nil {
			t.Logf("%s %v: %v", path, tl.args, err)
		}
		v, ok := tl.parse(string(out))
		if !ok {
			t.Errorf("%s %v printed %q, which the parser does not read", path, tl.args, out)
			continue
		}
		wantSamples(t, got, fmt.Sprintf(`azurelinux_userland_tool_info{path="%s",tool="%s",version="%s"} 1`, path, tl.name, v))
		t.Logf("%s %s", tl.name, v)
	}
	// Every Linux with a C library has ldd.
	if !regexp.MustCompile(`tool="glibc",version="2\.\d+`).MatchString(strings.Join(got, "\n")) {
		t.Errorf("no glibc version on this machine:\n%s", strings.Join(got, "\n"))
	}
}

func TestUserlandOptionsValidated(t *testing.T) {
	for _, o := range []userlandOptions{{Exec: "sometimes", CommandTimeout: time.Second}, {Exec: execLive}} {
		if _, err := newUserlandCollector(Env{Paths: DefaultPaths("/")}, &o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
