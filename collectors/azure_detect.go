package collectors

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// AzureChassisAssetTag is the DMI chassis asset tag that Azure's hypervisor
// sets on every VM it runs (cloud-init's DataSourceAzure and the Ubuntu Pro
// client test the same value). It tells Azure apart from on-premises
// Hyper-V, which leaves the tag empty or sets its own.
const AzureChassisAssetTag = "7783-7084-3265-9085-8269-3286-77"

// isAzure reports whether the host under p is an Azure VM, from sysfs only:
// it never touches the network, so a collector can decide whether to ask the
// instance metadata service without trying it.
//
// Precedence:
//  1. <sysfs>/class/dmi/id/chassis_asset_tag, when readable, decides alone:
//     the Azure tag means Azure, any other value (empty included) means not.
//  2. The tag is root-only (mode 0400) on most kernels, so a probe running
//     unprivileged cannot read it. Then a Hyper-V guest (DMI sys_vendor
//     "Microsoft Corporation" and product_name "Virtual Machine", with
//     <sysfs>/bus/vmbus present) counts as Azure. sys_vendor alone is not
//     enough: Surface laptops share it. This fallback also accepts an
//     on-premises Hyper-V guest, whose metadata requests then fail and show
//     as azurelinux_azure_metadata_up 0.
//
// A missing DMI directory is "not Azure", not an error; a garbled file
// (binary, oversized) is an error naming the file.
//
// The hyperv collector detects Azure from the same tag; the two are to be
// reconciled into one helper.
func isAzure(p Paths) (bool, error) {
	tag, err := readDMI(p, "chassis_asset_tag")
	switch {
	case err == nil:
		return tag == AzureChassisAssetTag, nil
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

// readDMI reads one DMI attribute. DMI strings are padded with spaces by
// some firmware and may be empty, which for DMI is a value, not an error.
func readDMI(p Paths, name string) (string, error) {
	s, err := readText(p.Sys("class/dmi/id", name), maxValueSize)
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
