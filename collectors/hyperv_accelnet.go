package collectors

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
)

// Accelerated networking: Azure gives a synthetic netvsc interface an
// SR-IOV virtual function (MANA, or a Mellanox ConnectX VF), which netvsc
// enslaves: the VF appears as the synthetic interface's lower device, a
// /sys/class/net/<if>/lower_<vf> link (netdev_upper_dev_link in
// drivers/net/hyperv/netvsc_drv.c netvsc_vf_join). LISA
// (microsoft/testsuites/network/sriov.py verify_sriov_basic) pairs them the
// same way and wants the VF's driver loaded.

var (
	hypervAccelnetVF = declare(Fact{Collector: "hyperv", Name: "accelnet_vf_info",
		Help:   "A synthetic (hv_netvsc) interface and the SR-IOV VF paired with it (its lower_* link), with the VF's driver (mana, mlx5_core, mlx4_core; empty when none is bound); constant 1.",
		Labels: []string{"interface", "vf", "driver"}, Identity: []string{"interface"},
		Bound: "one series per synthetic interface: at most 8 NICs on an Azure VM"})
	hypervAccelnetPresent = declare(Fact{Collector: "hyperv", Name: "accelnet_vf_present",
		Help: "1 when the synthetic (hv_netvsc) interface has a VF paired with it, 0 when not: a NIC whose VF is lost after an update shows 0 where it showed 1 " +
			"(max_over_time of this series remembers that it had one).",
		Labels: []string{"interface"}, Identity: []string{"interface"},
		Bound: "one series per synthetic interface"})
	hypervAccelnetPCI = declare(Fact{Collector: "hyperv", Name: "accelnet_vf_pci_info",
		Help:   "The PCI vendor and device id of a paired VF (MANA VF 0x1414:0x00ba, Mellanox 0x15b3:0x1016, 0x1018, 0x101a, ...); constant 1.",
		Labels: []string{"vf", "vendor_id", "device_id"}, Identity: []string{"vf"},
		Bound: "one series per paired VF"})
)

// maxInterfaces bounds the interfaces read from /sys/class/net.
const maxInterfaces = 256

// updateAccelnet pairs each synthetic interface with its VF.
func (c *hypervCollector) updateAccelnet(ctx context.Context, m *Metrics) error {
	netDir := c.paths.Sys("class/net")
	entries, err := netDir.ReadDir()
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("accelerated networking: %w", err)
	}
	var errs []error
	for i, e := range entries {
		if i >= maxInterfaces || ctx.Err() != nil {
			break
		}
		ifc := e.Name()
		drv, err := readLink(netDir.Join(ifc, "device", "driver"))
		if err != nil || path.Base(drv) != "hv_netvsc" {
			continue
		}
		lowers, err := netDir.Join(ifc).Glob("lower_*")
		if err != nil {
			errs = append(errs, fmt.Errorf("interface %s: %w", ifc, err))
			continue
		}
		m.SetBool(hypervAccelnetPresent, len(lowers) > 0, ifc)
		for _, l := range lowers {
			vf := strings.TrimPrefix(l.Base(), "lower_")
			vfDriver := ""
			if d, err := readLink(netDir.Join(vf, "device", "driver")); err == nil {
				vfDriver = path.Base(d)
			}
			m.Set(hypervAccelnetVF, 1, ifc, vf, vfDriver)
			vendor, verr := readPCIHex(netDir.Join(vf, "device", "vendor"), 4)
			device, derr := readPCIHex(netDir.Join(vf, "device", "device"), 4)
			if verr == nil && derr == nil {
				m.Set(hypervAccelnetPCI, 1, vf, vendor, device)
			} else if !isNotExist(verr) || !isNotExist(derr) {
				errs = append(errs, fmt.Errorf("vf %s: %w", vf, errors.Join(verr, derr)))
			}
			break // netvsc enslaves one VF
		}
	}
	return errors.Join(errs...)
}
