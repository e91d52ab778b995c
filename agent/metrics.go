package agent

import (
	"runtime"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/version"
)

var (
	successDesc     = selfDesc("azurelinux_probe_collector_success")
	durationDesc    = selfDesc("azurelinux_probe_collector_duration_seconds")
	lastSuccessDesc = selfDesc("azurelinux_probe_collector_last_success_timestamp_seconds")
	intervalDesc    = selfDesc("azurelinux_probe_collector_interval_seconds")
	abandonedDesc   = selfDesc("azurelinux_probe_collector_abandoned_refreshes")
)

// selfDesc builds the descriptor of a self metric documented in selfMetrics.
func selfDesc(name string) *prometheus.Desc {
	for _, d := range append(slices.Clone(selfMetrics), checkMetrics...) {
		if d.Name == name {
			return prometheus.NewDesc(d.Name, d.Help, d.Labels, nil)
		}
	}
	panic("agent: undocumented self metric " + name)
}

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
		ch <- prometheus.MustNewConstMetric(intervalDesc, prometheus.GaugeValue, j.interval.Seconds(), j.name)
		ch <- prometheus.MustNewConstMetric(abandonedDesc, prometheus.GaugeValue, float64(c.sched.Abandoned(j.name)), j.name)
		if !snap.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(lastSuccessDesc, prometheus.GaugeValue,
				float64(snap.LastSuccess.UnixNano())/1e9, j.name)
		}
	}
}

func buildInfo() prometheus.Collector {
	return metricList{prometheus.MustNewConstMetric(selfDesc("azurelinux_probe_build_info"), prometheus.GaugeValue, 1,
		version.Version, version.Revision, runtime.Version())}
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
