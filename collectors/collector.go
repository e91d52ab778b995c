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
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every fact metric.
const Namespace = "azurelinux"

// ErrNoData tells the agent that the collector's source does not exist on this
// host (no GPU, not a Hyper-V guest): the collector still succeeded.
var ErrNoData = errors.New("collector returned no data")

// ErrNotApplicable tells the agent that the collector's facts do not exist
// under this root at all, as opposed to a source this host lacks: facts of
// a running kernel or system (procfs, sysfs, the systemd bus, IMDS) when the
// root is an image that has never booted. The collector neither failed nor
// serves series; the agent reports azurelinux_probe_collector_applicable 0
// and the reason in the facts table. Wrap it with NotApplicable.
var ErrNotApplicable = errors.New("not applicable")

type notApplicableError struct{ reason string }

func (e *notApplicableError) Error() string        { return "not applicable: " + e.reason }
func (e *notApplicableError) Is(target error) bool { return target == ErrNotApplicable }

// NotApplicable returns an error that is ErrNotApplicable, with the reason
// in words ("needs a running kernel: /mnt/image is an image …").
func NotApplicable(reason string) error { return &notApplicableError{reason: reason} }

// NotApplicableReason returns the reason of an ErrNotApplicable error, or
// "" when err is not one.
func NotApplicableReason(err error) string {
	var na *notApplicableError
	if errors.As(err, &na) {
		return na.reason
	}
	if errors.Is(err, ErrNotApplicable) {
		return err.Error()
	}
	return ""
}

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
	// Needs names what the collector reads that only a running system has
	// ("a running kernel (procfs, sysfs)"), or is empty when its facts are
	// read from files. Under an image root (Paths.Image) the agent does not
	// run a collector that needs one and reports it not applicable.
	Needs string
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

// ApplicableTo returns nil when the collector's facts can be read under
// paths, else an ErrNotApplicable error saying why.
func (s Spec) ApplicableTo(paths Paths) error {
	if s.Needs == "" || !paths.Image() {
		return nil
	}
	return NotApplicable(fmt.Sprintf("needs %s; %s is an image (no procfs or sysfs content)", s.Needs, paths.RootFS))
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

func (m *Metrics) add(desc *prometheus.Desc, t prometheus.ValueType, v float64, labels []string) {
	labels = capLabels(labels)
	metric, err := prometheus.NewConstMetric(desc, t, v, labels...)
	if err != nil {
		m.errs = append(m.errs, fmt.Errorf("build metric: %w", err))
		return
	}
	m.list = append(m.list, metric)
}

// MaxLabelBytes caps every label value a collector emits. Label values come
// from the host, or from an image someone else built: a 4 KiB sysfs string
// or a line of garbage must not become a series that big (Prometheus keeps
// every label value of every series in memory, and drift compares them).
const MaxLabelBytes = 256

// capLabels returns labels with every value made valid UTF-8 (an invalid
// byte becomes U+FFFD: client_golang refuses the metric otherwise, quoting
// the value in its error) and cut to MaxLabelBytes at a character boundary,
// ending in "…" when cut. The slice is copied only when a value changes.
func capLabels(labels []string) []string {
	out := labels
	for i, v := range labels {
		c := capLabel(v)
		if c == v {
			continue
		}
		if &out[0] == &labels[0] {
			out = slices.Clone(labels)
		}
		out[i] = c
	}
	return out
}

func capLabel(v string) string {
	if len(v) <= MaxLabelBytes && utf8.ValidString(v) {
		return v
	}
	v = strings.ToValidUTF8(v, "\uFFFD")
	if len(v) <= MaxLabelBytes {
		return v
	}
	const ellipsis = "…"
	cut := MaxLabelBytes - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return v[:cut] + ellipsis
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
