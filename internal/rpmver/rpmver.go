// Package rpmver compares rpm version strings as rpm does, for the checks'
// package versions and the boot collector's kernel releases alike.
package rpmver

import (
	"strings"
	"unicode"
)

// Compare is rpm's version comparison, rpmvercmp (rpmio/rpmvercmp.c; grub's
// blscfg orders boot entries with a copy of it): alternating runs of digits
// and letters compared segment by segment, digits numerically and newer
// than letters, '~' sorting before anything (even the end) and '^' after
// the end but before anything else. It returns -1, 0 or 1.
func Compare(a, b string) int {
	if a == b {
		return 0
	}
	isAlnum := func(c byte) bool { return c < 128 && (unicode.IsDigit(rune(c)) || unicode.IsLetter(rune(c))) }
	for len(a) > 0 || len(b) > 0 {
		for len(a) > 0 && !isAlnum(a[0]) && a[0] != '~' && a[0] != '^' {
			a = a[1:]
		}
		for len(b) > 0 && !isAlnum(b[0]) && b[0] != '~' && b[0] != '^' {
			b = b[1:]
		}
		// Tilde: sorts before everything, even the end.
		if len(a) > 0 && a[0] == '~' || len(b) > 0 && b[0] == '~' {
			if len(a) == 0 || a[0] != '~' {
				return 1
			}
			if len(b) == 0 || b[0] != '~' {
				return -1
			}
			a, b = a[1:], b[1:]
			continue
		}
		// Caret: sorts after the end but before anything else.
		if len(a) > 0 && a[0] == '^' || len(b) > 0 && b[0] == '^' {
			if len(a) == 0 {
				return -1
			}
			if len(b) == 0 {
				return 1
			}
			if a[0] != '^' {
				return 1
			}
			if b[0] != '^' {
				return -1
			}
			a, b = a[1:], b[1:]
			continue
		}
		if len(a) == 0 || len(b) == 0 {
			break
		}
		digit := a[0] >= '0' && a[0] <= '9'
		seg := func(s string) (string, string) {
			i := 0
			for i < len(s) && ((digit && s[i] >= '0' && s[i] <= '9') || (!digit && s[i] < 128 && unicode.IsLetter(rune(s[i])))) {
				i++
			}
			return s[:i], s[i:]
		}
		var sa, sb string
		sa, a = seg(a)
		sb, b = seg(b)
		if sb == "" {
			// Segments of different types: numeric is newer.
			if digit {
				return 1
			}
			return -1
		}
		if digit {
			sa = strings.TrimLeft(sa, "0")
			sb = strings.TrimLeft(sb, "0")
			if len(sa) != len(sb) {
				if len(sa) > len(sb) {
					return 1
				}
				return -1
			}
		}
		if c := strings.Compare(sa, sb); c != 0 {
			return c
		}
	}
	switch {
	case len(a) == 0 && len(b) == 0:
		return 0
	case len(a) == 0:
		return -1
	}
	return 1
}
