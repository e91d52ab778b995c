package checks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azurelinux-probe/azurelinux-probe/internal/treetest"
)

// TestSysctlHostileValues: a sysctl or module parameter of a checked image
// that fails its grammar is described by its size in the reason, never
// quoted; and a /proc/sys link to a canary file outside the tree resolves
// inside the tree (issue 14, case 1: kptr_restrict -> a host file).
func TestSysctlHostileValues(t *testing.T) {
	const canary = "CANARY-kptr-host-shadow"
	canaryFile := filepath.Join(t.TempDir(), "probe-canary-shadow")
	if err := os.WriteFile(canaryFile, []byte(canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := treetest.New(t, map[string]string{
		"proc/sys/kernel/kptr_restrict":             "->" + canaryFile,
		"proc/sys/kernel/dmesg_restrict":            "root:x:0:0:" + strings.Repeat("s", 400) + "\n",
		"proc/sys/kernel/yama/ptrace_scope":         "1\x1b[2K\n",
		"proc/sys/kernel/core_pattern":              "|/usr/lib/systemd/systemd-coredump %P %u %g\n",
		"proc/sys/kernel/osrelease":                 "6.18.31-1.3.azl4.x86_64\n",
		"proc/modules":                              "nvidia 1 0 - Live 0\n",
		"sys/module/nvidia/parameters/NVreg_Secret": "hunter2 is my password and more\n",
	})
	env := envAt(root)
	cases := []kindCase{
		{"sysctl: {name: kernel.kptr_restrict, value: '1'}", false, "sysctl kernel.kptr_restrict does not exist on this kernel"},
		{"sysctl: {name: kernel.dmesg_restrict, value: '1'}", false, "kernel.dmesg_restrict = invalid value, 411 bytes, want 1"},
		{"sysctl: {name: kernel.yama.ptrace_scope, value: '1'}", false, "kernel.yama.ptrace_scope = invalid value, 5 bytes, want 1"},
		{"sysctl: {name: kernel.core_pattern, value: core}", false, "kernel.core_pattern = |/usr/lib/systemd/systemd-coredump %P %u %g, want core"},
		{"module: {name: nvidia, parameter: NVreg_Secret, value: '0'}", false, "NVreg_Secret = invalid value, 31 bytes, want 0"},
	}
	for _, tc := range cases {
		pass, reason := run(t, env, tc.check)
		if pass != tc.pass || !strings.Contains(reason, tc.reason) {
			t.Errorf("%s: pass %v reason %q; want %v and %q", tc.check, pass, reason, tc.pass, tc.reason)
		}
		for _, leak := range []string{canary, "root:x", "\x1b", "hunter2"} {
			if strings.Contains(reason, leak) {
				t.Errorf("%s: reason %q quotes %q", tc.check, reason, leak)
			}
		}
	}
}
