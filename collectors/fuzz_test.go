package collectors

import (
	"strings"
	"testing"
)

// Fuzz targets for every parser of host files: whatever a file holds, a
// parser returns a value or an error, never panics. `make fuzz` runs each
// for FUZZTIME; a crasher found becomes a file under testdata/fuzz, which
// `go test` then replays as a regression case.

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
