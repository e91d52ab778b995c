package collectors

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

func init() {
	register(Spec{
		Name:           "gpu",
		Needs:          "a running kernel (PCI devices in sysfs)",
		DefaultEnabled: true,
		// Reads PCI sysfs and procfs only: no NVML, no cgo, nothing that
		// can hang or crash when the driver is broken or gone.
		Interval: 30 * time.Second,
		Timeout:  5 * time.Second,
		New:      newGPUCollector,
	})
}

// gpuVendors maps the PCI vendor ids whose display controllers and
// accelerators count as GPUs to the vendor label. Hyper-V's synthetic and
// emulated video (0x1414), QEMU's VGA (0x1234) and server BMCs (ASPEED
// 0x1a03, Matrox 0x102b) are not GPUs.
var gpuVendors = map[string]string{"0x10de": "nvidia", "0x1002": "amd", "0x8086": "intel"}

// gpuDrivers are the kernel modules reported by azurelinux_gpu_driver_info
// when loaded. nvidia and amdgpu are also always reported by
// azurelinux_gpu_driver_loaded, so that an alert can join on them.
var (
	gpuDrivers       = []string{"amdgpu", "i915", "nouveau", "nvidia", "radeon", "xe"}
	gpuAlwaysDrivers = []string{"amdgpu", "nvidia"}
)

// nvidiaVersionRE matches a driver version such as 595.58.03 or 550.135.
var nvidiaVersionRE = regexp.MustCompile(`^\d+\.\d+(\.\d+)?$`)

var gpuDeviceInfoFact = declare(Fact{
	Collector: "gpu", Name: "device_info",
	Help:     "One GPU: a PCI display controller (class 0x03xx) or processing accelerator (0x12xx) from NVIDIA, AMD or Intel, with its bound driver (empty when none is bound); model and uuid from /proc/driver/nvidia when present. Constant 1.",
	Labels:   []string{"pci_address", "vendor", "vendor_id", "device_id", "class", "driver", "model", "uuid"},
	Identity: []string{"pci_address"}, Bound: "one per GPU PCI function",
})

var gpuDevicesFact = declare(Fact{
	Collector: "gpu", Name: "devices",
	Help:     "Number of GPUs per vendor and bound driver; driver is empty for GPUs without a driver, as after a kernel update without a matching kernel module.",
	Labels:   []string{"vendor", "driver"},
	Identity: []string{"vendor", "driver"}, Bound: "3 vendors × their bound drivers",
})

var gpuDriverInfoFact = declare(Fact{
	Collector: "gpu", Name: "driver_info",
	Help:     "One loaded GPU driver. nvidia: flavor open or proprietary and the driver version; amdgpu and other in-kernel drivers: in-tree with the kernel release, or dkms with the module's version. Constant 1.",
	Labels:   []string{"driver", "version", "flavor"},
	Identity: []string{"driver"}, Bound: "one per loaded GPU driver",
})

var gpuDriverLoadedFact = declare(Fact{
	Collector: "gpu", Name: "driver_loaded",
	Help:     "1 when the GPU kernel module is loaded; always reported for nvidia and amdgpu.",
	Labels:   []string{"driver"},
	Identity: []string{"driver"}, Bound: "the known GPU drivers",
})

type gpuCollector struct {
	paths Paths
}

func newGPUCollector(env Env, _ any) (Collector, error) {
	return &gpuCollector{
		paths: env.Paths,
	}, nil
}

// gpuDevice is one GPU found in PCI sysfs.
type gpuDevice struct {
	pciDevice
	vendor, model, uuid string
}

func (c *gpuCollector) Update(ctx context.Context, m *Metrics) error {
	var errs []error
	gpus, err := c.gpus(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	count := map[[2]string]int{}
	for _, g := range gpus {
		m.Set(gpuDeviceInfoFact, 1, g.Address, g.vendor, g.VendorID, g.DeviceID, g.Class, g.Driver, g.model, g.uuid)
		count[[2]string{g.vendor, g.Driver}]++
	}
	for k, n := range count {
		m.Set(gpuDevicesFact, float64(n), k[0], k[1])
	}
	c.updateLayers(ctx, m, gpus)

	mods, err := readModules(c.paths, "")
	modules := mods.Loaded
	if err != nil {
		errs = append(errs, err)
	}
	anyLoaded := false
	for _, drv := range gpuDrivers {
		_, listed := modules[drv]
		loaded := listed || exists(c.paths.Sys("module", drv)) ||
			(drv == "nvidia" && exists(c.paths.Proc("driver/nvidia/version")))
		if loaded || slices.Contains(gpuAlwaysDrivers, drv) {
			m.SetBool(gpuDriverLoadedFact, loaded, drv)
		}
		if !loaded {
			continue
		}
		anyLoaded = true
		version, flavor, err := c.driverVersion(drv, modules)
		if err != nil {
			errs = append(errs, err)
		}
		m.Set(gpuDriverInfoFact, 1, drv, version, flavor)
	}
	if len(errs) == 0 && len(gpus) == 0 && !anyLoaded {
		return ErrNoData
	}
	return errors.Join(errs...)
}

// gpus lists the GPUs in /sys/bus/pci/devices by address.
func (c *gpuCollector) gpus(ctx context.Context) ([]gpuDevice, error) {
	pci, err := pciDevices(c.paths)
	if err != nil {
		return nil, err
	}
	addrs := make([]string, 0, len(pci))
	for a := range pci {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	var out []gpuDevice
	var errs []error
	for _, a := range addrs {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		dir := pci[a]
		// The vendor is read first so that a garbled attribute of some
		// unrelated device is still reported, but only GPUs are read whole.
		vendorID, err := readPCIHex(dir.Join("vendor"), 4)
		if err != nil {
			errs = append(errs, fmt.Errorf("pci device %s: %w", a, err))
			continue
		}
		vendor, ok := gpuVendors[vendorID]
		if !ok {
			continue
		}
		class, err := readPCIHex(dir.Join("class"), 6)
		if err != nil {
			errs = append(errs, fmt.Errorf("pci device %s: %w", a, err))
			continue
		}
		if !strings.HasPrefix(class, "0x03") && !strings.HasPrefix(class, "0x12") {
			continue
		}
		p, err := readPCIDevice(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("gpu %s: %w", a, err))
			continue
		}
		g := gpuDevice{pciDevice: p, vendor: vendor}
		if vendor == "nvidia" {
			path := c.paths.Proc("driver/nvidia/gpus", a, "information")
			text, err := readText(path, 64<<10)
			switch {
			case err == nil:
				info, perr := parseNvidiaInformation(text)
				if perr != nil {
					errs = append(errs, fmt.Errorf("gpu %s: %s: %w", a, path, perr))
				}
				g.model, g.uuid = info["Model"], info["GPU UUID"]
			case !isNotExist(err):
				errs = append(errs, fmt.Errorf("gpu %s: %w", a, err))
			}
		}
		out = append(out, g)
	}
	return out, errors.Join(errs...)
}

// driverVersion returns the version and flavor of a loaded GPU driver.
func (c *gpuCollector) driverVersion(drv string, modules map[string]string) (version, flavor string, err error) {
	if drv == "nvidia" {
		return c.nvidiaVersion(modules)
	}
	// An in-tree module declares no MODULE_VERSION, so it has no version
	// attribute; an out-of-tree (DKMS) build such as amdgpu-dkms does.
	v, verr := readValue(c.paths.Sys("module", drv, "version"))
	if verr == nil {
		return v, "dkms", nil
	}
	if !isNotExist(verr) {
		return "", "dkms", fmt.Errorf("%s driver version: %w", drv, verr)
	}
	release, rerr := c.kernelRelease()
	if rerr != nil {
		return "", "in-tree", fmt.Errorf("%s driver version: kernel release: %w", drv, rerr)
	}
	return release, "in-tree", nil
}

// kernelRelease returns the running kernel's release from
// /proc/sys/kernel/osrelease, or the third word of /proc/version; "" when
// neither exists.
func (c *gpuCollector) kernelRelease() (string, error) {
	release, err := readValue(c.paths.Proc("sys/kernel/osrelease"))
	if !isNotExist(err) {
		return release, err
	}
	version, err := readValue(c.paths.Proc("version"))
	if isNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	f := strings.Fields(version)
	if len(f) < 3 || f[0] != "Linux" || f[1] != "version" {
		return "", fmt.Errorf("%s: not \"Linux version <release> ...\"", c.paths.Proc("version"))
	}
	return f[2], nil
}

// nvidiaVersion reads the NVIDIA driver's version and flavor from
// /proc/driver/nvidia/version, falling back on /sys/module/nvidia/version
// and, for the flavor, on the module's taint in sysfs or in modules (from
// /proc/modules): only the proprietary license taints P.
func (c *gpuCollector) nvidiaVersion(modules map[string]string) (version, flavor string, err error) {
	var errs []error
	path := c.paths.Proc("driver/nvidia/version")
	text, rerr := readText(path, maxValueSize)
	if rerr == nil {
		nv, perr := parseNvidiaVersion(text)
		if perr == nil {
			return nv.version, nv.flavor, nil
		}
		errs = append(errs, fmt.Errorf("nvidia driver version: %s: %w", path, perr))
	} else if !isNotExist(rerr) {
		errs = append(errs, fmt.Errorf("nvidia driver version: %w", rerr))
	}
	v, verr := readValue(c.paths.Sys("module/nvidia/version"))
	switch {
	case verr == nil:
		version = v
	case !isNotExist(verr):
		errs = append(errs, fmt.Errorf("nvidia driver version: %w", verr))
	}
	taint, terr := readText(c.paths.Sys("module/nvidia/taint"), maxValueSize)
	if isNotExist(terr) {
		// /proc/modules shows the same letters: "(POE)".
		taint, terr = modules["nvidia"], nil
		if taint == "" {
			return version, "", errors.Join(errs...)
		}
	}
	switch {
	case terr != nil:
		errs = append(errs, fmt.Errorf("nvidia driver flavor: %w", terr))
	case strings.Contains(taint, "P"):
		flavor = "proprietary"
	default:
		flavor = "open"
	}
	return version, flavor, errors.Join(errs...)
}

type nvidiaVersion struct{ version, flavor string }

// parseNvidiaVersion parses the first line of /proc/driver/nvidia/version:
//
//	NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.01  Sun May 12 19:39:15 UTC 2024
//	NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.95.05  Release Build  (dvs-builder@U22-I3-B17-02-5)  Tue Sep 23 09:55:41 UTC 2025
//
// The version is the first word after "Kernel Module" that looks like one;
// "Open Kernel Module" is the open flavor. Fields are separated by two
// spaces and dates may hold double spaces, so the line is split on any run
// of blanks.
func parseNvidiaVersion(text string) (nvidiaVersion, error) {
	line, _, _ := strings.Cut(text, "\n")
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "NVRM version:")
	if !ok {
		return nvidiaVersion{}, fmt.Errorf("first line is not \"NVRM version: ...\" (%s)", host.Invalid(line))
	}
	i := strings.Index(rest, "Kernel Module")
	if i < 0 {
		return nvidiaVersion{}, fmt.Errorf("no \"Kernel Module\" in the first line (%s)", host.Invalid(rest))
	}
	nv := nvidiaVersion{flavor: "proprietary"}
	if strings.HasSuffix(strings.TrimSpace(rest[:i]), "Open") {
		nv.flavor = "open"
	}
	for _, w := range strings.Fields(rest[i+len("Kernel Module"):]) {
		if nvidiaVersionRE.MatchString(w) {
			nv.version = w
			return nv, nil
		}
	}
	return nvidiaVersion{}, fmt.Errorf("no driver version after \"Kernel Module\" (%s)", host.Invalid(rest))
}

// parseNvidiaInformation parses /proc/driver/nvidia/gpus/<address>/information,
// "Key: \t value" lines ("Model: \t\t NVIDIA H100 NVL", "GPU UUID: \t GPU-…"),
// splitting each on its first colon. A file without a single such line is
// an error; what parsed is returned either way.
func parseNvidiaInformation(text string) (map[string]string, error) {
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if k = strings.TrimSpace(k); !ok || k == "" {
			continue
		}
		out[k] = strings.TrimSpace(v)
	}
	if len(out) == 0 {
		return out, errors.New("no \"Key: value\" lines")
	}
	if _, ok := out["Model"]; !ok {
		return out, errors.New("no Model line")
	}
	return out, nil
}
