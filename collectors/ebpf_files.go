package collectors

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// The ebpf collector's facts read from files (the eBPF sysctls, the kernel
// BTF, the bpffs mount): the only ones also read against fixture trees.

var ebpfBtfAvailableFact = declare(Fact{
	Collector: "ebpf", Name: "btf_available",
	Help: "1 when the kernel publishes its BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF, Linux 5.4), which CO-RE programs need to load.",
})

var ebpfJitEnabledFact = declare(Fact{
	Collector: "ebpf", Name: "jit_enabled",
	Help: "Raw net.core.bpf_jit_enable: 0 interpreter, 1 JIT, 2 JIT with debug output.",
})

var ebpfJitHardenFact = declare(Fact{
	Collector: "ebpf", Name: "jit_harden",
	Help: "Raw net.core.bpf_jit_harden: 0 off, 1 for unprivileged programs, 2 for all. Reading it needs CAP_SYS_ADMIN.",
})

var ebpfJitKallsymsFact = declare(Fact{
	Collector: "ebpf", Name: "jit_kallsyms",
	Help: "Raw net.core.bpf_jit_kallsyms: 1 when JITed programs appear in /proc/kallsyms for privileged users. Reading it needs CAP_SYS_ADMIN.",
})

var ebpfJitLimitBytesFact = declare(Fact{
	Collector: "ebpf", Name: "jit_limit_bytes",
	Help: "net.core.bpf_jit_limit: memory the JIT may allocate for unprivileged programs. Reading it needs CAP_SYS_ADMIN.",
})

var ebpfUnprivilegedDisabledFact = declare(Fact{
	Collector: "ebpf", Name: "unprivileged_disabled",
	Help: "Raw kernel.unprivileged_bpf_disabled: 0 unprivileged bpf(2) allowed, 1 disabled until reboot, 2 disabled but an admin may re-enable it.",
})

var ebpfStatsEnabledFact = declare(Fact{
	Collector: "ebpf", Name: "stats_enabled",
	Help: "Raw kernel.bpf_stats_enabled: 1 when the kernel accounts run time and count of every program (Linux 5.1).",
})

var ebpfBpffsMountedFact = declare(Fact{
	Collector: "ebpf", Name: "bpffs_mounted",
	Help: "1 when a bpf file system (usually /sys/fs/bpf) is mounted in the probe's mount namespace, where agents pin programs and maps.",
})

// sysctls are the raw eBPF sysctls, procfs-relative. net.core.bpf_jit_*
// exist only with CONFIG_BPF_JIT, the kernel.* ones with CONFIG_BPF_SYSCALL.
func (c *ebpfCollector) sysctls() []struct {
	path string
	fact *Fact
} {
	return []struct {
		path string
		fact *Fact
	}{
		{"sys/kernel/unprivileged_bpf_disabled", ebpfUnprivilegedDisabledFact},
		{"sys/kernel/bpf_stats_enabled", ebpfStatsEnabledFact},
		{"sys/net/core/bpf_jit_enable", ebpfJitEnabledFact},
		{"sys/net/core/bpf_jit_harden", ebpfJitHardenFact},
		{"sys/net/core/bpf_jit_kallsyms", ebpfJitKallsymsFact},
		{"sys/net/core/bpf_jit_limit", ebpfJitLimitBytesFact},
	}
}

// updateFiles emits the facts read from files and returns how many it
// emitted. A missing file is no data; one the probe may not read is logged
// and skipped; a garbled one is an error naming it.
func (c *ebpfCollector) updateFiles(m *Metrics) (int, error) {
	var errs []error
	n := 0
	for _, s := range c.sysctls() {
		path := c.paths.Proc(s.path)
		v, err := readUint(path)
		switch {
		case err == nil:
			m.Set(s.fact, float64(v))
			n++
		case isNotExist(err):
		case errors.Is(err, os.ErrPermission):
			c.logger.Warn("eBPF sysctl not readable without CAP_SYS_ADMIN, skipped", "file", path)
		default:
			errs = append(errs, err)
		}
	}

	// Without a sysfs there is nothing to say about BTF; with one, a missing
	// vmlinux means a kernel built without BTF.
	if exists(c.paths.Sys("kernel")) {
		ok, err := c.btfAvailable()
		if err != nil {
			errs = append(errs, err)
		} else {
			m.SetBool(ebpfBtfAvailableFact, ok)
			n++
		}
	}

	mounted, err := c.bpffsMounted()
	switch {
	case err == nil:
		m.SetBool(ebpfBpffsMountedFact, mounted)
		n++
	case !isNotExist(err):
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// btfAvailable reports whether <sysfs>/kernel/btf/vmlinux is a non-empty
// regular file (sysfs gives the blob's real size). The blob itself, several
// megabytes, is not read.
func (c *ebpfCollector) btfAvailable() (bool, error) {
	path := c.paths.Sys("kernel/btf/vmlinux")
	st, err := path.Stat()
	switch {
	case isNotExist(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("btf: %w", err)
	case !st.Mode().IsRegular():
		return false, fmt.Errorf("btf: %s: not a regular file (%s)", path, st.Mode().Type())
	case st.Size() == 0:
		return false, fmt.Errorf("btf: %s: empty", path)
	}
	return true, nil
}

// bpffsMounted looks for a mount of file system type bpf in
// <procfs>/self/mounts.
func (c *ebpfCollector) bpffsMounted() (bool, error) {
	path := c.paths.Proc("self/mounts")
	text, err := readText(path, maxFileSize)
	if err != nil {
		return false, err
	}
	found, err := hasBPFFS(text)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return found, nil
}

// hasBPFFS reports whether a mounts table (fstab format: device, mount
// point, type, options, dump, pass) has a file system of type bpf.
func hasBPFFS(text string) (bool, error) {
	found := false
	for i, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 6 {
			return false, fmt.Errorf("line %d: %d fields, want 6", i+1, len(f))
		}
		if f[2] == "bpf" {
			found = true
		}
	}
	return found, nil
}
