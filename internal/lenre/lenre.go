// Package lenre matches a regular expression and a length bound, for the
// validation patterns that would otherwise bound a repetition:
// `^[a-z0-9_-]{1,255}$` compiles to 255 copies of its character class
// (about 110 KB of heap, held for the life of the process by a package
// variable), while `^[a-z0-9_-]+$` and a check of the length compile to a
// few hundred bytes. Go's regexp/syntax expands counted repetitions when it
// compiles them (regexp/syntax/simplify.go, Regexp.Simplify).
package lenre

import "regexp"

// Regexp matches a string of min to max bytes that re matches.
type Regexp struct {
	re       *regexp.Regexp
	min, max int
}

// MustCompile compiles expr, which must be anchored at both ends, with the
// length bound [min, max] in bytes. For a pattern of ASCII character
// classes, as every caller's is, bytes are characters, so
// MustCompile(`^[a-z]+$`, 1, 64) matches what `^[a-z]{1,64}$` matches.
func MustCompile(expr string, min, max int) *Regexp {
	return &Regexp{re: regexp.MustCompile(expr), min: min, max: max}
}

// MatchString reports whether s is within the bound and matches.
func (r *Regexp) MatchString(s string) bool {
	return len(s) >= r.min && len(s) <= r.max && r.re.MatchString(s)
}

// String is the expression and its bound, for messages.
func (r *Regexp) String() string { return r.re.String() }
