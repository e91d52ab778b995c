package agent

import (
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/version"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// The agent's own metrics, served beside the facts (collector "probe").
var (
	buildInfoFact = collectors.Declare(collectors.Fact{Collector: collectors.ProbeCollector, Name: "build_info",
		Help:   "Version of azurelinux-probe; constant 1.",
		Labels: []string{"version", "revision", "goversion"}})
	successFact = collectors.Declare(collectors.Fact{Collector: collectors.ProbeCollector, Name: "collector_success",
		Help:     "1 when the collector's latest refresh succeeded (a source that is absent on this host counts as success), 0 when it failed or timed out.",
		Labels:   []string{"collector"},
		Identity: []string{"collector"}, Bound: "the enabled collectors and checks"})
	applicableFact = collectors.Declare(collectors.Fact{Collector: collectors.ProbeCollector, Name: "collector_applicable",
		Help:     "1 when the collector's facts exist under the root; 0 when they need a running system that the root is not (an image: no procfs or sysfs content), in which case the collector serves no facts, counts as a success, and `facts` prints the reason.",
		Labels:   []string{"collector"},
		Identity: []string{"collector"}, Bound: "the enabled collectors and checks"})
	durationFact = collectors.Declare(collectors.Fact{Collector: collectors.ProbeCollector, Name: "collector_duration_seconds",
		Help:     "How long the collector's latest refresh took.",
		Labels:   []string{"collector"},
		Identity: []string{"collector"}, Volatile: true, Bound: "the enabled collectors and checks"})
	lastSuccessFact = collectors.Declare(collectors.Fact{Collector: collectors.ProbeCollector, Name: "collector_last_success_timestamp_seconds",
		Help:     "When the collector's latest successful refresh finished, as a Unix timestamp.",
		Labels:   []string{"collector"},
		Identity: []string{"collector"}, Volatile: true, Bound: "the enabled collectors and checks"})
	intervalFact = collectors.Declare(collectors.Fact{Collector: collectors.ProbeCollector, Name: "collector_interval_seconds",
		Help:     "The collector's configured refresh interval; facts older than a few intervals are stale.",
		Labels:   []string{"collector"},
		Identity: []string{"collector"}, Bound: "the enabled collectors and checks"})
	abandonedFact = collectors.Declare(collectors.Fact{Collector: collectors.ProbeCollector, Name: "collector_abandoned_refreshes",
		Help: "Refreshes of the collector abandoned at their timeout (or at a reload) whose work is still running, such as a read blocked on a hung source; " +
			"while it is above 0 no new refresh of the collector starts, even after a reload.",
		Labels:   []string{"collector"},
		Identity: []string{"collector"}, Volatile: true, Bound: "the enabled collectors and checks"})

	// The HTTP endpoint's own (agent/listen.go), registered as client_golang
	// collectors: their help comes from these declarations.
	httpConnectionsFact = collectors.Declare(collectors.Fact{Collector: collectors.ProbeCollector, Name: "http_connections",
		Help: "HTTP connections open now (bounded by --web.max-connections).", Volatile: true})
	httpShedFact = collectors.Declare(collectors.Fact{Collector: collectors.ProbeCollector, Name: "http_connections_shed_total", Counter: true, Volatile: true,
		Help:   "HTTP connections closed by the connection limits: limit is `source` (--web.max-connections-per-source) or `server` (--web.max-connections); victim is `new` (the new connection was refused: every open one was busy), `idle` (an idle or not yet used connection was closed to admit the new one) or `stuck` (one busy for over 2 s, such as a client that does not read).",
		Labels: []string{"limit", "victim"}, Bound: "2 limits × 3 victims"})
	httpAuthThrottledFact = collectors.Declare(collectors.Fact{Collector: collectors.ProbeCollector, Name: "http_auth_throttled_total", Counter: true, Volatile: true,
		Help: "Requests answered 429 without checking their password because their source address had too many recent 401 answers (with basic auth in --web.config.file)."})
)

// selfHelp returns the declared help of one of the agent's own metrics.
func selfHelp(name string) string {
	f, ok := collectors.LookupFact(name)
	if !ok {
		panic("agent: undeclared self metric " + name)
	}
	return f.Help
}

// The configuration reload metrics, named as Prometheus' own
// (prometheus_config_last_reload_successful), so that the same alert
// pattern applies.
var (
	reloadSuccessfulFact = collectors.Declare(collectors.Fact{Collector: collectors.ProbeCollector, Subsystem: "probe", Name: "config_last_reload_successful",
		Help: "1 when the last load of the configuration (at start, or on SIGHUP / systemctl reload) read the config file, every checks file and the web config without a problem; 0 when one was invalid, in which case the daemon keeps running the previous valid one and the log says which file, line and why (azurelinux-probe check-config prints it too)."})
	reloadTimestampFact = collectors.Declare(collectors.Fact{Collector: collectors.ProbeCollector, Subsystem: "probe", Name: "config_last_reload_success_timestamp_seconds",
		Help: "When the configuration last loaded without a problem, as a Unix timestamp.", Volatile: true})
)

// reloadState is the outcome of the daemon's latest configuration load.
type reloadState struct {
	ok        atomic.Bool
	lastGood  atomic.Int64 // Unix nanoseconds
	hasResult atomic.Bool
}

func (r *reloadState) record(ok bool) {
	r.ok.Store(ok)
	r.hasResult.Store(true)
	if ok {
		r.lastGood.Store(time.Now().UnixNano())
	}
}

func (r *reloadState) Describe(chan<- *prometheus.Desc) {}

func (r *reloadState) Collect(ch chan<- prometheus.Metric) {
	if !r.hasResult.Load() {
		return
	}
	ch <- constMetric(reloadSuccessfulFact, b2f(r.ok.Load()))
	if ns := r.lastGood.Load(); ns > 0 {
		ch <- constMetric(reloadTimestampFact, float64(ns)/1e9)
	}
}

// constMetric builds a sample of one of the agent's own metrics.
func constMetric(f *collectors.Fact, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(f.Desc(), f.ValueType(), v, labels...)
}

// factsCollector serves the snapshots of the scheduled collectors whose names
// pass filter, with the per-collector self metrics. It reads only published
// snapshots, so a Collect never waits on a collector.
type factsCollector struct {
	sched  *scheduler
	filter func(string) bool
	// timing adds duration and last-success series; the facts command
	// leaves them out so that its output is reproducible.
	timing bool
}

// Describe sends nothing: the facts a host has are not known in advance,
// which makes this an unchecked collector.
func (c *factsCollector) Describe(chan<- *prometheus.Desc) {}

func (c *factsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, j := range *c.sched.jobs.Load() {
		if c.filter != nil && !c.filter(j.name) {
			continue
		}
		snap := j.snap.Load()
		if snap == nil {
			continue // first refresh still running
		}
		for _, m := range snap.Metrics {
			ch <- m
		}
		ch <- constMetric(successFact, b2f(snap.Success), j.name)
		ch <- constMetric(applicableFact, b2f(snap.NotApplicable == ""), j.name)
		if !c.timing {
			continue
		}
		ch <- constMetric(durationFact, snap.Duration.Seconds(), j.name)
		ch <- constMetric(intervalFact, j.interval.Seconds(), j.name)
		ch <- constMetric(abandonedFact, float64(c.sched.Abandoned(j.name)), j.name)
		if !snap.LastSuccess.IsZero() {
			ch <- constMetric(lastSuccessFact, float64(snap.LastSuccess.UnixNano())/1e9, j.name)
		}
	}
}

func buildInfo() prometheus.Collector {
	return metricList{constMetric(buildInfoFact, 1, version.Version, version.Revision, runtime.Version())}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func init() {
	// A plain `go build` carries no -X version flags; say so rather than
	// serve an empty version label.
	if version.Version == "" {
		version.Version = "0.0.0-dev"
	}
}
