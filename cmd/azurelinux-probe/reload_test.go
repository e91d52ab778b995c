package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestServeReloadIndependent: on SIGHUP the config file and the checks files
// reload on their own, a broken one of either does not block the other, and
// azurelinux_probe_config_last_reload_successful says whether everything
// loaded.
func TestServeReloadIndependent(t *testing.T) {
	tree, _ := filepath.Abs(filepath.Join(treesDir, "azl4-azure-gen2"))
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yml")
	checksDir := filepath.Join(dir, "checks.d")
	os.Mkdir(checksDir, 0o755)
	put(t, config, "collectors:\n  os:\n    interval: 1h\n")
	put(t, filepath.Join(checksDir, "a.yml"), "checks:\n  - name: first\n    category: mine\n    file: /etc/os-release\n")
	p := startProbe(t, "--web.listen-address=127.0.0.1:0", "--path.rootfs="+tree, "--config.file="+config,
		"--checks.dir="+checksDir, "--no-checks.embedded", "--collector.disable-defaults", "--collector.os", "--collector.kernel")
	p.waitMetrics(`azurelinux_check_status{category="mine",check="first"} 1`)
	if _, body := p.get("/metrics"); !strings.Contains(body, "azurelinux_probe_config_last_reload_successful 1\n") ||
		!strings.Contains(body, "azurelinux_probe_config_last_reload_success_timestamp_seconds ") {
		t.Fatalf("after start:\n%s", grepLines(body, "config_last_reload"))
	}

	// A broken config file, valid new checks: the checks reload.
	put(t, config, "collectors:\n  os:\n    intervall: 1h\n")
	put(t, filepath.Join(checksDir, "b.yml"), "checks:\n  - name: second\n    category: mine\n    file: /etc/os-release\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	line := p.waitLog("reload: invalid configuration, keeping the running collectors")
	if !strings.Contains(line, config+`:3:5: collectors.os: unknown key \"intervall\" (did you mean \"interval\"?)`) {
		t.Errorf("log: %s", line)
	}
	body := p.waitMetrics(`azurelinux_check_status{category="mine",check="second"} 1`)
	if !strings.Contains(body, "azurelinux_probe_config_last_reload_successful 0\n") {
		t.Errorf("after a broken config file:\n%s", grepLines(body, "config_last_reload"))
	}
	if !strings.Contains(body, `azurelinux_probe_collector_success{collector="kernel"} 1`) {
		t.Errorf("the running collectors were dropped:\n%s", grepLines(body, "collector_success"))
	}

	// A valid config file that disables kernel, broken checks: the
	// collectors reload, the previous checks keep running.
	put(t, config, "collectors:\n  os:\n    interval: 1h\n")
	put(t, filepath.Join(checksDir, "b.yml"), "checks:\n  - name: second\n    category: mine\n    fille: /etc/os-release\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog("invalid checks, keeping the previous checks")
	body = p.waitMetrics("azurelinux_checks_config_valid 0")
	if !strings.Contains(body, "azurelinux_probe_config_last_reload_successful 0\n") ||
		!strings.Contains(body, `azurelinux_check_status{category="mine",check="second"} 1`) {
		t.Errorf("after broken checks:\n%s", grepLines(body, "config_last_reload")+grepLines(body, "check_status"))
	}

	// Both fixed: 1 again.
	os.Remove(filepath.Join(checksDir, "b.yml"))
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog("configuration reloaded")
	body = p.waitMetrics("azurelinux_checks_config_valid 1")
	if !strings.Contains(body, "azurelinux_probe_config_last_reload_successful 1\n") {
		t.Errorf("after fixing both:\n%s", grepLines(body, "config_last_reload"))
	}
}

// TestCheckConfig: check-config names the file, line and column of each
// problem in words, with the nearest valid key, in the config file (the
// options of a disabled collector too), the checks files and the web
// config; exit 1, and 0 once they are valid.
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yml")
	checksDir := filepath.Join(dir, "checks.d")
	web := filepath.Join(dir, "web.yml")
	put(t, config, `collectors:
  userland:
    exce: sandbox
    command_timeout: soon
  kernal:
    interval: 1m
  gpu:
    interval: 5
`)
	put(t, filepath.Join(checksDir, "team.yml"), "checks:\n  - name: jq\n    category: k8s_debug\n    comand: jq\n")
	put(t, filepath.Join(checksDir, "README.md"), "not a checks file\n")
	put(t, web, "tls_server_config:\n  cert_fil: /etc/cert.pem\nbasic_auth_users:\n  admin: [x]\n")
	args := []string{"check-config", "--config.file=" + config, "--checks.dir=" + checksDir, "--web.config.file=" + web}
	code, out, stderr := runImage(t, args...)
	want := config + `:3:5: collectors.userland: unknown key "exce" (did you mean "exec"?)
` + config + `:4:22: collectors.userland.command_timeout: want a duration such as 30s or 5m, got "soon"
` + config + `:5:3: collectors: unknown collector "kernal" (did you mean "kernel"?)
` + config + `:8:15: collectors.gpu.interval: want a duration such as 30s or 5m, got "5"
` + filepath.Join(checksDir, "team.yml") + `:4:5: check: unknown key "comand" (did you mean "command"?)
` + web + `:2:3: tls_server_config: unknown key "cert_fil" (did you mean "cert_file"?)
` + web + `:4:10: basic_auth_users.admin: want a string, got a list
azurelinux-probe: 7 problems
`
	if code != 1 || stderr != want || out != "" {
		t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant 1 and:\n%s", code, out, stderr, want)
	}

	// The options of a disabled collector are validated too, with the
	// option's place.
	put(t, config, "collectors:\n  systemd:\n    units: [sshd, \"bad name\"]\n")
	code, _, stderr = runImage(t, "check-config", "--config.file="+config, "--checks.dir="+t.TempDir(), "--no-collector.systemd")
	if want := config + ":3:12: collectors.systemd: units: \"bad name\" is not a systemd unit name\nazurelinux-probe: 1 problems\n"; code != 1 || stderr != want {
		t.Errorf("disabled collector: exit %d, stderr %q, want %q", code, stderr, want)
	}
	// The daemon refuses it as well, though the collector is disabled.
	code, _, stderr = runImage(t, "facts", "--config.file="+config, "--path.rootfs="+t.TempDir(), "--no-collector.systemd")
	if code != 2 || !strings.Contains(stderr, `units: \"bad name\" is not a systemd unit name`) {
		t.Errorf("facts with a disabled collector's bad option: exit %d, %s", code, stderr)
	}

	put(t, config, "collectors:\n  userland:\n    exec: never\n")
	os.Remove(filepath.Join(checksDir, "team.yml"))
	put(t, web, "http_server_config:\n  http2: true\n")
	code, out, stderr = runImage(t, args...)
	wantOut := config + ": valid\n" + checksDir + ": " + fmt.Sprint(embeddedChecks(t)) + " checks valid\nignored (not *.yml or *.yaml): " + filepath.Join(checksDir, "README.md") + "\n" + web + ": valid\n"
	if code != 0 || out != wantOut {
		t.Errorf("valid: exit %d, stdout %q, stderr %q; want 0 and %q", code, out, stderr, wantOut)
	}
}

// embeddedChecks is the number of checks of the embedded matrix.
func embeddedChecks(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("../../checks/azurelinux-4.0.yml")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n  - name: ")
}
