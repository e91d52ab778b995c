package host

import (
	"bufio"
	"fmt"
	"strings"
)

// OSReleaseFiles are read in order; the first that exists wins, as
// os-release(5) says.
var OSReleaseFiles = []string{"etc/os-release", "usr/lib/os-release"}

// ReadOSRelease reads the os-release of the tree at root and returns its
// variables and the file they came from. A missing file is an error that
// satisfies errors.Is(err, fs.ErrNotExist); a file with bad lines still
// returns the good ones (vars non-nil) with the first problem as err.
func ReadOSRelease(root Path) (vars map[string]string, from Path, err error) {
	var text string
	for _, f := range OSReleaseFiles {
		from = root.Join(f)
		text, err = from.ReadText(64 << 10)
		if err == nil || !isNotExist(err) {
			break
		}
	}
	if err != nil {
		return nil, from, err
	}
	vars, err = ParseOSRelease(text)
	if err != nil {
		err = fmt.Errorf("%s: %w", from, err)
	}
	return vars, from, err
}

// ParseOSRelease parses os-release(5): KEY=value lines, values optionally in
// single or double quotes with shell-style backslash escapes, comments and
// blank lines ignored. It returns what it could parse and an error naming the
// first malformed line (an unterminated quote is how a truncated file shows).
func ParseOSRelease(text string) (map[string]string, error) {
	vars := map[string]string{}
	var firstErr error
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, raw, ok := strings.Cut(line, "=")
		if !ok || !validEnvKey(key) {
			if firstErr == nil {
				firstErr = fmt.Errorf("line %d: not KEY=value: %q", n, truncate(line, 60))
			}
			continue
		}
		val, err := unquoteShell(raw)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("line %d (%s): %w", n, key, err)
			}
			continue
		}
		vars[key] = val
	}
	if err := sc.Err(); err != nil && firstErr == nil {
		firstErr = err
	}
	return vars, firstErr
}

func validEnvKey(k string) bool {
	if k == "" {
		return false
	}
	for i, r := range k {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// unquoteShell undoes the quoting os-release(5) allows.
func unquoteShell(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	switch q := s[0]; q {
	case '\'':
		if len(s) < 2 || s[len(s)-1] != '\'' {
			return "", fmt.Errorf("unterminated single quote")
		}
		return s[1 : len(s)-1], nil
	case '"':
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch c := s[i]; {
			case c == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0:
				b.WriteByte(s[i+1])
				i++
			case c == '"':
				if i != len(s)-1 {
					return "", fmt.Errorf("text after closing quote")
				}
				return b.String(), nil
			default:
				b.WriteByte(c)
			}
		}
		return "", fmt.Errorf("unterminated double quote")
	}
	return s, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
