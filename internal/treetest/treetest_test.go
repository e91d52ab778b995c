package treetest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestNew(t *testing.T) {
	root := New(t, map[string]string{
		"etc/os-release":   "ID=azurelinux\n",
		"usr/bin/dnf5":     "#!/bin/sh\n",
		"usr/bin/tdnf":     "->dnf5",
		"var/lib/rpm/":     "",
		"sys/a/b/c/driver": "->../../../bus/x",
	})
	for _, tc := range []struct {
		rel  string
		mode os.FileMode
	}{
		{"etc/os-release", 0o644},
		{"usr/bin/dnf5", 0o755},
		{"usr/bin/tdnf", os.ModeSymlink},
		{"var/lib/rpm", os.ModeDir},
		{"sys/a/b/c/driver", os.ModeSymlink},
	} {
		fi, err := os.Lstat(filepath.Join(root, tc.rel))
		if err != nil {
			t.Fatal(err)
		}
		got := fi.Mode() & (os.ModeType | os.ModePerm)
		if tc.mode&os.ModeType != 0 {
			got = fi.Mode() & os.ModeType
		}
		if got != tc.mode {
			t.Errorf("%s: mode %v, want %v", tc.rel, got, tc.mode)
		}
	}
	if target, err := os.Readlink(filepath.Join(root, "usr/bin/tdnf")); err != nil || target != "dnf5" {
		t.Errorf("tdnf -> %q, %v", target, err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc/os-release")); err != nil || string(b) != "ID=azurelinux\n" {
		t.Errorf("os-release: %q, %v", b, err)
	}
}
