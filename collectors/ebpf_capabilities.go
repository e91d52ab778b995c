package collectors

import (
	"fmt"
	"strconv"
	"strings"
)

// The probe's own capabilities: they decide which of the ebpf collector's
// live parts run (the privileges each needs are in ebpf.go), and
// azurelinux_ebpf_probe_capability reports them.

// Capability bits (include/uapi/linux/capability.h). CAP_PERFMON and CAP_BPF
// arrived in Linux 5.8; before that CAP_SYS_ADMIN covers them.
const (
	capNetAdmin = 12
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

var probeCapabilities = []struct {
	name string
	bit  uint
}{{"bpf", capBPF}, {"perfmon", capPerfmon}, {"net_admin", capNetAdmin}, {"sys_admin", capSysAdmin}}

var ebpfProbeCapabilityFact = declare(Fact{
	Collector: "ebpf", Name: "probe_capability",
	Help:     "1 when the probe's own process holds the capability (bpf, perfmon, net_admin, sys_admin) that live eBPF facts need; live only.",
	Labels:   []string{"capability"},
	Identity: []string{"capability"}, Bound: "4 capabilities",
})

// capSet is an effective capability set.
type capSet uint64

func (s capSet) has(bit uint) bool { return s&(1<<bit) != 0 }

// capabilities reads the probe's effective capabilities from
// <procfs>/self/status.
func (c *ebpfCollector) capabilities() (capSet, error) {
	path := c.paths.Proc("self/status")
	text, err := readText(path, 64<<10)
	if err != nil {
		return 0, fmt.Errorf("capabilities: %w", err)
	}
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			bits, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("capabilities: %s: CapEff: %w", path, err)
			}
			return capSet(bits), nil
		}
	}
	return 0, fmt.Errorf("capabilities: %s: no CapEff line", path)
}
