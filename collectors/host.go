package collectors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/mem"
)

func init() {
	register(Spec{
		Name:           "host",
		DefaultEnabled: true,
		Interval:       time.Minute,
		Timeout:        5 * time.Second,
		New:            newHostCollector,
	})
}

var hostInfoFact = declare(Fact{
	Collector: "host", Name: "info",
	Help: "CPU model and gopsutil's virtualization answer (system, role); constant 1. " +
		"gopsutil keys Hyper-V on an hv_utils module in /proc/modules, which Azure Linux 4.0 builds into the kernel, " +
		"so an Azure or Hyper-V guest reads virtualization_system=\"\" here (or kvm/host when nested virtualization loads kvm): " +
		"where this disagrees with the hyperv collector, the hyperv collector (VMBus, DMI) is right.",
	Labels: []string{"cpu_model", "virtualization_system", "virtualization_role"},
})

var hostCpusFact = declare(Fact{
	Collector: "host", Name: "cpus",
	Help: "Logical CPUs the kernel lists in /proc/cpuinfo (gopsutil's logical count).",
})

var hostMemoryBytesFact = declare(Fact{
	Collector: "host", Name: "memory_bytes",
	Help: "Total usable memory, MemTotal of /proc/meminfo, in bytes.",
})

var hostBootTimeSecondsFact = declare(Fact{
	Collector: "host", Name: "boot_time_seconds",
	Help:     "When the kernel booted (btime of /proc/stat), as a Unix timestamp; in a container this is still the host kernel's boot.",
	Volatile: true,
})

// hostCollector reports what the machine is: CPU model and count, memory,
// boot time and gopsutil's view of virtualization. CPU and memory come from
// gopsutil, pointed at the collector's paths through gopsutil's per-call
// environment map, so a fixture tree answers as a live host does.
type hostCollector struct {
	paths Paths
}

func newHostCollector(env Env, _ any) (Collector, error) {
	return &hostCollector{
		paths: env.Paths,
	}, nil
}

// gopsutilContext returns ctx carrying gopsutil's host-path overrides for
// the collector's paths. gopsutil falls back to the HOST_* environment
// variables and then to the live paths for a key left empty, so every key it
// may consult is set.
func (c *hostCollector) gopsutilContext(ctx context.Context) context.Context {
	root := c.paths.RootFS
	if root == "" {
		root = "/"
	}
	return context.WithValue(ctx, common.EnvKey, common.EnvMap{
		common.HostProcEnvKey: c.paths.ProcFS,
		common.HostSysEnvKey:  c.paths.SysFS,
		common.HostEtcEnvKey:  c.paths.Root("etc"),
		common.HostVarEnvKey:  c.paths.Root("var"),
		common.HostRunEnvKey:  c.paths.Root("run"),
		common.HostDevEnvKey:  c.paths.Root("dev"),
		common.HostRootEnvKey: root,
	})
}

func (c *hostCollector) Update(ctx context.Context, m *Metrics) error {
	gctx := c.gopsutilContext(ctx)
	var errs []error
	found := false

	// gopsutil opens files without this package's guards (size limit, no
	// FIFO, binary check), so the files it parses are vetted with readText
	// first; a missing file is a fact this host does not provide. (gopsutil
	// also reads cpufreq attributes under sysfs, which are not reported,
	// and counts the cpuN lines of /proc/stat when cpuinfo lists no
	// processor; a kernel provides both as regular files.)
	cpuinfo := c.paths.Proc("cpuinfo")
	model, haveModel := "", false
	switch _, err := readText(cpuinfo, maxFileSize); {
	case err == nil:
		found = true
		infos, err := cpu.InfoWithContext(gctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("cpu model: %s: %w", cpuinfo, err))
		} else {
			haveModel = true
		}
		for _, i := range infos {
			if i.ModelName != "" {
				model = i.ModelName
				break
			}
		}
		n, err := cpu.CountsWithContext(gctx, true)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("cpu count: %w", err))
		case n == 0:
			errs = append(errs, fmt.Errorf("cpu count: %s lists no processor", cpuinfo))
		default:
			m.Set(hostCpusFact, float64(n))
		}
	case !isNotExist(err):
		errs = append(errs, fmt.Errorf("cpu: %w", err))
	}

	meminfo := c.paths.Proc("meminfo")
	switch _, err := readText(meminfo, maxFileSize); {
	case err == nil:
		found = true
		vm, err := mem.VirtualMemoryWithContext(gctx)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("memory: %s: %w", meminfo, err))
		case vm.Total == 0:
			errs = append(errs, fmt.Errorf("memory: %s: no MemTotal", meminfo))
		default:
			m.Set(hostMemoryBytesFact, float64(vm.Total))
		}
	case !isNotExist(err):
		errs = append(errs, fmt.Errorf("memory: %w", err))
	}

	switch btime, err := c.readBootTime(); {
	case err == nil:
		found = true
		m.Set(hostBootTimeSecondsFact, float64(btime))
	case !isNotExist(err):
		errs = append(errs, fmt.Errorf("boot time: %w", err))
	}

	// The info series needs a parsed cpuinfo: a garbled one would show as
	// an empty model, which reads as a fact.
	if haveModel {
		system, role := virtualization(c.paths)
		m.Set(hostInfoFact, 1, model, system, role)
	}
	if !found && len(errs) == 0 {
		return ErrNoData
	}
	return errors.Join(errs...)
}

// readBootTime returns btime from <procfs>/stat. gopsutil's BootTime is not used:
// it caches its virtualization answer for the whole process (so a second
// root, as in the fixture tests, would get the first root's answer) and in a
// container it reports the container's start from /proc/uptime, while this
// probe reports the host.
func (c *hostCollector) readBootTime() (uint64, error) {
	path := c.paths.Proc("stat")
	text, err := readText(path, maxFileSize)
	if err != nil {
		return 0, err
	}
	t, err := parseBtime(text)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// parseBtime returns the btime field of /proc/stat.
func parseBtime(text string) (uint64, error) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			t, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil || t == 0 {
				return 0, fmt.Errorf("btime %q is not a Unix timestamp", truncate(strings.TrimSpace(v), 40))
			}
			return t, nil
		}
	}
	return 0, errors.New("no btime line")
}

// virtualization is gopsutil v4's Linux host.Virtualization algorithm
// (internal/common.VirtualizationWithContext), ported so that it reads
// through Paths: gopsutil caches its first answer for the whole process
// whatever paths later calls pass, and looks for /usr/bin/lxc-version
// outside the root. The checks, their order (a later match overrides an
// earlier one) and the substring matching are gopsutil's; the live test
// compares the two on the host that runs it.
func virtualization(p Paths) (system, role string) {
	lines := func(path string) []string {
		s, err := readText(path, maxFileSize)
		if err != nil {
			return nil
		}
		return strings.Split(s, "\n")
	}
	contains := func(ls []string, sub string) bool {
		for _, l := range ls {
			if strings.Contains(l, sub) {
				return true
			}
		}
		return false
	}

	if exists(p.Proc("xen")) {
		system, role = "xen", "guest"
		if contains(lines(p.Proc("xen/capabilities")), "control_d") {
			role = "host"
		}
	}
	if mods := lines(p.Proc("modules")); mods != nil {
		switch {
		case contains(mods, "kvm"):
			system, role = "kvm", "host"
		case contains(mods, "hv_util"):
			system, role = "hyperv", "guest"
		case contains(mods, "vboxdrv"):
			system, role = "vbox", "host"
		case contains(mods, "vboxguest"):
			system, role = "vbox", "guest"
		case contains(mods, "vmware"):
			system, role = "vmware", "guest"
		}
	}
	if ci := lines(p.Proc("cpuinfo")); contains(ci, "QEMU Virtual CPU") ||
		contains(ci, "Common KVM processor") || contains(ci, "Common 32-bit KVM processor") {
		system, role = "kvm", "guest"
	}
	if contains(lines(p.Proc("bus/pci/devices")), "virtio-pci") {
		role = "guest"
	}
	if exists(p.Proc("bc/0")) {
		system, role = "openvz", "host"
	} else if exists(p.Proc("vz")) {
		system, role = "openvz", "guest"
	}
	if st := lines(p.Proc("self/status")); contains(st, "s_context:") || contains(st, "VxID:") {
		system = "linux-vserver"
	}
	// environ is NUL-separated: read as bytes, not text.
	if env, err := readFile(p.Proc("1/environ"), maxFileSize); err == nil && bytes.Contains(env, []byte("container=lxc")) {
		system, role = "lxc", "guest"
	}
	if cg := lines(p.Proc("self/cgroup")); cg != nil {
		switch {
		case contains(cg, "lxc"):
			system, role = "lxc", "guest"
		case contains(cg, "docker"):
			system, role = "docker", "guest"
		case contains(cg, "machine-rkt"):
			system, role = "rkt", "guest"
		case exists(p.Root("usr/bin/lxc-version")):
			system, role = "lxc", "host"
		}
	}
	if osr, err := readText(p.Root("etc/os-release"), 64<<10); err == nil {
		if vars, _ := parseOSRelease(osr); vars["ID"] == "coreos" {
			system, role = "rkt", "host"
		}
	}
	if exists(p.Root(".dockerenv")) {
		system, role = "docker", "guest"
	}
	return system, role
}
