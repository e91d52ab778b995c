package collectors

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

func init() {
	register(Spec{
		Name:           "hyperv",
		Needs:          "a running kernel (VMBus devices in sysfs)",
		DefaultEnabled: true,
		// VMBus devices are hot-added and rescinded (a GPU or VF after host
		// servicing) and the KVP daemon can die, so refresh twice a minute;
		// one refresh is a few dozen sysfs reads.
		Interval: 30 * time.Second,
		Timeout:  5 * time.Second,
		New:      newHypervCollector,
	})
}

// azureAssetTag is the DMI chassis asset tag of every Azure VM (the decimal
// ASCII codes of "MSFT AZURE VM"); cloud-init and WALinuxAgent key on it.
// On-premises Hyper-V guests carry a different, per-VM tag.
const azureAssetTag = "7783-7084-3265-9085-8269-3286-77"

// kvpPools is the number of KVP pools (enum hv_kvp_exchg_pool: external,
// guest, auto, auto_external, auto_internal) and kvpRecordSize the size of
// one struct kvp_record (512-byte key, 2048-byte value) in a pool file.
const (
	kvpPools      = 5
	kvpRecordSize = 512 + 2048
)

// vmbusClasses maps the well-known VMBus class GUIDs of
// include/linux/hyperv.h to the stable short names of the class label. Any
// other GUID (hv_sock services, reserved system devices) is "unknown".
var vmbusClasses = map[string]string{
	"f8615163-df3e-46c5-913f-f2d2f965ed0e": "network",
	"ba6163d9-04a1-4d29-b605-72e2ffb1dc7f": "storage",
	"32412632-86cb-44a2-9b5c-50d1417354f5": "ide",
	"2f9bcc4a-0069-4af3-b76b-6fd0be528cda": "fibre_channel",
	"525074dc-8985-46e2-8057-a307dc18a502": "dynamic_memory",
	"57164f39-9115-4e78-ab55-382f3bd5422d": "heartbeat",
	"a9a0f4e7-5a45-4d96-b827-8a841e8c03e6": "kvp",
	"0e0b6031-5213-4934-818b-38d90ced39db": "shutdown",
	"9527e630-d0ae-497b-adce-e80ab0175caf": "timesync",
	"35fa2e29-ea23-4236-96ae-3a6ebacba440": "vss",
	"34d14be3-dee4-41c8-9ae7-6b174977c192": "file_copy",
	"f912ad6d-2b17-48ea-bd65-f927a61c7684": "keyboard",
	"cfa8b69e-5b4a-4cc0-b98b-8ba1a1f3f95a": "mouse",
	"da0a7802-e377-4aac-8e77-0558eb1073f8": "synthetic_video",
	"44c4f61d-4444-4400-9d52-802e27ede19f": "pci_passthrough",
	"8c2eaf3d-32a7-4b09-ab99-bd1f1c86b501": "rdma",
}

// vmbusClassNames lists every class label value, so that the per-class
// count reports 0 for a class that vanished rather than dropping the series.
var vmbusClassNames = func() []string {
	var out []string
	for _, n := range vmbusClasses {
		out = append(out, n)
	}
	sort.Strings(out)
	return append(out, "unknown")
}()

// dmiFiles are the DMI attributes read for Hyper-V and Azure detection. All
// are world-readable (0444 in drivers/firmware/dmi-id.c).
var dmiFiles = []string{"sys_vendor", "product_name", "product_version", "bios_vendor", "bios_version", "chassis_asset_tag"}

var (
	guidRE     = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	vpciBusRE  = regexp.MustCompile(`^pci[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}$`)
	modaliasRE = regexp.MustCompile(`^vmbus:([0-9a-fA-F]{32})$`)
)

var hypervGuestFact = declare(Fact{
	Collector: "hyperv", Name: "guest",
	Help: "1 when running as a Hyper-V guest: VMBus is present, or DMI carries Hyper-V's product or BIOS marks or Azure's asset tag.",
})

var hypervAzureFact = declare(Fact{
	Collector: "hyperv", Name: "azure",
	Help: "1 when the DMI chassis asset tag is Azure's, 0 on on-premises Hyper-V and elsewhere.",
})

var hypervGenerationFact = declare(Fact{
	Collector: "hyperv", Name: "generation",
	Help: "Hyper-V VM generation: 2 for UEFI, 1 for BIOS with the IDE controller; guests only, absent when undecidable.",
})

var hypervVmbusDeviceInfoFact = declare(Fact{
	Collector: "hyperv", Name: "vmbus_device_info",
	Help:     "One VMBus device: instance GUID, class GUID, class short name (unknown for other GUIDs) and bound driver (empty when none is bound). Constant 1.",
	Labels:   []string{"instance", "class_id", "class", "driver"},
	Identity: []string{"instance"}, Bound: "one per VMBus device (at most 10000 directory entries)",
})

var hypervVmbusDevicesFact = declare(Fact{
	Collector: "hyperv", Name: "vmbus_devices",
	Help:     "Number of VMBus devices per class; 0 for a well-known class the host does not offer.",
	Labels:   []string{"class"},
	Identity: []string{"class"}, Bound: "the well-known classes and unknown",
})

var hypervPciPassthroughDeviceInfoFact = declare(Fact{
	Collector: "hyperv", Name: "pci_passthrough_device_info",
	Help:     "One PCI function behind a VMBus PCI pass-through channel (GPU, NVMe, MANA or Mellanox VF), with its bound driver (empty when none is bound). Constant 1.",
	Labels:   []string{"pci_address", "vendor_id", "device_id", "class", "driver"},
	Identity: []string{"pci_address"}, Bound: "one per PCI function behind VMBus",
})

var hypervKvpPoolPresentFact = declare(Fact{
	Collector: "hyperv", Name: "kvp_pool_present",
	Help:     "1 when the KVP daemon's pool file /var/lib/hyperv/.kvp_pool_<pool> exists; all 0 means hv_kvp_daemon is not running.",
	Labels:   []string{"pool"},
	Identity: []string{"pool"}, Bound: "5 pools",
})

var hypervKvpPoolRecordsFact = declare(Fact{
	Collector: "hyperv", Name: "kvp_pool_records",
	Help:     "Number of key/value records in the KVP pool file.",
	Labels:   []string{"pool"},
	Identity: []string{"pool"}, Bound: "5 pools",
})

type hypervCollector struct {
	paths Paths
}

func newHypervCollector(env Env, _ any) (Collector, error) {
	return &hypervCollector{
		paths: env.Paths,
	}, nil
}

// vmbusDevice is one entry of /sys/bus/vmbus/devices.
type vmbusDevice struct {
	instance, classID, class, driver string
	// path is the entry under /sys/bus/vmbus/devices and real the device
	// directory it links to ("" when that cannot be resolved).
	path host.Path
	real host.Path // zero when it cannot be resolved
}

func (c *hypervCollector) Update(ctx context.Context, m *Metrics) error {
	var errs []error
	dmi, err := c.readDMI()
	if err != nil {
		errs = append(errs, err)
	}
	vmbusPresent := exists(c.paths.Sys("bus/vmbus"))
	azure := dmi["chassis_asset_tag"] == azureAssetTag
	guest := vmbusPresent || azure || dmiHyperV(dmi)
	m.SetBool(hypervGuestFact, guest)
	m.SetBool(hypervAzureFact, azure)
	if !guest {
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		return ErrNoData
	}

	devs, err := c.vmbusDevices(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	count := map[string]int{}
	for _, d := range devs {
		m.Set(hypervVmbusDeviceInfoFact, 1, d.instance, d.classID, d.class, d.driver)
		count[d.class]++
	}
	if vmbusPresent {
		for _, class := range vmbusClassNames {
			m.Set(hypervVmbusDevicesFact, float64(count[class]), class)
		}
	}

	pci, err := pciDevices(c.paths)
	if err != nil {
		errs = append(errs, err)
	}
	if gen := c.vmGeneration(ctx, dmi, devs, pci); gen > 0 {
		m.Set(hypervGenerationFact, float64(gen))
	}
	errs = append(errs, c.updatePassthrough(ctx, m, devs, pci))
	errs = append(errs, c.updateChannels(ctx, m, devs, manaVF(pci)))
	errs = append(errs, c.updateKVPDaemon(ctx, m))
	errs = append(errs, c.updateTime(m))
	errs = append(errs, c.updateAccelnet(ctx, m))
	errs = append(errs, c.updateKVP(m))
	return errors.Join(errs...)
}

// readDMI reads the DMI attributes that exist; a missing one is left out,
// a garbled one is an error naming it. /sys/class/dmi/id links to
// /sys/devices/virtual/dmi/id, which is read where the link is missing.
func (c *hypervCollector) readDMI() (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	dir := dmiDir(c.paths)
	for _, name := range dmiFiles {
		// Firmware leaves unused strings blank, so an empty attribute is
		// an empty value, not a broken file.
		v, err := readText(dir.Join(name), maxValueSize)
		switch {
		case err == nil:
			out[name] = strings.TrimSpace(v)
		case isNotExist(err), errors.Is(err, os.ErrPermission):
		default:
			errs = append(errs, fmt.Errorf("dmi: %w", err))
		}
	}
	return out, errors.Join(errs...)
}

// dmiHyperV reports Hyper-V's own DMI marks. sys_vendor alone is not one:
// Surface laptops also say "Microsoft Corporation" (systemd #21468), so it
// counts only with the "Virtual Machine" product name; Gen2 firmware puts
// "Hyper-V" in product_version and bios_version.
func dmiHyperV(dmi map[string]string) bool {
	return strings.HasPrefix(dmi["product_version"], "Hyper-V") ||
		strings.Contains(dmi["bios_version"], "Hyper-V") ||
		(dmi["sys_vendor"] == "Microsoft Corporation" && dmi["product_name"] == "Virtual Machine")
}

// vmGeneration tells Gen2 (UEFI: /sys/firmware/efi, "Hyper-V UEFI Release"
// BIOS) from Gen1 (BIOS: the synthetic IDE controller, the emulated
// Hyper-V VGA at 1414:5353, VMBus under the PCI root PNP0A03, a non-UEFI
// BIOS version such as 090008, or a /sys/firmware without efi). It
// returns 0 when nothing decides, as for a tree without /sys/firmware.
func (c *hypervCollector) vmGeneration(ctx context.Context, dmi map[string]string, devs []vmbusDevice, pci map[string]host.Path) int {
	if exists(c.paths.Sys("firmware/efi")) || strings.Contains(dmi["bios_version"], "UEFI") {
		return 2
	}
	if v := dmi["bios_version"]; v != "" {
		return 1
	}
	for _, d := range devs {
		if d.class == "ide" || strings.Contains(d.real.InRoot(), "/PNP0A03:") {
			return 1
		}
	}
	for _, dir := range pci {
		if ctx.Err() != nil {
			return 0
		}
		if v, err := readValue(dir.Join("vendor")); err == nil && v == "0x1414" {
			if d, err := readValue(dir.Join("device")); err == nil && d == "0x5353" {
				return 1
			}
		}
	}
	if exists(c.paths.Sys("firmware")) {
		return 1 // booted by BIOS: Gen2 firmware is UEFI only
	}
	return 0
}

// vmbusDevices lists /sys/bus/vmbus/devices, sorted by instance. A device
// whose class cannot be read is still listed (class "unknown") so that the
// counts stay true, and the unreadable file is reported.
func (c *hypervCollector) vmbusDevices(ctx context.Context) ([]vmbusDevice, error) {
	dir := c.paths.Sys("bus/vmbus/devices")
	entries, err := dir.ReadDir()
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vmbus devices: %w", err)
	}
	var out []vmbusDevice
	var errs []error
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		d := vmbusDevice{instance: strings.ToLower(e.Name()), path: dir.Join(e.Name()), class: "unknown"}
		if real, err := d.path.Resolve(); err == nil {
			d.real = real
		}
		if id, err := vmbusClassID(d.path); err != nil {
			errs = append(errs, fmt.Errorf("vmbus device %s: %w", d.instance, err))
		} else {
			d.classID = id
			if name, ok := vmbusClasses[id]; ok {
				d.class = name
			}
		}
		if d.driver, err = boundDriver(d.path); err != nil {
			errs = append(errs, fmt.Errorf("vmbus device %s: %w", d.instance, err))
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].instance < out[j].instance })
	return out, errors.Join(errs...)
}

// vmbusClassID reads a VMBus device's class GUID from class_id ("{guid}"),
// or, where that attribute is missing, from modalias, which holds the same
// 16 bytes in memory order.
func vmbusClassID(dir host.Path) (string, error) {
	path := dir.Join("class_id")
	s, err := readValue(path)
	if err == nil {
		id, err := parseGUID(s)
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		return id, nil
	}
	if !isNotExist(err) {
		return "", err
	}
	mpath := dir.Join("modalias")
	s, merr := readValue(mpath)
	if isNotExist(merr) {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if merr != nil {
		return "", merr
	}
	id, merr := modaliasGUID(s)
	if merr != nil {
		return "", fmt.Errorf("%s: %w", mpath, merr)
	}
	return id, nil
}

// parseGUID accepts a GUID with or without the braces the kernel prints
// around class_id and device_id ("{%pUl}") and returns it in lower case
// without braces, the form of the device directory names.
func parseGUID(s string) (string, error) {
	g := strings.ToLower(strings.TrimSpace(s))
	if strings.HasPrefix(g, "{") && strings.HasSuffix(g, "}") {
		g = g[1 : len(g)-1]
	}
	if !guidRE.MatchString(g) {
		return "", fmt.Errorf("not a GUID (%s)", host.Invalid(s))
	}
	return g, nil
}

// modaliasGUID converts a VMBus modalias ("vmbus:" and the class GUID's 16
// bytes as stored, "%*phN") to the GUID's text form: the first three groups
// are little-endian in memory.
func modaliasGUID(s string) (string, error) {
	g := modaliasRE.FindStringSubmatch(strings.TrimSpace(s))
	if g == nil {
		return "", fmt.Errorf("not a vmbus modalias (%s)", host.Invalid(s))
	}
	b, err := hex.DecodeString(strings.ToLower(g[1]))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%x-%x",
		b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8:10], b[10:]), nil
}

// updateKVP reports the pool files hv_kvp_daemon keeps in /var/lib/hyperv.
// The files hold whole 2560-byte records; any other size is a truncated or
// foreign file.
func (c *hypervCollector) updateKVP(m *Metrics) error {
	var errs []error
	for pool := 0; pool < kvpPools; pool++ {
		label := strconv.Itoa(pool)
		path := c.paths.Root("var/lib/hyperv", ".kvp_pool_"+label)
		fi, err := path.Stat()
		if err != nil {
			if !isNotExist(err) {
				errs = append(errs, fmt.Errorf("kvp pool %d: %w", pool, err))
			}
			m.Set(hypervKvpPoolPresentFact, 0, label)
			continue
		}
		if !fi.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf("kvp pool %d: %s: not a regular file", pool, path))
			m.Set(hypervKvpPoolPresentFact, 0, label)
			continue
		}
		m.Set(hypervKvpPoolPresentFact, 1, label)
		if fi.Size()%kvpRecordSize != 0 {
			errs = append(errs, fmt.Errorf("kvp pool %d: %s: size %d is not a whole number of %d-byte records", pool, path, fi.Size(), kvpRecordSize))
			continue
		}
		m.Set(hypervKvpPoolRecordsFact, float64(fi.Size()/kvpRecordSize), label)
	}
	return errors.Join(errs...)
}
