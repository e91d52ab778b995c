package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckMisuse: each way a pipeline could get a green build from a
// mistake has its exact message and exit status (issue 15).
func TestCheckMisuse(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join(treesDir, "azl4-azure-gen2"))
	dir := t.TempDir()
	writeChecks(t, dir, "ok.yml", passingChecks)
	writeChecks(t, dir, "notes.txt", "checks:\n  - name: never\n")
	broken, _ := filepath.Abs(filepath.Join(treesDir, "broken"))
	osDir := t.TempDir()
	writeChecks(t, osDir, "os.yml", "checks:\n  - name: os\n    category: golden_image\n    fact: azurelinux_os_version >= 4\n")
	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		stderr     string // exact, unless empty
		stdoutHave string
	}{
		{name: "checks dir typo", args: []string{"--no-checks.embedded", "--checks.dir=/does/not/exist"},
			code: 2, stderr: "azurelinux-probe: invalid checks:\nchecks directory /does/not/exist does not exist\n"},
		{name: "explicit dir missing beside the embedded matrix", args: []string{"--checks.dir=/does/not/exist"},
			code: 2, stderr: "azurelinux-probe: invalid checks:\nchecks directory /does/not/exist does not exist\n"},
		{name: "nothing to check", args: []string{"--no-checks.embedded", "--checks.dir=" + t.TempDir()},
			code: 2, stderr: "azurelinux-probe: no checks to evaluate (embedded false, --checks.dir "},
		{name: "unknown skip name", args: []string{"--checks.skip=rpm-7"},
			code: 2, stderr: "azurelinux-probe: --checks.skip: no check \"rpm-7\" (did you mean rpm-6?)\n"},
		{name: "the old baseline spelling", args: []string{"--baseline=x.json"},
			code: 2, stderr: "azurelinux-probe: unknown long flag '--baseline'\n"},
		{name: "ignored files are listed", args: []string{"--no-checks.embedded", "--checks.dir=" + dir},
			code: 0, stdoutHave: "ignored (not *.yml or *.yaml): " + filepath.Join(dir, "notes.txt") + "\n"},
		// The collector a check reads failed: not a pass, not a finding.
		{name: "failed collector", args: []string{"--path.rootfs=" + broken, "--no-checks.embedded", "--checks.dir=" + osDir, "--collector.disable-defaults", "--collector.os"},
			code: 2, stdoutHave: "os     golden_image  ERROR   the os collector failed: " + broken + "/etc/os-release: line 4 (PRETTY_NAME): unterminated double quote (on its partial facts: azurelinux_os_version{id=\"azurelinux\"} 4)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if !strings.Contains(strings.Join(args, " "), "--path.rootfs") {
				args = append(args, "--path.rootfs="+root)
			}
			code, out, stderr := runCheck(t, args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, stderr)
			}
			if tc.stderr != "" && !(stderr == tc.stderr || strings.HasSuffix(tc.stderr, " ") && strings.HasPrefix(stderr, tc.stderr)) {
				t.Errorf("stderr %q, want %q", stderr, tc.stderr)
			}
			if !strings.Contains(out, tc.stdoutHave) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdoutHave, out)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Fatal(err)
	}
}

// TestCheckHelpDocumentsExitCodes: --help says what each exit status means.
func TestCheckHelpDocumentsExitCodes(t *testing.T) {
	_, out, _ := runCheck(t, "--help")
	for _, want := range []string{"Exit status: 0 every check passed or was skipped; 1 one failed", "2 one was an error, or bad usage"} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Errorf("check --help lacks %q:\n%s", want, out)
		}
	}
}
