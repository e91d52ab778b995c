package collectors

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// Fact declares one fact metric once, with everything the rest of the probe
// needs to know about it: the docs generator (docs/metrics.md), the baseline
// and drift (which labels name one object, which values change by
// themselves), and the checks loader (which collector serves it, which
// labels exist). Facts are declared at package level in the file of the
// collector that serves them (collectors/<subsystem>.go), so the catalog is
// complete at init, before any collector is built.
type Fact struct {
	// Collector is the name of the collector that serves the fact.
	Collector string
	// Subsystem and Name make the metric name
	// azurelinux_<Subsystem>_<Name>. Subsystem defaults to Collector.
	Subsystem, Name string
	Help            string
	// Counter marks a monotonically increasing count; everything else is a
	// gauge.
	Counter bool
	Labels  []string
	// Identity is the subset of Labels that names one object (a device's
	// pci_address, a unit's name) for drift: two samples with the same
	// identity are the same object, and a change in their other labels or
	// value is drift. Nil for a fact that names one thing per host.
	Identity []string
	// Volatile marks a value that changes without anything about the host
	// changing (counts of loaded programs, timestamps, durations); drift
	// ignores it.
	Volatile bool
	// Bound states the cardinality bound of a fact with labels whose values
	// come from the host, in words, for docs/metrics.md ("at most 100
	// units; the rest are counted in …").
	Bound string

	fqName string
	desc   *prometheus.Desc
}

// FQName returns the metric's full name.
func (f *Fact) FQName() string { return f.fqName }

// Desc returns the metric's descriptor.
func (f *Fact) Desc() *prometheus.Desc { return f.desc }

// ValueType returns the Prometheus value type of the fact's samples.
func (f *Fact) ValueType() prometheus.ValueType {
	if f.Counter {
		return prometheus.CounterValue
	}
	return prometheus.GaugeValue
}

// Type returns "counter" or "gauge".
func (f *Fact) Type() string {
	if f.Counter {
		return "counter"
	}
	return "gauge"
}

// HasLabel reports whether the fact has a label called name.
func (f *Fact) HasLabel(name string) bool {
	for _, l := range f.Labels {
		if l == name {
			return true
		}
	}
	return false
}

var (
	factsMu sync.Mutex
	facts   = map[string]*Fact{}
)

// declare registers f in the catalog and returns it. A second declaration of
// one name, or an identity label that is not a label, is a programming error
// caught at init.
func declare(f Fact) *Fact {
	if f.Subsystem == "" {
		f.Subsystem = f.Collector
	}
	if f.Collector == "" || f.Name == "" || f.Help == "" {
		panic(fmt.Sprintf("collectors: fact %s_%s needs a collector, a name and help", f.Subsystem, f.Name))
	}
	f.fqName = prometheus.BuildFQName(Namespace, f.Subsystem, f.Name)
	for _, id := range f.Identity {
		if !f.HasLabel(id) {
			panic(fmt.Sprintf("collectors: fact %s: identity label %q is not one of its labels", f.fqName, id))
		}
	}
	f.desc = prometheus.NewDesc(f.fqName, f.Help, f.Labels, nil)
	p := &f
	factsMu.Lock()
	defer factsMu.Unlock()
	if _, dup := facts[f.fqName]; dup {
		panic("collectors: fact declared twice: " + f.fqName)
	}
	facts[f.fqName] = p
	return p
}

// The Collector of the agent's own metrics: ProbeCollector for
// azurelinux_probe_*, ChecksCollector for the compatibility checks' metrics
// (the daemon's checks job). No collector's snapshot carries them, so a
// fact condition cannot read them.
const (
	ProbeCollector  = "probe"
	ChecksCollector = "checks"
)

// Declare registers one of the agent's own metrics (Collector
// ProbeCollector or ChecksCollector) in the same catalog, so that
// docs/metrics.md is generated from declarations only. Fact metrics are
// declared with declare in their collector's file.
func Declare(f Fact) *Fact { return declare(f) }

// Facts returns every declared fact, sorted by name.
func Facts() []*Fact {
	factsMu.Lock()
	defer factsMu.Unlock()
	out := make([]*Fact, 0, len(facts))
	for _, f := range facts {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].fqName < out[j].fqName })
	return out
}

// LookupFact returns the declared fact called name.
func LookupFact(name string) (*Fact, bool) {
	factsMu.Lock()
	defer factsMu.Unlock()
	f, ok := facts[name]
	return f, ok
}

// Set emits a sample of f, as a counter or a gauge as f declares. A label
// count that does not match f is recorded as an error (returned by Err)
// rather than a panic.
func (m *Metrics) Set(f *Fact, value float64, labels ...string) {
	m.add(f.desc, f.ValueType(), value, checkLabelGrammar(f, labels))
}

// labelGrammars are the grammars of label values that have one, by label
// name, checked wherever a fact is emitted: a value that fails becomes
// "invalid value, N bytes" (internal/host/show.go) instead of whatever the
// host, or an image, put there.
var labelGrammars = map[string]host.Grammar{
	"release": releaseRE,
}

func checkLabelGrammar(f *Fact, labels []string) []string {
	out := labels
	for i, name := range f.Labels {
		re := labelGrammars[name]
		if re == nil || i >= len(labels) || labels[i] == "" || re.MatchString(labels[i]) {
			continue
		}
		if &out[0] == &labels[0] {
			out = slices.Clone(labels)
		}
		out[i] = host.Invalid(labels[i])
	}
	return out
}

// SetBool emits a 0/1 sample of f.
func (m *Metrics) SetBool(f *Fact, value bool, labels ...string) {
	m.Set(f, b2f(value), labels...)
}

// Nearest returns the declared fact name closest to name by edit distance,
// for "did you mean" messages, or "" when none is close.
func Nearest(name string, candidates []string) string {
	best, bestD := "", len(name)/3+2
	for _, c := range candidates {
		if d := editDistance(name, c, bestD); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// FactNames returns the names of every declared fact.
func FactNames() []string {
	fs := Facts()
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.fqName
	}
	return out
}

// editDistance is the Levenshtein distance between a and b, or limit when it
// is at least limit.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	a, b = strings.ToLower(a), strings.ToLower(b)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}
