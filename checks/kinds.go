package checks

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The specs of the check kinds other than fact, and the loader's parsing of
// each: what a checks file may say for a command, file, rpm, unit, sysctl,
// module, repo or exec check (README.md, "Compatibility matrix").

type fileSpec struct {
	path string
	typ  string // "any", "file" or "dir"
	mode os.FileMode
	// hasMode is set when a mode was given.
	hasMode bool
}

type rpmSpec struct {
	name       string
	minVersion string
}

type unitSpec struct {
	name  string
	state string // "enabled" or "active"
}

type sysctlSpec struct {
	name   string
	values []string
}

type moduleSpec struct {
	name      string
	parameter string
	value     string
}

type repoSpec struct {
	id       string // glob; empty matches any
	url      string // substring of baseurl; empty matches any
	metadata bool
	// packages must all be in the repository's primary metadata (implies
	// metadata).
	packages []string
	timeout  time.Duration
}

type execSpec struct {
	argv    []string
	timeout time.Duration
	// sandbox runs argv[0], a path inside the checked root, inside it
	// (host.RunSandboxed); without it an exec check runs only on the live
	// root.
	sandbox bool
}

func (l *loader) command(c *Check, v *yaml.Node, what string) bool {
	s, ok := l.str(v, what)
	if !ok {
		return false
	}
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		l.errorf(v, "%s: %q: want a command name, without a directory", what, s)
		return false
	}
	c.command = s
	return true
}

// scalarOr returns the keys of v, or {short: v} when v is a scalar: the short
// form "rpm: dnf5" of "rpm: {name: dnf5}".
func (l *loader) scalarOr(v *yaml.Node, short, what string, allowed ...string) (map[string]*yaml.Node, bool) {
	if v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
		return map[string]*yaml.Node{short: v}, true
	}
	keys, ok := l.mapping(v, what, allowed...)
	if ok && keys[short] == nil {
		l.errorf(v, "%s: missing %s", what, short)
		return nil, false
	}
	return keys, ok
}

func (l *loader) fileCheck(c *Check, v *yaml.Node, what string) bool {
	keys, ok := l.scalarOr(v, "path", what, "path", "type", "mode")
	if !ok {
		return false
	}
	f := &fileSpec{typ: "any"}
	if f.path, ok = l.str(keys["path"], what+": path"); !ok {
		return false
	}
	if !strings.HasPrefix(f.path, "/") || strings.ContainsRune(f.path, 0) {
		l.errorf(keys["path"], "%s: path %q: want an absolute path", what, f.path)
		return false
	}
	if t := keys["type"]; t != nil {
		if f.typ, ok = l.str(t, what+": type"); !ok {
			return false
		}
		if f.typ != "any" && f.typ != "file" && f.typ != "dir" {
			l.errorf(t, "%s: type %q: want file, dir or any", what, f.typ)
			return false
		}
	}
	if m := keys["mode"]; m != nil {
		s, ok := l.str(m, what+": mode")
		if !ok {
			return false
		}
		mode, err := strconv.ParseUint(s, 8, 32)
		if err != nil || mode > 0o7777 {
			l.errorf(m, "%s: mode %q: want octal permission bits such as \"0644\" (quoted)", what, s)
			return false
		}
		f.mode, f.hasMode = os.FileMode(mode), true
	}
	c.file = f
	return true
}

func (l *loader) rpmCheck(c *Check, v *yaml.Node, what string) bool {
	keys, ok := l.scalarOr(v, "name", what, "name", "min_version")
	if !ok {
		return false
	}
	r := &rpmSpec{}
	if r.name, ok = l.str(keys["name"], what+": name"); !ok {
		return false
	}
	if !rpmNameRE.MatchString(r.name) {
		l.errorf(keys["name"], "%s: %q is not a package name", what, r.name)
		return false
	}
	if m := keys["min_version"]; m != nil {
		if r.minVersion, ok = l.str(m, what+": min_version"); !ok {
			return false
		}
		if !rpmVerRE.MatchString(r.minVersion) {
			l.errorf(m, "%s: min_version %q: want [epoch:]version[-release], such as 6.0 or 258.4-1", what, r.minVersion)
			return false
		}
	}
	c.rpm = r
	return true
}

func (l *loader) unitCheck(c *Check, v *yaml.Node, what string) bool {
	keys, ok := l.scalarOr(v, "name", what, "name", "state")
	if !ok {
		return false
	}
	u := &unitSpec{state: "enabled"}
	if u.name, ok = l.str(keys["name"], what+": name"); !ok {
		return false
	}
	if !unitRE.MatchString(u.name) {
		l.errorf(keys["name"], "%s: %q is not a unit name", what, u.name)
		return false
	}
	if !strings.Contains(u.name, ".") {
		u.name += ".service"
	}
	if s := keys["state"]; s != nil {
		if u.state, ok = l.str(s, what+": state"); !ok {
			return false
		}
		if u.state != "enabled" && u.state != "active" {
			l.errorf(s, "%s: state %q: want enabled or active", what, u.state)
			return false
		}
	}
	c.unit = u
	return true
}

func (l *loader) sysctlCheck(c *Check, v *yaml.Node, what string) bool {
	keys, ok := l.mapping(v, what, "name", "value")
	if !ok {
		return false
	}
	if keys["name"] == nil || keys["value"] == nil {
		l.errorf(v, "%s: want name and value", what)
		return false
	}
	s := &sysctlSpec{}
	if s.name, ok = l.str(keys["name"], what+": name"); !ok {
		return false
	}
	if !sysctlRE.MatchString(s.name) || strings.Contains(s.name, "..") {
		l.errorf(keys["name"], "%s: %q is not a sysctl name such as kernel.kptr_restrict", what, s.name)
		return false
	}
	vals, ok := l.strings(keys["value"], what+": value")
	if !ok {
		return false
	}
	for _, x := range vals {
		s.values = append(s.values, strings.Join(strings.Fields(x), " "))
	}
	c.sysctl = s
	return true
}

func (l *loader) moduleCheck(c *Check, v *yaml.Node, what string) bool {
	keys, ok := l.scalarOr(v, "name", what, "name", "parameter", "value")
	if !ok {
		return false
	}
	m := &moduleSpec{}
	if m.name, ok = l.str(keys["name"], what+": name"); !ok {
		return false
	}
	if !moduleRE.MatchString(m.name) {
		l.errorf(keys["name"], "%s: %q is not a module name", what, m.name)
		return false
	}
	m.name = strings.ReplaceAll(m.name, "-", "_")
	if (keys["parameter"] == nil) != (keys["value"] == nil) {
		l.errorf(v, "%s: parameter and value go together", what)
		return false
	}
	if p := keys["parameter"]; p != nil {
		if m.parameter, ok = l.str(p, what+": parameter"); !ok {
			return false
		}
		if !moduleRE.MatchString(m.parameter) {
			l.errorf(p, "%s: %q is not a parameter name", what, m.parameter)
			return false
		}
		if m.value, ok = l.str(keys["value"], what+": value"); !ok {
			return false
		}
	}
	c.module = m
	return true
}

func (l *loader) repoCheck(c *Check, v *yaml.Node, what string) bool {
	keys := map[string]*yaml.Node{"id": v}
	ok := true
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		if keys, ok = l.mapping(v, what, "id", "url", "metadata", "packages", "timeout"); !ok {
			return false
		}
	}
	r := &repoSpec{timeout: defaultRepoTimout}
	if n := keys["id"]; n != nil {
		if r.id, ok = l.str(n, what+": id"); !ok {
			return false
		}
		if _, err := filepath.Match(r.id, ""); err != nil || r.id == "" {
			l.errorf(n, "%s: id %q: want a repository id or a glob", what, r.id)
			return false
		}
	}
	if n := keys["url"]; n != nil {
		if r.url, ok = l.str(n, what+": url"); !ok {
			return false
		}
	}
	if r.id == "" && r.url == "" {
		l.errorf(v, "%s: want id, url or both", what)
		return false
	}
	if n := keys["metadata"]; n != nil {
		if r.metadata, ok = l.boolean(n, what+": metadata"); !ok {
			return false
		}
	}
	if n := keys["packages"]; n != nil {
		if n.Kind != yaml.SequenceNode || len(n.Content) == 0 || len(n.Content) > maxPackageNames {
			l.errorf(n, "%s: packages: want a list of 1 to %d package names", what, maxPackageNames)
			return false
		}
		for _, e := range n.Content {
			name, ok := l.str(e, what+": packages")
			if !ok {
				return false
			}
			if !rpmNameRE.MatchString(name) {
				l.errorf(e, "%s: packages: %q is not an rpm package name", what, name)
				return false
			}
			r.packages = append(r.packages, name)
		}
		r.metadata = true
	}
	if n := keys["timeout"]; n != nil {
		if r.timeout, ok = l.duration(n, what+": timeout", maxRepoTimeout); !ok {
			return false
		}
	}
	c.repo = r
	return true
}

func (l *loader) execCheck(c *Check, v *yaml.Node, what string) bool {
	var keys map[string]*yaml.Node
	ok := true
	if v.Kind == yaml.SequenceNode {
		keys = map[string]*yaml.Node{"argv": v}
	} else if keys, ok = l.mapping(v, what, "argv", "timeout", "sandbox"); !ok {
		return false
	}
	e := &execSpec{timeout: defaultExecTimout}
	argv := keys["argv"]
	if argv == nil || argv.Kind != yaml.SequenceNode || len(argv.Content) == 0 {
		l.errorf(v, "%s: want argv, a non-empty list: the program and its arguments (no shell)", what)
		return false
	}
	for _, a := range argv.Content {
		s, ok := l.str(a, what+": argv")
		if !ok {
			return false
		}
		if strings.ContainsRune(s, 0) {
			l.errorf(a, "%s: argv holds a NUL byte", what)
			return false
		}
		e.argv = append(e.argv, s)
	}
	if !filepath.IsAbs(e.argv[0]) {
		l.errorf(argv.Content[0], "%s: argv[0] %q: want an absolute path (the probe does not search its PATH)", what, e.argv[0])
		return false
	}
	if n := keys["timeout"]; n != nil {
		if e.timeout, ok = l.duration(n, what+": timeout", maxExecTimeout); !ok {
			return false
		}
	}
	if n := keys["sandbox"]; n != nil {
		if e.sandbox, ok = l.boolean(n, what+": sandbox"); !ok {
			return false
		}
	}
	c.exec = e
	return true
}
