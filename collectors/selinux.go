package collectors

import (
	"fmt"
	"strings"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// selinuxModeFact is the SELinux mode (userlandCollector.updateSELinux
// below), served by the userland collector.
var selinuxModeFact = declare(Fact{
	Collector: "userland", Subsystem: "selinux", Name: "mode",
	Help: "SELinux mode: 0 disabled, 1 permissive, 2 enforcing (from selinuxfs, else the kernel command line and LSM list, else /etc/selinux/config).",
})

// updateSELinux reports the SELinux mode. selinuxfs tells the running
// mode; without it, SELinux is disabled when the kernel command line says
// selinux=0 or the LSM list lacks it (Azure Linux 3.0 boots with
// selinux=0 while its config says enforcing); otherwise the configured
// mode is what the next boot gets.
func (c *userlandCollector) updateSELinux(m *Metrics) error {
	enforce, err := readValue(c.paths.Sys("fs/selinux/enforce"))
	switch {
	case err == nil && enforce == "1":
		m.Set(selinuxModeFact, 2)
		return nil
	case err == nil && enforce == "0":
		m.Set(selinuxModeFact, 1)
		return nil
	case err == nil:
		return fmt.Errorf("selinux: %s: want 0 or 1 (%s)", c.paths.Sys("fs/selinux/enforce"), host.Invalid(enforce))
	case !isNotExist(err):
		return fmt.Errorf("selinux: %w", err)
	}
	if cmdline, err := readValue(c.paths.Proc("cmdline")); err == nil {
		for _, f := range strings.Fields(cmdline) {
			if f == "selinux=0" {
				m.Set(selinuxModeFact, 0)
				return nil
			}
		}
	}
	if lsm, err := readValue(c.paths.Sys("kernel/security/lsm")); err == nil {
		active := false
		for _, l := range strings.Split(lsm, ",") {
			active = active || l == "selinux"
		}
		if !active {
			m.Set(selinuxModeFact, 0)
			return nil
		}
	}
	p := c.paths.Root("etc/selinux/config")
	text, err := readText(p, 64<<10)
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("selinux: %w", err)
	}
	vars, _ := host.ParseOSRelease(text) // KEY=value lines and comments, as os-release
	switch mode := strings.ToLower(vars["SELINUX"]); mode {
	case "enforcing":
		m.Set(selinuxModeFact, 2)
	case "permissive":
		m.Set(selinuxModeFact, 1)
	case "disabled":
		m.Set(selinuxModeFact, 0)
	default:
		return fmt.Errorf("selinux: %s: SELINUX=%s is not enforcing, permissive or disabled", p, quoteOutput(mode))
	}
	return nil
}
