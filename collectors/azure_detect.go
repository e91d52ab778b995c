package collectors

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// isAzure reports whether the host under p is an Azure VM, from sysfs only:
// it never touches the network, so a collector can decide whether to ask the
// instance metadata service without trying it.
//
// Precedence:
//  1. <sysfs>/class/dmi/id/chassis_asset_tag, when readable, decides alone:
//     the Azure tag (azureAssetTag, as the hyperv collector's
//     azurelinux_hyperv_azure) means Azure, any other value (empty
//     included) means not.
//  2. The tag is world-readable (0444 in drivers/firmware/dmi-id.c, unlike
//     the serials and UUIDs at 0400), but a confined probe (an LSM policy,
//     a container's masked sysfs) may still be refused it. Where it cannot
//     be read, a Hyper-V guest (DMI sys_vendor
//     "Microsoft Corporation" and product_name "Virtual Machine", with
//     <sysfs>/bus/vmbus present) counts as Azure. sys_vendor alone is not
//     enough: Surface laptops share it. This fallback also accepts an
//     on-premises Hyper-V guest, whose metadata requests then fail and show
//     as azurelinux_azure_metadata_up 0, where azurelinux_hyperv_azure
//     (the tag alone) says 0.
//
// The DMI directory is found as the hyperv collector finds it:
// /sys/class/dmi/id, or /sys/devices/virtual/dmi/id where the class link is
// missing. A missing DMI directory is "not Azure", not an error; a garbled
// file (binary, oversized) is an error naming the file.
func isAzure(p Paths) (bool, error) {
	tag, err := readDMI(p, "chassis_asset_tag")
	switch {
	case err == nil:
		return tag == azureAssetTag, nil
	case !isNotExist(err) && !errors.Is(err, os.ErrPermission):
		return false, fmt.Errorf("azure detection: %w", err)
	}
	vendor, err := readDMI(p, "sys_vendor")
	if err != nil {
		return false, dmiErr(err)
	}
	product, err := readDMI(p, "product_name")
	if err != nil {
		return false, dmiErr(err)
	}
	if vendor != "Microsoft Corporation" || product != "Virtual Machine" {
		return false, nil
	}
	return exists(p.Sys("bus/vmbus")), nil
}

// dmiDir returns the directory of the DMI attributes: /sys/class/dmi/id, a
// link to /sys/devices/virtual/dmi/id, which is read where the link is
// missing (drivers/firmware/dmi-id.c).
func dmiDir(p Paths) host.Path {
	if dir := p.Sys("class/dmi/id"); exists(dir) {
		return dir
	}
	return p.Sys("devices/virtual/dmi/id")
}

// readDMI reads one DMI attribute. DMI strings are padded with spaces by
// some firmware and may be empty, which for DMI is a value, not an error.
func readDMI(p Paths, name string) (string, error) {
	s, err := readText(dmiDir(p).Join(name), maxValueSize)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(s), nil
}

func dmiErr(err error) error {
	if isNotExist(err) || errors.Is(err, os.ErrPermission) {
		return nil
	}
	return fmt.Errorf("azure detection: %w", err)
}
