package agent

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// selfMetrics documents the metrics the agent itself serves.
var selfMetrics = []collectors.MetricDoc{
	{Name: "azurelinux_probe_build_info", Labels: []string{"version", "revision", "goversion"},
		Help: "Version of azurelinux-probe; constant 1."},
	{Name: "azurelinux_probe_collector_success", Labels: []string{"collector"},
		Help: "1 when the collector's latest refresh succeeded (a source that is absent on this host counts as success), 0 when it failed or timed out."},
	{Name: "azurelinux_probe_collector_duration_seconds", Labels: []string{"collector"},
		Help: "How long the collector's latest refresh took."},
	{Name: "azurelinux_probe_collector_last_success_timestamp_seconds", Labels: []string{"collector"},
		Help: "When the collector's latest successful refresh finished, as a Unix timestamp."},
	{Name: "azurelinux_probe_collector_interval_seconds", Labels: []string{"collector"},
		Help: "The collector's configured refresh interval; facts older than a few intervals are stale."},
}

// checkMetrics documents the metrics of the compatibility checks, which the
// agent's checks component serves (agent/checks.go) under collector
// "checks".
var checkMetrics = []collectors.MetricDoc{
	{Name: "azurelinux_check_status", Labels: []string{"check", "category"},
		Help: "1 when the compatibility check passed, 0 when it failed (including a check whose facts no enabled collector serves); `azurelinux-probe check` prints the reason."},
	{Name: "azurelinux_checks_failed", Labels: []string{"category"},
		Help: "Number of failed compatibility checks per category (0 for a category whose checks all passed)."},
	{Name: "azurelinux_checks_config_valid", Labels: nil,
		Help: "1 when the checks files loaded; 0 when one is invalid, in which case the previously loaded checks (at start: the embedded matrix) keep running and the log says which file, line and why."},
	{Name: "azurelinux_baseline_drift", Labels: []string{"collector", "fact"},
		Help: "1 for each fact that differs from the --baseline.file baseline; fact is the metric name and its identifying labels. Only drifted facts have a series."},
	{Name: "azurelinux_baseline_facts_drifted", Labels: nil,
		Help: "Number of facts that differ from the --baseline.file baseline (absent when no valid baseline is loaded)."},
}

// MetricsDoc renders docs/metrics.md: every collector with its defaults and
// every metric the probe can serve, from the descriptors the collectors
// build, so that the document cannot drift from the code.
func MetricsDoc() (string, error) {
	cfg, err := LoadConfig("")
	if err != nil {
		return "", err
	}
	var names []string
	for _, s := range collectors.Specs() {
		names = append(names, s.Name)
	}
	// Building every collector once fills the catalog of descriptors.
	logger := slog.New(slog.DiscardHandler)
	if _, err := BuildSet(cfg, names, collectors.Env{Paths: collectors.DefaultPaths("/"), Logger: logger}); err != nil {
		return "", err
	}

	var b strings.Builder
	b.WriteString(`# Metrics

Generated from the code by ` + "`go test ./cmd/azurelinux-probe -run TestMetricsDoc -update`" + `; a test fails when
this file and the code disagree. Metric names and labels are a contract: alerts and dashboards
depend on them.

Every collector refreshes in the background on its interval and a scrape serves the latest snapshot.
A collector whose source does not exist on the host (no GPU, not a Hyper-V guest) serves only the facts
that say so (such as ` + "`azurelinux_hyperv_guest 0`" + `) and keeps ` + "`azurelinux_probe_collector_success` at 1" + `;
a collector that fails or times out serves only what it read in that refresh, never an older refresh's facts, and reports success 0.

## Collectors

| collector | default | interval | timeout |
|---|---|---|---|
`)
	for _, s := range collectors.Specs() {
		cc := cfg.Collectors[s.Name]
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.Name,
			map[bool]string{true: "enabled", false: "disabled"}[s.DefaultEnabled], cc.Interval, cc.Timeout)
	}
	b.WriteString("\n## Probe self metrics\n\n")
	writeMetricTable(&b, selfMetrics)
	b.WriteString("\nThe standard `go_*`, `process_*` and `promhttp_*` metrics of client_golang are served too.\n")

	b.WriteString("\n## Compatibility checks and baseline drift\n\n")
	b.WriteString("Served by the daemon's `checks` component, which evaluates the checks (the embedded Azure Linux 4.0 matrix " +
		"and the files in `--checks.dir`) against the collectors' latest snapshots every `--checks.interval` " +
		"(default 1m, under `--checks.timeout`), and compares the facts with `--baseline.file` when given. " +
		"It reports `azurelinux_probe_collector_success{collector=\"checks\"}` like a collector.\n\n")
	writeMetricTable(&b, checkMetrics)

	byCollector := map[string][]collectors.MetricDoc{}
	for _, d := range collectors.Catalog() {
		byCollector[d.Collector] = append(byCollector[d.Collector], d)
	}
	for _, s := range collectors.Specs() {
		docs := byCollector[s.Name]
		if len(docs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n## `%s` collector\n\n", s.Name)
		writeMetricTable(&b, docs)
		delete(byCollector, s.Name)
	}
	if len(byCollector) > 0 {
		return "", fmt.Errorf("metrics whose collector is not registered: %v", byCollector)
	}
	return b.String(), nil
}

func writeMetricTable(w io.Writer, docs []collectors.MetricDoc) {
	fmt.Fprintln(w, "| metric | type | labels | meaning |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, d := range docs {
		typ := "gauge"
		if strings.HasSuffix(d.Name, "_total") {
			typ = "counter"
		}
		labels := make([]string, len(d.Labels))
		for i, l := range d.Labels {
			labels[i] = "`" + l + "`"
		}
		help := d.Help
		if d.Bound != "" {
			help += " Bound: " + d.Bound + "."
		}
		fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", d.Name, typ, strings.Join(labels, ", "),
			strings.ReplaceAll(help, "|", `\|`))
	}
}
