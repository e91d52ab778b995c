package checks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
	"github.com/azurelinux-probe/azurelinux-probe/internal/lenre"
)

// Facts are the probe's own facts that fact conditions read: the metric
// families of the collectors' latest snapshots, as the agent serves them.
type Facts struct {
	// Series holds every sample, by metric name.
	Series map[string][]Series
	// Collectors are the collectors that ran, by name, with their outcome.
	Collectors map[string]CollectorState
}

// CollectorState is the outcome of a collector's latest refresh.
type CollectorState struct {
	Success bool
	Err     string
	// NotApplicable is why the collector's facts do not exist under the
	// root, when they do not.
	NotApplicable string
}

// NewFacts flattens metric families into Facts.
func NewFacts(families []*dto.MetricFamily, collectors map[string]CollectorState) *Facts {
	f := &Facts{Series: map[string][]Series{}, Collectors: collectors}
	for _, mf := range families {
		f.Series[mf.GetName()] = append(f.Series[mf.GetName()], SeriesOf(mf)...)
	}
	return f
}

// Env is what checks are evaluated against.
type Env struct {
	Paths collectors.Paths
	Facts *Facts
	// HTTPClient fetches repository metadata; nil uses newRepoClient's: no
	// proxy, no redirect to another host, capped headers and body.
	HTTPClient *http.Client
	// RepoProxy, when set, is the HTTP proxy of the default repo client
	// (--checks.repo-proxy); the proxy environment variables never are.
	RepoProxy *url.URL
	// ListRPM reads the rpm database for rpm checks; nil reads it in this
	// process.
	ListRPM RPMLister
	// Arch is $basearch for repository URLs; empty means this machine's.
	Arch string

	rpmOnce sync.Once
	rpmDB   *rpmDB
	rpmErr  error
}

// Status is a check's verdict.
type Status string

// The verdicts. A pipeline trusts them as: pass and skipped are green,
// fail is a finding, error means the check could not be judged (a
// collector it reads failed, a file it needs was unreadable) and is never
// green.
const (
	StatusPass Status = "pass"
	StatusFail Status = "fail"
	// StatusSkipped: the check does not apply under this root (an image has no
	// running kernel, an exec check under an image root without sandbox),
	// with the reason.
	StatusSkipped Status = "skipped"
	StatusError   Status = "error"
)

func passIf(ok bool) Status {
	if ok {
		return StatusPass
	}
	return StatusFail
}

// Result is the outcome of one check.
type Result struct {
	Name        string        `json:"name"`
	Category    string        `json:"category"`
	Description string        `json:"description,omitempty"`
	Kind        string        `json:"kind"`
	Source      string        `json:"source"`
	Status      Status        `json:"status"`
	Pass        bool          `json:"pass"`
	Reason      string        `json:"reason"`
	Duration    time.Duration `json:"-"`
}

// Verdict is the result's status; a Result built without one (by hand)
// reads as Pass says.
func (r Result) Verdict() Status {
	if r.Status == "" {
		return passIf(r.Pass)
	}
	return r.Status
}

// Evaluate runs every check against env and returns the results in the order
// of checks. Checks run concurrently, a few at a time, since an exec or repo
// check may wait on its timeout; ctx bounds them all.
func Evaluate(ctx context.Context, env *Env, checks []Check) []Result {
	out := make([]Result, len(checks))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			start := time.Now()
			st, reason := env.evaluate(ctx, c)
			out[i] = Result{Name: c.Name, Category: c.Category, Description: c.Description, Kind: c.Kind,
				Source: c.Source, Status: st, Pass: st == StatusPass, Reason: reason, Duration: time.Since(start)}
		}()
	}
	wg.Wait()
	return out
}

func (env *Env) evaluate(ctx context.Context, c Check) (st Status, reason string) {
	defer func() {
		// A check is configuration, not code: a bug in evaluating one must
		// fail that check, not the probe.
		if r := recover(); r != nil {
			st, reason = StatusError, fmt.Sprintf("internal error: %v", r)
		}
	}()
	if err := ctx.Err(); err != nil {
		return StatusError, "not evaluated: " + err.Error()
	}
	switch c.Kind {
	case "fact":
		return env.fact(c.fact)
	case "command":
		return env.command(c.command)
	case "file":
		return env.file(c.file)
	case "rpm":
		return env.rpm(ctx, c.rpm)
	case "unit":
		return env.unit(c.unit)
	case "sysctl":
		return env.sysctl(c.sysctl)
	case "module":
		return env.module(c.module)
	case "repo":
		return env.repo(ctx, c.repo)
	case "exec":
		return env.exec(ctx, c.exec)
	}
	return StatusError, "unknown kind " + c.Kind
}

// fact evaluates a condition on the facts. A metric that no series carries
// fails the check when the collector that serves it ran and found no such
// source; the check is an error, with the reason, when that collector is
// not enabled or failed (nothing was judged), and skipped when the
// collector does not apply under this root (an image). (Only "none" passes when the
// collector ran successfully and served no series: "no GPU lacks a driver"
// holds on a host without GPUs.) A check that cannot see its fact is not a
// pass: a matrix that skipped what it could not see would report green on
// an image where nothing was checked.
func (env *Env) fact(e *Expr) (Status, string) {
	f := env.Facts
	if f == nil {
		f = &Facts{}
	}
	series := f.Series[e.Metric]
	fact, declared := collectors.LookupFact(e.Metric)
	if len(series) > 0 {
		ok, reason := e.eval(series)
		// A collector that failed served only the facts it read before
		// the failure: whatever they say, the check was not judged on
		// the whole, and a pipeline must not read it as green.
		if declared {
			if st, known := f.Collectors[fact.Collector]; known && !st.Success {
				return StatusError, fmt.Sprintf("the %s collector failed: %s (on its partial facts: %s)", fact.Collector, st.Err, reason)
			}
		}
		return passIf(ok), reason
	}
	if !declared {
		// Load rejects such a condition; only one built by hand gets here.
		return StatusError, fmt.Sprintf("no series %s: no collector declares it", e.Metric)
	}
	owner := fact.Collector
	state, enabled := f.Collectors[owner]
	_, built := collectors.Lookup(owner)
	switch {
	case !enabled && !built:
		return StatusError, fmt.Sprintf("no series %s: is the %s collector enabled? (this build has no %s collector)", e.Metric, owner, owner)
	case !enabled:
		return StatusError, fmt.Sprintf("no series %s: is the %s collector enabled? (--collector.%s)", e.Metric, owner, owner)
	case !state.Success:
		return StatusError, fmt.Sprintf("no series %s: the %s collector failed: %s", e.Metric, owner, state.Err)
	case state.NotApplicable != "":
		return StatusSkipped, fmt.Sprintf("%s: the %s collector is not applicable: %s", e.Metric, owner, state.NotApplicable)
	case e.Quantifier == "none":
		return StatusPass, fmt.Sprintf("no series %s (the %s collector found none)", e.Metric, owner)
	}
	return StatusFail, fmt.Sprintf("no series %s: the %s collector found no such source on this host", e.Metric, owner)
}

// pathDirs are searched for command checks, as a login shell's PATH would.
var pathDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

func (env *Env) command(name string) (Status, string) {
	for _, dir := range pathDirs {
		// Root resolves links inside the root: an absolute link target in
		// an image must not be looked up on the probe's own file system.
		p := env.Paths.Root(dir, name)
		fi, err := p.Stat()
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		where := p.InRoot()
		if lfi, err := p.Lstat(); err == nil && lfi.Mode()&os.ModeSymlink != 0 {
			if target, err := p.Readlink(); err == nil {
				return StatusPass, fmt.Sprintf("%s (symlink to %s)", where, target)
			}
		}
		return StatusPass, where
	}
	return StatusFail, fmt.Sprintf("%s not found on the PATH (%s) under %s", name, strings.Join(pathDirs, ":"), env.Paths.RootFS)
}

func (env *Env) file(f *fileSpec) (Status, string) {
	p := env.Paths.Root(f.path)
	fi, err := p.Stat()
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return StatusFail, f.path + " does not exist"
		}
		return StatusError, fmt.Sprintf("%s: %v", f.path, unwrapPath(err))
	}
	switch {
	case f.typ == "file" && !fi.Mode().IsRegular():
		return StatusFail, fmt.Sprintf("%s is a %s, not a regular file", f.path, typeName(fi.Mode()))
	case f.typ == "dir" && !fi.IsDir():
		return StatusFail, fmt.Sprintf("%s is a %s, not a directory", f.path, typeName(fi.Mode()))
	}
	got := unixMode(fi.Mode())
	if f.hasMode && got != f.mode {
		return StatusFail, fmt.Sprintf("%s has mode %04o, want %04o", f.path, got, f.mode)
	}
	return StatusPass, fmt.Sprintf("%s (%s, mode %04o)", f.path, typeName(fi.Mode()), got)
}

// unwrapPath drops the host path from a *PathError so reasons name the path
// inside the root.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (env *Env) rpm(ctx context.Context, r *rpmSpec) (Status, string) {
	env.rpmOnce.Do(func() { env.rpmDB, env.rpmErr = openRPMDB(ctx, env.Paths, env.ListRPM) })
	if env.rpmErr != nil {
		return StatusError, env.rpmErr.Error()
	}
	pkgs := env.rpmDB.packages[r.name]
	if len(pkgs) == 0 {
		return StatusFail, fmt.Sprintf("package %s is not installed (rpm database %s)", r.name, env.rpmDB.path)
	}
	var best rpmPackage
	for i, p := range pkgs {
		if i == 0 || compareEVR(p.EVR(), best.EVR()) > 0 {
			best = p
		}
	}
	if r.minVersion == "" {
		return StatusPass, best.String()
	}
	want := r.minVersion
	have := best.Version
	if strings.Contains(want, "-") {
		have += "-" + best.Release
	}
	// As dnf does for a requirement without an epoch, the package's epoch
	// is then ignored: openssl-libs >= 3.5 is about 3.5, whatever the epoch.
	if strings.Contains(want, ":") {
		have = strconv.Itoa(best.Epoch) + ":" + have
	}
	if compareEVR(have, want) < 0 {
		return StatusFail, fmt.Sprintf("%s is older than %s", best.String(), want)
	}
	return StatusPass, fmt.Sprintf("%s >= %s", best.String(), want)
}

// unit reports whether a unit is enabled (a link in a *.wants or *.requires
// directory under /etc/systemd/system of the root, which is what
// `systemctl enable` creates and works on an image that has not booted) or
// active, which only the running systemd knows: it is read from the
// systemd collector's azurelinux_systemd_unit_info facts.
func (env *Env) unit(u *unitSpec) (Status, string) {
	if u.state == "active" {
		e := &Expr{Quantifier: "any", Metric: "azurelinux_systemd_unit_info",
			Matchers: []Matcher{{Label: "name", Op: "=~", Value: unitNameRE(u.name)}}}
		e.Matchers[0].re = regexp.MustCompile("^(?s:" + e.Matchers[0].Value + ")$") // QuoteMeta'd: valid alone
		e.text = e.selector()
		var series []Series
		if env.Facts != nil {
			series = env.Facts.Series[e.Metric]
		}
		if len(series) == 0 {
			st, reason := env.fact(e)
			if st == StatusSkipped {
				return StatusSkipped, "the active state needs the running systemd: " + reason
			}
			if st != StatusPass {
				return StatusError, "not evaluable without the live systemd: " + reason
			}
		}
		for _, s := range series {
			if e.Matchers[0].matches(s.Labels["name"]) {
				if s.Labels["active_state"] == "active" {
					return StatusPass, fmt.Sprintf("%s is active (%s)", u.name, s.Labels["sub_state"])
				}
				return StatusFail, fmt.Sprintf("%s is %s (load state %s, sub state %s)", u.name,
					orDash(s.Labels["active_state"]), orDash(s.Labels["load_state"]), orDash(s.Labels["sub_state"]))
			}
		}
		return StatusError, fmt.Sprintf("not evaluable: %s is not in the systemd collector's watch list (azurelinux_systemd_unit_info)", u.name)
	}
	base := env.Paths.Root("/etc/systemd/system")
	entries, err := base.ReadDir()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return StatusError, fmt.Sprintf("/etc/systemd/system: %v", unwrapPath(err))
	}
	for _, e := range entries {
		if !e.IsDir() || !(strings.HasSuffix(e.Name(), ".wants") || strings.HasSuffix(e.Name(), ".requires")) {
			continue
		}
		if _, err := base.Join(e.Name(), u.name).Lstat(); err == nil {
			return StatusPass, fmt.Sprintf("%s is enabled (/etc/systemd/system/%s/%s)", u.name, e.Name(), u.name)
		}
	}
	noLink := fmt.Sprintf("%s is not enabled: no link in /etc/systemd/system/*.wants or *.requires", u.name)
	if env.Paths.Image() {
		return env.presetVerdict(u, noLink)
	}
	return StatusFail, noLink
}

func unitNameRE(name string) string {
	q := regexp.QuoteMeta(name)
	if base, ok := strings.CutSuffix(name, ".service"); ok {
		return regexp.QuoteMeta(base) + `(\.service)?`
	}
	return q
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (env *Env) sysctl(s *sysctlSpec) (Status, string) {
	if env.Paths.Image() {
		return env.configuredSysctl(s)
	}
	rel := strings.ReplaceAll(s.name, ".", "/")
	if strings.Contains(s.name, "/") {
		rel = s.name // already in path form
	}
	v, err := readSmall(env.Paths.Proc("sys", rel))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return StatusFail, fmt.Sprintf("sysctl %s does not exist on this kernel", s.name)
		}
		return StatusError, fmt.Sprintf("sysctl %s: %v", s.name, unwrapPath(err))
	}
	got := strings.Join(strings.Fields(v), " ")
	if slices.Contains(s.values, got) {
		return StatusPass, fmt.Sprintf("%s = %s", s.name, got)
	}
	want := strings.Join(s.values, " or ")
	return StatusFail, fmt.Sprintf("%s = %s, want %s", s.name, showSysctl(got, s.values), want)
}

// Grammars of a sysctl's value in a reason: numbers (most sysctls, and
// every one the embedded matrix checks), or one short word or list of
// words (kernel.core_pattern is a path, net.ipv4.tcp_congestion_control a
// name). A value that fails is described by its size: it is the checked
// tree's, and /proc/sys of an image is whatever its author put there.
var (
	sysctlNumberRE = wordList{grammarFunc(isSysctlNumber), 16}
	sysctlWordsRE  = wordList{lenre.MustCompile(`^[A-Za-z0-9._:/%|@+=,-]+$`, 1, 64), 16}
)

// isSysctlNumber reports whether w is `-?[0-9]{1,20}`.
func isSysctlNumber(w string) bool {
	w = strings.TrimPrefix(w, "-")
	if len(w) < 1 || len(w) > 20 {
		return false
	}
	for i := 0; i < len(w); i++ {
		if w[i] < '0' || w[i] > '9' {
			return false
		}
	}
	return true
}

// grammarFunc is a grammar written as a function.
type grammarFunc func(string) bool

func (f grammarFunc) MatchString(s string) bool { return f(s) }

// wordList is a grammar of 1 to max words separated by single spaces, each
// matching word: what `^W( W){0,15}$` says, without the copies of W that
// regexp/syntax would compile for the counted repetitions.
type wordList struct {
	word host.Grammar
	max  int
}

func (g wordList) MatchString(s string) bool {
	for n := 1; ; n++ {
		w, rest, more := strings.Cut(s, " ")
		if n > g.max || !g.word.MatchString(w) {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

// showSysctl returns got for a reason when it fits the grammar of the
// wanted values: a number where every wanted value is one.
func showSysctl(got string, want []string) string {
	for _, w := range want {
		if !sysctlNumberRE.MatchString(w) {
			return host.Show(got, sysctlWordsRE)
		}
	}
	return host.Show(got, sysctlNumberRE)
}

func (env *Env) module(m *moduleSpec) (Status, string) {
	if env.Paths.Image() {
		return StatusSkipped, fmt.Sprintf("module %s: whether it is loaded needs a running kernel; %s is an image (no procfs or sysfs content)", m.name, env.Paths.RootFS)
	}
	release, err := readSmall(env.Paths.Proc("sys/kernel/osrelease"))
	if err != nil {
		return StatusError, fmt.Sprintf("kernel release: %v", err)
	}
	mods, err := collectors.ReadModules(env.Paths, strings.TrimSpace(release))
	loaded := collectors.ModulePresent(env.Paths, mods, m.name)
	if !loaded {
		if err != nil {
			return StatusFail, fmt.Sprintf("module %s is not loaded (%v)", m.name, err)
		}
		return StatusFail, fmt.Sprintf("module %s is neither loaded nor built in", m.name)
	}
	if m.parameter == "" {
		return StatusPass, fmt.Sprintf("module %s is loaded", m.name)
	}
	v, err := readSmall(env.Paths.Sys("module", m.name, "parameters", m.parameter))
	if err != nil {
		return StatusError, fmt.Sprintf("module %s parameter %s: %v", m.name, m.parameter, unwrapPath(err))
	}
	if v = strings.TrimSpace(v); v != m.value {
		return StatusFail, fmt.Sprintf("module %s: %s = %s, want %s", m.name, m.parameter, showSysctl(v, []string{m.value}), m.value)
	}
	return StatusPass, fmt.Sprintf("module %s: %s = %s", m.name, m.parameter, v)
}

// readSmall reads a procfs, sysfs or config file of at most 64 KiB, refusing
// anything but a regular file so that a FIFO planted in an image cannot hang
// the probe.
func readSmall(path host.Path) (string, error) { return path.ReadText(64 << 10) }
