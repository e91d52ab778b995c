package checks

import (
	"testing"

	"github.com/azurelinux-probe/azurelinux-probe/internal/treetest"
)

// TestSysctlOnImage: on an image (no procfs content) a sysctl check reads
// what the sysctl.d files configure, in systemd-sysctl's order: a file in
// /etc replaces one of the same name in /usr/lib, later files win, both key
// spellings, globs; a sysctl no file sets is skipped.
func TestSysctlOnImage(t *testing.T) {
	root := treetest.New(t, map[string]string{
		"proc/":                                 "",
		"sys/":                                  "",
		"usr/lib/sysctl.d/50-default.conf":      "kernel.kptr_restrict = 2\nkernel.yama.ptrace_scope=3\n",
		"etc/sysctl.d/50-default.conf":          "# replaces /usr/lib's file of this name\nkernel.kptr_restrict = 0\n",
		"usr/lib/sysctl.d/60-late.conf":         "kernel/kptr_restrict=1\n-net.core.bpf_jit_harden = 2\nnet.ipv4.conf.*.rp_filter = 2\n",
		"etc/sysctl.conf":                       "; procps reads it last\nkernel.dmesg_restrict = 1\n",
		"usr/lib/sysctl.d/README":               "kernel.kptr_restrict = 9\n",
		"usr/local/lib/sysctl.d/70-spaces.conf": "kernel.core_pattern =   |/bin/false   x\n",
	})
	runStatusCases(t, envAt(root), []statusCase{
		{"sysctl: {name: kernel.kptr_restrict, value: '1'}", StatusPass, "kernel.kptr_restrict = 1 (configured in /usr/lib/sysctl.d/60-late.conf)"},
		{"sysctl: {name: kernel/kptr_restrict, value: ['2']}", StatusFail, "= 1 (configured in /usr/lib/sysctl.d/60-late.conf), want 2"},
		{"sysctl: {name: kernel.yama.ptrace_scope, value: '3'}", StatusSkipped, "kernel.yama.ptrace_scope is not set in any sysctl.d file"},
		{"sysctl: {name: net.core.bpf_jit_harden, value: '2'}", StatusPass, "configured in /usr/lib/sysctl.d/60-late.conf"},
		{"sysctl: {name: net.ipv4.conf.eth0.rp_filter, value: '2'}", StatusPass, "= 2"},
		{"sysctl: {name: kernel.dmesg_restrict, value: '1'}", StatusPass, "configured in /etc/sysctl.conf"},
		{"sysctl: {name: kernel.core_pattern, value: '|/bin/false x'}", StatusPass, "configured in /usr/local/lib/sysctl.d/70-spaces.conf"},
		{"sysctl: {name: kernel.unprivileged_bpf_disabled, value: '1'}", StatusSkipped, "sysctl kernel.unprivileged_bpf_disabled is not set in any sysctl.d file under " + root + "; its value is the kernel's default, which needs a running kernel"},
	})
}

// TestUnitOnImage: on an image whose next boot is its first, the presets
// decide what systemd enables (the first matching line of the files in
// name order, /etc's replacing /usr/lib's); links decide otherwise.
func TestUnitOnImage(t *testing.T) {
	files := map[string]string{
		"proc/": "",
		"sys/":  "",
		"usr/lib/systemd/system-preset/90-azurelinux.preset":         "enable waagent.service\nenable sshd.service\n",
		"usr/lib/systemd/system-preset/99-default-disable.preset":    "disable *\n",
		"etc/systemd/system-preset/90-azurelinux.preset":             "# the site's copy replaces the vendor's\nenable waagent.service\n",
		"etc/systemd/system/multi-user.target.wants/chronyd.service": "->/usr/lib/systemd/system/chronyd.service",
	}
	root := treetest.New(t, files)
	runStatusCases(t, envAt(root), []statusCase{
		{"unit: chronyd", StatusPass, "chronyd.service is enabled (/etc/systemd/system/multi-user.target.wants/chronyd.service)"},
		{"unit: waagent", StatusPass, "waagent.service will be enabled on the image's first boot by its preset (/etc/systemd/system-preset/90-azurelinux.preset:2: enable waagent.service)"},
		{"unit: sshd", StatusFail, "sshd.service is not enabled: no link in /etc/systemd/system/*.wants or *.requires; its preset says disable (/usr/lib/systemd/system-preset/99-default-disable.preset:1: disable *), which the image's first boot applies"},
		{"unit: {name: sshd, state: active}", StatusError, "not evaluable without the live systemd"},
		{"module: hv_vmbus", StatusSkipped, "module hv_vmbus: whether it is loaded needs a running kernel; " + root + " is an image"},
	})
	files["etc/machine-id"] = "0123456789abcdef0123456789abcdef\n"
	booted := treetest.New(t, files)
	runStatusCases(t, envAt(booted), []statusCase{
		{"unit: waagent", StatusFail, "waagent.service is not enabled: no link in /etc/systemd/system/*.wants or *.requires"},
	})
}

// TestFactVerdicts: skipped when the collector does not apply under the
// root, error when it failed (even on the facts it served) or is not
// enabled.
func TestFactVerdicts(t *testing.T) {
	env := &Env{Facts: &Facts{
		Series: map[string][]Series{
			"azurelinux_os_version": {{Name: "azurelinux_os_version", Labels: map[string]string{"id": "azurelinux"}, Value: 4}},
		},
		Collectors: map[string]CollectorState{
			"kernel": {Success: true, NotApplicable: "needs a running kernel (procfs, sysfs); /img is an image"},
			"os":     {Success: false, Err: "/etc/os-release: line 4: unterminated double quote"},
		},
	}}
	runStatusCases(t, env, []statusCase{
		{`fact: azurelinux_kernel_info{series="6.18"}`, StatusSkipped, "azurelinux_kernel_info: the kernel collector is not applicable: needs a running kernel (procfs, sysfs); /img is an image"},
		{`fact: none azurelinux_kernel_taint_flag`, StatusSkipped, "the kernel collector is not applicable"},
		{`fact: azurelinux_os_version >= 4`, StatusError, "the os collector failed: /etc/os-release: line 4: unterminated double quote (on its partial facts: azurelinux_os_version{id=\"azurelinux\"} 4)"},
		{`fact: azurelinux_systemd_version >= 258`, StatusError, "is the systemd collector enabled?"},
	})
}

// TestRepoDnfConf: dnf.conf's reposdir replaces the repository directories,
// and its own sections are repositories too.
func TestRepoDnfConf(t *testing.T) {
	root := treetest.New(t, map[string]string{
		"etc/dnf/dnf.conf":             "[main]\ngpgcheck=1\nreposdir=/opt/repos, /srv/more\n\n[local]\nname=local\nbaseurl=file:///srv/local\n",
		"opt/repos/azurelinux.repo":    "[azurelinux-base]\nbaseurl=https://packages.microsoft.com/azurelinux/4.0/prod/base/x86_64\n",
		"etc/yum.repos.d/ignored.repo": "[ignored]\nbaseurl=https://example.com/\n",
	})
	runStatusCases(t, envAt(root), []statusCase{
		{"repo: azurelinux-base", StatusPass, "[azurelinux-base] in /opt/repos/azurelinux.repo is enabled"},
		{"repo: local", StatusPass, "[local] in /etc/dnf/dnf.conf is enabled"},
		{"repo: ignored", StatusFail, "no enabled repository matches id ignored"},
	})
}
