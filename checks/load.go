// Package checks evaluates azurelinux-probe's compatibility matrix: a list of
// declarative checks, loaded from YAML, each of one kind (a condition on the
// probe's own facts, a command on the PATH, a file, an RPM package, a systemd
// unit, a sysctl, a kernel module, a dnf repository, or a command run with a
// timeout), evaluated against a root file system so that a mounted image can
// be checked before it boots.
//
// The package knows nothing about scheduling or HTTP: the agent evaluates the
// checks in the daemon on an interval and once in the check command.
package checks

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/lenre"

	"go.yaml.in/yaml/v3"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// Embedded is the default matrix for Azure Linux 4.0, evaluated unless the
// agent is told not to. Its name in error messages is EmbeddedName.
//
//go:embed azurelinux-4.0.yml
var Embedded []byte

// EmbeddedName names the embedded matrix in error messages and results.
const EmbeddedName = "embedded:azurelinux-4.0.yml"

// Categories are the documented categories; a check may use its own.
var Categories = []string{
	"golden_image", "k8s_debug", "security_agent", "drivers", "vuln_scanner", "fips_crypto", "package_manager",
	"lab_path", "responder_tools",
}

// Kinds are the check kinds, the key that selects each in a checks file.
var Kinds = []string{"fact", "command", "file", "rpm", "unit", "sysctl", "module", "repo", "exec"}

// Check is one loaded check.
type Check struct {
	Name        string
	Category    string
	Description string
	// Kind is one of Kinds.
	Kind string
	// Source is where the check was defined, "file:line".
	Source string

	fact    *Expr
	command string
	file    *fileSpec
	rpm     *rpmSpec
	unit    *unitSpec
	sysctl  *sysctlSpec
	module  *moduleSpec
	repo    *repoSpec
	exec    *execSpec
}

// Limits on what a checks file may ask for.
const (
	maxFileSize       = 1 << 20
	defaultExecTimout = 10 * time.Second
	maxExecTimeout    = 5 * time.Minute
	defaultRepoTimout = 5 * time.Second
	maxRepoTimeout    = time.Minute
)

var (
	nameRE     = lenre.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`, 1, 100)
	categoryRE = lenre.MustCompile(`^[a-z][a-z0-9_]*$`, 1, 50)
	sysctlRE   = regexp.MustCompile(`^[a-zA-Z0-9_-]+([./][a-zA-Z0-9_*-]+)*$`)
	moduleRE   = lenre.MustCompile(`^[a-zA-Z0-9_-]+$`, 1, 64)
	unitRE     = lenre.MustCompile(`^[a-zA-Z0-9:_.@\\-]+$`, 1, 255)
	rpmNameRE  = lenre.MustCompile(`^[a-zA-Z0-9._+-]+$`, 1, 255)
	rpmVerRE   = regexp.MustCompile(`^([0-9]+:)?[a-zA-Z0-9._+~^]+(-[a-zA-Z0-9._+~^]+)?$`)
)

// Error is a problem in a checks file, with its place.
type Error struct {
	File string
	Line int
	// Column is where on the line, when known (check-config prints it).
	Column int
	Msg    string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Load parses a checks file; name is used in errors. Every problem found is
// reported (joined), each as an *Error with its line. A file with no checks
// is valid.
func Load(name string, data []byte) ([]Check, error) {
	l := &loader{file: name}
	checks := l.load(data)
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return checks, nil
}

// LoadAll loads the embedded matrix (when embedded is set) and every *.yml
// and *.yaml file of dir in name order (a dir that does not exist holds
// none). See LoadDir.
func LoadAll(embedded bool, dir string) ([]Check, error) {
	set, err := LoadDir(embedded, dir, false)
	return set.Checks, err
}

// Set is what LoadDir loaded.
type Set struct {
	Checks []Check
	// Ignored are the files of the directory that are not checks files
	// (not *.yml or *.yaml), by path.
	Ignored []string
	// Replaced says, for each embedded check that a file of the directory
	// replaced, where the replacement is: "name: file:line".
	Replaced []string
}

// LoadDir loads the embedded matrix (when embedded is set) and every *.yml
// and *.yaml file of dir in name order. A dir that does not exist is an
// error when required is set, and holds no checks otherwise (the daemon's
// default directory, which a host may not have). Check names are unique
// across the files of dir; a check of dir named as an embedded one replaces
// it, in its place, so that a team adapts the matrix without forking it.
func LoadDir(embedded bool, dir string, required bool) (Set, error) {
	var set Set
	var embeddedChecks, dirChecks []Check
	var errs []error
	if embedded {
		c, err := Load(EmbeddedName, Embedded)
		if err != nil {
			errs = append(errs, err)
		}
		embeddedChecks = c
	}
	if dir != "" {
		entries, err := os.ReadDir(dir)
		switch {
		case errors.Is(err, os.ErrNotExist) && required:
			errs = append(errs, fmt.Errorf("checks directory %s does not exist", dir))
		case err != nil && !errors.Is(err, os.ErrNotExist):
			errs = append(errs, fmt.Errorf("checks directory: %w", err))
		}
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if ext != ".yml" && ext != ".yaml" {
				set.Ignored = append(set.Ignored, filepath.Join(dir, e.Name()))
				continue
			}
			c, err := LoadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			dirChecks = append(dirChecks, c...)
		}
	}
	seen := map[string]string{}
	byName := map[string]Check{}
	for _, c := range dirChecks {
		if prev, dup := seen[c.Name]; dup {
			file, line := splitSource(c.Source)
			errs = append(errs, &Error{File: file, Line: line, Msg: fmt.Sprintf("check %q is already defined at %s", c.Name, prev)})
			continue
		}
		seen[c.Name] = c.Source
		byName[c.Name] = c
	}
	for _, c := range embeddedChecks {
		if r, ok := byName[c.Name]; ok {
			set.Replaced = append(set.Replaced, c.Name+": "+r.Source)
			set.Checks = append(set.Checks, r)
			delete(byName, c.Name)
			continue
		}
		set.Checks = append(set.Checks, c)
	}
	for _, c := range dirChecks {
		if _, ok := byName[c.Name]; ok && seen[c.Name] == c.Source {
			set.Checks = append(set.Checks, c)
		}
	}
	if len(errs) > 0 {
		return Set{}, errors.Join(errs...)
	}
	return set, nil
}

// LoadFile loads the checks file at path.
func LoadFile(path string) ([]Check, error) {
	// Non-blocking and regular files only: a FIFO in checks.d must not
	// hang `check` or the daemon's start (internal/host/operator.go).
	b, err := host.ReadRegularFile(path, maxFileSize)
	if errors.Is(err, host.ErrTooLarge) {
		return nil, &Error{File: path, Msg: fmt.Sprintf("larger than %d bytes", maxFileSize)}
	}
	if err != nil {
		return nil, fmt.Errorf("checks file: %w", err)
	}
	return Load(path, b)
}

func splitSource(s string) (string, int) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, 0
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return s, 0
	}
	return s[:i], n
}

type loader struct {
	file string
	errs []error
}

func (l *loader) errorf(n *yaml.Node, format string, args ...any) {
	line, col := 0, 0
	if n != nil {
		line, col = n.Line, n.Column
	}
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)})
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (l *loader) load(data []byte) []Check {
	if bytes.IndexByte(data, 0) >= 0 {
		l.errorf(nil, "binary data, not YAML")
		return nil
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file
		}
		msg := err.Error()
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			l.errs = append(l.errs, &Error{File: l.file, Line: n, Msg: "invalid YAML: " + m[2]})
		} else {
			l.errorf(nil, "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		l.errorf(&extra, "more than one YAML document")
		return nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	top, ok := l.mapping(root, "the file", "checks")
	if !ok {
		return nil
	}
	list := top["checks"]
	if list == nil || (list.Kind == yaml.ScalarNode && list.Tag == "!!null") {
		return nil
	}
	if list.Kind != yaml.SequenceNode {
		l.errorf(list, "checks: want a list of checks")
		return nil
	}
	var out []Check
	seen := map[string]int{}
	for _, item := range list.Content {
		c, ok := l.check(item)
		if !ok {
			continue
		}
		if prev, dup := seen[c.Name]; dup {
			l.errorf(item, "check %q is already defined at line %d", c.Name, prev)
			continue
		}
		seen[c.Name] = item.Line
		out = append(out, c)
	}
	return out
}

// mapping returns the keys of a mapping node, reporting keys not in allowed
// (none allowed means any) and duplicate keys.
func (l *loader) mapping(n *yaml.Node, what string, allowed ...string) (map[string]*yaml.Node, bool) {
	if n.Kind != yaml.MappingNode {
		l.errorf(n, "%s: want a mapping", what)
		return nil, false
	}
	out := map[string]*yaml.Node{}
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			l.errorf(k, "%s: keys must be strings", what)
			ok = false
			continue
		}
		if len(allowed) > 0 && !slices.Contains(allowed, k.Value) {
			if near := collectors.Nearest(k.Value, allowed); near != "" {
				l.errorf(k, "%s: unknown key %q (did you mean %q?)", what, k.Value, near)
			} else {
				l.errorf(k, "%s: unknown key %q (want one of %s)", what, k.Value, strings.Join(allowed, ", "))
			}
			ok = false
			continue
		}
		if _, dup := out[k.Value]; dup {
			l.errorf(k, "%s: duplicate key %q", what, k.Value)
			ok = false
			continue
		}
		out[k.Value] = v
	}
	return out, ok
}

// str returns a scalar's string value.
func (l *loader) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		l.errorf(n, "%s: want a string", what)
		return "", false
	}
	return n.Value, true
}

func (l *loader) boolean(n *yaml.Node, what string) (bool, bool) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		l.errorf(n, "%s: want true or false", what)
		return false, false
	}
	return b, true
}

func (l *loader) duration(n *yaml.Node, what string, max time.Duration) (time.Duration, bool) {
	s, ok := l.str(n, what)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > max {
		l.errorf(n, "%s: want a duration above 0 and at most %s, such as 5s (got %q)", what, max, s)
		return 0, false
	}
	return d, true
}

func (l *loader) strings(n *yaml.Node, what string) ([]string, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []string{n.Value}, true
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		l.errorf(n, "%s: want a string or a non-empty list of strings", what)
		return nil, false
	}
	var out []string
	for _, e := range n.Content {
		s, ok := l.str(e, what)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

var checkKeys = append([]string{"name", "category", "description"}, Kinds...)

func (l *loader) check(n *yaml.Node) (Check, bool) {
	c := Check{Source: fmt.Sprintf("%s:%d", l.file, n.Line)}
	keys, ok := l.mapping(n, "check", checkKeys...)
	if !ok {
		return c, false
	}
	if v := keys["name"]; v == nil {
		l.errorf(n, "check: missing name")
		ok = false
	} else if c.Name, ok = l.str(v, "name"); ok && !nameRE.MatchString(c.Name) {
		l.errorf(v, "name %q: want letters, digits, '_', '.' or '-', starting with a letter or digit (at most 100)", c.Name)
		ok = false
	}
	what := "check"
	if c.Name != "" {
		what = fmt.Sprintf("check %q", c.Name)
	}
	if v := keys["category"]; v == nil {
		l.errorf(n, "%s: missing category (one of %s, or your own)", what, strings.Join(Categories, ", "))
		ok = false
	} else if s, good := l.str(v, "category"); !good {
		ok = false
	} else if !categoryRE.MatchString(s) {
		l.errorf(v, "%s: category %q: want lower-case letters, digits and '_'", what, s)
		ok = false
	} else {
		c.Category = s
	}
	if v := keys["description"]; v != nil {
		s, good := l.str(v, "description")
		ok = ok && good
		c.Description = strings.TrimSpace(s)
	}
	var kinds []string
	for _, k := range Kinds {
		if keys[k] != nil {
			kinds = append(kinds, k)
		}
	}
	switch len(kinds) {
	case 0:
		l.errorf(n, "%s: no kind: want exactly one of %s", what, strings.Join(Kinds, ", "))
		return c, false
	case 1:
	default:
		l.errorf(n, "%s: several kinds (%s): want exactly one", what, strings.Join(kinds, ", "))
		return c, false
	}
	c.Kind = kinds[0]
	v := keys[c.Kind]
	what += ": " + c.Kind
	var good bool
	switch c.Kind {
	case "fact":
		good = l.fact(&c, v, what)
	case "command":
		good = l.command(&c, v, what)
	case "file":
		good = l.fileCheck(&c, v, what)
	case "rpm":
		good = l.rpmCheck(&c, v, what)
	case "unit":
		good = l.unitCheck(&c, v, what)
	case "sysctl":
		good = l.sysctlCheck(&c, v, what)
	case "module":
		good = l.moduleCheck(&c, v, what)
	case "repo":
		good = l.repoCheck(&c, v, what)
	case "exec":
		good = l.execCheck(&c, v, what)
	}
	return c, ok && good
}

func (l *loader) fact(c *Check, v *yaml.Node, what string) bool {
	s, ok := l.str(v, what)
	if !ok {
		return false
	}
	e, err := ParseExpr(s)
	if err == nil {
		err = validateFact(e)
	}
	if err != nil {
		l.errorf(v, "%s: %v", what, err)
		return false
	}
	c.fact = e
	return true
}
