package collectors

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

func init() {
	register(Spec{
		Name:           "storage",
		Needs:          "a running kernel (block devices in sysfs)",
		DefaultEnabled: true,
		Interval:       time.Minute,
		Timeout:        5 * time.Second,
		New:            newStorageCollector,
	})
}

var storageDiskInfoFact = declare(Fact{
	Collector: "storage", Name: "disk_info",
	Help: "One whole disk under /sys/block; constant 1. transport is scsi (any SCSI disk: hv_storvsc on Hyper-V/Azure, virtio_scsi, SAS, SATA through libata), " +
		"nvme, virtio (virtio_blk) or other; driver is the host adapter's driver (hv_storvsc, nvme, virtio_blk, ahci, …). " +
		"Virtual devices (loop, ram, zram, dm, md, nbd), NVMe multipath path devices and optical drives are left out.",
	Labels:   []string{"device", "transport", "model", "driver"},
	Identity: []string{"device"}, Bound: "one per whole disk (at most 10000 directory entries)",
})

var storageDiskSizeBytesFact = declare(Fact{
	Collector: "storage", Name: "disk_size_bytes",
	Help:     "Capacity of the whole disk in bytes (/sys/block/<device>/size × 512).",
	Labels:   []string{"device"},
	Identity: []string{"device"}, Bound: "one per whole disk",
})

var storageAzureDiskLinksFact = declare(Fact{
	Collector: "storage", Name: "azure_disk_links",
	Help: "Symbolic links under /dev/disk/azure/, created by azure-vm-utils' (and WALinuxAgent's) udev rules; " +
		"0 on an Azure VM means the image lost those rules. Absent when the root has no /dev/disk.",
})

var storageAzureDiskLinkInfoFact = declare(Fact{
	Collector: "storage", Name: "azure_disk_link_info",
	Help: "One /dev/disk/azure/ link (relative to that directory, e.g. os, resource, data/by-lun/0, local/by-serial/<serial>) " +
		"and the device it points at; constant 1.",
	Labels:   []string{"link", "target"},
	Identity: []string{"link"}, Bound: "at most 1000 links",
})

// storageCollector reports how the disks are attached. Azure is moving VMs
// from the synthetic SCSI controller (hv_storvsc: sda, sdb) to NVMe
// (nvme0n1, …), which renames every device; the /dev/disk/azure links that
// azure-vm-utils' udev rules create are the stable names, so both are
// reported.
type storageCollector struct {
	paths Paths
}

func newStorageCollector(env Env, _ any) (Collector, error) {
	return &storageCollector{
		paths: env.Paths,
	}, nil
}

func (c *storageCollector) Update(ctx context.Context, m *Metrics) error {
	disks, derr := c.updateDisks(ctx, m)
	links, lerr := c.updateLinks(m)
	if !disks && !links && derr == nil && lerr == nil {
		return ErrNoData
	}
	return errors.Join(derr, lerr, c.updateNVMe(ctx, m))
}

// virtualBlock holds the kernel's purely virtual block devices.
const virtualBlock = "/devices/virtual/block/"

// nonAdapterDrivers are the SCSI upper-level drivers bound to a SCSI device
// itself; the adapter's driver sits further up the device path.
var nonAdapterDrivers = map[string]bool{"sd": true, "sr": true, "st": true, "sg": true, "ses": true, "ch": true}

func (c *storageCollector) updateDisks(ctx context.Context, m *Metrics) (bool, error) {
	entries, err := c.paths.Sys("block").ReadDir()
	if isNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("disks: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return true, errors.Join(append(errs, err)...)
		}
		name := e.Name()
		dir := c.paths.Sys("block", name)
		real, err := dir.Resolve()
		if err != nil {
			errs = append(errs, fmt.Errorf("disk %s: %w", name, err))
			continue
		}
		if strings.Contains(real.InRoot()+"/", virtualBlock) || isVirtualName(name) {
			continue
		}
		// NVMe multipath: the per-path devices (nvme0c0n1) are hidden;
		// the head (nvme0n1) is the disk.
		if v, err := readValue(dir.Join("hidden")); err == nil && v == "1" {
			continue
		}
		// SCSI peripheral type 5 is a CD/DVD drive (Azure's provisioning
		// media), not a disk.
		if v, err := readValue(dir.Join("device", "type")); err == nil && v == "5" {
			continue
		}

		model, err := readValue(dir.Join("device", "model"))
		if err != nil && !isNotExist(err) {
			errs = append(errs, fmt.Errorf("disk %s: %w", name, err))
		}
		driver, transport := c.attachment(name, dir)
		m.Set(storageDiskInfoFact, 1, name, transport, model, driver)

		switch sectors, err := readUint(dir.Join("size")); {
		case err == nil:
			m.Set(storageDiskSizeBytesFact, float64(sectors)*512, name)
		case !isNotExist(err):
			errs = append(errs, fmt.Errorf("disk %s: %w", name, err))
		}
	}
	return true, errors.Join(errs...)
}

// isVirtualName catches virtual devices on a sysfs whose /sys/block entries
// are not links into /sys/devices (old CONFIG_SYSFS_DEPRECATED layouts,
// copied trees).
func isVirtualName(name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "dm-", "md", "nbd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// attachment returns the disk's adapter driver and its transport. The
// driver is the first one bound on the way from the disk's device up the
// device path, skipping SCSI upper-level drivers (sd): hv_storvsc for a
// VMBus SCSI disk, nvme for the PCI function of an NVMe controller,
// virtio_blk for a virtio disk. An NVMe multipath head hangs off a virtual
// nvme-subsystem device, so its driver is its first controller's.
func (c *storageCollector) attachment(name string, dir host.Path) (driver, transport string) {
	dev, err := dir.Join("device").Resolve()
	if err == nil {
		driver = c.adapterDriver(dev)
		if driver == "" && strings.Contains(dev.InRoot(), "/nvme-subsystem/") {
			// The subsystem links each of its controllers (nvme0, …)
			// next to its namespace heads (nvme0n1, …).
			entries, _ := dev.ReadDir()
			for _, e := range entries {
				if e.Type()&fs.ModeSymlink == 0 || !strings.HasPrefix(e.Name(), "nvme") {
					continue
				}
				if ctrl, err := dev.Join(e.Name()).Resolve(); err == nil {
					if driver = c.adapterDriver(ctrl); driver != "" {
						break
					}
				}
			}
		}
	}
	upper := ""
	if l, err := dir.Join("device", "driver").Readlink(); err == nil {
		upper = filepath.Base(l)
	}
	switch {
	case strings.HasPrefix(name, "nvme"):
		transport = "nvme"
	case driver == "virtio_blk":
		transport = "virtio"
	case upper == "sd" || driver == "hv_storvsc" || driver == "virtio_scsi":
		transport = "scsi"
	default:
		transport = "other"
	}
	return driver, transport
}

func (c *storageCollector) adapterDriver(dev host.Path) string {
	stop := c.paths.Sys("devices").InRoot()
	for d, i := dev, 0; i < 32 && d.InRoot() != stop && d.InRoot() != "/"; d, i = d.Dir(), i+1 {
		l, err := d.Join("driver").Readlink()
		if err != nil {
			continue
		}
		if drv := filepath.Base(l); !nonAdapterDrivers[drv] {
			return drv
		}
	}
	return ""
}

// maxAzureLinks bounds the link series: a VM has at most 64 data disks, a
// few partitions each, and a handful of local disks.
const maxAzureLinks = 1000

func (c *storageCollector) updateLinks(m *Metrics) (bool, error) {
	if !exists(c.paths.Root("dev/disk")) {
		return false, nil
	}
	base := c.paths.Root("dev/disk/azure")
	type link struct{ name, target string }
	var links []link
	// The tree is walked through the host layer, at most two levels deep
	// (udev's rules make /dev/disk/azure/{resource,root,scsi1/lun0,...}).
	var walk func(dir host.Path, rel string, depth int) error
	walk = func(dir host.Path, rel string, depth int) error {
		entries, err := dir.ReadDir()
		if err != nil {
			return err
		}
		for _, e := range entries {
			name := path.Join(rel, e.Name())
			switch {
			case e.Type()&fs.ModeSymlink != 0:
				if len(links) == maxAzureLinks {
					return fmt.Errorf("more than %d links", maxAzureLinks)
				}
				target, err := dir.Join(e.Name()).Readlink()
				if err != nil {
					return err
				}
				links = append(links, link{name, path.Base(target)})
			case e.IsDir() && depth < 4:
				if err := walk(dir.Join(e.Name()), name, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := walk(base, "", 0)
	if isNotExist(err) {
		err = nil
	}
	if err != nil {
		return true, fmt.Errorf("azure disk links: %s: %w", base, err)
	}
	m.Set(storageAzureDiskLinksFact, float64(len(links)))
	for _, l := range links {
		m.Set(storageAzureDiskLinkInfoFact, 1, l.name, l.target)
	}
	return true, nil
}
