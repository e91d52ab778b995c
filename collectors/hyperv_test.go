package collectors

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseGUID(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"{f8615163-df3e-46c5-913f-f2d2f965ed0e}\n", "f8615163-df3e-46c5-913f-f2d2f965ed0e", true},
		{"f8615163-df3e-46c5-913f-f2d2f965ed0e", "f8615163-df3e-46c5-913f-f2d2f965ed0e", true},
		{"{BA6163D9-04A1-4D29-B605-72E2FFB1DC7F}", "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f", true},
		{"{00000000-0000-8899-0000-000000000000}", "00000000-0000-8899-0000-000000000000", true},
		{"{f8615163-df3e-46c5-913f", "", false},
		{"{f8615163-df3e-46c5-913f-f2d2f965ed0e", "", false},
		{"f8615163df3e46c5913ff2d2f965ed0e", "", false},
		{"{g8615163-df3e-46c5-913f-f2d2f965ed0e}", "", false},
		{"", "", false},
		{"{}", "", false},
	} {
		got, err := parseGUID(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseGUID(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestModaliasGUID(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		// netvsc's modalias as the kernel prints it ("vmbus:%*phN" of the
		// GUID's bytes in memory order).
		{"vmbus:635161f83edfc546913ff2d2f965ed0e\n", "f8615163-df3e-46c5-913f-f2d2f965ed0e", true},
		{"vmbus:d96361baa104294db60572e2ffb1dc7f", "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f", true},
		{"vmbus:1df6c4444444004499d52802e27ede19f", "", false},
		{"vmbus:", "", false},
		{"pci:v000010DEd00002330", "", false},
	} {
		got, err := modaliasGUID(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("modaliasGUID(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestVMBusClasses pins every class label value to its GUID: the names are
// a contract.
func TestVMBusClasses(t *testing.T) {
	want := map[string]string{
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
	if !reflect.DeepEqual(vmbusClasses, want) {
		t.Errorf("vmbusClasses = %v\nwant %v", vmbusClasses, want)
	}
	if len(vmbusClassNames) != len(want)+1 || vmbusClassNames[len(vmbusClassNames)-1] != "unknown" {
		t.Errorf("vmbusClassNames = %v", vmbusClassNames)
	}
	// Reserved system devices (AVMA, RDV) and hv_sock services are unknown.
	for _, g := range []string{"f8e65716-3cb3-4a06-9a60-1889c5cccab5", "3375baf4-9e15-4b30-b765-67acb10d607b", "276aacf4-ac15-426c-98dd-7521ad3f01fe"} {
		if n, ok := vmbusClasses[g]; ok {
			t.Errorf("%s is %q, want unknown", g, n)
		}
	}
}

func TestVPCIDomain(t *testing.T) {
	for _, tc := range []struct {
		instance, want string
		ok             bool
	}{
		{"56475055-0002-0000-3130-303237344131", "0002", true},
		{"47505500-0001-0000-3130-444531303244", "0001", true},
		{"abee639e-0b9d-49b7-9a07-c54ba8cd5734", "0b9d", true},
		{"9a8d4c1e-C05B-4d3a-8e2f-6b7a1c9d0e45", "c05b", true},
		{"not-a-guid", "", false},
		{"abee639e-0bzz-49b7-9a07-c54ba8cd5734", "", false},
	} {
		got, ok := vpciDomain(tc.instance)
		if ok != tc.ok || got != tc.want {
			t.Errorf("vpciDomain(%q) = %q, %v; want %q, %v", tc.instance, got, ok, tc.want, tc.ok)
		}
	}
}

// TestHypervTrees checks the facts of each fixture tree that a user would
// alert on.
func TestHypervTrees(t *testing.T) {
	for _, tc := range []struct {
		tree       string
		want       map[string]float64
		absent     []string
		devices    int // vmbus_device_info series
		passthru   []string
		noData     bool
		errContain []string
	}{
		{
			tree: "azl4-azure-gen2",
			want: map[string]float64{
				"azurelinux_hyperv_guest":      1,
				"azurelinux_hyperv_azure":      1,
				"azurelinux_hyperv_generation": 2,
				`azurelinux_hyperv_vmbus_device_info{class="storage",class_id="ba6163d9-04a1-4d29-b605-72e2ffb1dc7f",driver="hv_storvsc",instance="00000000-0000-8899-0000-000000000000"}`: 1,
				`azurelinux_hyperv_vmbus_device_info{class="unknown",class_id="f8e65716-3cb3-4a06-9a60-1889c5cccab5",driver="",instance="99221fa0-24ad-11e2-be98-001aa01bbf6e"}`:           1,
				`azurelinux_hyperv_vmbus_devices{class="pci_passthrough"}`: 4,
				`azurelinux_hyperv_vmbus_devices{class="storage"}`:         2,
				`azurelinux_hyperv_vmbus_devices{class="ide"}`:             0,
				`azurelinux_hyperv_vmbus_devices{class="unknown"}`:         2,
				`azurelinux_hyperv_kvp_pool_present{pool="0"}`:             1,
				`azurelinux_hyperv_kvp_pool_records{pool="3"}`:             16,
			},
			devices: 17,
			passthru: []string{
				`azurelinux_hyperv_pci_passthrough_device_info{class="0x010802",device_id="0xb111",driver="nvme",pci_address="0b9d:00:00.0",vendor_id="0x1414"}`,
				`azurelinux_hyperv_pci_passthrough_device_info{class="0x020000",device_id="0x00ba",driver="mana",pci_address="7870:00:00.0",vendor_id="0x1414"}`,
				`azurelinux_hyperv_pci_passthrough_device_info{class="0x030200",device_id="0x2321",driver="nvidia",pci_address="0001:00:00.0",vendor_id="0x10de"}`,
				`azurelinux_hyperv_pci_passthrough_device_info{class="0x030200",device_id="0x2321",driver="nvidia",pci_address="0002:00:00.0",vendor_id="0x10de"}`,
			},
		},
		{
			tree: "hyperv-gen1-onprem",
			want: map[string]float64{
				"azurelinux_hyperv_guest":      1,
				"azurelinux_hyperv_azure":      0,
				"azurelinux_hyperv_generation": 1,
				`azurelinux_hyperv_vmbus_device_info{class="ide",class_id="32412632-86cb-44a2-9b5c-50d1417354f5",driver="hv_storvsc",instance="00000000-0000-8899-0000-000000000000"}`:     1,
				`azurelinux_hyperv_vmbus_device_info{class="file_copy",class_id="34d14be3-dee4-41c8-9ae7-6b174977c192",driver="hv_utils",instance="bf8f2a59-6e3c-4f1a-9d0b-2c7e5a4d3f18"}`: 1,
				`azurelinux_hyperv_vmbus_devices{class="dynamic_memory"}`: 1,
				`azurelinux_hyperv_kvp_pool_records{pool="0"}`:            1,
			},
			devices: 14,
			// The emulated VGA and PIIX4 in domain 0000 are not pass-through.
			passthru: []string{
				`azurelinux_hyperv_pci_passthrough_device_info{class="0x030200",device_id="0x1eb8",driver="nvidia",pci_address="0001:00:00.0",vendor_id="0x10de"}`,
			},
		},
		{
			tree: "azure-gpu-nodriver",
			want: map[string]float64{
				"azurelinux_hyperv_guest": 1, "azurelinux_hyperv_azure": 1, "azurelinux_hyperv_generation": 2,
			},
			devices: 13,
			passthru: []string{
				`azurelinux_hyperv_pci_passthrough_device_info{class="0x020000",device_id="0x1016",driver="mlx5_core",pci_address="9c2e:00:02.0",vendor_id="0x15b3"}`,
				`azurelinux_hyperv_pci_passthrough_device_info{class="0x030200",device_id="0x1eb8",driver="",pci_address="0001:00:00.0",vendor_id="0x10de"}`,
			},
		},
		{
			tree: "azl3",
			// No KVP daemon: every pool reads 0, no record counts.
			want: map[string]float64{
				"azurelinux_hyperv_guest": 1, "azurelinux_hyperv_azure": 1, "azurelinux_hyperv_generation": 2,
				`azurelinux_hyperv_kvp_pool_present{pool="0"}`: 0, `azurelinux_hyperv_kvp_pool_present{pool="4"}`: 0,
			},
			absent:  []string{"azurelinux_hyperv_kvp_pool_records"},
			devices: 14,
			passthru: []string{
				`azurelinux_hyperv_pci_passthrough_device_info{class="0x010802",device_id="0xb111",driver="nvme",pci_address="19e3:00:00.0",vendor_id="0x1414"}`,
				`azurelinux_hyperv_pci_passthrough_device_info{class="0x020000",device_id="0x101a",driver="mlx5_core",pci_address="d3f4:00:02.0",vendor_id="0x15b3"}`,
				`azurelinux_hyperv_pci_passthrough_device_info{class="0x030200",device_id="0x20b5",driver="nvidia",pci_address="0001:00:00.0",vendor_id="0x10de"}`,
			},
		},
		{
			tree:   "kvm-guest",
			want:   map[string]float64{"azurelinux_hyperv_guest": 0, "azurelinux_hyperv_azure": 0},
			absent: []string{"azurelinux_hyperv_generation", "azurelinux_hyperv_vmbus_devices", "azurelinux_hyperv_kvp_pool_present"},
			noData: true,
		},
		{
			tree: "amd-mi300x-baremetal", noData: true,
			want:   map[string]float64{"azurelinux_hyperv_guest": 0},
			absent: []string{"azurelinux_hyperv_generation"},
		},
		{tree: "empty", noData: true, want: map[string]float64{"azurelinux_hyperv_guest": 0, "azurelinux_hyperv_azure": 0}},
		{
			tree: "broken",
			want: map[string]float64{
				"azurelinux_hyperv_guest": 1, "azurelinux_hyperv_azure": 1,
				`azurelinux_hyperv_vmbus_devices{class="unknown"}`: 1,
				`azurelinux_hyperv_kvp_pool_present{pool="3"}`:     1,
			},
			devices: 4,
			passthru: []string{
				`azurelinux_hyperv_pci_passthrough_device_info{class="0x030200",device_id="0x2321",driver="nvidia",pci_address="0002:00:00.0",vendor_id="0x10de"}`,
			},
			errContain: []string{
				"sys/class/dmi/id/product_version: binary data",
				"vmbus device 1d3b0e5a-91c4-4f37-8a6e-000d3a6e5f21: ", "class_id: not a GUID",
				"pci pass-through device 0001:00:00.0: ", "0001:00:00.0/device: not a 4-digit hex id",
				".kvp_pool_3: size 1000 is not a whole number",
			},
		},
	} {
		t.Run(tc.tree, func(t *testing.T) {
			got, err := runCollector(t, "hyperv", treePaths(t, tc.tree))
			wantOutcome(t, err, tc.noData, tc.errContain...)
			wantValues(t, got, tc.want)
			for _, name := range tc.absent {
				if s := seriesOf(got, name); len(s) > 0 {
					t.Errorf("unexpected %v", s)
				}
			}
			if n := len(seriesOf(got, "azurelinux_hyperv_vmbus_device_info")); n != tc.devices {
				t.Errorf("%d vmbus_device_info series, want %d", n, tc.devices)
			}
			if p := seriesOf(got, "azurelinux_hyperv_pci_passthrough_device_info"); !reflect.DeepEqual(p, tc.passthru) && (len(p) > 0 || len(tc.passthru) > 0) {
				t.Errorf("pass-through devices:\n%s\nwant\n%s", strings.Join(p, "\n"), strings.Join(tc.passthru, "\n"))
			}
		})
	}
}

// TestHypervDetection covers the guest and generation decisions on hosts
// with only some of the marks.
func TestHypervDetection(t *testing.T) {
	dmi := func(b *fsBuilder, kv ...string) *fsBuilder {
		for i := 0; i+1 < len(kv); i += 2 {
			b.file("sys/devices/virtual/dmi/id/"+kv[i], kv[i+1]+"\n")
		}
		return b.link("sys/class/dmi/id", "../../devices/virtual/dmi/id")
	}
	for _, tc := range []struct {
		name         string
		build        func(*fsBuilder)
		guest, azure float64
		gen          float64 // 0: absent
	}{
		{"surface laptop: Microsoft vendor is not Hyper-V", func(b *fsBuilder) {
			dmi(b, "sys_vendor", "Microsoft Corporation", "product_name", "Surface Laptop 4", "bios_version", "16.104.143")
			b.file("sys/firmware/efi/fw_platform_size", "64\n")
		}, 0, 0, 0},
		{"gen2 DMI without vmbus loaded", func(b *fsBuilder) {
			dmi(b, "sys_vendor", "Microsoft Corporation", "product_name", "Virtual Machine",
				"product_version", "Hyper-V UEFI Release v4.1", "bios_version", "Hyper-V UEFI Release v4.1")
		}, 1, 0, 2},
		{"gen1 by DMI, BIOS with a trailing blank", func(b *fsBuilder) {
			dmi(b, "sys_vendor", "Microsoft Corporation", "product_name", "Virtual Machine", "product_version", "7.0",
				"bios_vendor", "American Megatrends Inc.", "bios_version", "090008 ", "chassis_asset_tag", "")
		}, 1, 0, 1},
		{"azure asset tag alone", func(b *fsBuilder) {
			dmi(b, "chassis_asset_tag", "7783-7084-3265-9085-8269-3286-77")
			b.file("sys/firmware/efi/fw_platform_size", "64\n")
		}, 1, 1, 2},
		{"vmbus alone, IDE offered", func(b *fsBuilder) {
			b.vmbus("00000000-0000-8899-0000-000000000000", "32412632-86cb-44a2-9b5c-50d1417354f5", "hv_storvsc")
		}, 1, 0, 1},
		{"vmbus alone, nothing decides the generation", func(b *fsBuilder) {
			b.vmbus("fd149e91-82e0-4a7d-afa6-2a4166cbd7c0", "57164f39-9115-4e78-ab55-382f3bd5422d", "hv_utils")
		}, 1, 0, 0},
		{"hyper-v VGA on a gen1 guest", func(b *fsBuilder) {
			b.vmbus("fd149e91-82e0-4a7d-afa6-2a4166cbd7c0", "57164f39-9115-4e78-ab55-382f3bd5422d", "hv_utils")
			b.pci("pci0000:00", "0000:00:08.0", "0x1414", "0x5353", "0x030000", "hyperv_drm")
		}, 1, 0, 1},
		{"kvm with an empty asset tag", func(b *fsBuilder) {
			dmi(b, "sys_vendor", "QEMU", "product_name", "Standard PC (Q35 + ICH9, 2009)", "bios_version", "1.16.3", "chassis_asset_tag", "")
			b.file("sys/devices/system/clocksource/clocksource0/current_clocksource", "kvm-clock\n")
		}, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFS(t)
			tc.build(b)
			got, err := runCollector(t, "hyperv", b.paths())
			if tc.guest == 0 && !errors.Is(err, ErrNoData) {
				t.Errorf("err = %v, want ErrNoData", err)
			}
			if tc.guest == 1 && err != nil {
				t.Errorf("err = %v", err)
			}
			if got["azurelinux_hyperv_guest"] != tc.guest || got["azurelinux_hyperv_azure"] != tc.azure {
				t.Errorf("guest %v azure %v, want %v %v", got["azurelinux_hyperv_guest"], got["azurelinux_hyperv_azure"], tc.guest, tc.azure)
			}
			gen, ok := got["azurelinux_hyperv_generation"]
			if (tc.gen == 0) == ok || gen != tc.gen {
				t.Errorf("generation %v (present %v), want %v", gen, ok, tc.gen)
			}
		})
	}
}

// TestVMBusClassFromModalias: a device without class_id is classified from
// its modalias.
func TestVMBusClassFromModalias(t *testing.T) {
	b := newFS(t)
	b.vmbus("1d3b0e5a-91c4-4f37-8a6e-000d3a6e5f21", "", "hv_netvsc")
	b.file("sys/devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00/1d3b0e5a-91c4-4f37-8a6e-000d3a6e5f21/modalias", "vmbus:635161f83edfc546913ff2d2f965ed0e\n")
	got, err := runCollector(t, "hyperv", b.paths())
	if err != nil {
		t.Fatal(err)
	}
	k := `azurelinux_hyperv_vmbus_device_info{class="network",class_id="f8615163-df3e-46c5-913f-f2d2f965ed0e",driver="hv_netvsc",instance="1d3b0e5a-91c4-4f37-8a6e-000d3a6e5f21"}`
	if got[k] != 1 {
		t.Errorf("missing %s in %v", k, seriesOf(got, "azurelinux_hyperv_vmbus_device_info"))
	}
}

// TestPassthroughByDomain: where the PCI function is not found below the
// channel's device directory (a flattened tree), the domain derived from
// the instance GUID finds it; functions of other domains are not taken.
func TestPassthroughByDomain(t *testing.T) {
	b := newFS(t)
	b.vmbus("abee639e-0b9d-49b7-9a07-c54ba8cd5734", "44c4f61d-4444-4400-9d52-802e27ede19f", "hv_pci")
	b.pci("pci0b9d:00", "0b9d:00:00.0", "0x1414", "0xb111", "0x010802", "nvme")
	b.pci("pci0000:00", "0000:00:08.0", "0x1414", "0x5353", "0x030000", "hyperv_drm")
	got, err := runCollector(t, "hyperv", b.paths())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`azurelinux_hyperv_pci_passthrough_device_info{class="0x010802",device_id="0xb111",driver="nvme",pci_address="0b9d:00:00.0",vendor_id="0x1414"}`}
	if p := seriesOf(got, "azurelinux_hyperv_pci_passthrough_device_info"); !reflect.DeepEqual(p, want) {
		t.Errorf("got %v, want %v", p, want)
	}
}

// TestAbsoluteSysfsLinks: a tree whose sysfs links are absolute (a copy
// made with cp -a of a host's /sys links, or by hand) still reads inside
// the tree, and DMI is read without the /sys/class/dmi/id link.
func TestAbsoluteSysfsLinks(t *testing.T) {
	const node = "/sys/devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00/"
	const inst = "56475055-0001-0000-3130-303237344131"
	b := newFS(t)
	b.file(node+inst+"/class_id", "{44c4f61d-4444-4400-9d52-802e27ede19f}\n")
	b.link(node+inst+"/driver", "/sys/bus/vmbus/drivers/hv_pci")
	b.link("sys/bus/vmbus/devices/"+inst, node+inst)
	fn := node + inst + "/pci0001:00/0001:00:00.0"
	b.file(fn+"/vendor", "0x10de\n").file(fn+"/device", "0x2330\n").file(fn+"/class", "0x030200\n")
	b.link(fn+"/driver", "/sys/bus/pci/drivers/nvidia")
	b.link("sys/bus/pci/devices/0001:00:00.0", fn)
	b.file("sys/devices/virtual/dmi/id/chassis_asset_tag", "7783-7084-3265-9085-8269-3286-77\n")
	b.file("sys/firmware/efi/fw_platform_size", "64\n")
	got, err := runCollector(t, "hyperv", b.paths())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{
		`azurelinux_hyperv_vmbus_device_info{class="pci_passthrough",class_id="44c4f61d-4444-4400-9d52-802e27ede19f",driver="hv_pci",instance="56475055-0001-0000-3130-303237344131"}`,
		`azurelinux_hyperv_pci_passthrough_device_info{class="0x030200",device_id="0x2330",driver="nvidia",pci_address="0001:00:00.0",vendor_id="0x10de"}`,
		"azurelinux_hyperv_azure", "azurelinux_hyperv_generation",
	} {
		if _, ok := got[k]; !ok {
			t.Errorf("missing %s", k)
		}
	}
	if got["azurelinux_hyperv_azure"] != 1 || got["azurelinux_hyperv_generation"] != 2 {
		t.Errorf("azure %v generation %v", got["azurelinux_hyperv_azure"], got["azurelinux_hyperv_generation"])
	}
	g, err := runCollector(t, "gpu", b.paths())
	if err != nil {
		t.Fatal(err)
	}
	if g[`azurelinux_gpu_devices{driver="nvidia",vendor="nvidia"}`] != 1 {
		t.Errorf("gpu through absolute links: %v", seriesOf(g, "azurelinux_gpu_devices"))
	}
}

// TestGenerationFromFirmwareDir: /sys/firmware without efi is a BIOS boot.
func TestGenerationFromFirmwareDir(t *testing.T) {
	b := newFS(t)
	b.vmbus("fd149e91-82e0-4a7d-afa6-2a4166cbd7c0", "57164f39-9115-4e78-ab55-382f3bd5422d", "hv_utils")
	b.file("sys/firmware/acpi/pm_profile", "0\n")
	got, err := runCollector(t, "hyperv", b.paths())
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := got["azurelinux_hyperv_generation"]; !ok || v != 1 {
		t.Errorf("generation %v (present %v), want 1", v, ok)
	}
}
