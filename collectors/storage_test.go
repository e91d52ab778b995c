package collectors

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/azurelinux-probe/azurelinux-probe/internal/treetest"
)

func TestStorageTrees(t *testing.T) {
	for _, tc := range []struct {
		tree  string
		disks []string // disk_info label sets
		sizes map[string]float64
		links map[string]string // link -> target; nil: no links metric
		err   string
	}{
		{
			tree: "azl4-azure-gen2",
			disks: []string{
				`device="nvme0n1",driver="nvme",model="Microsoft NVMe Direct Disk",transport="nvme"`,
				`device="sda",driver="hv_storvsc",model="Virtual Disk",transport="scsi"`,
				`device="sdb",driver="hv_storvsc",model="Virtual Disk",transport="scsi"`,
				`device="sdc",driver="hv_storvsc",model="Virtual Disk",transport="scsi"`,
			},
			sizes: map[string]float64{"sda": 30 << 30, "sdb": 75 << 30, "sdc": 128 << 30, "nvme0n1": 3576 << 30},
			links: map[string]string{
				"os": "sda", "os-part1": "sda1", "os-part14": "sda14", "os-part15": "sda15",
				"root": "sda", "root-part1": "sda1", "root-part14": "sda14", "root-part15": "sda15",
				"resource": "sdb", "resource-part1": "sdb1", "data/by-lun/0": "sdc", "scsi1/lun0": "sdc",
				"local/by-serial/f0451a1ba53a00000001": "nvme0n1",
			},
		},
		{
			tree: "azl4-azure-boost",
			disks: []string{
				`device="nvme0n1",driver="nvme",model="MSFT NVMe Accelerator v1.0",transport="nvme"`,
				`device="nvme0n2",driver="nvme",model="MSFT NVMe Accelerator v1.0",transport="nvme"`,
				`device="nvme0n3",driver="nvme",model="MSFT NVMe Accelerator v1.0",transport="nvme"`,
				`device="nvme1n1",driver="nvme",model="Microsoft NVMe Direct Disk",transport="nvme"`,
			},
			sizes: map[string]float64{"nvme0n1": 30 << 30, "nvme0n2": 128 << 30, "nvme0n3": 256 << 30, "nvme1n1": 3750748848 * 512},
			links: map[string]string{
				"os": "nvme0n1", "os-part1": "nvme0n1p1", "os-part14": "nvme0n1p14", "os-part15": "nvme0n1p15",
				"data/by-lun/0": "nvme0n2", "data/by-lun/1": "nvme0n3", "local/by-serial/70307ea5392400000001": "nvme1n1",
			},
		},
		{
			tree: "azl4-baremetal",
			disks: []string{
				`device="nvme0n1",driver="nvme",model="SAMSUNG MZQL23T8HCLS-00A07",transport="nvme"`,
				`device="nvme1n1",driver="nvme",model="SAMSUNG MZQL23T8HCLS-00A07",transport="nvme"`,
				`device="sda",driver="ahci",model="Micron_5400_MTFD",transport="scsi"`,
			},
			sizes: map[string]float64{"nvme0n1": 7501476528 * 512, "nvme1n1": 7501476528 * 512, "sda": 937703088 * 512},
			links: map[string]string{},
		},
		{
			tree:  "hyperv-gen1-onprem", // IDE OS disk through hv_storvsc; the ata_piix DVD is left out
			disks: []string{`device="sda",driver="hv_storvsc",model="Virtual Disk",transport="scsi"`},
			sizes: map[string]float64{"sda": 127 << 30},
			links: map[string]string{},
		},
		{
			tree:  "kvm-guest",
			disks: []string{`device="vda",driver="virtio_blk",model="",transport="virtio"`},
			sizes: map[string]float64{"vda": 50 << 30},
			links: map[string]string{},
		},
		{tree: "empty", err: ErrNoData.Error()},
		{tree: "azl3", err: ErrNoData.Error()},
		{
			tree:  "broken",
			disks: []string{`device="sda",driver="",model="Virtual Disk",transport="other"`},
			sizes: map[string]float64{},
			err:   `disk sda: <rootfs>/sys/block/sda/size: not an unsigned integer (invalid value, 5 bytes)`,
		},
	} {
		t.Run(tc.tree, func(t *testing.T) {
			root := filepath.Join("testdata/trees", tc.tree)
			m, err := run(t, "storage", root)
			gotErr := ""
			if err != nil {
				gotErr = strings.ReplaceAll(err.Error(), root, "<rootfs>")
			}
			if gotErr != tc.err {
				t.Errorf("error %q, want %q", gotErr, tc.err)
			}
			info := samples(t, m, "azurelinux_storage_disk_info")
			if len(info) != len(tc.disks) {
				t.Errorf("disks %v, want %v", sortedKeys(info), tc.disks)
			}
			for _, d := range tc.disks {
				if info[d] != 1 {
					t.Errorf("disk {%s} missing from %v", d, sortedKeys(info))
				}
			}
			sizes := samples(t, m, "azurelinux_storage_disk_size_bytes")
			for dev, want := range tc.sizes {
				if got := sizes[`device="`+dev+`"`]; got != want {
					t.Errorf("size of %s = %v, want %v", dev, got, want)
				}
			}
			count := samples(t, m, "azurelinux_storage_azure_disk_links")
			links := samples(t, m, "azurelinux_storage_azure_disk_link_info")
			if tc.links == nil {
				if len(count)+len(links) != 0 {
					t.Errorf("link metrics without /dev/disk: %v %v", count, links)
				}
				return
			}
			if len(count) != 1 || int(count[""]) != len(tc.links) || len(links) != len(tc.links) {
				t.Errorf("azure_disk_links = %v with %d link series, want %d", count, len(links), len(tc.links))
			}
			for l, target := range tc.links {
				if links[`link="`+l+`",target="`+target+`"`] != 1 {
					t.Errorf("link %s -> %s missing from %v", l, target, sortedKeys(links))
				}
			}
		})
	}
}

func sortedKeys(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestStorageCases(t *testing.T) {
	const vdaDir = "sys/devices/pci0000:00/0000:00:02.0/virtio1"
	for _, tc := range []struct {
		name  string
		files map[string]string
		disks []string
		links float64 // -1: no links metric
		err   string
	}{
		{
			name: "virtio disk, zram and loop left out",
			files: map[string]string{
				vdaDir + "/driver":                     "->../../../../bus/virtio/drivers/virtio_blk",
				vdaDir + "/block/vda/size":             "536870912\n",
				vdaDir + "/block/vda/device":           "->../../../virtio1",
				"sys/block/vda":                        "->../devices/pci0000:00/0000:00:02.0/virtio1/block/vda",
				"sys/devices/virtual/block/zram0/size": "0\n",
				"sys/block/zram0":                      "->../devices/virtual/block/zram0",
				"sys/block/loop0/size":                 "0\n", // not a link: left out by name
			},
			disks: []string{`device="vda",driver="virtio_blk",model="",transport="virtio"`},
			links: -1,
		},
		{
			name: "image without the azure rules: /dev/disk but no azure links",
			files: map[string]string{
				"dev/disk/by-uuid/1234": "->../../sda1",
			},
			links: 0,
		},
		{
			name: "dangling and absolute links still count",
			files: map[string]string{
				"dev/disk/azure/os":             "->/dev/sda",
				"dev/disk/azure/data/by-lun/10": "->../../../../sdq",
				"dev/disk/azure/not-a-link":     "x",
			},
			links: 2,
		},
		{
			name: "a directory where a link belongs is not a link",
			files: map[string]string{
				"dev/disk/azure/scsi1/README": "x",
			},
			links: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := treetest.New(t, tc.files)
			m, err := run(t, "storage", root)
			if tc.err == "" && err != nil && !errors.Is(err, ErrNoData) {
				t.Fatal(err)
			}
			info := samples(t, m, "azurelinux_storage_disk_info")
			if len(info) != len(tc.disks) {
				t.Errorf("disks %v, want %v", sortedKeys(info), tc.disks)
			}
			for _, d := range tc.disks {
				if info[d] != 1 {
					t.Errorf("disk {%s} missing from %v", d, sortedKeys(info))
				}
			}
			count := samples(t, m, "azurelinux_storage_azure_disk_links")
			switch {
			case tc.links < 0 && len(count) != 0:
				t.Errorf("links metric without /dev/disk: %v", count)
			case tc.links >= 0 && (len(count) != 1 || count[""] != tc.links):
				t.Errorf("azure_disk_links = %v, want %v", count, tc.links)
			}
		})
	}
}

// TestLiveStorage compares the disks with this machine's /sys/block.
func TestLiveStorage(t *testing.T) {
	m := liveRun(t, "storage")
	entries, err := os.ReadDir("/sys/block")
	if err != nil {
		t.Skipf("no /sys/block: %v", err)
	}
	want := map[string]bool{}
	for _, e := range entries {
		real, err := filepath.EvalSymlinks(filepath.Join("/sys/block", e.Name()))
		if err != nil || strings.Contains(real, "/devices/virtual/block/") {
			continue
		}
		if b, err := os.ReadFile(filepath.Join("/sys/block", e.Name(), "hidden")); err == nil && strings.TrimSpace(string(b)) == "1" {
			continue
		}
		if b, err := os.ReadFile(filepath.Join("/sys/block", e.Name(), "device/type")); err == nil && strings.TrimSpace(string(b)) == "5" {
			continue
		}
		want[e.Name()] = true
	}
	info := samples(t, m, "azurelinux_storage_disk_info")
	got := map[string]bool{}
	for labels := range info {
		dev := strings.SplitN(labels, `"`, 3)[1]
		got[dev] = true
		if !want[dev] {
			t.Errorf("reported %s, which /sys/block does not list as a physical disk", labels)
		}
	}
	for dev := range want {
		if !got[dev] {
			t.Errorf("disk %s of /sys/block not reported", dev)
		}
	}
	t.Logf("this host's disks: %v", sortedKeys(info))
}
