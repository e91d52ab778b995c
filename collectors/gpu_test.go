package collectors

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseNvidiaVersion(t *testing.T) {
	for _, tc := range []struct {
		name, in        string
		version, flavor string
		ok              bool
	}{
		{"proprietary, observed",
			"NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.01  Sun May 12 19:39:15 UTC 2024\nGCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n",
			"535.183.01", "proprietary", true},
		{"proprietary, double space in the date",
			"NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.129.03  Thu Dec  7 19:01:02 UTC 2023\n",
			"535.129.03", "proprietary", true},
		{"proprietary, two-part version",
			"NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.135  Fri Jan 10 20:00:00 UTC 2025\n",
			"550.135", "proprietary", true},
		{"open, observed",
			"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.95.05  Release Build  (dvs-builder@U22-I3-B17-02-5)  Tue Sep 23 09:55:41 UTC 2025\nGCC version:  gcc version 11.4.0 (Ubuntu 11.4.0-1ubuntu1~22.04.2) \n",
			"580.95.05", "open", true},
		{"open, distro build with double-space date",
			"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  565.77  Release Build  (nixbld@)  Sun Feb  9 11:08:26 UTC 2025\nGCC version:  gcc version 13.3.0 (GCC)\n",
			"565.77", "open", true},
		{"open, aarch64",
			"NVRM version: NVIDIA UNIX Open Kernel Module for aarch64  595.58.03  Release Build  (dvs-builder@U22-I3-AE18-23-3)  Thu Apr  9 18:12:07 UTC 2026\n",
			"595.58.03", "open", true},
		{"no trailing newline", "NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.256.02  Thu May  2 14:37:44 UTC 2024", "470.256.02", "proprietary", true},
		{"truncated before the version", "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  ", "", "", false},
		{"truncated inside", "NVRM version: NVIDIA UNIX Open Kern", "", "", false},
		{"not the version file", "GCC version:  gcc version 13.3.0 (GCC)\n", "", "", false},
		{"empty", "", "", "", false},
	} {
		got, err := parseNvidiaVersion(tc.in)
		if (err == nil) != tc.ok || got.version != tc.version || got.flavor != tc.flavor {
			t.Errorf("%s: got %+v, %v; want %q %q ok=%v", tc.name, got, err, tc.version, tc.flavor, tc.ok)
		}
	}
}

func TestParseNvidiaInformation(t *testing.T) {
	// Observed for an RTX 3090 on 590.48.01 (nv-procfs.c layout).
	observed := "Model: \t\t NVIDIA GeForce RTX 3090\nIRQ:   \t\t 77\nGPU UUID: \t GPU-eaf23aa1-4d3d-596c-da66-b86b0e5db584\n" +
		"Video BIOS: \t 94.02.26.40.81\nBus Type: \t PCI\nDMA Size: \t 47 bits\nDMA Mask: \t 0x7fffffffffff\n" +
		"Bus Location: \t 0000:01:00.0\nDevice Minor: \t 0\nGPU Firmware: \t 590.48.01\nGPU Excluded:\t No\n"
	info, err := parseNvidiaInformation(observed)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"Model": "NVIDIA GeForce RTX 3090", "GPU UUID": "GPU-eaf23aa1-4d3d-596c-da66-b86b0e5db584",
		"Bus Location": "0000:01:00.0", "GPU Excluded": "No", "DMA Mask": "0x7fffffffffff",
	} {
		if info[k] != v {
			t.Errorf("%s = %q, want %q", k, info[k], v)
		}
	}
	// Older drivers have no UUID line while the GPU initialises and say
	// "Blacklisted" instead of "GPU Excluded".
	old, err := parseNvidiaInformation("Model: \t\t Tesla K80\nIRQ:   \t\t 24\nVideo BIOS: \t 80.21.1b.00.01\nBus Type: \t PCI\nBlacklisted:\t No\n")
	if err != nil || old["Model"] != "Tesla K80" || old["GPU UUID"] != "" {
		t.Errorf("old format: %v %v", old, err)
	}
	for _, bad := range []string{"", "\n\n", "garbage without colons\n", "IRQ: 77\n"} {
		if _, err := parseNvidiaInformation(bad); err == nil {
			t.Errorf("parseNvidiaInformation(%q): no error", bad)
		}
	}
}

func TestParsePCIHex(t *testing.T) {
	for _, tc := range []struct {
		in     string
		digits int
		want   string
		ok     bool
	}{
		{"0x10de\n", 4, "0x10de", true},
		{"0x10DE", 4, "0x10de", true},
		{"10de", 4, "0x10de", true},
		{"0xba", 4, "0x00ba", true},
		{"0x030200\n", 6, "0x030200", true},
		{"0x120000", 6, "0x120000", true},
		{"0x1234567", 6, "", false},
		{"0x", 4, "", false},
		{"NVIDIA", 4, "", false},
		{"0x-1", 4, "", false},
		{"", 4, "", false},
	} {
		got, err := parsePCIHex(tc.in, tc.digits)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parsePCIHex(%q, %d) = %q, %v; want %q ok=%v", tc.in, tc.digits, got, err, tc.want, tc.ok)
		}
	}
}

func TestGPUTrees(t *testing.T) {
	for _, tc := range []struct {
		tree       string
		want       map[string]float64
		gpus       int
		noData     bool
		errContain []string
	}{
		{
			tree: "azl4-azure-gen2", gpus: 2,
			want: map[string]float64{
				`azurelinux_gpu_device_info{class="0x030200",device_id="0x2321",driver="nvidia",model="NVIDIA H100 NVL",pci_address="0002:00:00.0",uuid="GPU-8b41e7d0-2c95-4f6a-b3e8-71d0c4a95f12",vendor="nvidia",vendor_id="0x10de"}`: 1,
				`azurelinux_gpu_devices{driver="nvidia",vendor="nvidia"}`:                       2,
				`azurelinux_gpu_driver_info{driver="nvidia",flavor="open",version="595.58.03"}`: 1,
				`azurelinux_gpu_driver_loaded{driver="nvidia"}`:                                 1,
				`azurelinux_gpu_driver_loaded{driver="amdgpu"}`:                                 0,
			},
		},
		{
			tree: "azl3", gpus: 1,
			want: map[string]float64{
				`azurelinux_gpu_driver_info{driver="nvidia",flavor="proprietary",version="595.58.03"}`: 1,
			},
		},
		{
			tree: "hyperv-gen1-onprem", gpus: 1, // the Hyper-V VGA at 0000:00:08.0 is not a GPU
			want: map[string]float64{
				`azurelinux_gpu_device_info{class="0x030200",device_id="0x1eb8",driver="nvidia",model="Tesla T4",pci_address="0001:00:00.0",uuid="GPU-1e0f5a7c-3b9d-4c2e-8f61-a4d7b2c9e035",vendor="nvidia",vendor_id="0x10de"}`: 1,
				`azurelinux_gpu_driver_info{driver="nvidia",flavor="proprietary",version="535.183.01"}`:                                                                                                                          1,
			},
		},
		{
			tree: "azure-gpu-nodriver", gpus: 1,
			want: map[string]float64{
				`azurelinux_gpu_device_info{class="0x030200",device_id="0x1eb8",driver="",model="",pci_address="0001:00:00.0",uuid="",vendor="nvidia",vendor_id="0x10de"}`: 1,
				`azurelinux_gpu_devices{driver="",vendor="nvidia"}`: 1,
				`azurelinux_gpu_driver_loaded{driver="nvidia"}`:     0,
			},
		},
		{
			tree: "amd-mi300x-baremetal", gpus: 8, // the ASPEED BMC VGA is not a GPU
			want: map[string]float64{
				`azurelinux_gpu_devices{driver="amdgpu",vendor="amd"}`:                                           8,
				`azurelinux_gpu_driver_info{driver="amdgpu",flavor="in-tree",version="6.18.31-1.6.azl4.x86_64"}`: 1,
				`azurelinux_gpu_driver_loaded{driver="amdgpu"}`:                                                  1,
				`azurelinux_gpu_driver_loaded{driver="nvidia"}`:                                                  0,
				`azurelinux_gpu_device_info{class="0x120000",device_id="0x74a1",driver="amdgpu",model="",pci_address="0000:e5:00.0",uuid="",vendor="amd",vendor_id="0x1002"}`: 1,
			},
		},
		{
			tree: "kvm-guest", noData: true,
			want: map[string]float64{`azurelinux_gpu_driver_loaded{driver="nvidia"}`: 0, `azurelinux_gpu_driver_loaded{driver="amdgpu"}`: 0},
		},
		{
			tree: "empty", noData: true,
			want: map[string]float64{`azurelinux_gpu_driver_loaded{driver="nvidia"}`: 0, `azurelinux_gpu_driver_loaded{driver="amdgpu"}`: 0},
		},
		{
			tree: "broken", gpus: 1,
			// The garbled version file falls back on /sys/module/nvidia.
			want: map[string]float64{`azurelinux_gpu_driver_info{driver="nvidia",flavor="open",version="595.58.03"}`: 1},
			errContain: []string{
				"gpu 0001:00:00.0: ", "0001:00:00.0/device: not a 4-digit hex id",
				"gpus/0002:00:00.0/information: no \"Key: value\" lines",
				"proc/driver/nvidia/version: no \"Kernel Module\"",
			},
		},
	} {
		t.Run(tc.tree, func(t *testing.T) {
			got, err := runCollector(t, "gpu", treePaths(t, tc.tree))
			wantOutcome(t, err, tc.noData, tc.errContain...)
			wantValues(t, got, tc.want)
			if n := len(seriesOf(got, "azurelinux_gpu_device_info")); n != tc.gpus {
				t.Errorf("%d GPUs, want %d: %v", n, tc.gpus, seriesOf(got, "azurelinux_gpu_device_info"))
			}
		})
	}
}

// TestGPUDrivers covers driver facts the fixture trees do not: amdgpu from
// DKMS, NVIDIA without procfs, Intel, and devices that are not GPUs.
func TestGPUDrivers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(*fsBuilder)
		want  []string // driver_info and devices series
	}{
		{"amdgpu-dkms on an Azure MI300X VM", func(b *fsBuilder) {
			b.pci("LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00/7a1b2c3d-8d4e-4f5a-9b6c-0d1e2f3a4b5c/pci8d4e:00", "8d4e:00:00.0", "0x1002", "0x74b5", "0x120000", "amdgpu")
			b.file("proc/modules", "amdgpu 19578880 0 - Live 0x0000000000000000 (OE)\n")
			b.file("sys/module/amdgpu/version", "6.12.12\n")
			b.file("proc/sys/kernel/osrelease", "6.18.31-1.3.azl4.x86_64\n")
		}, []string{
			`azurelinux_gpu_devices{driver="amdgpu",vendor="amd"}`,
			`azurelinux_gpu_driver_info{driver="amdgpu",flavor="dkms",version="6.12.12"}`,
		}},
		{"nvidia loaded before procfs appears: version from sysfs, flavor from taint", func(b *fsBuilder) {
			b.pci("pci0000:00/0000:00:01.0", "0000:01:00.0", "0x10de", "0x2330", "0x030200", "nvidia")
			b.file("sys/module/nvidia/version", "550.90.07\n").file("sys/module/nvidia/taint", "POE\n")
		}, []string{
			`azurelinux_gpu_devices{driver="nvidia",vendor="nvidia"}`,
			`azurelinux_gpu_driver_info{driver="nvidia",flavor="proprietary",version="550.90.07"}`,
		}},
		{"intel iGPU, nvidia audio, NVSwitch and BMC VGA", func(b *fsBuilder) {
			b.pci("pci0000:00", "0000:00:02.0", "0x8086", "0xa780", "0x030000", "i915")
			b.pci("pci0000:00/0000:00:01.0", "0000:01:00.1", "0x10de", "0x22ba", "0x040300", "snd_hda_intel")
			b.pci("pci0000:00/0000:00:03.0", "0000:05:00.0", "0x10de", "0x22a3", "0x068000", "")
			b.pci("pci0000:00/0000:00:1c.0", "0000:06:00.0", "0x1a03", "0x2000", "0x030000", "ast")
			b.file("proc/modules", "i915 4300800 0 - Live 0x0000000000000000\n")
			b.file("proc/sys/kernel/osrelease", "6.18.31-1.3.azl4.x86_64\n")
		}, []string{
			`azurelinux_gpu_devices{driver="i915",vendor="intel"}`,
			`azurelinux_gpu_driver_info{driver="i915",flavor="in-tree",version="6.18.31-1.3.azl4.x86_64"}`,
		}},
		{"flavor from /proc/modules taint, release from /proc/version", func(b *fsBuilder) {
			b.pci("pci0000:00/0000:00:01.0", "0000:01:00.0", "0x10de", "0x2330", "0x030200", "nvidia")
			b.pci("pci0000:00/0000:00:02.0", "0000:02:00.0", "0x1002", "0x740f", "0x038000", "amdgpu")
			b.file("proc/modules", "nvidia_uvm 1765376 0 - Live 0x0000000000000000 (POE)\nnvidia 56823808 1 nvidia_uvm, Live 0x0000000000000000 (POE)\namdgpu 19578880 0 - Live 0x0000000000000000\n")
			b.file("proc/version", "Linux version 6.18.31-1.3.azl4.x86_64 (mockbuild@azl) (gcc (GCC) 15.2.1, GNU ld version 2.45-1.azl4) #1 SMP PREEMPT_DYNAMIC Tue Sep 15 18:22:41 UTC 2026\n")
		}, []string{
			`azurelinux_gpu_devices{driver="amdgpu",vendor="amd"}`,
			`azurelinux_gpu_devices{driver="nvidia",vendor="nvidia"}`,
			`azurelinux_gpu_driver_info{driver="amdgpu",flavor="in-tree",version="6.18.31-1.3.azl4.x86_64"}`,
			`azurelinux_gpu_driver_info{driver="nvidia",flavor="proprietary",version=""}`,
		}},
		{"driver loaded, GPU gone from the bus", func(b *fsBuilder) {
			b.file("proc/modules", "nvidia 14049280 0 - Live 0x0000000000000000 (O)\n")
			b.file("proc/driver/nvidia/version", "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  595.58.03  Release Build  (mockbuild@)  Thu Apr  9 18:12:07 UTC 2026\n")
		}, []string{
			`azurelinux_gpu_driver_info{driver="nvidia",flavor="open",version="595.58.03"}`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFS(t)
			tc.build(b)
			got, err := runCollector(t, "gpu", b.paths())
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			s := append(seriesOf(got, "azurelinux_gpu_devices"), seriesOf(got, "azurelinux_gpu_driver_info")...)
			if !reflect.DeepEqual(s, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(s, "\n"), strings.Join(tc.want, "\n"))
			}
			if _, ok := got[`azurelinux_gpu_driver_loaded{driver="nvidia"}`]; !ok {
				t.Errorf("driver_loaded{nvidia} not reported")
			}
		})
	}
}
