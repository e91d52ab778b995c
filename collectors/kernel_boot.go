package collectors

import (
	"errors"
	"fmt"
	"strings"
)

// What LISA checks of the running kernel on an Azure VM: the Hyper-V
// drivers are there (built in or loaded), the serial console is on the
// command line, and a crash kernel is loaded where one is asked for.

var (
	kernelDriverAvailable = declare(Fact{Collector: "kernel", Name: "driver_available",
		Help: "1 when a Hyper-V driver LISA requires is built into the running kernel (its Kconfig option is =y) or loaded, 0 when neither " +
			"(LISA microsoft/testsuites/core/hv_module.py verify_hyperv_modules).",
		Labels: []string{"module"}, Identity: []string{"module"},
		Bound: "the 7 drivers of LISA's list"})
	kernelSerialConsole = declare(Fact{Collector: "kernel", Name: "serial_console_enabled",
		Help: "1 when the kernel command line names the serial console Azure's serial console and boot diagnostics read (console=ttyS0 on x86_64, console=ttyAMA0 on arm64), 0 when not " +
			"(LISA microsoft/testsuites/core/azure_image_standard.py verify_serial_console_is_enabled)."})
	kernelCrashkernelRequested = declare(Fact{Collector: "kernel", Name: "crashkernel_requested",
		Help: "1 when the kernel command line reserves memory for a crash kernel (crashkernel=), 0 when not."})
	kernelKdumpLoaded = declare(Fact{Collector: "kernel", Name: "kdump_loaded",
		Help: "1 when a crash kernel is loaded (/sys/kernel/kexec_crash_loaded), so a panic leaves a dump; 0 when not " +
			"(LISA lisa/tools/kdump.py check_crashkernel_loaded)."})
	kernelCrashkernelBytes = declare(Fact{Collector: "kernel", Name: "crashkernel_reserved_bytes",
		Help: "Memory reserved for the crash kernel (/sys/kernel/kexec_crash_size), in bytes; 0 when none is reserved."})
)

// hypervDrivers are the drivers LISA's verify_hyperv_modules requires, with
// the Kconfig option that builds each in (drivers/hv/Kconfig,
// drivers/net/hyperv/Kconfig, drivers/scsi/Kconfig, drivers/hid/Kconfig,
// drivers/input/serio/Kconfig). CONFIG_HYPERV_VMBUS is 6.18's name for the
// bus driver's own option (commit 94b04355e639).
var hypervDrivers = []struct{ module, option, option2 string }{
	{"hv_vmbus", "CONFIG_HYPERV_VMBUS", "CONFIG_HYPERV"},
	{"hv_netvsc", "CONFIG_HYPERV_NET", ""},
	{"hv_storvsc", "CONFIG_HYPERV_STORAGE", ""},
	{"hv_utils", "CONFIG_HYPERV_UTILS", ""},
	{"hv_balloon", "CONFIG_HYPERV_BALLOON", ""},
	{"hid_hyperv", "CONFIG_HID_HYPERV_MOUSE", ""},
	{"hyperv_keyboard", "CONFIG_HYPERV_KEYBOARD", ""},
}

// updateBootFacts reports the Hyper-V drivers, the serial console and the
// crash kernel.
func (c *kernelCollector) updateBootFacts(m *Metrics, release string) error {
	var errs []error
	cfg, cerr := c.kernelConfig(release)
	mods, merr := readModules(c.paths, release)
	if cerr != nil {
		errs = append(errs, cerr)
	}
	if merr != nil {
		errs = append(errs, merr)
	}
	// Without the configuration a driver that is not loaded cannot be
	// told from one that is built in: no series rather than a false 0.
	for _, d := range hypervDrivers {
		builtin := cfg[d.option] == "y" || (d.option2 != "" && cfg[d.option2] == "y")
		if builtin || ModulePresent(c.paths, mods, d.module) {
			m.Set(kernelDriverAvailable, 1, d.module)
		} else if cfg != nil {
			m.Set(kernelDriverAvailable, 0, d.module)
		}
	}

	cmdline, err := readValue(c.paths.Proc("cmdline"))
	switch {
	case err == nil:
		want := "console=ttyS0"
		if arm64(c.paths) {
			want = "console=ttyAMA0"
		}
		serial, crash := false, false
		for _, f := range strings.Fields(cmdline) {
			serial = serial || f == want || strings.HasPrefix(f, want+",")
			crash = crash || strings.HasPrefix(f, "crashkernel=")
		}
		m.SetBool(kernelSerialConsole, serial)
		m.SetBool(kernelCrashkernelRequested, crash)
	case !isNotExist(err):
		errs = append(errs, fmt.Errorf("command line: %w", err))
	}
	switch v, err := readUint(c.paths.Sys("kernel/kexec_crash_loaded")); {
	case err == nil:
		m.SetBool(kernelKdumpLoaded, v == 1)
	case !isNotExist(err):
		errs = append(errs, fmt.Errorf("kdump: %w", err))
	}
	switch v, err := readUint(c.paths.Sys("kernel/kexec_crash_size")); {
	case err == nil:
		m.Set(kernelCrashkernelBytes, float64(v))
	case !isNotExist(err):
		errs = append(errs, fmt.Errorf("kdump: %w", err))
	}
	return errors.Join(errs...)
}

// arm64 reports whether the root's CPUs are arm64 ones: their
// /proc/cpuinfo names a "CPU implementer" (arch/arm64/kernel/cpuinfo.c
// c_show), which x86's never does.
func arm64(p Paths) bool {
	text, err := readText(p.Proc("cpuinfo"), maxFileSize)
	return err == nil && strings.Contains(text, "CPU implementer")
}
