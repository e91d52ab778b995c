package collectors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// VMBus channels, the way LISA judges them. The kernel gives each VMBus
// device a primary channel and, for the performance devices (network,
// storage), sub-channels, one directory each under
// /sys/bus/vmbus/devices/<id>/channels/<relid> (drivers/hv/vmbus_drv.c,
// vmbus_chan_attrs). How many sub-channels a driver opens depends on the
// vCPU count and on the kernel: a kernel update that changes the
// allocation shows here before it shows as throughput.

var (
	hypervChannels = declare(Fact{Collector: "hyperv", Name: "vmbus_device_channels",
		Help: "Channels (the primary and its sub-channels) of a VMBus device, from /sys/bus/vmbus/devices/<id>/channels/. " +
			"Mirrors LISA microsoft/testsuites/core/lsvmbus.py verify_vmbus_devices_channels.",
		Labels: []string{"device_id", "class"}, Identity: []string{"device_id"},
		Bound: "one series per VMBus device: at most a few dozen on the largest Azure VM sizes"})
	hypervChannelsExpected = declare(Fact{Collector: "hyperv", Name: "vmbus_device_channels_expected",
		Help: "The fewest channels LISA's rule accepts for a synthetic network or storage device at this vCPU count: " +
			"network min(vCPU, 8) (or the larger counts newer kernels open), storage ceil(min(vCPU, 256)/4), or min(vCPU, 64) when a MANA VF is present " +
			"(LISA microsoft/testsuites/core/lsvmbus.py verify_vmbus_devices_channels).",
		Labels: []string{"device_id", "class"}, Identity: []string{"device_id"},
		Bound: "one series per synthetic network or storage device"})
	hypervChannelsOK = declare(Fact{Collector: "hyperv", Name: "vmbus_device_channels_ok",
		Help:   "1 when the device's channel count is one LISA's rule accepts at this vCPU count (the network rule accepts a set of counts), 0 when not.",
		Labels: []string{"device_id", "class"}, Identity: []string{"device_id"},
		Bound: "one series per synthetic network or storage device"})
	hypervHeartbeatInterrupts = declare(Fact{Collector: "hyperv", Name: "heartbeat_channel_interrupts_total", Counter: true, Volatile: true,
		Help: "Interrupts the guest took on a channel of the Heartbeat device (channels/<relid>/interrupts). " +
			"A count that stops increasing means the host↔guest link stalled (LISA core/lsvmbus.py verify_vmbus_heartbeat_properties).",
		Labels: []string{"device_id", "channel"}, Bound: "the one Heartbeat device's channels: one in practice"})
	hypervHeartbeatEvents = declare(Fact{Collector: "hyperv", Name: "heartbeat_channel_events_total", Counter: true, Volatile: true,
		Help:   "Events the guest signalled on a channel of the Heartbeat device (channels/<relid>/events).",
		Labels: []string{"device_id", "channel"}, Bound: "the one Heartbeat device's channels: one in practice"})
)

// maxChannels bounds the channel directories read per device: netvsc and
// storvsc open at most 64 sub-channels, the largest vPCI a handful.
const maxChannels = 256

// cpuTopology is what the channel formulas need of /proc/cpuinfo.
type cpuTopology struct {
	threads, cores int
}

// readCPUTopology counts the logical CPUs of /proc/cpuinfo and the
// distinct (physical id, core id) pairs, which is what lscpu reports as
// cores; where cpuinfo has no topology (arm64), cores are the threads.
func readCPUTopology(p Paths) (cpuTopology, error) {
	text, err := readText(p.Proc("cpuinfo"), maxFileSize)
	if err != nil {
		return cpuTopology{}, err
	}
	var t cpuTopology
	cores := map[string]bool{}
	phys := ""
	for _, line := range strings.Split(text, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "processor":
			t.threads++
		case "physical id":
			phys = strings.TrimSpace(val)
		case "core id":
			cores[phys+"/"+strings.TrimSpace(val)] = true
		}
	}
	t.cores = len(cores)
	if t.cores == 0 {
		t.cores = t.threads
	}
	return t, nil
}

// acceptedChannels returns the channel counts LISA accepts for a device of
// class on a VM with topology t (lsvmbus.py verify_vmbus_devices_channels:
// netvsc min(vCPU, 8), vCPU when vCPU ≤ 16, and min(64, max(16, n/2)) for
// n the cores or the threads, after kernel commit 646f071d
// "net: netvsc: use default number of RSS queues"; storvsc ceil(min(vCPU,
// 256)/4), or min(vCPU, 64) when the VM has a MANA VF). nil for a class
// LISA does not count.
func acceptedChannels(class string, t cpuTopology, mana bool) []int {
	v := t.threads
	switch class {
	case "network":
		set := []int{min(v, 8), min(64, max(16, t.cores/2)), min(64, max(16, t.threads/2))}
		if v <= 16 {
			set = append(set, v)
		}
		return set
	case "storage":
		if mana {
			return []int{min(v, 64)}
		}
		return []int{(min(v, 256) + 3) / 4}
	}
	return nil
}

// updateChannels reports the channels of every VMBus device, LISA's
// expectation for the network and storage devices, and the Heartbeat
// device's per-channel counters.
func (c *hypervCollector) updateChannels(ctx context.Context, m *Metrics, devs []vmbusDevice, mana bool) error {
	topo, terr := readCPUTopology(c.paths)
	var errs []error
	if terr != nil && !isNotExist(terr) {
		errs = append(errs, fmt.Errorf("vmbus channels: %w", terr))
	}
	for _, d := range devs {
		if err := ctx.Err(); err != nil {
			return err
		}
		dir := d.path.Join("channels")
		entries, err := dir.ReadDir()
		if isNotExist(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("vmbus device %s: %w", d.instance, err))
			continue
		}
		var relids []string
		for _, e := range entries {
			if _, err := strconv.ParseUint(e.Name(), 10, 32); err == nil && len(relids) < maxChannels {
				relids = append(relids, e.Name())
			}
		}
		m.Set(hypervChannels, float64(len(relids)), d.instance, d.class)
		if accepted := acceptedChannels(d.class, topo, mana); accepted != nil && topo.threads > 0 {
			m.Set(hypervChannelsExpected, float64(slices.Min(accepted)), d.instance, d.class)
			ok := false
			for _, a := range accepted {
				ok = ok || a == len(relids)
			}
			m.SetBool(hypervChannelsOK, ok, d.instance, d.class)
		}
		if d.class != "heartbeat" {
			continue
		}
		for _, relid := range relids {
			for _, f := range []struct {
				file string
				fact *Fact
			}{{"interrupts", hypervHeartbeatInterrupts}, {"events", hypervHeartbeatEvents}} {
				v, err := readUint(dir.Join(relid, f.file))
				switch {
				case err == nil:
					m.Set(f.fact, float64(v), d.instance, relid)
				case !isNotExist(err):
					errs = append(errs, fmt.Errorf("heartbeat channel %s: %w", relid, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// manaVF reports whether one of the PCI functions is a MANA VF (1414:00ba,
// MANA_VF_DEVICE_ID in drivers/net/ethernet/microsoft/mana/gdma.h), which
// changes LISA's storage channel rule.
func manaVF(pci map[string]host.Path) bool {
	for _, dir := range pci {
		if v, err := readValue(dir.Join("vendor")); err == nil && v == "0x1414" {
			if d, err := readValue(dir.Join("device")); err == nil && d == "0x00ba" {
				return true
			}
		}
	}
	return false
}
