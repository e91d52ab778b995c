package checks

import (
	"errors"
	"strings"
	"testing"
)

// FuzzLoad: whatever a checks file holds, the loader returns checks or an
// *Error naming the file, never panics, and every loaded check has a name,
// a category and a kind.
func FuzzLoad(f *testing.F) {
	f.Add(string(Embedded))
	f.Add("checks:\n  - name: a\n    category: x\n    fact: none m{a=~\"b|c\",d!=\"\"} >= 1e3\n")
	f.Add("checks:\n  - name: a\n    category: x\n    exec: {argv: [/bin/true, x], timeout: 1s}\n")
	f.Add("checks:\n  - name: a\n    category: x\n    file: {path: /etc, type: dir, mode: '0755'}\n")
	f.Add("checks:\n  - name: a\n    category: x\n    repo: {id: 'a*', url: x, metadata: true, timeout: 1s}\n")
	f.Add("checks:\n  - {name: a, category: x, sysctl: {name: a.b, value: [1, 2]}}\n")
	f.Add("checks: [&a {name: a}, *a]\n")
	f.Add("checks:\n  - name: a\n    category: x\n    unit: {name: a, state: active}\n    module: b\n")
	f.Fuzz(func(t *testing.T, src string) {
		got, err := Load("fuzz.yml", []byte(src))
		if err != nil {
			var le *Error
			if !errors.As(err, &le) || le.File != "fuzz.yml" {
				t.Fatalf("error %v is not an *Error naming the file", err)
			}
			return
		}
		for _, c := range got {
			if c.Name == "" || c.Category == "" || c.Kind == "" || !strings.HasPrefix(c.Source, "fuzz.yml:") {
				t.Fatalf("incomplete check %+v", c)
			}
		}
	})
}

// FuzzParseExpr: a condition parses or fails, never panics, and a parsed
// one evaluates.
func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{
		`azurelinux_kernel_info{series="6.18"}`, `none m{a=~"(x|y)+"} != 0`, `all m{a!~"",} <= -1.5`, `any m >= +Inf`, `m{a="\u00e9\"x"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseExpr(s)
		if err != nil {
			return
		}
		e.eval(gpuSeries)
	})
}

// FuzzParseSysctlConf: any sysctl.d file parses without a panic into keys
// written with dots and values without runs of white space.
func FuzzParseSysctlConf(f *testing.F) {
	f.Add("kernel.kptr_restrict = 1\n# c\n; c\n-net/ipv4/conf/eth0.1/rp_filter=2\nnoequals\n")
	f.Add("=\n-=x\n a.b =  c   d \n")
	f.Fuzz(func(t *testing.T, text string) {
		for _, s := range parseSysctlConf("/etc/sysctl.d/x.conf", text) {
			if s.key == "" || strings.Contains(s.value, "  ") || s.file != "/etc/sysctl.d/x.conf" {
				t.Fatalf("%+v", s)
			}
			if i := strings.IndexAny(s.key, "./"); i >= 0 && s.key[i] == '/' {
				t.Fatalf("key %q not normalised", s.key)
			}
		}
	})
}
