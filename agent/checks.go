package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/azurelinux-probe/azurelinux-probe/checks"
	"github.com/azurelinux-probe/azurelinux-probe/collectors"
	"github.com/azurelinux-probe/azurelinux-probe/internal/factsdoc"
)

// checksJobName is the scheduler job that evaluates the checks in the
// daemon. It is scheduled like a collector (its own interval and timeout,
// azurelinux_probe_collector_success, collect[]=checks) but reads the other
// collectors' snapshots instead of the host.
const checksJobName = collectors.ChecksCollector

// defaultChecksDir holds the user's checks files.
const defaultChecksDir = "/etc/azurelinux-probe/checks.d"

// checksCollector evaluates the checks against the latest snapshots of the
// scheduler's other collectors, and compares their facts with a baseline.
type checksCollector struct {
	sched    *scheduler
	paths    collectors.Paths
	checks   []checks.Check
	valid    bool
	baseline *factsdoc.Doc
	// repoProxy is --checks.repo-proxy (nil: repo metadata goes direct).
	repoProxy *url.URL
	listRPM   checks.RPMLister // nil: rpm databases are read in this process
}

// The checks' metrics (collector "checks").
var (
	checkStatusFact = collectors.Declare(collectors.Fact{Collector: checksJobName, Subsystem: "check", Name: "status",
		Help:     "1 when the compatibility check passed, 0 when it failed or could not be judged (a collector it reads failed or is not enabled, a file it needs was unreadable); no series when it was skipped as not applicable under the root (azurelinux_checks_skipped counts those). `azurelinux-probe check` prints the reason.",
		Labels:   []string{"check", "category"},
		Identity: []string{"check"}, Bound: "one per loaded check"})
	checksFailedFact = collectors.Declare(collectors.Fact{Collector: checksJobName, Name: "failed",
		Help:     "Number of compatibility checks per category that failed or could not be judged (0 for a category whose checks all passed or were skipped).",
		Labels:   []string{"category"},
		Identity: []string{"category"}, Bound: "the categories of the loaded checks"})
	checksSkippedFact = collectors.Declare(collectors.Fact{Collector: checksJobName, Name: "skipped",
		Help:     "Number of compatibility checks per category skipped as not applicable under the root (an image: no running kernel or systemd; an exec check without sandbox).",
		Labels:   []string{"category"},
		Identity: []string{"category"}, Bound: "the categories of the loaded checks"})
	// checkReasonFact lets a fleet report (azurelinux-probe report) and the
	// status page say why a check failed without running it: the reason is
	// capped at maxReasonLen so that a long command output cannot blow up
	// a label.
	checkReasonFact = collectors.Declare(collectors.Fact{Collector: checksJobName, Subsystem: "check", Name: "reason_info",
		Help:     "Why a failed compatibility check failed, in words (capped at 160 bytes); constant 1. Only failed checks have a series.",
		Labels:   []string{"check", "category", "reason"},
		Identity: []string{"check"}, Bound: "one per failed check"})
	checksConfigValidFact = collectors.Declare(collectors.Fact{Collector: checksJobName, Name: "config_valid",
		Help: "1 when the checks files loaded; 0 when one is invalid, in which case the previously loaded checks (at start: the embedded matrix) keep running and the log says which file, line and why."})
	baselineDriftFact = collectors.Declare(collectors.Fact{Collector: checksJobName, Subsystem: "baseline", Name: "drift",
		Help:     "1 for each fact that differs from the --baseline.file baseline; fact is the metric name and its identifying labels. Only drifted facts have a series.",
		Labels:   []string{"collector", "fact"},
		Identity: []string{"collector", "fact"}, Bound: "one per drifted fact"})
	baselineFactsDriftedFact = collectors.Declare(collectors.Fact{Collector: checksJobName, Subsystem: "baseline", Name: "facts_drifted",
		Help: "Number of facts that differ from the --baseline.file baseline (absent when no valid baseline is loaded)."})
)

func newChecksCollector(sched *scheduler, paths collectors.Paths, list []checks.Check, valid bool, baseline *factsdoc.Doc) *checksCollector {
	return &checksCollector{
		sched: sched, paths: paths, checks: list, valid: valid, baseline: baseline,
	}
}

// Update waits until every other collector has published its first
// snapshot (so that the first evaluation after start does not fail every
// fact check), then evaluates.
func (c *checksCollector) Update(ctx context.Context, m *collectors.Metrics) error {
	m.SetBool(checksConfigValidFact, c.valid)
	if err := c.sched.waitFirstSnapshots(ctx, checksJobName); err != nil {
		return err
	}
	facts, doc, err := factsOf(c.sched, checksJobName)
	if err != nil {
		return err
	}
	env := &checks.Env{Paths: c.paths, Facts: facts, RepoProxy: c.repoProxy, ListRPM: c.listRPM}
	results := checks.Evaluate(ctx, env, c.checks)
	for _, r := range results {
		if r.Status != checks.StatusSkipped {
			m.SetBool(checkStatusFact, r.Status == checks.StatusPass, r.Name, r.Category)
		}
		if r.Status == checks.StatusFail || r.Status == checks.StatusError {
			m.Set(checkReasonFact, 1, r.Name, r.Category, capReason(r.Reason))
		}
	}
	byCat := checks.FailedByCategory(results)
	for _, cat := range checks.Sorted(byCat) {
		m.Set(checksFailedFact, float64(byCat[cat]), cat)
	}
	skipped := checks.SkippedByCategory(results)
	for _, cat := range checks.Sorted(skipped) {
		m.Set(checksSkippedFact, float64(skipped[cat]), cat)
	}
	if c.baseline != nil {
		drifts, _ := factsdoc.Compare(c.baseline, doc)
		for _, d := range drifts {
			m.Set(baselineDriftFact, 1, d.Collector, d.Fact)
		}
		m.Set(baselineFactsDriftedFact, float64(len(drifts)))
	}
	return ctx.Err()
}

// factsOf returns the latest snapshots of the scheduled collectors (except
// the job called exclude) as the facts conditions read and as a facts
// document for baseline comparison.
func factsOf(sched *scheduler, exclude string) (*checks.Facts, *factsdoc.Doc, error) {
	reports, err := reportsOf(sched)
	if err != nil {
		return nil, nil, err
	}
	doc := &factsdoc.Doc{}
	states := map[string]checks.CollectorState{}
	var all []prometheus.Metric
	snaps := sched.Snapshots()
	for _, r := range reports {
		if r.Name == exclude {
			continue
		}
		doc.Collectors = append(doc.Collectors, r)
		states[r.Name] = checks.CollectorState{Success: r.Success, Err: r.Error, NotApplicable: r.NotApplicable}
		if s := snaps[r.Name]; s != nil {
			all = append(all, s.Metrics...)
		}
	}
	// Gather returns what it could along with an error (two collectors
	// serving the same series is a bug): the checks on the other facts
	// still hold, so they are evaluated on what was gathered.
	families, _ := gather(metricList(all))
	return checks.NewFacts(families, states), doc, nil
}

// checksState keeps the checks and the baseline that the daemon runs, so
// that a reload whose checks file or baseline is invalid keeps the previous
// ones (and says so) instead of dropping them.
type checksState struct {
	mu       sync.Mutex
	loaded   bool
	checks   []checks.Check
	baseline *factsdoc.Doc
}

// load loads the checks and the baseline for the daemon. An invalid checks
// file is logged with its file, line and reason, and the previous checks
// are kept (at start, the embedded matrix alone); valid reports which.
func (o *options) loadChecks(logger *slog.Logger) (list []checks.Check, valid bool, baseline *factsdoc.Doc) {
	st := &o.checksState
	st.mu.Lock()
	defer st.mu.Unlock()
	set, err := checks.LoadDir(o.checksEmbedded, o.checksDir, false)
	list = set.Checks
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
		logLoaded(logger, set)
	}
	if o.baselineFile != "" {
		b, err := factsdoc.Load(o.baselineFile)
		if err != nil {
			logger.Error("invalid baseline, keeping the previous one (the file is left as it is)", "err", err,
				"previous", st.baseline != nil)
		} else {
			st.baseline = b
		}
	}
	return list, valid, st.baseline
}

// logLoaded logs the embedded checks that the checks directory replaced and
// the files it ignored.
func logLoaded(logger *slog.Logger, set checks.Set) {
	for _, r := range set.Replaced {
		logger.Info("embedded check replaced", "check", r)
	}
	for _, f := range set.Ignored {
		logger.Warn("ignored file in the checks directory: not *.yml or *.yaml", "file", f)
	}
}

// skipChecks removes the checks named in skip (--checks.skip). A name that
// no loaded check has is an error, with the nearest one: a typo must not
// silently run what it meant to skip.
func skipChecks(list []checks.Check, skip []string) ([]checks.Check, error) {
	if len(skip) == 0 {
		return list, nil
	}
	names := make([]string, len(list))
	for i, c := range list {
		names[i] = c.Name
	}
	drop := map[string]bool{}
	for _, n := range skip {
		if !slices.Contains(names, n) {
			if near := collectors.Nearest(n, names); near != "" {
				return nil, fmt.Errorf("--checks.skip: no check %q (did you mean %s?)", n, near)
			}
			return nil, fmt.Errorf("--checks.skip: no check %q", n)
		}
		drop[n] = true
	}
	var out []checks.Check
	for _, c := range list {
		if !drop[c.Name] {
			out = append(out, c)
		}
	}
	return out, nil
}

// addChecks schedules the checks job in set. It reports whether the checks
// files loaded (the previous checks run otherwise).
func (o *options) addChecks(set *collectorSet, sched *scheduler, logger *slog.Logger) bool {
	list, valid, baseline := o.loadChecks(logger)
	if l, err := skipChecks(list, o.checksSkip); err != nil {
		logger.Error("invalid --checks.skip, running every check", "err", err)
		valid = false
	} else {
		list = l
	}
	c := newChecksCollector(sched, o.paths(), list, valid, baseline)
	c.repoProxy = o.repoProxy
	// The daemon reads rpm databases in a child process; the one-shot
	// `check` command, which exits after one evaluation, in its own.
	if iso, err := o.isolation(); err != nil {
		logger.Warn("rpm databases are read in the daemon", "err", err)
	} else {
		c.listRPM = iso.rpmLister()
	}
	set.jobs = append(set.jobs, &job{name: checksJobName, c: c, interval: o.checksInterval, timeout: o.checksTimeout})
	return valid
}

// check runs the collectors once, then the checks, and prints the report.
// Exit status (Report.ExitCode): 0 every check passed or was skipped, 1 one
// failed or a fact drifted, 2 one could not be judged, or bad usage: the
// checks, the configuration or the baseline cannot be loaded.
func (o *options) check(stdout, stderr io.Writer, logger *slog.Logger) int {
	set, err := checks.LoadDir(o.checksEmbedded, o.checksDir, o.checksDirSet || !o.checksEmbedded)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid checks:\n%v\n", programName, err)
		return 2
	}
	logLoaded(logger, set)
	list, err := skipChecks(set.Checks, o.checksSkip)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return 2
	}
	if len(list) == 0 && o.baselineFile == "" {
		// Nothing would be judged: a green result would mean nothing.
		fmt.Fprintf(stderr, "%s: no checks to evaluate (embedded %v, --checks.dir %s)\n", programName, o.checksEmbedded, o.checksDir)
		return 2
	}
	var baseline *factsdoc.Doc
	if o.baselineFile != "" {
		if baseline, err = factsdoc.Load(o.baselineFile); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", programName, err)
			return 2
		}
	}
	cs, err := o.build(logger)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration: %v\n", programName, err)
		return 2
	}
	sched := newScheduler(logger)
	sched.Load(cs)
	ctx, cancel := context.WithTimeout(context.Background(), o.checksTimeout+maxTimeout(cs))
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
	report := &checks.Report{Results: checks.Evaluate(context.Background(), env, list), Ignored: set.Ignored}
	if baseline != nil {
		report.Baseline = o.baselineFile
		report.Drift, report.Skipped = factsdoc.Compare(baseline, doc)
	}
	if err := report.Write(stdout, o.checkFormat); err != nil {
		fmt.Fprintf(stderr, "%s: print report: %v\n", programName, err)
		return 2
	}
	return report.ExitCode()
}

func maxTimeout(set *collectorSet) time.Duration {
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
	sched := newScheduler(logger)
	sched.Load(set)
	sched.RunOnce(context.Background())
	var buf bytes.Buffer
	if err := writeFacts(&buf, sched, "json"); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return 1
	}
	if err := factsdoc.Save(path, buf.Bytes()); err != nil {
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

// maxReasonLen caps azurelinux_check_reason_info's reason label.
const maxReasonLen = 160

// capReason returns reason on one line, cut at maxReasonLen bytes on a rune
// boundary with "…" when it was longer.
func capReason(reason string) string {
	reason = strings.Join(strings.Fields(reason), " ")
	if len(reason) <= maxReasonLen {
		return reason
	}
	cut := maxReasonLen - len("…")
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut] + "…"
}
