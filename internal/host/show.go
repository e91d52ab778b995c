package host

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Describing values read from a tree. A tree that is not the live system
// (an image under --path.rootfs) is someone else's: what it holds may be a
// terminal escape, a megabyte, or a file the image's author hoped to smuggle
// out. A value that passes its grammar is shown as it is; one that fails is
// described by its size only, so nothing the grammar did not vouch for
// reaches a reason, a label or a log line.

// Invalid describes a value that failed validation: "invalid value, 412
// bytes".
func Invalid(s string) string {
	if len(s) == 1 {
		return "invalid value, 1 byte"
	}
	return fmt.Sprintf("invalid value, %d bytes", len(s))
}

// Grammar is what a value shown from a tree must match: an anchored
// *regexp.Regexp, or a length-bounded one (internal/lenre), which is how a
// grammar that bounds a repetition stays small.
type Grammar interface {
	MatchString(s string) bool
}

// Show returns s when grammar matches it whole, else Invalid(s).
func Show(s string, grammar Grammar) string {
	if grammar.MatchString(s) {
		return s
	}
	return Invalid(s)
}

// EscapeControl returns s with every control character (C0, DEL, C1,
// including ESC and CR, which let a value rewrite what a terminal already
// shows) written as a Go escape (\x1b, \r, \u0085) and invalid UTF-8 bytes
// as \xNN; everything else, tabs and newlines included, is kept.
func EscapeControl(s string) string {
	clean := true
	for i, r := range s {
		if (r == utf8.RuneError && !isEncodedRuneError(s[i:])) || (isControl(r) && r != '\t' && r != '\n') {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t' || r == '\n':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case isControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// isEncodedRuneError reports whether s starts with U+FFFD itself, encoded,
// rather than an invalid byte.
func isEncodedRuneError(s string) bool { return strings.HasPrefix(s, "\uFFFD") }
