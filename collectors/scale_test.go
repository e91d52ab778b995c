package collectors

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/azurelinux-probe/azurelinux-probe/internal/systemdtest"
)

// Scale benchmarks: how the cost of a refresh grows with the host. A VM
// with 64 VMBus devices (many pass-through channels) and a host with 16
// GPUs are the large cases; the figures go to docs/benchmarks.md.

func benchRefresh(b *testing.B, name string, paths Paths) {
	spec, _ := Lookup(name)
	var opts any
	if spec.Options != nil {
		opts = spec.Options()
	}
	c, err := spec.New(Env{Paths: paths, Logger: slog.New(slog.DiscardHandler)}, opts)
	if err != nil {
		b.Fatal(err)
	}
	benchUpdates(b, c)
}

// benchUpdates measures c's Update and reports the series it emits.
func benchUpdates(b *testing.B, c Collector) {
	b.ReportAllocs()
	b.ResetTimer()
	series := 0
	for b.Loop() {
		m := &Metrics{}
		if err := c.Update(context.Background(), m); err != nil {
			b.Fatal(err)
		}
		series = len(m.List())
	}
	b.ReportMetric(float64(series), "series")
}

// BenchmarkHypervRefresh: an Azure VM with n VMBus devices, a quarter of
// them PCI pass-through channels with a device behind each.
func BenchmarkHypervRefresh(b *testing.B) {
	for _, n := range []int{8, 16, 32, 64} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
			fs := newFS(b)
			fs.file("sys/class/dmi/id/chassis_asset_tag", "7783-7084-3265-9085-8269-3286-77\n").
				file("sys/class/dmi/id/sys_vendor", "Microsoft Corporation\n").
				file("sys/class/dmi/id/product_name", "Virtual Machine\n").
				file("sys/firmware/efi/runtime", "")
			for i := range n {
				inst := fmt.Sprintf("%08x-%04x-4e5b-9a7c-6d8e0f1b2a34", i, i)
				switch i % 4 {
				case 0:
					fs.vmbus(inst, "44c4f61d-4444-4400-9d52-802e27ede19f", "hv_pci")
					fs.pci(fmt.Sprintf("LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00/%s/pci%04x:00", inst, i),
						fmt.Sprintf("%04x:00:00.0", i), "0x10de", "0x2321", "0x030200", "nvidia")
				case 1:
					fs.vmbus(inst, "f8615163-df3e-46c5-913f-f2d2f965ed0e", "hv_netvsc")
				case 2:
					fs.vmbus(inst, "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f", "hv_storvsc")
				default:
					fs.vmbus(inst, "57164f39-9115-4e78-ab55-382f3bd5422d", "hv_utils")
				}
			}
			benchRefresh(b, "hyperv", fs.paths())
		})
	}
}

// BenchmarkGPURefresh: a host with n NVIDIA GPUs on the open driver.
func BenchmarkGPURefresh(b *testing.B) {
	for _, n := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("gpus=%d", n), func(b *testing.B) {
			fs := newFS(b)
			fs.file("proc/driver/nvidia/version",
				"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  595.58.03  Release Build  (dvs-builder@U22-I3-AF03-09-1)  Sun Mar  1 00:00:00 UTC 2026\nGCC version:  gcc version 15.2.1 20251111 (Red Hat 15.2.1-4) (GCC) \n").
				file("proc/modules", "nvidia 14413824 2 - Live 0x0000000000000000 (O)\n").
				file("sys/module/nvidia/version", "595.58.03\n")
			for i := range n {
				addr := fmt.Sprintf("0000:%02x:00.0", 0x10+i)
				fs.pci("pci0000:00/0000:00:01.0", addr, "0x10de", "0x2330", "0x030200", "nvidia")
				fs.file("proc/driver/nvidia/gpus/"+addr+"/information", fmt.Sprintf(
					"Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t %d\nGPU UUID: \t GPU-%08x-1111-2222-3333-444444444444\nVideo BIOS: \t 96.00.99.00.01\nBus Type: \t PCIe\nDMA Size: \t 52 bits\nDMA Mask: \t 0xfffffffffffff\nBus Location: \t %s\nDevice Minor: \t %d\nGPU Firmware: \t 595.58.03\nGPU Excluded:\t No\n",
					100+i, i, addr, i))
			}
			benchRefresh(b, "gpu", fs.paths())
		})
	}
}

// BenchmarkSystemdRefresh: a host with n failed units (the worst case: the
// watch list is fixed, failed units are listed) on a real dbus-daemon with
// a stand-in for systemd's manager. The series are capped at
// max_failed_units (100).
func BenchmarkSystemdRefresh(b *testing.B) {
	for _, n := range []int{10, 200, 2000} {
		b.Run(fmt.Sprintf("failed_units=%d", n), func(b *testing.B) {
			// A short directory: a unix socket path has at most 107 bytes,
			// and b.TempDir() is named after the benchmark.
			dir, err := os.MkdirTemp("", "sdbench")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { os.RemoveAll(dir) })
			bus := systemdtest.StartBus(b, dir)
			f := systemdtest.NewFake()
			for i := range n {
				f.AddUnit(fmt.Sprintf("app-%04d.service", i), "loaded", "failed", "failed")
			}
			f.Props["NFailedUnits"] = dbus.MakeVariant(uint32(n))
			f.Serve(b, bus)
			c := newTestSystemd(b, DefaultPaths(b.TempDir()), &systemdOptions{Address: bus.Addr, MaxFailedUnits: 100})
			defer c.Close()
			benchUpdates(b, c)
		})
	}
}
