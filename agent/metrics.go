package agent

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/version"
)

var (
	successDesc = prometheus.NewDesc("azurelinux_probe_collector_success",
		"1 when the collector's latest refresh succeeded (a source that is absent on this host counts as success), 0 when it failed or timed out.",
		[]string{"collector"}, nil)
	durationDesc = prometheus.NewDesc("azurelinux_probe_collector_duration_seconds",
		"How long the collector's latest refresh took.",
		[]string{"collector"}, nil)
	lastSuccessDesc = prometheus.NewDesc("azurelinux_probe_collector_last_success_timestamp_seconds",
		"When the collector's latest successful refresh finished, as a Unix timestamp.",
		[]string{"collector"}, nil)
)

// factsCollector serves the snapshots of the scheduled collectors whose names
// pass filter, with the per-collector self metrics. It reads only published
// snapshots, so a Collect never waits on a collector.
type factsCollector struct {
	sched  *Scheduler
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
		ch <- prometheus.MustNewConstMetric(successDesc, prometheus.GaugeValue, b2f(snap.Success), j.name)
		if !c.timing {
			continue
		}
		ch <- prometheus.MustNewConstMetric(durationDesc, prometheus.GaugeValue, snap.Duration.Seconds(), j.name)
		if !snap.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(lastSuccessDesc, prometheus.GaugeValue,
				float64(snap.LastSuccess.UnixNano())/1e9, j.name)
		}
	}
}

func buildInfo() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "azurelinux_probe_build_info",
		Help:        "Version of azurelinux-probe; constant 1.",
		ConstLabels: prometheus.Labels{"version": version.Version, "revision": version.Revision, "goversion": runtime.Version()},
	}, func() float64 { return 1 })
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
