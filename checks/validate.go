package checks

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// validateFact checks a fact condition against the declared facts
// (collectors.Facts): a metric no collector declares, one the agent serves
// itself (which conditions cannot read), or a label the metric does not
// have would load and then fail, or pass, forever. The error names the
// nearest declared name.
func validateFact(e *Expr) error {
	f, ok := collectors.LookupFact(e.Metric)
	if !ok {
		msg := fmt.Sprintf("unknown metric %s: no collector declares it", e.Metric)
		if near := collectors.Nearest(e.Metric, readableFacts()); near != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", near)
		}
		return fmt.Errorf("%s", msg)
	}
	if !readable(f) {
		return fmt.Errorf("%s is served by the probe itself (%s), not by a collector: a condition cannot read it", e.Metric, f.Collector)
	}
	for _, m := range e.Matchers {
		if f.HasLabel(m.Label) {
			continue
		}
		msg := fmt.Sprintf("%s has no label %s", e.Metric, m.Label)
		if near := collectors.Nearest(m.Label, f.Labels); near != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", near)
		} else if len(f.Labels) == 0 {
			msg += " (it has no labels)"
		} else {
			msg += fmt.Sprintf(" (its labels: %s)", strings.Join(f.Labels, ", "))
		}
		return fmt.Errorf("%s", msg)
	}
	return nil
}

// readableFacts names the facts that collectors serve, which conditions
// can read.
func readableFacts() []string {
	var out []string
	for _, f := range collectors.Facts() {
		if readable(f) {
			out = append(out, f.FQName())
		}
	}
	return out
}

// readable reports whether a condition can read f: the agent's own metrics
// are in no collector's snapshot.
func readable(f *collectors.Fact) bool {
	return f.Collector != collectors.ProbeCollector && f.Collector != collectors.ChecksCollector
}

// anchoredRegexp compiles a label matcher's regular expression as
// Prometheus does (model/labels/regexp.go, NewFastRegexMatcher): the user's
// expression is validated alone, so that "nv)|(zz" is an error rather than
// a different, unanchored expression once wrapped, then anchored as
// ^(?s:…)$, where "." also matches a newline.
func anchoredRegexp(expr string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(expr); err != nil {
		return nil, err
	}
	return regexp.Compile("^(?s:" + expr + ")$")
}
