package collectors

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets for the parsers of the hyperv and gpu collectors (PCI ids,
// VMBus GUIDs and modaliases, vPCI domains, NVIDIA procfs files). `go test`
// runs the seeds; `go test -fuzz=FuzzX ./collectors` searches for panics
// and broken invariants.

var pciHexRE = regexp.MustCompile(`^0x[0-9a-f]+$`)

func FuzzParsePCIHex(f *testing.F) {
	for _, s := range []string{"0x10de\n", "0x030200\n", "10DE", "0x", "NVIDIA", "0x-1", "0x+1", "0x1_0"} {
		f.Add(s, 4)
		f.Add(s, 6)
	}
	f.Fuzz(func(t *testing.T, s string, digits int) {
		if digits < 1 || digits > 8 {
			return
		}
		v, err := parsePCIHex(s, digits)
		if err != nil {
			return
		}
		if len(v) != digits+2 || !pciHexRE.MatchString(v) {
			t.Errorf("parsePCIHex(%q, %d) = %q", s, digits, v)
		}
	})
}

func FuzzParseGUID(f *testing.F) {
	for _, s := range []string{"{f8615163-df3e-46c5-913f-f2d2f965ed0e}\n", "{F8615163-DF3E-46C5-913F-F2D2F965ED0E}", "{f8615163-df3e", "{}", "{{}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := parseGUID(s)
		if err == nil && !guidRE.MatchString(g) {
			t.Errorf("parseGUID(%q) = %q", s, g)
		}
	})
}

func FuzzModaliasGUID(f *testing.F) {
	for _, s := range []string{"vmbus:635161f83edfc546913ff2d2f965ed0e\n", "vmbus:", "vmbus:zz", "pci:v000010DE"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := modaliasGUID(s)
		if err != nil {
			return
		}
		if !guidRE.MatchString(g) {
			t.Errorf("modaliasGUID(%q) = %q", s, g)
		}
		// The GUID's bytes in memory order give back the modalias.
		b := strings.ReplaceAll(g, "-", "")
		mem := b[6:8] + b[4:6] + b[2:4] + b[0:2] + b[10:12] + b[8:10] + b[14:16] + b[12:14] + b[16:]
		if want := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), "vmbus:")); mem != want {
			t.Errorf("modaliasGUID(%q) = %q does not round-trip (%s)", s, g, mem)
		}
	})
}

func FuzzVPCIDomain(f *testing.F) {
	for _, s := range []string{"56475055-0002-0000-3130-303237344131", "a-b-c-d-e", "x-+fff-0-0-0", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := vpciDomain(s)
		if ok && (len(d) != 4 || !regexp.MustCompile(`^[0-9a-f]{4}$`).MatchString(d)) {
			t.Errorf("vpciDomain(%q) = %q", s, d)
		}
	})
}

func FuzzParseNvidiaVersion(f *testing.F) {
	for _, s := range []string{
		"NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.01  Sun May 12 19:39:15 UTC 2024\nGCC version:  gcc version 12.3.0\n",
		"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.95.05  Release Build  (dvs-builder@U22-I3-B17-02-5)  Tue Sep 23 09:55:41 UTC 2025\n",
		"NVRM version: NVIDIA UNIX Open Kern",
		"NVRM version:Kernel Module",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		nv, err := parseNvidiaVersion(s)
		if err != nil {
			return
		}
		if !nvidiaVersionRE.MatchString(nv.version) || (nv.flavor != "open" && nv.flavor != "proprietary") {
			t.Errorf("parseNvidiaVersion(%q) = %+v", s, nv)
		}
	})
}

func FuzzParseNvidiaInformation(f *testing.F) {
	for _, s := range []string{
		"Model: \t\t NVIDIA H100 NVL\nIRQ:   \t\t 0\nGPU UUID: \t GPU-3f0c9d2e-7b1a-4e5c-9a8d-2c6b1e0f4a73\nGPU Excluded:\t No\n",
		"\n\n", ":::\n", "Model:\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		info, err := parseNvidiaInformation(s)
		if err == nil && info == nil {
			t.Errorf("nil map without error")
		}
		for k, v := range info {
			if k == "" || k != strings.TrimSpace(k) || v != strings.TrimSpace(v) {
				t.Errorf("untrimmed %q: %q", k, v)
			}
			if utf8.ValidString(s) && (!utf8.ValidString(k) || !utf8.ValidString(v)) {
				t.Errorf("invalid UTF-8 from valid input")
			}
		}
	})
}
