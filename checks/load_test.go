package checks

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadValid(t *testing.T) {
	src := `
checks:
  - name: kubectl
    category: k8s_debug
    description: kubectl is on the PATH
    command: kubectl
  - name: ca
    category: fips_crypto
    file: {path: /etc/pki/tls/certs/ca-bundle.crt, type: file, mode: "0644"}
  - name: dnf5
    category: package_manager
    rpm: {name: dnf5, min_version: "5.2"}
  - name: rpm-any
    category: package_manager
    rpm: rpm
  - name: agent
    category: security_agent
    unit: {name: mdatp, state: active}
  - name: bpf-unpriv
    category: security_agent
    sysctl: {name: kernel.unprivileged_bpf_disabled, value: ["1", "2"]}
  - name: nvidia
    category: drivers
    module: {name: nvidia-uvm}
  - name: repo
    category: package_manager
    repo: {id: "azurelinux-*", metadata: true, timeout: 2s}
  - name: bootstrap
    category: golden_image
    exec: {argv: [/opt/bootstrap.sh, --dry-run], timeout: 1m}
  - name: systemd
    category: my_team
    fact: azurelinux_systemd_version >= 258
`
	got, err := Load("team.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Fatalf("loaded %d checks, want 10", len(got))
	}
	c := got[1]
	if c.Kind != "file" || c.file.path != "/etc/pki/tls/certs/ca-bundle.crt" || c.file.typ != "file" || c.file.mode != 0o644 || !c.file.hasMode {
		t.Errorf("file check: %+v %+v", c, c.file)
	}
	if c.Source != "team.yml:7" {
		t.Errorf("source %q, want team.yml:7", c.Source)
	}
	if r := got[3].rpm; r.name != "rpm" || r.minVersion != "" {
		t.Errorf("short rpm form: %+v", r)
	}
	if u := got[4].unit; u.name != "mdatp.service" || u.state != "active" {
		t.Errorf("unit: %+v", u)
	}
	if s := got[5].sysctl; strings.Join(s.values, ",") != "1,2" {
		t.Errorf("sysctl: %+v", s)
	}
	if m := got[6].module; m.name != "nvidia_uvm" {
		t.Errorf("module name not normalised: %+v", m)
	}
	if r := got[7].repo; r.id != "azurelinux-*" || !r.metadata || r.timeout != 2*time.Second {
		t.Errorf("repo: %+v", r)
	}
	if e := got[8].exec; strings.Join(e.argv, " ") != "/opt/bootstrap.sh --dry-run" || e.timeout != time.Minute {
		t.Errorf("exec: %+v", e)
	}
	if f := got[9].fact; f.Metric != "azurelinux_systemd_version" || f.Op != ">=" || f.Value != 258 || got[9].Category != "my_team" {
		t.Errorf("fact: %+v", f)
	}
}

func TestLoadEmpty(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "checks:\n", "checks: []\n"} {
		got, err := Load("x.yml", []byte(src))
		if err != nil || len(got) != 0 {
			t.Errorf("%q: %v %v", src, got, err)
		}
	}
}

// TestLoadErrors: every invalid file is rejected with its file, line and a
// reason a user can act on.
func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"yaml syntax", "checks:\n  - name: a\n    category: x\n    command: ls: x\n", "bad.yml:4: invalid YAML: mapping values are not allowed"},
		{"not a list", "checks: {a: 1}\n", "bad.yml:1: checks: want a list"},
		{"unknown top key", "check:\n  - name: a\n", `bad.yml:1: the file: unknown key "check"`},
		{"no name", "checks:\n  - category: x\n    command: ls\n", "bad.yml:2: check: missing name"},
		{"bad name", "checks:\n  - name: 'a b'\n    category: x\n    command: ls\n", `bad.yml:2: name "a b"`},
		{"no category", "checks:\n  - name: a\n    command: ls\n", `bad.yml:2: check "a": missing category`},
		{"bad category", "checks:\n  - name: a\n    category: Bad-Cat\n    command: ls\n", `bad.yml:3: check "a": category "Bad-Cat"`},
		{"no kind", "checks:\n  - name: a\n    category: x\n", `bad.yml:2: check "a": no kind: want exactly one of fact, command`},
		{"two kinds", "checks:\n  - name: a\n    category: x\n    command: ls\n    file: /etc\n", `several kinds (command, file)`},
		{"unknown key", "checks:\n  - name: a\n    category: x\n    comand: ls\n", `bad.yml:4: check: unknown key "comand"`},
		{"duplicate name", "checks:\n  - name: a\n    category: x\n    command: ls\n  - name: a\n    category: x\n    command: ls\n",
			`bad.yml:5: check "a" is already defined at line 2`},
		{"command with dir", "checks:\n  - name: a\n    category: x\n    command: /usr/bin/ls\n", `bad.yml:4: check "a": command: "/usr/bin/ls": want a command name`},
		{"relative file", "checks:\n  - name: a\n    category: x\n    file: etc/passwd\n", "want an absolute path"},
		{"bad mode", "checks:\n  - name: a\n    category: x\n    file: {path: /etc, mode: \"0999\"}\n", `mode "0999": want octal`},
		{"bad file type", "checks:\n  - name: a\n    category: x\n    file: {path: /etc, type: link}\n", `type "link": want file, dir or any`},
		{"file no path", "checks:\n  - name: a\n    category: x\n    file: {type: dir}\n", "missing path"},
		{"bad rpm version", "checks:\n  - name: a\n    category: x\n    rpm: {name: rpm, min_version: \">= 6\"}\n", `min_version ">= 6"`},
		{"bad unit state", "checks:\n  - name: a\n    category: x\n    unit: {name: sshd, state: running}\n", `state "running": want enabled or active`},
		{"sysctl without value", "checks:\n  - name: a\n    category: x\n    sysctl: {name: kernel.x}\n", "want name and value"},
		{"sysctl bad name", "checks:\n  - name: a\n    category: x\n    sysctl: {name: ../../etc/shadow, value: x}\n", "is not a sysctl name"},
		{"module parameter alone", "checks:\n  - name: a\n    category: x\n    module: {name: nvidia, parameter: x}\n", "parameter and value go together"},
		{"repo empty", "checks:\n  - name: a\n    category: x\n    repo: {metadata: true}\n", "want id, url or both"},
		{"repo bad timeout", "checks:\n  - name: a\n    category: x\n    repo: {id: base, timeout: 2h}\n", "at most 1m0s"},
		{"exec relative", "checks:\n  - name: a\n    category: x\n    exec: [bootstrap.sh]\n", `argv[0] "bootstrap.sh": want an absolute path`},
		{"exec string", "checks:\n  - name: a\n    category: x\n    exec: /bin/true && rm -rf /\n", "want a mapping"},
		{"exec no argv", "checks:\n  - name: a\n    category: x\n    exec: {timeout: 1s}\n", "want argv"},
		{"fact syntax", "checks:\n  - name: a\n    category: x\n    fact: azurelinux_kernel_info{series=6.18}\n", `bad.yml:4: check "a": fact: condition`},
		{"fact bad op", "checks:\n  - name: a\n    category: x\n    fact: azurelinux_systemd_version => 258\n", `unexpected "=> 258": want a comparison`},
		{"two documents", "checks: []\n---\nchecks: []\n", "more than one YAML document"},
		{"binary", "checks:\x00", "binary data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("bad.yml", []byte(tc.src))
			if err == nil {
				t.Fatalf("loaded without error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
			var le *Error
			if !errors.As(err, &le) || le.File != "bad.yml" {
				t.Errorf("error %v is not an *Error naming the file", err)
			}
		})
	}
}

// TestLoadReportsEveryError: a file with several mistakes names them all, so
// a user fixes them in one go.
func TestLoadReportsEveryError(t *testing.T) {
	src := "checks:\n  - name: a\n    category: x\n    command: /ls\n  - name: b\n    category: x\n    rpm: {name: rpm, min_version: 'x y'}\n"
	_, err := Load("f.yml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "f.yml:4:") || !strings.Contains(err.Error(), "f.yml:7:") {
		t.Errorf("error %v, want both f.yml:4 and f.yml:7", err)
	}
}

func TestEmbeddedMatrixLoads(t *testing.T) {
	got, err := Load(EmbeddedName, Embedded)
	if err != nil {
		t.Fatal(err)
	}
	cats := map[string]bool{}
	for _, c := range got {
		cats[c.Category] = true
		if c.Description == "" {
			t.Errorf("%s has no description", c.Name)
		}
	}
	for _, want := range []string{"golden_image", "package_manager", "vuln_scanner", "fips_crypto", "security_agent", "drivers"} {
		if !cats[want] {
			t.Errorf("embedded matrix has no %s check", want)
		}
	}
}

func TestLoadAll(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("10-team.yml", "checks:\n  - name: kubectl\n    category: k8s_debug\n    command: kubectl\n")
	write("README.md", "not a checks file")
	write(".hidden.yml", "garbage: [")
	got, err := LoadAll(true, dir)
	if err != nil {
		t.Fatal(err)
	}
	emb, _ := Load(EmbeddedName, Embedded)
	if len(got) != len(emb)+1 || got[len(got)-1].Name != "kubectl" {
		t.Errorf("LoadAll: %d checks, want the %d embedded then kubectl", len(got), len(emb))
	}
	if got, err := LoadAll(false, filepath.Join(dir, "missing")); err != nil || len(got) != 0 {
		t.Errorf("missing dir: %v %v", got, err)
	}

	// A missing directory is an error when it was asked for.
	if _, err := LoadDir(false, filepath.Join(dir, "missing"), true); err == nil || err.Error() != "checks directory "+filepath.Join(dir, "missing")+" does not exist" {
		t.Errorf("missing required dir: %v", err)
	}
	// Files that are not checks files are listed.
	if set, err := LoadDir(false, dir, true); err != nil || len(set.Ignored) != 1 || set.Ignored[0] != filepath.Join(dir, "README.md") {
		t.Errorf("ignored: %v %v", set.Ignored, err)
	}

	// A user's check named as an embedded one replaces it, in its place.
	write("20-dup.yaml", "checks:\n  - name: rpm-6\n    category: x\n    rpm: rpm\n")
	set, err := LoadDir(true, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Checks) != len(emb)+1 || len(set.Replaced) != 1 || set.Replaced[0] != "rpm-6: "+filepath.Join(dir, "20-dup.yaml")+":2" {
		t.Errorf("replaced: %d checks, %v", len(set.Checks), set.Replaced)
	}
	for i, c := range set.Checks {
		if c.Name == "rpm-6" && (c.Category != "x" || emb[i].Name != "rpm-6") {
			t.Errorf("rpm-6 replaced as %+v at %d", c, i)
		}
	}
	// Two of the user's files may not define one name.
	write("30-dup.yaml", "checks:\n  - name: kubectl\n    category: x\n    rpm: rpm\n")
	_, err = LoadAll(true, dir)
	if err == nil || !strings.Contains(err.Error(), "30-dup.yaml:2: check \"kubectl\" is already defined at "+filepath.Join(dir, "10-team.yml")+":2") {
		t.Errorf("duplicate across files: %v", err)
	}
}

// TestExamplesLoad keeps the example checks files in examples/checks.d
// valid, and free of names that clash with the embedded matrix.
func TestExamplesLoad(t *testing.T) {
	got, err := LoadAll(true, "../examples/checks.d")
	if err != nil {
		t.Fatal(err)
	}
	emb, _ := Load(EmbeddedName, Embedded)
	if len(got) <= len(emb) {
		t.Errorf("no example checks loaded")
	}
}

// TestLoadValidatesFacts: a fact condition is checked against the declared
// facts when its file loads. Each error is the whole message a user sees:
// file, line, check and the nearest declared name.
func TestLoadValidatesFacts(t *testing.T) {
	for _, tc := range []struct{ fact, want string }{
		{`none azurelinux_gpu_devise_info{driver=""}`,
			`team.yml:4: check "gpu": fact: unknown metric azurelinux_gpu_devise_info: no collector declares it (did you mean azurelinux_gpu_device_info?)`},
		{`azurelinux_nothing_like_this_at_all == 1`,
			`team.yml:4: check "gpu": fact: unknown metric azurelinux_nothing_like_this_at_all: no collector declares it`},
		{`none azurelinux_gpu_device_info{drivr=""}`,
			`team.yml:4: check "gpu": fact: azurelinux_gpu_device_info has no label drivr (did you mean driver?)`},
		{`azurelinux_kernel_module_loaded{name="nvidia"}`,
			`team.yml:4: check "gpu": fact: azurelinux_kernel_module_loaded has no label name (its labels: module)`},
		{`azurelinux_kernel_tainted{flag="P"} == 0`,
			`team.yml:4: check "gpu": fact: azurelinux_kernel_tainted has no label flag (it has no labels)`},
		// The user's regular expression is validated alone: wrapped as
		// ^(?:nv)|(zz)$ it would compile and match nvidia-extra unanchored.
		{`none azurelinux_gpu_device_info{driver=~"nv)|(zz"}`,
			`team.yml:4: check "gpu": fact: condition "none azurelinux_gpu_device_info{driver=~\"nv)|(zz\"}": at column 50: label driver: invalid regular expression: error parsing regexp: unexpected ): ` + "`nv)|(zz`"},
	} {
		src := "checks:\n  - name: gpu\n    category: drivers\n    fact: '" + tc.fact + "'\n"
		_, err := Load("team.yml", []byte(src))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got %v\nwant %s", tc.fact, err, tc.want)
		}
	}
}
