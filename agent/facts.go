package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/azurelinux-probe/azurelinux-probe/internal/factsdoc"
	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// writeFacts prints the latest snapshots of sched in format: "prometheus"
// (the text exposition format: facts and azurelinux_probe_collector_success,
// without timings, so the output of a fixture tree is reproducible), "json"
// or "table".
func writeFacts(w io.Writer, sched *scheduler, format string) error {
	switch format {
	case "prometheus":
		families, err := gather(&factsCollector{sched: sched})
		if err != nil {
			return err
		}
		enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range families {
			if err := enc.Encode(mf); err != nil {
				return err
			}
		}
		return nil
	case "json", "table":
		reports, err := reportsOf(sched)
		if err != nil {
			return err
		}
		if format == "table" {
			return writeTable(w, reports)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Collectors []collectorReport `json:"collectors"`
		}{reports})
	}
	return fmt.Errorf("unknown format %q", format)
}

// collectorReport and sample are the facts --format=json document's types.
// They are the baseline's types too, so that a saved baseline is by
// construction what `facts --format=json` prints.
type (
	collectorReport = factsdoc.CollectorFacts
	sample          = factsdoc.Sample
)

func reportsOf(sched *scheduler) ([]collectorReport, error) {
	snaps := sched.Snapshots()
	var out []collectorReport
	for _, name := range sched.Names() {
		r := collectorReport{Name: name, Metrics: []sample{}}
		snap := snaps[name]
		if snap == nil {
			r.Error = "no refresh has finished"
			out = append(out, r)
			continue
		}
		r.Success, r.DurationSeconds = snap.Success, snap.Duration.Seconds()
		if snap.Err != nil {
			r.Error = snap.Err.Error()
		}
		r.NotApplicable = snap.NotApplicable
		families, err := gather(metricList(snap.Metrics))
		if err != nil {
			return nil, fmt.Errorf("collector %s: %w", name, err)
		}
		for _, mf := range families {
			for _, m := range mf.GetMetric() {
				s := sample{Name: mf.GetName(), Value: value(mf.GetType(), m)}
				if len(m.GetLabel()) > 0 {
					s.Labels = map[string]string{}
					for _, l := range m.GetLabel() {
						s.Labels[l.GetName()] = l.GetValue()
					}
				}
				r.Metrics = append(r.Metrics, s)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func writeTable(w io.Writer, reports []collectorReport) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		status := "ok"
		switch {
		case !r.Success:
			status = "FAILED: " + host.EscapeControl(r.Error)
		case r.NotApplicable != "":
			status = "not applicable: " + host.EscapeControl(r.NotApplicable)
		}
		fmt.Fprintf(tw, "%s: %s (%.3fs)\n", r.Name, status, r.DurationSeconds)
		for _, s := range r.Metrics {
			// Label values come from the host (or an image): escaped, so
			// they cannot rewrite a terminal's lines.
			fmt.Fprintf(tw, "  %s\t%s\n", host.EscapeControl(s.String()), strconv.FormatFloat(s.Value, 'g', -1, 64))
		}
	}
	return tw.Flush()
}

func value(t dto.MetricType, m *dto.Metric) float64 {
	switch t {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_UNTYPED:
		return m.GetUntyped().GetValue()
	}
	return math.NaN()
}

// metricList is a collector over a fixed list of metrics.
type metricList []prometheus.Metric

func (l metricList) Describe(chan<- *prometheus.Desc) {}

func (l metricList) Collect(ch chan<- prometheus.Metric) {
	for _, m := range l {
		ch <- m
	}
}

func gather(c prometheus.Collector) ([]*dto.MetricFamily, error) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	return reg.Gather()
}
