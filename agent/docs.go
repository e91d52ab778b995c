package agent

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// MetricsDoc renders docs/metrics.md: every collector with its defaults and
// every metric the probe can serve, from the declarations (collectors.Facts,
// complete at init: no collector is built), so that the document cannot
// drift from the code.
func MetricsDoc() (string, error) {
	cfg, err := loadConfig("")
	if err != nil {
		return "", err
	}
	byCollector := map[string][]*collectors.Fact{}
	for _, f := range collectors.Facts() {
		byCollector[f.Collector] = append(byCollector[f.Collector], f)
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

Labels in bold are a metric's identity: what names one object (a device, a unit) when ` + "`check --baseline`" + ` and
` + "`azurelinux_baseline_drift`" + ` compare facts, so that a change of its other labels or of its value is drift.
Volatile metrics change by themselves and are not compared.

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
	writeMetricTable(&b, byCollector[collectors.ProbeCollector])
	delete(byCollector, collectors.ProbeCollector)
	b.WriteString("\nThe standard `go_*`, `process_*` and `promhttp_*` metrics of client_golang are served too.\n")

	b.WriteString("\n## Compatibility checks and baseline drift\n\n")
	b.WriteString("Served by the daemon's `checks` component, which evaluates the checks (the embedded Azure Linux 4.0 matrix " +
		"and the files in `--checks.dir`) against the collectors' latest snapshots every `--checks.interval` " +
		"(default 1m, under `--checks.timeout`), and compares the facts with `--baseline.file` when given. " +
		"It reports `azurelinux_probe_collector_success{collector=\"checks\"}` like a collector.\n\n")
	writeMetricTable(&b, byCollector[checksJobName])
	delete(byCollector, checksJobName)

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

// writeMetricTable writes one table row per fact: its type as declared,
// its labels with the identity labels (what names one object for drift) in
// bold, and its meaning, cardinality bound and volatility.
func writeMetricTable(w io.Writer, facts []*collectors.Fact) {
	fmt.Fprintln(w, "| metric | type | labels | meaning |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, f := range facts {
		labels := make([]string, len(f.Labels))
		for i, l := range f.Labels {
			labels[i] = "`" + l + "`"
			if slices.Contains(f.Identity, l) {
				labels[i] = "**" + labels[i] + "**"
			}
		}
		meaning := f.Help
		if f.Bound != "" {
			meaning += " Series: " + f.Bound + "."
		}
		if f.Volatile {
			meaning += " Volatile: not compared with a baseline."
		}
		fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", f.FQName(), f.Type(), strings.Join(labels, ", "),
			strings.ReplaceAll(meaning, "|", `\|`))
	}
}
