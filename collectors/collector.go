// Package collectors holds azurelinux-probe's fact collectors: one file per
// fact domain, each registered by name in init and read only through the
// root-prefixed paths of an [Env], so the same code runs against a live host
// and against a fixture tree under testdata/.
//
// A collector knows nothing about scheduling, caching or HTTP. The agent calls
// Update on the collector's own interval and under its own timeout, and serves
// what the last Update emitted.
package collectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every fact metric.
const Namespace = "azurelinux"

// ErrNoData tells the agent that the collector's source does not exist on this
// host (no GPU, not a Hyper-V guest): the collector still succeeded.
var ErrNoData = errors.New("collector returned no data")

// Collector gathers the facts of one domain.
type Collector interface {
	// Update emits the current facts into m. It returns ErrNoData when the
	// source is absent, and any other error when a fact could not be read;
	// facts emitted before an error are still current and are served. Update
	// must honour ctx: the agent abandons a run whose deadline has passed.
	Update(ctx context.Context, m *Metrics) error
}

// Streamer is a collector whose source pushes data (a log read as a
// stream) rather than being polled. Changed receives a value whenever new
// data arrived; the agent then refreshes the collector at once, at most
// 20 times a second, instead of at its next interval. The channel must
// not block its sender (capacity 1, non-blocking send): a burst of data is
// one refresh.
type Streamer interface {
	Collector
	Changed() <-chan struct{}
}

// Spec describes a collector to the registry.
type Spec struct {
	Name string
	// DefaultEnabled is whether the collector runs without a
	// --collector.<name> flag.
	DefaultEnabled bool
	// Interval and Timeout are the refresh defaults; the config file may
	// override them.
	Interval time.Duration
	Timeout  time.Duration
	// Isolated runs each refresh in a child process (the probe's own
	// binary), so that what the refresh allocates, the kernel objects and
	// file descriptors it opens, and a crash all end with the refresh. For
	// collectors whose refresh is heavy and rare, such as eBPF's.
	Isolated bool
	// Options returns a pointer to the collector's options set to their
	// defaults, or nil when it has none. The agent decodes the config file's
	// section for the collector into it (unknown keys are an error).
	Options func() any
	// New builds the collector from the value Options returned (nil when it
	// has none). It fails only on invalid options, never on what the host
	// lacks.
	New func(env Env, opts any) (Collector, error)
}

var registry = map[string]Spec{}

func register(s Spec) {
	if _, dup := registry[s.Name]; dup {
		panic("collectors: duplicate registration of " + s.Name)
	}
	registry[s.Name] = s
}

// Specs returns every registered collector, sorted by name.
func Specs() []Spec {
	out := make([]Spec, 0, len(registry))
	for _, s := range registry {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the registered collector called name.
func Lookup(name string) (Spec, bool) {
	s, ok := registry[name]
	return s, ok
}

// Env is what a collector is built with.
type Env struct {
	Paths  Paths
	Logger *slog.Logger
}

// Metrics accumulates the facts of one Update.
type Metrics struct {
	list []prometheus.Metric
	errs []error
}

// Gauge emits a gauge sample. A label count that does not match desc is
// recorded as an error (returned by Err) rather than a panic.
func (m *Metrics) Gauge(desc *prometheus.Desc, value float64, labels ...string) {
	m.add(desc, prometheus.GaugeValue, value, labels)
}

// Counter emits a counter sample.
func (m *Metrics) Counter(desc *prometheus.Desc, value float64, labels ...string) {
	m.add(desc, prometheus.CounterValue, value, labels)
}

// Bool emits a 0/1 gauge.
func (m *Metrics) Bool(desc *prometheus.Desc, value bool, labels ...string) {
	m.Gauge(desc, b2f(value), labels...)
}

func (m *Metrics) add(desc *prometheus.Desc, t prometheus.ValueType, v float64, labels []string) {
	metric, err := prometheus.NewConstMetric(desc, t, v, labels...)
	if err != nil {
		m.errs = append(m.errs, fmt.Errorf("build metric: %w", err))
		return
	}
	m.list = append(m.list, metric)
}

// List returns what was emitted.
func (m *Metrics) List() []prometheus.Metric { return m.list }

// Err returns the errors met while building metrics, if any.
func (m *Metrics) Err() error { return errors.Join(m.errs...) }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// newDesc builds a fact metric's descriptor, azurelinux_<subsystem>_<name>,
// and records it in the catalog from which docs/metrics.md is generated.
func newDesc(subsystem, name, help string, labels ...string) *prometheus.Desc {
	return newDescIn(subsystem, subsystem, name, help, labels...)
}

// newDescIn is newDesc for a metric whose subsystem is not its collector's
// name (the userland collector's azurelinux_rpmdb_info).
func newDescIn(collector, subsystem, name, help string, labels ...string) *prometheus.Desc {
	fq := prometheus.BuildFQName(Namespace, subsystem, name)
	catalogMu.Lock()
	catalog[fq] = MetricDoc{Name: fq, Help: help, Labels: labels, Subsystem: subsystem, Collector: collector}
	catalogMu.Unlock()
	return prometheus.NewDesc(fq, help, labels, nil)
}

// MetricDoc describes a fact metric for the documentation.
type MetricDoc struct {
	Name, Help, Subsystem string
	// Collector is the collector that serves the metric.
	Collector string
	Labels    []string
	// Bound is a declared fact's cardinality bound, in words.
	Bound string
}

var (
	catalogMu sync.Mutex
	catalog   = map[string]MetricDoc{}
)

// Catalog returns every fact metric described by the collectors built so far
// in this process and every declared fact, sorted by name. Building each
// registered collector once fills it.
func Catalog() []MetricDoc {
	catalogMu.Lock()
	out := make([]MetricDoc, 0, len(catalog))
	for _, d := range catalog {
		out = append(out, d)
	}
	catalogMu.Unlock()
	// Facts declared with declare are in the catalog from init.
	for _, f := range Facts() {
		out = append(out, MetricDoc{Name: f.fqName, Help: f.Help, Labels: f.Labels, Subsystem: f.Subsystem,
			Collector: f.Collector, Bound: f.Bound})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
