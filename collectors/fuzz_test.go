package collectors

import (
	"strings"
	"testing"
)

// Fuzz targets for every parser of host files: whatever a file holds, a
// parser returns a value or an error, never panics. `make fuzz` runs each
// for FUZZTIME; a crasher found becomes a file under testdata/fuzz, which
// `go test` then replays as a regression case.

func FuzzParseOSRelease(f *testing.F) {
	f.Add("NAME=\"Azure Linux\"\nID=azurelinux\nVERSION_ID=4.0\n")
	f.Add("PRETTY_NAME=\"a \\\"b\\\" \\\\\"\nX='y'\n# c\n\n")
	f.Add("PRETTY_NAME=\"unterminated")
	f.Fuzz(func(t *testing.T, s string) {
		vars, err := parseOSRelease(s)
		if err == nil && strings.TrimSpace(s) != "" && len(vars) == 0 && !onlyComments(s) {
			t.Errorf("no variables and no error for %q", s)
		}
		for k := range vars {
			if !validEnvKey(k) {
				t.Errorf("invalid key %q returned", k)
			}
		}
	})
}

func onlyComments(s string) bool {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && l[0] != '#' {
			return false
		}
	}
	return true
}

func FuzzParseKconfig(f *testing.F) {
	f.Add([]byte("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_LSM=\"a,b\"\n"))
	f.Add([]byte("CONFIG_X=\"\\x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := parseKconfig(b)
		if err == nil && len(cfg) == 0 {
			t.Error("empty config without an error")
		}
		for k := range cfg {
			if !strings.HasPrefix(k, "CONFIG_") {
				t.Errorf("key %q", k)
			}
		}
	})
}

func FuzzBracketed(f *testing.F) {
	f.Add("none [integrity] confidentiality")
	f.Add("][")
	f.Fuzz(func(t *testing.T, s string) {
		if v, ok := bracketed(s); ok && (v == "" || !strings.Contains(s, "["+v+"]")) {
			t.Errorf("bracketed(%q) = %q", s, v)
		}
	})
}
