package collectors

import (
	"regexp"
	"strings"
)

// The VMBus protocol the guest negotiated with the host, which only the
// kernel log says: drivers/hv/connection.c vmbus_connect prints
// "Vmbus version:%d.%d" (pr_fmt "hv_vmbus: ") once at boot; LISA reads it
// the same way (lisa/tools/dmesg.py get_vmbus_version). The kmsg collector
// remembers it from the ring buffer, so a fleet can be grouped by the host
// protocol a kernel update negotiates.
var hypervVMBusProtocol = declare(Fact{Collector: "kmsg", Subsystem: "hyperv", Name: "vmbus_protocol_info",
	Help:   "The VMBus protocol version the guest negotiated with the Hyper-V host (\"hv_vmbus: Vmbus version:M.m\" in the kernel log); constant 1. Absent when the ring buffer no longer holds the line.",
	Labels: []string{"version"}})

var vmbusVersionRE = regexp.MustCompile(`^hv_vmbus: Vmbus version:(\d{1,3}\.\d{1,3})$`)

// parseVMBusVersion returns the version of a "hv_vmbus: Vmbus version:M.m"
// record.
func parseVMBusVersion(msg string) (string, bool) {
	if !strings.HasPrefix(msg, "hv_vmbus: Vmbus version:") {
		return "", false
	}
	m := vmbusVersionRE.FindStringSubmatch(strings.TrimSpace(msg))
	if m == nil {
		return "", false
	}
	return m[1], true
}
