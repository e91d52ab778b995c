package collectors

import (
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// listCollector serves a fixed list of metrics to a registry.
type listCollector []prometheus.Metric

func (l listCollector) Describe(chan<- *prometheus.Desc) {}
func (l listCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range l {
		ch <- m
	}
}

// sampleLines renders what m holds as exposition sample lines
// (`name{label="value"} 1`), sorted, without HELP and TYPE lines.
func sampleLines(t *testing.T, m *Metrics) []string {
	t.Helper()
	if err := m.Err(); err != nil {
		t.Fatalf("building metrics: %v", err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(listCollector(m.List()))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// wantSamples fails unless every line of want is among got.
func wantSamples(t *testing.T, got []string, want ...string) {
	t.Helper()
	set := map[string]bool{}
	for _, g := range got {
		set[g] = true
	}
	for _, w := range want {
		if !set[w] {
			t.Errorf("missing sample %s\ngot:\n%s", w, strings.Join(got, "\n"))
		}
	}
}

// withPrefix returns the lines of got that start with prefix.
func withPrefix(got []string, prefix string) []string {
	var out []string
	for _, g := range got {
		if strings.HasPrefix(g, prefix) {
			out = append(out, g)
		}
	}
	return out
}
