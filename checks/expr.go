package checks

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/azurelinux-probe/azurelinux-probe/internal/factsdoc"
)

// Expr is a condition on the probe's own facts, in a small PromQL-like
// syntax over the series the collectors serve:
//
//	[any|all|none] metric_name[{label="v", label!="v", label=~"re", label!~"re"}] [op number]
//
// op is one of == != > >= < <=. A series matches when its name and every
// label matcher match (a label the series lacks reads as ""; regular
// expressions are anchored, as in PromQL). A matching series passes when it
// satisfies "op number", or always when no comparison is given. The
// quantifier says how many must pass:
//
//	any (the default)  at least one matching series passes;
//	all                at least one series matches and every match passes;
//	none               no matching series passes (zero matches pass).
type Expr struct {
	Quantifier string
	Metric     string
	Matchers   []Matcher
	Op         string // "" when there is no comparison
	Value      float64
	text       string
}

// Matcher is one label matcher of an Expr.
type Matcher struct {
	Label, Op, Value string
	re               *regexp.Regexp
}

func (m Matcher) matches(v string) bool {
	switch m.Op {
	case "=":
		return v == m.Value
	case "!=":
		return v != m.Value
	case "=~":
		return m.re.MatchString(v)
	default: // "!~"
		return !m.re.MatchString(v)
	}
}

func (e *Expr) String() string { return e.text }

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*`)
)

// ParseExpr parses a fact condition.
func ParseExpr(s string) (*Expr, error) {
	p := &exprParser{s: s}
	e, err := p.parse()
	if err != nil {
		return nil, fmt.Errorf("condition %q: %w", s, err)
	}
	e.text = strings.TrimSpace(s)
	return e, nil
}

type exprParser struct {
	s   string
	pos int
}

func (p *exprParser) skipSpace() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t' || p.s[p.pos] == '\n' || p.s[p.pos] == '\r') {
		p.pos++
	}
}

func (p *exprParser) errorf(format string, args ...any) error {
	return fmt.Errorf("at column %d: %s", p.pos+1, fmt.Sprintf(format, args...))
}

func (p *exprParser) parse() (*Expr, error) {
	e := &Expr{Quantifier: "any"}
	p.skipSpace()
	name := metricNameRE.FindString(p.s[p.pos:])
	if slices.Contains([]string{"any", "all", "none"}, name) {
		rest := p.s[p.pos+len(name):]
		if rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			e.Quantifier = name
			p.pos += len(name)
			p.skipSpace()
			name = metricNameRE.FindString(p.s[p.pos:])
		}
	}
	if name == "" {
		return nil, p.errorf("want a metric name such as azurelinux_kernel_info")
	}
	e.Metric = name
	p.pos += len(name)
	p.skipSpace()
	if p.pos < len(p.s) && p.s[p.pos] == '{' {
		p.pos++
		if err := p.matchers(e); err != nil {
			return nil, err
		}
	}
	p.skipSpace()
	if p.pos < len(p.s) {
		op := ""
		for _, o := range []string{"==", "!=", ">=", "<=", ">", "<"} {
			if strings.HasPrefix(p.s[p.pos:], o) {
				op = o
				break
			}
		}
		if op == "" {
			return nil, p.errorf("unexpected %q: want a comparison (== != > >= < <=) or the end", p.s[p.pos:])
		}
		p.pos += len(op)
		p.skipSpace()
		num := p.s[p.pos:]
		num = strings.TrimRight(num, " \t\r\n")
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || num == "" || math.IsNaN(v) {
			return nil, p.errorf("want a number after %s, got %q", op, num)
		}
		e.Op, e.Value = op, v
		p.pos = len(p.s)
	}
	return e, nil
}

func (p *exprParser) matchers(e *Expr) error {
	for {
		p.skipSpace()
		if p.pos < len(p.s) && p.s[p.pos] == '}' {
			p.pos++
			return nil
		}
		label := labelNameRE.FindString(p.s[p.pos:])
		if label == "" {
			return p.errorf("want a label name or '}'")
		}
		p.pos += len(label)
		p.skipSpace()
		op := ""
		for _, o := range []string{"=~", "!~", "!=", "="} {
			if strings.HasPrefix(p.s[p.pos:], o) {
				op = o
				break
			}
		}
		if op == "" {
			return p.errorf("want =, !=, =~ or !~ after label %s", label)
		}
		p.pos += len(op)
		p.skipSpace()
		if p.pos >= len(p.s) || p.s[p.pos] != '"' {
			return p.errorf("want a double-quoted value for label %s", label)
		}
		q, err := strconv.QuotedPrefix(p.s[p.pos:])
		if err != nil {
			return p.errorf("unterminated or invalid quoted value for label %s", label)
		}
		val, _ := strconv.Unquote(q)
		p.pos += len(q)
		m := Matcher{Label: label, Op: op, Value: val}
		if op == "=~" || op == "!~" {
			re, err := anchoredRegexp(val)
			if err != nil {
				return p.errorf("label %s: invalid regular expression: %v", label, err)
			}
			m.re = re
		}
		e.Matchers = append(e.Matchers, m)
		p.skipSpace()
		if p.pos < len(p.s) && p.s[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.s) && p.s[p.pos] == '}' {
			p.pos++
			return nil
		}
		return p.errorf("want ',' or '}' after the value of label %s", label)
	}
}

// compare applies the comparison to v.
func (e *Expr) compare(v float64) bool {
	switch e.Op {
	case "":
		return true
	case "==":
		return v == e.Value
	case "!=":
		return v != e.Value
	case ">":
		return v > e.Value
	case ">=":
		return v >= e.Value
	case "<":
		return v < e.Value
	default: // "<="
		return v <= e.Value
	}
}

// Series is one sample of the facts, flattened from a dto.MetricFamily.
type Series struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// String renders the series as name{a="b",...} with sorted labels.
func (s Series) String() string { return factsdoc.Render(s.Name, s.Labels, nil) }

// SeriesOf flattens a metric family.
func SeriesOf(mf *dto.MetricFamily) []Series {
	var out []Series
	for _, m := range mf.GetMetric() {
		s := Series{Name: mf.GetName(), Labels: map[string]string{}}
		for _, l := range m.GetLabel() {
			s.Labels[l.GetName()] = l.GetValue()
		}
		switch {
		case m.Gauge != nil:
			s.Value = m.GetGauge().GetValue()
		case m.Counter != nil:
			s.Value = m.GetCounter().GetValue()
		case m.Untyped != nil:
			s.Value = m.GetUntyped().GetValue()
		default:
			s.Value = math.NaN()
		}
		out = append(out, s)
	}
	return out
}

// eval evaluates e over the series of its metric (all series of that name).
// It returns whether the condition holds and a reason naming the series that
// decided it.
func (e *Expr) eval(series []Series) (bool, string) {
	var matched, passed, failed []Series
	for _, s := range series {
		if s.Name != e.Metric {
			continue
		}
		ok := true
		for _, m := range e.Matchers {
			if !m.matches(s.Labels[m.Label]) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		matched = append(matched, s)
		if e.compare(s.Value) {
			passed = append(passed, s)
		} else {
			failed = append(failed, s)
		}
	}
	switch e.Quantifier {
	case "all":
		if len(matched) == 0 {
			return false, "no series matches " + e.selector() + e.found(series)
		}
		if len(failed) > 0 {
			return false, e.describe(failed, "fails "+e.comparison())
		}
		return true, e.describe(passed, "")
	case "none":
		if len(passed) > 0 {
			return false, e.describe(passed, "")
		}
		if len(matched) == 0 {
			return true, "no series matches " + e.selector()
		}
		return true, e.describe(failed, "")
	default:
		if len(passed) > 0 {
			return true, e.describe(passed, "")
		}
		if len(matched) == 0 {
			return false, "no series matches " + e.selector() + e.found(series)
		}
		return false, e.describe(failed, "")
	}
}

func (e *Expr) selector() string {
	if len(e.Matchers) == 0 {
		return e.Metric
	}
	parts := make([]string, len(e.Matchers))
	for i, m := range e.Matchers {
		parts[i] = m.Label + m.Op + strconv.Quote(m.Value)
	}
	return e.Metric + "{" + strings.Join(parts, ",") + "}"
}

func (e *Expr) comparison() string {
	if e.Op == "" {
		return ""
	}
	return e.Op + " " + strconv.FormatFloat(e.Value, 'g', -1, 64)
}

// found lists what the metric does have, so that a failure says "kernel
// series is 6.6", not only "no 6.18".
func (e *Expr) found(series []Series) string {
	var have []Series
	seen := map[string]bool{}
	for _, s := range series {
		if s.Name != e.Metric {
			continue
		}
		// Show only the labels the matchers name: "found {series="6.6"}"
		// says what differs without the noise of every other label.
		if len(e.Matchers) > 0 {
			short := Series{Name: s.Name, Labels: map[string]string{}, Value: s.Value}
			for _, m := range e.Matchers {
				short.Labels[m.Label] = s.Labels[m.Label]
			}
			s = short
		}
		if k := s.String(); !seen[k] {
			seen[k] = true
			have = append(have, s)
		}
	}
	if len(have) == 0 {
		return ""
	}
	return "; found " + listSeries(have, e.Op != "")
}

func (e *Expr) describe(list []Series, suffix string) string {
	if e.Quantifier == "any" && len(e.Matchers) > 0 {
		// One series decides: the matched labels say which.
		short := make([]Series, len(list))
		for i, x := range list {
			short[i] = Series{Name: x.Name, Labels: map[string]string{}, Value: x.Value}
			for _, m := range e.Matchers {
				short[i].Labels[m.Label] = x.Labels[m.Label]
			}
		}
		list = short
	}
	s := listSeries(list, true)
	if suffix != "" {
		s += " " + suffix
	}
	return s
}

// listSeries renders up to three series (and how many more).
func listSeries(list []Series, values bool) string {
	const max = 3
	var parts []string
	for i, s := range list {
		if i == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(list)-max))
			break
		}
		p := s.String()
		if values {
			p += " " + strconv.FormatFloat(s.Value, 'g', -1, 64)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}
