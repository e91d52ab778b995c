package collectors

import (
	"context"
	"strings"
)

// A GPU passes through three layers before a workload can use it: Hyper-V
// offers it on VMBus as a PCI pass-through device, the kernel's pci_hyperv
// enumerates its PCI function, and a driver binds it. On Azure a fourth
// number says how many there should be: the VM size's. LISA compares the
// first three with the size's count (microsoft/testsuites/gpu/gpusuite.py
// verify_gpu_adapter_count, lisa/features/gpu.py get_gpu_count_with_lsvmbus);
// reporting each layer tells which one lost a GPU after an update.

var (
	gpuLayerDevices = declare(Fact{Collector: "gpu", Name: "layer_devices",
		Help: "GPUs seen at each layer: vmbus (PCI pass-through devices Hyper-V offered whose instance GUID carries a GPU device id, as LISA's lsvmbus count, less NVSwitch bridges), " +
			"pci (GPU functions the kernel enumerated, vendor NVIDIA or AMD, class display or processing accelerator) and driver (those with a driver bound).",
		Labels: []string{"layer"}, Identity: []string{"layer"}, Bound: "3 layers"})
	gpuLayersConsistent = declare(Fact{Collector: "gpu", Name: "layers_consistent",
		Help: "1 when every layer counts the same GPUs (VMBus offers, PCI functions, bound devices; without VMBus, PCI and bound), 0 when a layer lost one. " +
			"The VM size's count (azurelinux_gpu_devices_expected) is compared by the alerts."})
)

// vmbusGPUIDs are the VMBus device id (instance GUID) prefixes LISA takes
// for GPUs, with the number of NVSwitch bridges offered alongside that are
// not GPUs (lisa/tools/nvidiasmi.py NvidiaSmi.gpu_devices).
var vmbusGPUIDs = []struct {
	prefix  string
	bridges int
}{
	{"47505500", 0}, // Tesla (K80, M60, P100, V100, T4)
	{"44450000", 6}, // A100 (ND A100 v4: 8 GPUs and 6 NVSwitch bridges)
	{"44453233", 0}, // H100
	{"56475055", 0}, // A10 vGPU, H100 NVL
	{"3e810200", 0}, // A10-8Q
	{"42333130", 0}, // GB200
}

// updateLayers reports the three layers' counts. gpus are the PCI GPUs the
// collector found.
func (c *gpuCollector) updateLayers(ctx context.Context, m *Metrics, gpus []gpuDevice) {
	bound := 0
	for _, g := range gpus {
		if g.Driver != "" {
			bound++
		}
	}
	// VMBus unreadable or absent (not a Hyper-V guest) leaves the vmbus
	// layer out: the hyperv collector says which.
	devs, _ := (&hypervCollector{paths: c.paths}).vmbusDevices(ctx)
	offers, bridges := 0, 0
	for _, d := range devs {
		if d.class != "pci_passthrough" {
			continue
		}
		for _, id := range vmbusGPUIDs {
			if strings.HasPrefix(d.instance, id.prefix) {
				offers++
				bridges = id.bridges
				break
			}
		}
	}
	if len(gpus) == 0 && offers == 0 {
		return // no GPU at any layer: no data, as for the rest of the collector
	}
	m.Set(gpuLayerDevices, float64(len(gpus)), "pci")
	m.Set(gpuLayerDevices, float64(bound), "driver")
	consistent := bound == len(gpus)
	if len(devs) > 0 {
		vmbus := max(offers-bridges, 0)
		m.Set(gpuLayerDevices, float64(vmbus), "vmbus")
		consistent = consistent && vmbus == len(gpus)
	}
	m.SetBool(gpuLayersConsistent, consistent)
}
