package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/azurelinux-probe/azurelinux-probe/checks"
	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// checksJobName is the scheduler job that evaluates the checks in the
// daemon. It is scheduled like a collector (its own interval and timeout,
// azurelinux_probe_collector_success, collect[]=checks) but reads the other
// collectors' snapshots instead of the host.
const checksJobName = "checks"

// DefaultChecksDir holds the user's checks files.
const DefaultChecksDir = "/etc/azurelinux-probe/checks.d"

// checksCollector evaluates the checks against the latest snapshots of the
// scheduler's other collectors, and compares their facts with a baseline.
type checksCollector struct {
	sched    *Scheduler
	paths    collectors.Paths
	checks   []checks.Check
	valid    bool
	baseline *checks.FactsDoc
	// repoProxy is --checks.repo-proxy (nil: repo metadata goes direct).
	repoProxy *url.URL

	status, failed, valid1, drift, drifted *prometheus.Desc
}

func newChecksCollector(sched *Scheduler, paths collectors.Paths, list []checks.Check, valid bool, baseline *checks.FactsDoc) *checksCollector {
	return &checksCollector{
		sched: sched, paths: paths, checks: list, valid: valid, baseline: baseline,
		status:  selfDesc("azurelinux_check_status"),
		failed:  selfDesc("azurelinux_checks_failed"),
		valid1:  selfDesc("azurelinux_checks_config_valid"),
		drift:   selfDesc("azurelinux_baseline_drift"),
		drifted: selfDesc("azurelinux_baseline_facts_drifted"),
	}
}

// Update waits until every other collector has published its first
// snapshot (so that the first evaluation after start does not fail every
// fact check), then evaluates.
func (c *checksCollector) Update(ctx context.Context, m *collectors.Metrics) error {
	m.Bool(c.valid1, c.valid)
	if err := c.sched.waitFirstSnapshots(ctx, checksJobName); err != nil {
		return err
	}
	facts, doc, err := factsOf(c.sched, checksJobName)
	if err != nil {
		return err
	}
	env := &checks.Env{Paths: c.paths, Facts: facts, RepoProxy: c.repoProxy}
	results := checks.Evaluate(ctx, env, c.checks)
	for _, r := range results {
		m.Bool(c.status, r.Pass, r.Name, r.Category)
	}
	byCat := checks.FailedByCategory(results)
	for _, cat := range checks.Sorted(byCat) {
		m.Gauge(c.failed, float64(byCat[cat]), cat)
	}
	if c.baseline != nil {
		drifts, _ := checks.Compare(c.baseline, doc)
		for _, d := range drifts {
			m.Gauge(c.drift, 1, d.Collector, d.Fact)
		}
		m.Gauge(c.drifted, float64(len(drifts)))
	}
	return ctx.Err()
}

// factsOf returns the latest snapshots of the scheduled collectors (except
// the job called exclude) as the facts conditions read and as a facts
// document for baseline comparison.
func factsOf(sched *Scheduler, exclude string) (*checks.Facts, *checks.FactsDoc, error) {
	reports, err := reportsOf(sched)
	if err != nil {
		return nil, nil, err
	}
	doc := &checks.FactsDoc{}
	states := map[string]checks.CollectorState{}
	var all []prometheus.Metric
	snaps := sched.Snapshots()
	for _, r := range reports {
		if r.Name == exclude {
			continue
		}
		doc.Collectors = append(doc.Collectors, r)
		states[r.Name] = checks.CollectorState{Success: r.Success, Err: r.Error}
		if s := snaps[r.Name]; s != nil {
			all = append(all, s.Metrics...)
		}
	}
	// Gather returns what it could along with an error (two collectors
	// serving the same series is a bug): the checks on the other facts
	// still hold, so they are evaluated on what was gathered.
	families, _ := gather(metricList(all))
	return checks.NewFacts(families, states, metricOwner), doc, nil
}

// metricOwner returns the collector whose descriptor names metric, from the
// catalog of the collectors built in this process.
func metricOwner(metric string) string {
	for _, d := range collectors.Catalog() {
		if d.Name == metric {
			return d.Collector
		}
	}
	return ""
}

// checksState keeps the checks and the baseline that the daemon runs, so
// that a reload whose checks file or baseline is invalid keeps the previous
// ones (and says so) instead of dropping them.
type checksState struct {
	mu       sync.Mutex
	loaded   bool
	checks   []checks.Check
	baseline *checks.FactsDoc
}

// load loads the checks and the baseline for the daemon. An invalid checks
// file is logged with its file, line and reason, and the previous checks
// are kept (at start, the embedded matrix alone); valid reports which.
func (o *options) loadChecks(logger *slog.Logger) (list []checks.Check, valid bool, baseline *checks.FactsDoc) {
	st := &o.checksState
	st.mu.Lock()
	defer st.mu.Unlock()
	list, err := checks.LoadAll(o.checksEmbedded, o.checksDir)
	valid = err == nil
	if err != nil {
		if !st.loaded {
			// Nothing ran before: fall back to the embedded matrix, which
			// a test proves valid.
			st.checks, _ = checks.LoadAll(o.checksEmbedded, "")
			st.loaded = true
		}
		logger.Error("invalid checks, keeping the previous checks", "err", err, "checks", len(st.checks))
		list = st.checks
	} else {
		st.checks, st.loaded = list, true
		logger.Info("checks loaded", "checks", len(list), "dir", o.checksDir, "embedded", o.checksEmbedded)
	}
	if o.baselineFile != "" {
		b, err := checks.LoadBaseline(o.baselineFile)
		if err != nil {
			logger.Error("invalid baseline, keeping the previous one (the file is left as it is)", "err", err,
				"previous", st.baseline != nil)
		} else {
			st.baseline = b
		}
	}
	return list, valid, st.baseline
}

// addChecks schedules the checks job in set.
func (o *options) addChecks(set *Set, sched *Scheduler, logger *slog.Logger) {
	list, valid, baseline := o.loadChecks(logger)
	c := newChecksCollector(sched, o.paths(), list, valid, baseline)
	c.repoProxy = o.repoProxy
	set.jobs = append(set.jobs, &job{name: checksJobName, c: c, interval: o.checksInterval, timeout: o.checksTimeout})
}

// check runs the collectors once, then the checks, and prints the report.
// Exit status: 0 all passed, 1 a check failed or a fact drifted, 2 the
// checks or the baseline could not be loaded.
func (o *options) check(stdout, stderr io.Writer, logger *slog.Logger) int {
	list, err := checks.LoadAll(o.checksEmbedded, o.checksDir)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid checks:\n%v\n", programName, err)
		return 2
	}
	var baseline *checks.FactsDoc
	if o.checkBaseline != "" {
		if baseline, err = checks.LoadBaseline(o.checkBaseline); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", programName, err)
			return 2
		}
	}
	set, err := o.build(logger)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration: %v\n", programName, err)
		return 2
	}
	sched := NewScheduler(logger)
	sched.Load(set)
	ctx, cancel := context.WithTimeout(context.Background(), o.checksTimeout+maxTimeout(set))
	defer cancel()
	sched.RunOnce(ctx)
	facts, doc, err := factsOf(sched, "")
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return 2
	}
	// Every check that may wait (exec, repo) has its own timeout; a one-shot
	// run in a pipeline is not bounded further by the daemon's
	// --checks.timeout.
	env := &checks.Env{Paths: o.paths(), Facts: facts, RepoProxy: o.repoProxy}
	report := &checks.Report{Results: checks.Evaluate(context.Background(), env, list)}
	if baseline != nil {
		report.Baseline = o.checkBaseline
		report.Drift, report.Skipped = checks.Compare(baseline, doc)
	}
	if err := report.Write(stdout, o.checkFormat); err != nil {
		fmt.Fprintf(stderr, "%s: print report: %v\n", programName, err)
		return 2
	}
	if report.Failed() > 0 {
		return 1
	}
	return 0
}

func maxTimeout(set *Set) time.Duration {
	var d time.Duration
	for _, j := range set.jobs {
		d = max(d, j.timeout)
	}
	return d
}

// baselineSave runs the collectors once and writes their facts, as
// `facts --format=json` prints them, to path atomically. It exits 1 (after
// writing) when a collector failed, since its facts are then incomplete.
func (o *options) baselineSave(path string, stderr io.Writer, logger *slog.Logger) int {
	set, err := o.build(logger)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration: %v\n", programName, err)
		return 2
	}
	sched := NewScheduler(logger)
	sched.Load(set)
	sched.RunOnce(context.Background())
	var buf bytes.Buffer
	if err := WriteFacts(&buf, sched, "json"); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return 1
	}
	if err := checks.SaveBaseline(path, buf.Bytes()); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return 1
	}
	code := 0
	for name, snap := range sched.Snapshots() {
		if snap == nil || !snap.Success {
			logger.Warn("collector failed: its facts in the baseline are incomplete and will not be compared", "collector", name)
			code = 1
		}
	}
	fmt.Fprintf(stderr, "baseline of %d collectors written to %s\n", len(set.jobs), path)
	return code
}
