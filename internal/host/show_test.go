package host

import (
	"regexp"
	"testing"
	"unicode/utf8"
)

func TestShow(t *testing.T) {
	num := regexp.MustCompile(`^[0-9]{1,20}$`)
	for _, tc := range []struct{ in, want string }{
		{"1", "1"},
		{"", "invalid value, 0 bytes"},
		{"root:x:0:0:canary\n", "invalid value, 18 bytes"},
	} {
		if got := Show(tc.in, num); got != tc.want {
			t.Errorf("Show(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEscapeControl(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text, tabs\tand\nnewlines", "plain text, tabs\tand\nnewlines"},
		{"é ü 中 \uFFFD", "é ü 中 \uFFFD"},
		{"PASS\r\x1b[2K\x1b[1AFAIL", `PASS\x0d\x1b[2K\x1b[1AFAIL`},
		{"bell\x07 del\x7f c1\u009b", `bell\x07 del\x7f c1\u009b`},
		{"bad \xff\xfe utf-8", `bad \xff\xfe utf-8`},
	} {
		if got := EscapeControl(tc.in); got != tc.want {
			t.Errorf("EscapeControl(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzEscapeControl(f *testing.F) {
	f.Add("a\x1b[31mb\r\xff")
	f.Fuzz(func(t *testing.T, s string) {
		out := EscapeControl(s)
		for _, r := range out {
			if isControl(r) && r != '\t' && r != '\n' {
				t.Fatalf("EscapeControl(%q) = %q keeps control %U", s, out, r)
			}
		}
		if !utf8.ValidString(out) {
			t.Fatalf("EscapeControl(%q) = %q is not valid UTF-8", s, out)
		}
	})
}
