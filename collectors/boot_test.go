package collectors

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	azlRunning = "6.18.31-1.3.azl4.x86_64"
	azlNew     = "6.18.40-1.1.azl4.x86_64"
)

func bootKey(name string, labels ...string) string {
	return name + "{" + strings.Join(labels, ",") + "}"
}

// TestBootTrees runs the boot collector on the fixture trees that
// scripts/boot-fixtures.sh builds from clang, sign-file, zstd and cpio
// output, and checks the facts each tree is for.
func TestBootTrees(t *testing.T) {
	rel := func(r string) string { return `release="` + r + `"` }
	mod := func(m string) string { return `module="` + m + `"` }
	for _, tc := range []struct {
		tree   string
		want   map[string]float64
		absent []string
		errs   []string
	}{
		{
			tree: "azl4-gpu-newkernel",
			want: map[string]float64{
				bootKey("azurelinux_boot_kernel_info", `next="false"`, rel(azlRunning), `running="true"`):                               1,
				bootKey("azurelinux_boot_kernel_info", `next="true"`, rel(azlNew), `running="false"`):                                   1,
				bootKey("azurelinux_boot_kernel_module_present", mod("nvidia"), rel(azlRunning)):                                        1,
				bootKey("azurelinux_boot_kernel_module_present", mod("nvidia"), rel(azlNew)):                                            0,
				bootKey("azurelinux_boot_kernel_module_present", mod("hv_storvsc"), rel(azlNew)):                                        1, // built in
				bootKey("azurelinux_boot_kernel_module_vermagic_match", mod("nvidia"), rel(azlRunning)):                                 1,
				bootKey("azurelinux_boot_kernel_module_signed", mod("nvidia"), rel(azlRunning)):                                         1,
				bootKey("azurelinux_boot_kernel_module_signer_trusted", mod("nvidia"), rel(azlRunning)):                                 1,
				bootKey("azurelinux_boot_initramfs_module_present", mod("hv_netvsc"), rel(azlNew)):                                      1,
				bootKey("azurelinux_boot_kernel_ready", rel(azlRunning)):                                                                1,
				bootKey("azurelinux_boot_kernel_ready", rel(azlNew)):                                                                    0,
				bootKey("azurelinux_boot_kernel_not_ready_reason", `reason="missing:nvidia"`, rel(azlNew)):                              1,
				bootKey("azurelinux_boot_next_kernel_not_ready_reason", `reason="missing:nvidia_uvm"`, rel(azlNew)):                     1,
				bootKey("azurelinux_boot_dkms_module_info", mod("nvidia"), rel(azlRunning), `state="installed"`, `version="580.95.05"`): 1,
				"azurelinux_secureboot_enabled":         0,
				"azurelinux_kernel_module_sig_enforced": 0,
			},
			absent: []string{
				// In-tree modules are signed by the kernel's own key, whose
				// certificate is only inside the kernel image: undecided.
				bootKey("azurelinux_boot_kernel_module_signer_trusted", mod("hv_netvsc"), rel(azlNew)),
				// Built in: no file, no vermagic.
				bootKey("azurelinux_boot_kernel_module_vermagic_match", mod("hv_storvsc"), rel(azlNew)),
				bootKey("azurelinux_boot_initramfs_module_present", mod("hv_storvsc"), rel(azlNew)),
			},
		},
		{
			tree: "azl4-gpu-secureboot",
			want: map[string]float64{
				bootKey("azurelinux_boot_kernel_module_signed", mod("nvidia"), rel(azlNew)):                                                 0,
				bootKey("azurelinux_boot_kernel_module_vermagic_match", mod("nvidia"), rel(azlNew)):                                         1,
				bootKey("azurelinux_boot_kernel_module_signer_trusted", mod("nvidia_uvm"), rel(azlNew)):                                     0,
				bootKey("azurelinux_boot_kernel_not_ready_reason", `reason="unsigned:nvidia"`, rel(azlNew)):                                 1,
				bootKey("azurelinux_boot_kernel_not_ready_reason", `reason="untrusted:nvidia_uvm"`, rel(azlNew)):                            1,
				bootKey("azurelinux_boot_kernel_ready", rel(azlRunning)):                                                                    1,
				bootKey("azurelinux_boot_kernel_ready", rel(azlNew)):                                                                        0,
				bootKey("azurelinux_boot_dkms_module_info", mod("nvidia-open"), rel(azlNew), `state="installed"`, `version="580.95.05-1"`):  1,
				bootKey("azurelinux_boot_dkms_module_info", mod("nvidia-open"), rel(azlRunning), `state="failed"`, `version="580.95.05-1"`): 1,
				"azurelinux_secureboot_enabled":         1,
				"azurelinux_kernel_module_sig_enforced": 1,
			},
		},
		{
			tree: "hyperv-gen1-newinitrd",
			want: map[string]float64{
				bootKey("azurelinux_boot_initramfs_module_present", mod("hv_storvsc"), rel(azlRunning)):               1,
				bootKey("azurelinux_boot_initramfs_module_present", mod("hv_storvsc"), rel(azlNew)):                   0,
				bootKey("azurelinux_boot_next_kernel_not_ready_reason", `reason="initramfs:hv_storvsc"`, rel(azlNew)): 1,
				bootKey("azurelinux_boot_kernel_info", `next="true"`, rel(azlNew), `running="false"`):                 1,
			},
			// BIOS: no EFI variables, so no Secure Boot series.
			absent: []string{"azurelinux_secureboot_enabled"},
		},
		{
			tree: "broken",
			want: map[string]float64{
				// Still reported: the kernel, and the facts its bad files
				// did not cost.
				bootKey("azurelinux_boot_kernel_info", `next="false"`, rel(azlRunning), `running="true"`): 1,
				bootKey("azurelinux_boot_kernel_module_present", mod("nvidia"), rel(azlRunning)):          1,
			},
			absent: []string{
				bootKey("azurelinux_boot_kernel_module_vermagic_match", mod("nvidia"), rel(azlRunning)),
				bootKey("azurelinux_boot_kernel_module_signed", mod("hv_netvsc"), rel(azlRunning)),
				bootKey("azurelinux_boot_initramfs_module_present", mod("hv_netvsc"), rel(azlRunning)),
				"azurelinux_secureboot_enabled",
			},
			errs: []string{
				"noversion.conf: no valid version line",
				"grubenv: saved_entry=5b2f6d0c1e8a4c39a1d7e2f3b4c5d6e7-6.18.99-1.azl4.x86_64 names no entry",
				"extra/nvidia.ko: not an ELF file",
				"hv_netvsc.ko.zst: unexpected EOF",
				"initramfs-6.18.31-1.3.azl4.x86_64.img: archive 2",
				"SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c: 3 bytes, want 5",
			},
		},
	} {
		t.Run(tc.tree, func(t *testing.T) {
			got, err := runCollector(t, "boot", treePaths(t, tc.tree))
			if len(tc.errs) == 0 {
				wantOutcome(t, err, false)
			} else {
				wantOutcome(t, err, false, tc.errs...)
			}
			wantValues(t, got, tc.want)
			for _, k := range tc.absent {
				if _, ok := got[k]; ok {
					t.Errorf("%s: want no series, got %v", k, got[k])
				}
			}
		})
	}
}

// TestNextBoot: grub2-reboot's next_entry wins over saved_entry, which
// wins over the newest entry; an entry named by title works as grub's
// blscfg allows.
func TestNextBoot(t *testing.T) {
	entries := []blsEntry{{id: "m-" + azlRunning, version: azlRunning, title: "Azure Linux (" + azlRunning + ")"},
		{id: "m-" + azlNew, version: azlNew, title: "Azure Linux (" + azlNew + ")"}}
	for _, tc := range []struct {
		grubenv, want, err string
	}{
		{grubenv: "", want: azlNew},
		{grubenv: "saved_entry=m-" + azlRunning + "\n", want: azlRunning},
		{grubenv: "saved_entry=m-" + azlRunning + "\nnext_entry=m-" + azlNew + "\n", want: azlNew},
		{grubenv: "saved_entry=Azure Linux (" + azlRunning + ")\n", want: azlRunning},
		{grubenv: "saved_entry=gone\n", err: "saved_entry=gone names no entry"},
	} {
		b := newFS(t)
		if tc.grubenv != "" {
			b.file("boot/grub2/grubenv", "# GRUB Environment Block\n"+tc.grubenv+strings.Repeat("#", 100))
		}
		c := &bootCollector{paths: b.paths(), opts: defaultBootOptions()}
		got, err := c.nextBoot(entries, azlNew)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.grubenv, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: next %q (%v), want %q", tc.grubenv, got, err, tc.want)
		}
	}
}

// TestKeyDescription: the description the kernel gives a certificate's
// key (x509_key_preparse) is what the fixture's /proc/keys lists, for
// the certificates openssl made in scripts/boot-fixtures.sh.
func TestKeyDescription(t *testing.T) {
	p := treePaths(t, "azl4-gpu-secureboot")
	keys, err := os.ReadFile(p.Proc("keys").Abs())
	if err != nil {
		t.Fatal(err)
	}
	listed := parseProcKeys(string(keys))
	b, err := os.ReadFile(p.Root("var", "lib", "dkms", "mok.pub").Abs())
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	desc := keyDescription(cert)
	if !strings.HasPrefix(desc, "DKMS module signing key: ") || !listed[desc+": X509.rsa "+desc[len(desc)-8:]+" []"] {
		t.Errorf("description %q not among the listed keys %v", desc, listed)
	}
	if len(listed) != 4 {
		t.Errorf("%d asymmetric keys, want 4 (keyrings are not keys): %v", len(listed), listed)
	}
}

// BenchmarkBootRefresh measures a refresh on 5 installed kernels with
// 5,000 module files each, with nothing changed since the last refresh:
// what the boot collector costs every interval. Its result chose the 30 s
// interval (no inotify).
func BenchmarkBootRefresh(b *testing.B) {
	src := treePaths(&testing.T{}, "azl4-gpu-newkernel")
	nvidia, err := os.ReadFile(src.Root("lib", "modules", azlRunning, "updates", "dkms", "nvidia.ko.zst").Abs())
	if err != nil {
		b.Fatal(err)
	}
	fs := newFS(b)
	fs.file("proc/sys/kernel/osrelease", "6.18.31-1.1.azl4.x86_64\n")
	fs.file("proc/modules", "nvidia 14376960 0 - Live 0x0000000000000000 (OE)\n")
	for k := 1; k <= 5; k++ {
		rel := fmt.Sprintf("6.18.31-1.%d.azl4.x86_64", k)
		for i := 0; i < 5000; i++ {
			fs.file(fmt.Sprintf("lib/modules/%s/kernel/drivers/d%02d/m%04d.ko.zst", rel, i%50, i), "x")
		}
		fs.file("lib/modules/"+rel+"/extra/nvidia.ko.zst", string(nvidia))
		fs.file("lib/modules/"+rel+"/modules.builtin", "kernel/drivers/hv/hv_vmbus.ko\n")
		fs.file("boot/loader/entries/m-"+rel+".conf", "version "+rel+"\n")
	}
	c, err := newBootCollector(Env{Paths: fs.paths(), Logger: slog.New(slog.DiscardHandler)}, defaultBootOptions())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	c.Update(ctx, &Metrics{}) // fills the caches
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := &Metrics{}
		if err := c.Update(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBootNoticesNewKernel: a kernel installed after a refresh (its
// /lib/modules/<release> tree appearing) is reported by the next one, and
// a refresh with nothing changed reads no module again (the cache).
func TestBootNoticesNewKernel(t *testing.T) {
	src := treePaths(t, "azl4-gpu-newkernel")
	b := newFS(t)
	b.file("proc/sys/kernel/osrelease", azlRunning+"\n")
	c, err := newBootCollector(Env{Paths: b.paths(), Logger: slog.New(slog.DiscardHandler)}, defaultBootOptions())
	if err != nil {
		t.Fatal(err)
	}
	key := bootKey("azurelinux_boot_kernel_info", `next="true"`, `release="`+azlNew+`"`, `running="false"`)
	has := func() bool {
		got, _ := collectOnce(t, c)
		_, ok := got[key]
		return ok
	}
	if has() {
		t.Fatal("new kernel reported before it is installed")
	}
	nv, _ := os.ReadFile(src.Root("lib", "modules", azlRunning, "updates", "dkms", "nvidia.ko.zst").Abs())
	b.file("lib/modules/"+azlNew+"/extra/nvidia.ko.zst", string(nv))
	start := time.Now()
	if !has() {
		t.Fatal("new kernel not reported by the refresh after it appeared")
	}
	t.Logf("new /lib/modules/%s reported by the next refresh, which took %v", azlNew, time.Since(start))
	bc := c.(*bootCollector)
	if n := len(bc.modCache); n != 1 {
		t.Fatalf("%d modules cached, want the new kernel's nvidia", n)
	}
	// Removing the kernel drops it from the facts and from the cache.
	if err := os.RemoveAll(filepath.Join(b.root, "lib/modules", azlNew)); err != nil {
		t.Fatal(err)
	}
	if has() || len(bc.modCache) != 0 {
		t.Errorf("removed kernel still reported or cached (%d)", len(bc.modCache))
	}
}

// TestBootImageRoot: on a mounted image (no running kernel, an empty
// /proc) every kernel reads running="false", and the modules any of its
// kernels has are the ones a kernel must keep.
func TestBootImageRoot(t *testing.T) {
	p := treePaths(t, "azl4-gpu-newkernel")
	p = NewPaths(p.RootFS, t.TempDir(), t.TempDir())
	got, err := runCollector(t, "boot", p)
	wantOutcome(t, err, false)
	wantValues(t, got, map[string]float64{
		bootKey("azurelinux_boot_kernel_info", `next="false"`, `release="`+azlRunning+`"`, `running="false"`):      1,
		bootKey("azurelinux_boot_kernel_info", `next="true"`, `release="`+azlNew+`"`, `running="false"`):           1,
		bootKey("azurelinux_boot_next_kernel_not_ready_reason", `reason="missing:nvidia"`, `release="`+azlNew+`"`): 1,
		bootKey("azurelinux_boot_kernel_ready", `release="`+azlRunning+`"`):                                        1,
	})
	for _, k := range []string{"azurelinux_secureboot_enabled", "azurelinux_kernel_module_sig_enforced"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s on an image root", k)
		}
	}
}

// TestBootBackgroundRead: a module read cut off by the refresh's deadline
// goes on in the background and the next refresh finds its facts cached,
// instead of starting over (and timing out) on every refresh.
func TestBootBackgroundRead(t *testing.T) {
	p := treePaths(t, "azl4-gpu-newkernel")
	c, err := newBootCollector(Env{Paths: p}, defaultBootOptions())
	if err != nil {
		t.Fatal(err)
	}
	bc := c.(*bootCollector)
	bc.seen = map[string]bool{}
	path := p.Root("lib", "modules", azlRunning, "updates", "dkms", "nvidia.ko.zst")
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	mf := bc.module(expired, path)
	if mf.vermagicErr != nil && mf.vermagicErr != errPending {
		t.Fatalf("first read: %v", mf.vermagicErr)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mf = bc.module(expired, path)
		if mf.vermagicErr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background read not done within 10s: %v", mf.vermagicErr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !vermagicMatches(mf.vermagic, azlRunning) || !mf.signed {
		t.Errorf("facts %+v", mf)
	}
	if _, ok := bc.modCache[path.String()]; !ok {
		t.Error("not cached")
	}
}
