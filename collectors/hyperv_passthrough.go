package collectors

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// vpciDomain is the PCI domain pci-hyperv asks for a pass-through channel:
// bytes 4 and 5 of the instance GUID, which print as its second group. The
// kernel picks another number on a collision, so this is only a fallback
// for finding the channel's PCI functions.
func vpciDomain(instance string) (string, bool) {
	parts := strings.Split(instance, "-")
	if len(parts) != 5 || len(parts[1]) != 4 {
		return "", false
	}
	if _, err := strconv.ParseUint(parts[1], 16, 16); err != nil {
		return "", false
	}
	return strings.ToLower(parts[1]), true
}

// updatePassthrough reports the PCI functions behind each pass-through
// channel. They are found, in order of trust, as the pci<domain>:<bus>
// children of the channel's device directory, as /sys/bus/pci/devices
// entries whose real path lies under that directory, or else by the domain
// derived from the instance GUID.
func (c *hypervCollector) updatePassthrough(ctx context.Context, m *Metrics, devs []vmbusDevice, pci map[string]host.Path) error {
	found := map[string]host.Path{} // address -> sysfs dir
	// Each PCI function's real path, resolved once: resolving every
	// function for every channel made a refresh quadratic in the number of
	// pass-through channels.
	var realPCI map[string]string
	resolvePCI := func() map[string]string {
		if realPCI == nil {
			realPCI = make(map[string]string, len(pci))
			for addr, dir := range pci {
				if ctx.Err() != nil {
					break
				}
				if real, err := dir.Resolve(); err == nil {
					realPCI[addr] = real.InRoot()
				}
			}
		}
		return realPCI
	}
	for _, d := range devs {
		if d.class != "pci_passthrough" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		n := len(found)
		base := d.path
		if d.real.Root() != nil {
			base = d.real
		}
		if buses, err := base.ReadDir(); err == nil {
			for _, b := range buses {
				if !vpciBusRE.MatchString(b.Name()) {
					continue
				}
				fns, err := base.Join(b.Name()).ReadDir()
				if err != nil {
					continue
				}
				for _, f := range fns {
					if pciAddrRE.MatchString(f.Name()) {
						found[strings.ToLower(f.Name())] = base.Join(b.Name(), f.Name())
					}
				}
			}
		}
		if d.real.Root() != nil {
			for addr, real := range resolvePCI() {
				if strings.HasPrefix(real, d.real.InRoot()+"/") {
					if _, ok := found[addr]; !ok {
						found[addr] = pci[addr]
					}
				}
			}
		}
		if len(found) == n {
			if dom, ok := vpciDomain(d.instance); ok {
				for addr, dir := range pci {
					if strings.HasPrefix(addr, dom+":") {
						found[addr] = dir
					}
				}
			}
		}
	}
	addrs := make([]string, 0, len(found))
	for a := range found {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	var errs []error
	for _, a := range addrs {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		p, err := readPCIDevice(found[a])
		if err != nil {
			errs = append(errs, fmt.Errorf("pci pass-through device %s: %w", a, err))
			continue
		}
		m.Set(hypervPciPassthroughDeviceInfoFact, 1, p.Address, p.VendorID, p.DeviceID, p.Class, p.Driver)
	}
	return errors.Join(errs...)
}
