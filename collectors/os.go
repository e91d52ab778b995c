package collectors

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

func init() {
	register(Spec{
		Name:           "os",
		DefaultEnabled: true,
		Interval:       15 * time.Second,
		Timeout:        5 * time.Second,
		New:            newOSCollector,
	})
}

// osReleaseFiles are read in order; the first that exists wins, as
// os-release(5) prescribes.
var osReleaseFiles = []string{"etc/os-release", "usr/lib/os-release"}

// osInfoKeys are the os-release keys exported as labels of
// azurelinux_os_info, in label order.
var osInfoKeys = []string{"ID", "ID_LIKE", "NAME", "PRETTY_NAME", "VERSION", "VERSION_ID", "VARIANT_ID", "BUILD_ID", "RELEASE_TYPE"}

// lowerAll returns the os-release keys as label names.
func lowerAll(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = strings.ToLower(k)
	}
	return out
}

var osInfoFact = declare(Fact{
	Collector: "os", Name: "info",
	Help:   "Operating system identity from os-release; constant 1.",
	Labels: lowerAll(osInfoKeys),
})

var osVersionFact = declare(Fact{
	Collector: "os", Name: "version",
	Help:     "VERSION_ID of os-release as a number (4.0 reads 4).",
	Labels:   []string{"id"},
	Identity: []string{"id"},
})

var osSupportEndTimestampSecondsFact = declare(Fact{
	Collector: "os", Name: "support_end_timestamp_seconds",
	Help:     "SUPPORT_END of os-release as a Unix timestamp (start of that day, UTC).",
	Labels:   []string{"id"},
	Identity: []string{"id"}, Volatile: true,
})

type osCollector struct {
	paths Paths
}

func newOSCollector(env Env, _ any) (Collector, error) {
	return &osCollector{
		paths: env.Paths,
	}, nil
}

func (c *osCollector) Update(_ context.Context, m *Metrics) error {
	var path, text string
	var err error
	for _, f := range osReleaseFiles {
		path = c.paths.Root(f)
		text, err = readText(path, 64<<10)
		if !isNotExist(err) {
			break
		}
	}
	if isNotExist(err) {
		return fmt.Errorf("no os-release: neither /etc/os-release nor /usr/lib/os-release under %s", c.paths.RootFS)
	}
	if err != nil {
		return err
	}
	vars, perr := parseOSRelease(text)
	if perr != nil {
		perr = fmt.Errorf("%s: %w", path, perr)
	}
	if len(vars) == 0 {
		if perr != nil {
			return perr
		}
		return fmt.Errorf("%s: no KEY=value lines", path)
	}

	values := make([]string, len(osInfoKeys))
	for i, k := range osInfoKeys {
		values[i] = vars[k]
	}
	m.Set(osInfoFact, 1, values...)
	id := vars["ID"]
	if v, ok := vars["VERSION_ID"]; ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			m.Set(osVersionFact, f, id)
		}
	}
	if v, ok := vars["SUPPORT_END"]; ok {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return errors.Join(perr, fmt.Errorf("%s: SUPPORT_END %q is not YYYY-MM-DD", path, v))
		}
		m.Set(osSupportEndTimestampSecondsFact, float64(t.Unix()), id)
	}
	return perr
}

// parseOSRelease parses os-release(5): KEY=value lines, values optionally in
// single or double quotes with shell-style backslash escapes, comments and
// blank lines ignored. It returns what it could parse and an error naming the
// first malformed line (an unterminated quote is how a truncated file shows).
func parseOSRelease(text string) (map[string]string, error) {
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
