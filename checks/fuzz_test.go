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
