package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestMatrixNextBoot: `check` on the boot fixture trees fails
// next-boot-kernel-ready naming what the next reboot loses, and passes on
// a tree whose only kernel is the running one.
func TestMatrixNextBoot(t *testing.T) {
	for tree, want := range map[string][]string{
		"azl4-gpu-newkernel":    {`reason="missing:nvidia"`, `reason="missing:nvidia_uvm"`, `release="6.18.40-1.1.azl4.x86_64"`},
		"azl4-gpu-secureboot":   {`reason="unsigned:nvidia"`, `reason="untrusted:nvidia_uvm"`},
		"hyperv-gen1-newinitrd": {`reason="initramfs:hv_storvsc"`},
		"azl4-azure-gen2":       nil,
	} {
		t.Run(tree, func(t *testing.T) {
			root, _ := filepath.Abs(filepath.Join(treesDir, tree))
			_, out, stderr := runCheck(t, "--format=json", "--path.rootfs="+root, "--checks.dir="+t.TempDir(), "--collector.boot")
			var rep checkJSON
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("check --format=json: %v\n%s\n%s", err, out, stderr)
			}
			found := false
			for _, c := range rep.Checks {
				if c.Name != "next-boot-kernel-ready" {
					continue
				}
				found = true
				if c.Pass != (want == nil) {
					t.Errorf("pass %v: %s", c.Pass, c.Reason)
				}
				for _, w := range want {
					if !strings.Contains(c.Reason, w) {
						t.Errorf("reason %q does not name %s", c.Reason, w)
					}
				}
			}
			if !found {
				t.Error("no next-boot-kernel-ready check in the embedded matrix")
			}
		})
	}
}
