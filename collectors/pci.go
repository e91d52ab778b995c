package collectors

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// pciAddrRE matches a PCI function's sysfs name, domain:bus:slot.function.
// The domain is printed with "%04x", so it has four hex digits, or more
// where a domain number exceeds 0xffff; Hyper-V vPCI domains such as c05b
// are ordinary.
var pciAddrRE = regexp.MustCompile(`^[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$`)

// pciDevice is what the collectors read of one PCI function in sysfs.
type pciDevice struct {
	Address  string // "0002:00:00.0", lower case
	VendorID string // "0x10de"
	DeviceID string // "0x2330"
	Class    string // "0x030200"
	Driver   string // bound driver's name; "" when none is bound
}

// readPCIDevice reads the PCI function whose sysfs directory is dir.
// vendor, device and class always exist for a PCI function, so a missing
// one is an error, as is one that does not hold the kernel's "0x%04x" or
// "0x%06x" hex.
func readPCIDevice(dir host.Path) (pciDevice, error) {
	d := pciDevice{Address: strings.ToLower(dir.Base())}
	var err error
	if d.VendorID, err = readPCIHex(dir.Join("vendor"), 4); err != nil {
		return d, err
	}
	if d.DeviceID, err = readPCIHex(dir.Join("device"), 4); err != nil {
		return d, err
	}
	if d.Class, err = readPCIHex(dir.Join("class"), 6); err != nil {
		return d, err
	}
	d.Driver, err = boundDriver(dir)
	return d, err
}

func readPCIHex(path host.Path, digits int) (string, error) {
	s, err := readValue(path)
	if err != nil {
		return "", err
	}
	v, err := parsePCIHex(s, digits)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// parsePCIHex normalises a PCI id attribute ("0x10de", "0x030200") to lower
// case with the "0x" prefix and exactly digits hex digits, the form the
// kernel prints. A value without the prefix is accepted; one with more
// digits than the field holds is not.
func parsePCIHex(s string, digits int) (string, error) {
	h := strings.TrimSpace(s)
	if p, ok := strings.CutPrefix(h, "0x"); ok {
		h = p
	} else if p, ok := strings.CutPrefix(h, "0X"); ok {
		h = p
	}
	if h == "" || len(h) > digits {
		return "", fmt.Errorf("not a %d-digit hex id (%s)", digits, host.Invalid(s))
	}
	v, err := strconv.ParseUint(h, 16, 32)
	if err != nil {
		return "", fmt.Errorf("not a %d-digit hex id (%s)", digits, host.Invalid(s))
	}
	return fmt.Sprintf("0x%0*x", digits, v), nil
}

// boundDriver returns the name of the driver bound to the sysfs device at
// dir: the last element of its "driver" link, whatever the link's depth.
// No link means no driver is bound.
func boundDriver(dir host.Path) (string, error) {
	path := dir.Join("driver")
	target, err := path.Readlink()
	if err == nil {
		return filepath.Base(target), nil
	}
	if isNotExist(err) {
		return "", nil
	}
	return "", fmt.Errorf("%s: not a link to the bound driver: %w", path, err)
}

// pciDevices lists the PCI functions under /sys/bus/pci/devices by address,
// each with the sysfs path it is reached by. A host without PCI (or a tree
// without it) has none.
func pciDevices(p Paths) (map[string]host.Path, error) {
	dir := p.Sys("bus/pci/devices")
	entries, err := dir.ReadDir()
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pci devices: %w", err)
	}
	out := map[string]host.Path{}
	for _, e := range entries {
		if pciAddrRE.MatchString(e.Name()) {
			out[strings.ToLower(e.Name())] = dir.Join(e.Name())
		}
	}
	return out, nil
}
