package agent

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v3"

	"github.com/azurelinux-probe/azurelinux-probe/checks"
	"github.com/azurelinux-probe/azurelinux-probe/collectors"
	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// configProblem is one problem in a configuration file, with its place when one
// is known, in words a person can act on.
type configProblem struct {
	File         string
	Line, Column int
	Msg          string
}

func (p configProblem) String() string {
	switch {
	case p.Line > 0 && p.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Column, p.Msg)
	case p.Line > 0:
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// checkConfig validates what the daemon loads: the config file (every
// collector's section, enabled or not), every checks file of --checks.dir
// and the web config file. It prints each problem as file:line:column and
// exits 1 when there is one, 0 otherwise. The unit's ExecReload= runs it
// before signalling, so that `systemctl reload` fails on a broken file.
func (o *options) checkConfig(stdout, stderr io.Writer) int {
	var problems []configProblem
	name := o.configFile
	if name == "" {
		name = "(embedded default config)"
	}
	problems = append(problems, validateConfigFile(o.configFile)...)
	set, err := checks.LoadDir(o.checksEmbedded, o.checksDir, o.checksDirSet)
	problems = append(problems, checksProblems(err)...)
	if _, err := skipChecks(set.Checks, o.checksSkip); err != nil && len(problems) == 0 {
		problems = append(problems, configProblem{File: "--checks.skip", Msg: strings.TrimPrefix(err.Error(), "--checks.skip: ")})
	}
	if f := *o.web.WebConfigFile; f != "" {
		problems = append(problems, validateWebConfig(f)...)
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "%s: %d problems\n", programName, len(problems))
		return 1
	}
	fmt.Fprintf(stdout, "%s: valid\n%s: %d checks valid", name, o.checksDir, len(set.Checks))
	for _, f := range set.Ignored {
		fmt.Fprintf(stdout, "\nignored (not *.yml or *.yaml): %s", f)
	}
	if f := *o.web.WebConfigFile; f != "" {
		fmt.Fprintf(stdout, "\n%s: valid", f)
	}
	fmt.Fprintln(stdout)
	return 0
}

// checksProblems turns the checks loader's errors into problems.
func checksProblems(err error) []configProblem {
	if err == nil {
		return nil
	}
	var out []configProblem
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ce *checks.Error
		if errors.As(err, &ce) {
			out = append(out, configProblem{File: ce.File, Line: ce.Line, Column: ce.Column, Msg: ce.Msg})
			return
		}
		out = append(out, configProblem{File: "checks", Msg: err.Error()})
	}
	walk(err)
	return out
}

// configError joins the problems of a config file into one error, one per
// line, for the daemon's log and the one-shot commands.
func configError(problems []configProblem) error {
	lines := make([]string, len(problems))
	for i, p := range problems {
		lines[i] = p.String()
	}
	return errors.New(strings.Join(lines, "\n"))
}

// validateConfigFile checks the config file at path (none: the embedded
// default): its YAML, every key against the collectors and their options
// (with the nearest valid key for a typo), every value's type, and then
// what each collector says of its options when built, for every
// collector, enabled or not, so that a disabled collector's options do not
// wait for the day it is enabled to fail.
func validateConfigFile(path string) []configProblem {
	name, data := "(embedded default config)", defaultConfig
	if path != "" {
		name = path
		var err error
		if data, err = readConfigFile(path); err != nil {
			return []configProblem{{File: path, Msg: err.Error()}}
		}
	}
	v := &validator{file: name}
	root := v.parse(data)
	if root == nil {
		return v.problems
	}
	sections := v.configKeys(root)
	if len(v.problems) > 0 {
		return v.problems
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return []configProblem{{File: name, Msg: strings.TrimPrefix(strings.TrimPrefix(err.Error(), "config "+path+": "), "read config: ")}}
	}
	env := collectors.Env{Paths: collectors.DefaultPaths("/"), Logger: slog.New(slog.DiscardHandler)}
	for _, spec := range collectors.Specs() {
		opts, err := cfg.options(spec)
		if err == nil {
			var c collectors.Collector
			if c, err = spec.New(env, opts); err == nil {
				if closer, ok := c.(io.Closer); ok {
					closer.Close()
				}
				continue
			}
		}
		line, col := 0, 0
		if n := sections[spec.Name]; n != nil {
			line, col = n.Line, n.Column
			// Point at the option the message names ("exec \"x\": …").
			for i := 0; i+1 < len(n.Content); i += 2 {
				if k := n.Content[i].Value; strings.HasPrefix(err.Error(), k+" ") || strings.HasPrefix(err.Error(), k+":") {
					line, col = n.Content[i+1].Line, n.Content[i+1].Column
				}
			}
		}
		v.problems = append(v.problems, configProblem{File: name, Line: line, Column: col,
			Msg: fmt.Sprintf("collectors.%s: %s", spec.Name, err)})
	}
	return v.problems
}

// readConfigFile reads an operator's file as the daemon does: non-blocking,
// a regular file only, within maxConfigSize (host.ReadRegularFile).
func readConfigFile(path string) ([]byte, error) { return host.ReadRegularFile(path, maxConfigSize) }

// validateWebConfig checks an exporter-toolkit web config file: its keys
// and value types against web.Config, then what web.Validate says (files
// it names, TLS settings).
func validateWebConfig(path string) []configProblem {
	data, err := readConfigFile(path)
	if err != nil {
		return []configProblem{{File: path, Msg: err.Error()}}
	}
	v := &validator{file: path}
	if root := v.parse(data); root != nil {
		v.walk(root, reflect.TypeOf(web.Config{}), "")
	}
	if len(v.problems) > 0 {
		return v.problems
	}
	if err := web.Validate(path); err != nil {
		return []configProblem{{File: path, Msg: err.Error()}}
	}
	return nil
}

// validator collects the problems of one YAML file.
type validator struct {
	file     string
	problems []configProblem
}

func (v *validator) add(n *yaml.Node, format string, args ...any) {
	p := configProblem{File: v.file, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	v.problems = append(v.problems, p)
}

var yamlErrRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse returns the document's top node, nil for an empty file or on a
// syntax error (recorded with its line).
func (v *validator) parse(data []byte) *yaml.Node {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		msg := err.Error()
		if m := yamlErrRE.FindStringSubmatch(msg); m != nil {
			line := 0
			fmt.Sscan(m[1], &line)
			v.problems = append(v.problems, configProblem{File: v.file, Line: line, Msg: "invalid YAML: " + m[2]})
		} else {
			v.problems = append(v.problems, configProblem{File: v.file, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")})
		}
		return nil
	}
	if len(doc.Content) == 0 || doc.Content[0].Tag == "!!null" {
		return nil
	}
	return doc.Content[0]
}

// configKeys checks the config file's keys: collectors, the collector
// names, each section's schedule keys and options. It returns each
// collector's section node.
func (v *validator) configKeys(root *yaml.Node) map[string]*yaml.Node {
	sections := map[string]*yaml.Node{}
	if root.Kind != yaml.MappingNode {
		v.add(root, "want a mapping with the key collectors, got %s", kindWords(root))
		return sections
	}
	var names []string
	for _, s := range collectors.Specs() {
		names = append(names, s.Name)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, val := root.Content[i], root.Content[i+1]
		if k.Value != "collectors" {
			v.add(k, "unknown key %q%s (the file holds collectors:)", k.Value, didYouMean(k.Value, []string{"collectors"}))
			continue
		}
		if val.Tag == "!!null" {
			continue
		}
		if val.Kind != yaml.MappingNode {
			v.add(val, "collectors: want a mapping of collector names, got %s", kindWords(val))
			continue
		}
		for j := 0; j+1 < len(val.Content); j += 2 {
			ck, cv := val.Content[j], val.Content[j+1]
			spec, ok := collectors.Lookup(ck.Value)
			if !ok {
				v.add(ck, "collectors: unknown collector %q%s", ck.Value, didYouMean(ck.Value, names))
				continue
			}
			if cv.Tag == "!!null" {
				continue
			}
			if cv.Kind != yaml.MappingNode {
				v.add(cv, "collectors.%s: want a mapping, got %s", ck.Value, kindWords(cv))
				continue
			}
			sections[ck.Value] = cv
			v.section(spec, cv)
		}
	}
	return sections
}

var durationType = reflect.TypeOf(time.Duration(0))

// section checks one collector's keys and value types.
func (v *validator) section(spec collectors.Spec, n *yaml.Node) {
	var optType reflect.Type
	if spec.Options != nil {
		optType = reflect.TypeOf(spec.Options()).Elem()
	}
	valid := slices.Clone(scheduleKeys)
	if optType != nil {
		valid = append(valid, yamlKeys(optType)...)
	}
	path := "collectors." + spec.Name
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if slices.Contains(scheduleKeys, k.Value) {
			v.walk(val, durationType, path+"."+k.Value)
			continue
		}
		f, ok := fieldByKey(optType, k.Value)
		if !ok {
			v.add(k, "%s: unknown key %q%s", path, k.Value, didYouMean(k.Value, valid))
			continue
		}
		v.walk(val, f.Type, path+"."+k.Value)
	}
}

// yamlKeys returns the YAML keys of a struct type's fields, inlined
// structs' included, sorted.
func yamlKeys(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct:
			out = append(out, yamlKeys(f.Type)...)
		case name == "":
			out = append(out, strings.ToLower(f.Name))
		default:
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	if t == nil {
		return reflect.StructField{}, false
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			if g, ok := fieldByKey(f.Type, key); ok {
				return g, true
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

var (
	yamlUnmarshaler = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// customDecoder reports whether t decodes itself (its own UnmarshalYAML,
// in yaml.v3's or yaml.v2's signature, or UnmarshalText): its keys are its
// own business, and only decoding it tells whether the value is valid.
func customDecoder(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	if p.Implements(yamlUnmarshaler) || p.Implements(textUnmarshaler) {
		return true
	}
	_, ok := p.MethodByName("UnmarshalYAML")
	return ok
}

// walk checks the value n against the Go type t: the keys of a struct's
// mapping (nearest valid key for a typo), the elements of lists and maps,
// and scalars by decoding them.
func (v *validator) walk(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Tag == "!!null" {
		return
	}
	if t != durationType && customDecoder(t) {
		if basicKind(t.Kind()) && n.Kind != yaml.ScalarNode {
			v.add(n, "%s: want %s, got %s", path, typeWords(t), kindWords(n))
		} else if err := n.Decode(reflect.New(t).Interface()); err != nil {
			v.add(n, "%s: %s", path, decodeWords(err))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			v.add(n, "%s: want a mapping, got %s", path, kindWords(n))
			return
		}
		valid := yamlKeys(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			f, ok := fieldByKey(t, k.Value)
			if !ok {
				v.add(k, "%s: unknown key %q%s", orTop(path), k.Value, didYouMean(k.Value, valid))
				continue
			}
			v.walk(val, f.Type, join(path, k.Value))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			v.add(n, "%s: want a mapping, got %s", path, kindWords(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			v.walk(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			v.add(n, "%s: want a list, got %s", path, kindWords(n))
			return
		}
		for i, e := range n.Content {
			v.walk(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	default:
		if n.Kind != yaml.ScalarNode {
			v.add(n, "%s: want %s, got %s", path, typeWords(t), kindWords(n))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			v.add(n, "%s: want %s, got %q", path, typeWords(t), n.Value)
		}
	}
}

var yamlTypeErrRE = regexp.MustCompile(`line \d+: (.*)`)
