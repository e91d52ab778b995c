package agent

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/azurelinux-probe/azurelinux-probe/checks"
	"github.com/azurelinux-probe/azurelinux-probe/collectors"
	"github.com/azurelinux-probe/azurelinux-probe/internal/factsdoc"
)

func loadChecks(t *testing.T, src string) []checks.Check {
	t.Helper()
	list, err := checks.Load("t.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return list
}

const testChecks = `
checks:
  - name: has-a
    category: mine
    fact: azurelinux_test_fact{n="a"}
  - name: has-z
    category: mine
    fact: azurelinux_test_fact{n="z"}
  - name: tmp
    category: files
    file: {path: /, type: dir}
`

// TestChecksJob: the checks job waits for the other collectors' first
// snapshot (a collector still blocked holds it back, without polling), then
// serves a status per check, failures per category, config validity and
// baseline drift.
func TestChecksJob(t *testing.T) {
	release := make(chan struct{})
	slow := testJob("slow", &fakeCollector{facts: []string{"a", "b"}, block: release})
	s := newTestScheduler(slow)
	base := &factsdoc.Doc{Collectors: []factsdoc.CollectorFacts{{Name: "slow", Success: true, Metrics: []factsdoc.Sample{
		{Name: "azurelinux_test_fact", Labels: map[string]string{"n": "a"}, Value: 1},
		{Name: "azurelinux_test_fact", Labels: map[string]string{"n": "c"}, Value: 1},
	}}}}
	cj := &job{name: checksJobName, interval: time.Hour, timeout: 10 * time.Second,
		c: newChecksCollector(s, collectors.DefaultPaths(t.TempDir()), loadChecks(t, testChecks), false, base)}
	s.Load(&collectorSet{jobs: []*job{slow, cj}})
	done := make(chan struct{})
	go func() {
		s.RunOnce(context.Background())
		close(done)
	}()
	// has-a passes below only if the checks waited for slow's snapshot:
	// evaluated before it, the check would fail with "no series".
	close(release)
	<-done

	snap := s.Snapshots()[checksJobName]
	if snap == nil || !snap.Success {
		t.Fatalf("checks snapshot: %+v", snap)
	}
	want := `
# HELP azurelinux_check_reason_info Why a failed compatibility check failed, in words (capped at 160 bytes); constant 1. Only failed checks have a series.
# TYPE azurelinux_check_reason_info gauge
azurelinux_check_reason_info{category="mine",check="has-z",reason="no series matches azurelinux_test_fact{n=\"z\"}; found azurelinux_test_fact{n=\"a\"}, azurelinux_test_fact{n=\"b\"}"} 1
# HELP azurelinux_check_status ` + checkStatusFact.Help + `
# TYPE azurelinux_check_status gauge
azurelinux_check_status{category="files",check="tmp"} 1
azurelinux_check_status{category="mine",check="has-a"} 1
azurelinux_check_status{category="mine",check="has-z"} 0
# HELP azurelinux_checks_failed ` + checksFailedFact.Help + `
# TYPE azurelinux_checks_failed gauge
azurelinux_checks_failed{category="files"} 0
azurelinux_checks_failed{category="mine"} 1
# HELP azurelinux_checks_skipped ` + checksSkippedFact.Help + `
# TYPE azurelinux_checks_skipped gauge
azurelinux_checks_skipped{category="files"} 0
azurelinux_checks_skipped{category="mine"} 0
# HELP azurelinux_checks_config_valid 1 when the checks files loaded; 0 when one is invalid, in which case the previously loaded checks (at start: the embedded matrix) keep running and the log says which file, line and why.
# TYPE azurelinux_checks_config_valid gauge
azurelinux_checks_config_valid 0
# HELP azurelinux_baseline_drift 1 for each fact that differs from the --baseline.file baseline; fact is the metric name and its identifying labels. Only drifted facts have a series.
# TYPE azurelinux_baseline_drift gauge
azurelinux_baseline_drift{collector="slow",fact="azurelinux_test_fact{n=\"b\"}"} 1
azurelinux_baseline_drift{collector="slow",fact="azurelinux_test_fact{n=\"c\"}"} 1
# HELP azurelinux_baseline_facts_drifted Number of facts that differ from the --baseline.file baseline (absent when no valid baseline is loaded).
# TYPE azurelinux_baseline_facts_drifted gauge
azurelinux_baseline_facts_drifted 2
`
	if err := testutil.CollectAndCompare(metricList(snap.Metrics), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestChecksJobGivesUpAtTimeout: a collector that never publishes makes the
// checks refresh fail at its timeout with the collector's name, instead of
// evaluating against missing facts.
func TestChecksJobGivesUpAtTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	hung := &job{name: "hung", c: &fakeCollector{block: release}, interval: time.Hour, timeout: time.Hour}
	s := newTestScheduler(hung)
	cj := &job{name: checksJobName, interval: time.Hour, timeout: 100 * time.Millisecond,
		c: newChecksCollector(s, collectors.DefaultPaths("/"), nil, true, nil)}
	s.Load(&collectorSet{jobs: []*job{hung, cj}})
	ctx, cancel := context.WithCancel(context.Background())
	go s.refresh(ctx, hung)
	s.refresh(ctx, cj)
	cancel()
	snap := s.Snapshots()[checksJobName]
	if snap == nil || snap.Success || !strings.Contains(snap.Err.Error(), "timed out") {
		t.Errorf("checks snapshot: %+v", snap)
	}
}

// TestLoadChecksKeepsPrevious: an invalid checks file on reload keeps the
// previous checks and reports config_valid 0; at start, the embedded matrix
// runs. A corrupt baseline keeps the previous baseline.
func TestLoadChecksKeepsPrevious(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	o := &options{checksDir: dir, checksEmbedded: true}
	emb, _ := checks.Load(checks.EmbeddedName, checks.Embedded)

	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("team.yml", "checks:\n  - name: broken\n    category: x\n")
	list, valid, _ := o.loadChecks(logger)
	if valid || len(list) != len(emb) {
		t.Errorf("invalid at start: valid %v with %d checks, want false with the %d embedded", valid, len(list), len(emb))
	}
	if !strings.Contains(logs.String(), "team.yml:2: check \\\"broken\\\": no kind") {
		t.Errorf("log lacks the file, line and reason:\n%s", logs.String())
	}

	write("team.yml", "checks:\n  - name: kubectl\n    category: k8s_debug\n    command: kubectl\n")
	list, valid, _ = o.loadChecks(logger)
	if !valid || len(list) != len(emb)+1 {
		t.Errorf("valid: %v with %d checks", valid, len(list))
	}
	write("team.yml", "checks:\n  - name: kubectl\n    category: k8s_debug\n    command: /usr/bin/kubectl\n")
	list, valid, _ = o.loadChecks(logger)
	if valid || len(list) != len(emb)+1 || list[len(list)-1].Name != "kubectl" {
		t.Errorf("invalid reload: valid %v with %d checks, want the previous %d", valid, len(list), len(emb)+1)
	}

	o.baselineFile = filepath.Join(dir, "base.json")
	write("base.json", `{"collectors":[{"name":"os","success":true,"metrics":[]}]}`)
	if _, _, b := o.loadChecks(logger); b == nil || b.Collectors[0].Name != "os" {
		t.Fatalf("baseline not loaded: %+v", b)
	}
	write("base.json", `{"collectors":[{"name":"os","succ`)
	if _, _, b := o.loadChecks(logger); b == nil || b.Collectors[0].Name != "os" {
		t.Errorf("a truncated baseline replaced the previous one: %+v", b)
	}
	if got, _ := os.ReadFile(o.baselineFile); string(got) != `{"collectors":[{"name":"os","succ` {
		t.Errorf("the corrupt baseline was rewritten: %q", got)
	}
	if !strings.Contains(logs.String(), "is corrupt or truncated") {
		t.Errorf("log lacks the corrupt baseline:\n%s", logs.String())
	}
}

// TestChecksCannotReadProbeMetrics: the agent's own metrics are declared
// too, but no snapshot carries them, so a condition on one is a load error.
func TestChecksCannotReadProbeMetrics(t *testing.T) {
	src := "checks:\n  - name: up\n    category: x\n    fact: azurelinux_probe_collector_success == 1\n"
	_, err := checks.Load("t.yml", []byte(src))
	want := `t.yml:4: check "up": fact: azurelinux_probe_collector_success is served by the probe itself (probe), not by a collector: a condition cannot read it`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}
