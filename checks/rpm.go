package checks

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// rpmPackage is an installed package, as host.ReadRPMPackages reads it.
type rpmPackage = host.RPMPackage

type rpmDB struct {
	path     string // inside the root
	packages map[string][]rpmPackage
}

// openRPMDB reads the package list of the first rpm database found under
// the root with host.ReadRPMPackages, the reader the userland collector
// shares.
func openRPMDB(p collectors.Paths) (*rpmDB, error) {
	found, err := host.FindRPMDB(p.Root())
	if errors.Is(err, host.ErrNoRPMDB) {
		return nil, fmt.Errorf("%w under %s (looked in /usr/lib/sysimage/rpm and /var/lib/rpm)", err, p.RootFS)
	}
	if err != nil {
		return nil, fmt.Errorf("rpm database: %w", err)
	}
	pkgs, err := host.ReadRPMPackages(found)
	if err != nil {
		return nil, err
	}
	db := &rpmDB{path: found.Path.InRoot(), packages: map[string][]rpmPackage{}}
	for _, pk := range pkgs {
		db.packages[pk.Name] = append(db.packages[pk.Name], pk)
	}
	return db, nil
}

// compareEVR compares two [epoch:]version[-release] strings as rpm does:
// epochs numerically (missing is 0), then version and release with
// rpmvercmp. A release is compared only when both sides have one, so "258"
// compares with "258.4-4.azl4" on the version alone.
func compareEVR(a, b string) int {
	ea, va, ra := splitEVR(a)
	eb, vb, rb := splitEVR(b)
	if ea != eb {
		if ea < eb {
			return -1
		}
		return 1
	}
	if c := rpmvercmp(va, vb); c != 0 {
		return c
	}
	if ra == "" || rb == "" {
		return 0
	}
	return rpmvercmp(ra, rb)
}

func splitEVR(s string) (epoch int, version, release string) {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		epoch, _ = strconv.Atoi(s[:i])
		s = s[i+1:]
	}
	version, release, _ = strings.Cut(s, "-")
	return epoch, version, release
}

// rpmvercmp is rpm's version comparison (rpmio/rpmvercmp.c): alternating
// runs of digits and letters compared segment by segment, digits
// numerically and newer than letters, '~' sorting before anything (even the
// end) and '^' after the end but before anything else.
func rpmvercmp(a, b string) int {
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
