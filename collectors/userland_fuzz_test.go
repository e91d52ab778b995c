package collectors

import (
	"testing"
	"unicode/utf8"
)

// FuzzVersionParsers: whatever a tool prints, each parser returns a version
// or nothing, never panics, and what the collector accepts (validVersion)
// is a valid label value.
func FuzzVersionParsers(f *testing.F) {
	f.Add("dnf5 version 5.2.18.0\ndnf5 plugin API version 2.0\n")
	f.Add("tdnf: 3.5.8\n")
	f.Add("RPM version 6.0.1\n")
	f.Add("OpenSSL 3.5.4 30 Sep 2025 (Library: OpenSSL 3.5.4 30 Sep 2025)\n")
	f.Add("systemd 262~rc3 (262~rc3-1.fc45)\n+PAM\n")
	f.Add("Python 3.14.3\n")
	f.Add("ldd (GNU libc) 2.42\nCopyright (C) 2025 Free Software Foundation, Inc.\n")
	f.Add("4.14.0\n")
	f.Add("dnf5 version \xff\xfe\n")
	f.Fuzz(func(t *testing.T, out string) {
		for _, tl := range tools {
			v, ok := tl.parse(out)
			if !ok && v != "" {
				t.Errorf("%s: %q without ok", tl.name, v)
			}
			if ok && validVersion.MatchString(v) && !utf8.ValidString(v) {
				t.Errorf("%s: accepted invalid UTF-8 %q", tl.name, v)
			}
		}
	})
}

// FuzzSystemdVersion: the Version property is free text.
func FuzzSystemdVersion(f *testing.F) {
	f.Add("258.4-4.azl4")
	f.Add("252.39-1~deb12u2")
	f.Add("262~rc3")
	f.Fuzz(func(t *testing.T, s string) {
		if v, ok := parseSystemdVersion(s); ok && v < 0 {
			t.Errorf("%q: negative version %v", s, v)
		}
	})
}
