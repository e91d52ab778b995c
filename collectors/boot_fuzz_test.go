package collectors

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Fuzz targets for the boot collector's readers of untrusted bytes: the
// appended module signature, the ELF .modinfo section and the initramfs
// (cpio, compressed or not). Seeds are the fixture trees' modules and
// images, which clang, sign-file, zstd and cpio made
// (scripts/boot-fixtures.sh). `go test` runs the seeds; `go test
// -fuzz=FuzzX ./collectors` searches for panics and broken invariants.

// fixtureModules returns the decompressed modules of the boot fixtures.
func fixtureModules(f *testing.F) [][]byte {
	var out [][]byte
	dec, err := zstd.NewReader(nil)
	if err != nil {
		f.Fatal(err)
	}
	defer dec.Close()
	root := filepath.Join("testdata", "trees", "azl4-gpu-secureboot", "usr", "lib", "modules")
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".ko.zst") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		raw, err := dec.DecodeAll(b, nil)
		if err != nil {
			f.Fatalf("%s: %v", path, err)
		}
		out = append(out, raw)
		return nil
	})
	if len(out) < 4 {
		f.Fatalf("only %d fixture modules under %s", len(out), root)
	}
	return out
}

func FuzzModuleSignature(f *testing.F) {
	for _, m := range fixtureModules(f) {
		f.Add(m)
		f.Add(m[len(m)/2:])
	}
	f.Add([]byte(moduleSigMagic))
	f.Fuzz(func(t *testing.T, tail []byte) {
		sig, n, err := parseModuleSignature(tail)
		switch {
		case err != nil && (sig != nil || n != 0):
			t.Fatalf("error %v with a signature", err)
		case sig != nil && (n <= len(moduleSigMagic)+moduleSigInfoLen || n > len(tail)):
			t.Fatalf("trailer of %d bytes in %d", n, len(tail))
		case sig == nil && err == nil && bytes.HasSuffix(tail, []byte(moduleSigMagic)):
			t.Fatal("magic without a signature or an error")
		}
	})
}

func FuzzModinfo(f *testing.F) {
	for _, m := range fixtureModules(f) {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := modinfoOf(bytes.NewReader(data), int64(len(data)))
		if err == nil && !bytes.Contains(data, []byte("vermagic="+v)) {
			t.Fatalf("vermagic %q is not in the input", v)
		}
	})
}

func FuzzInitramfs(f *testing.F) {
	for _, tree := range []string{"hyperv-gen1-newinitrd", "azl4-gpu-newkernel"} {
		imgs, _ := filepath.Glob(filepath.Join("testdata", "trees", tree, "boot", "initramfs-*.img"))
		for _, p := range imgs {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
			f.Add(b[:len(b)/2])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		mods, err := initramfsModules(ctx, bytes.NewReader(data), azlRunning)
		if err != nil && mods != nil {
			t.Fatalf("error %v with modules %v", err, mods)
		}
	})
}
