package checks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
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
	// HTTPClient fetches repository metadata; nil uses a client that honours
	// the proxy environment.
	HTTPClient *http.Client
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
		return env.rpm(c.rpm)
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

func (env *Env) rpm(r *rpmSpec) (Status, string) {
	env.rpmOnce.Do(func() { env.rpmDB, env.rpmErr = openRPMDB(env.Paths) })
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
	return StatusFail, fmt.Sprintf("%s = %s, want %s", s.name, got, want)
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
		return StatusFail, fmt.Sprintf("module %s: %s = %s, want %s", m.name, m.parameter, v, m.value)
	}
	return StatusPass, fmt.Sprintf("module %s: %s = %s", m.name, m.parameter, v)
}

// readSmall reads a procfs, sysfs or config file of at most 64 KiB, refusing
// anything but a regular file so that a FIFO planted in an image cannot hang
// the probe.
func readSmall(path host.Path) (string, error) { return path.ReadText(64 << 10) }

// exec runs the check's program with its arguments, without a shell. On
// the live root it runs as the probe's own user, with the root the checks
// read in AZURELINUX_PROBE_ROOTFS. Under any other root it runs only with
// sandbox: true, and then inside that root (host.RunSandboxed: chrooted, in
// its own namespaces without network, as nobody with no capabilities),
// argv[0] being a path in the image: nothing from an image runs on the
// host. Otherwise the check is skipped, with the reason. It passes on exit
// status 0. At the timeout the program's whole process group is killed.
func (env *Env) exec(ctx context.Context, e *execSpec) (Status, string) {
	if e.sandbox {
		return env.execSandboxed(ctx, e)
	}
	if !env.Paths.IsLiveRoot() {
		return StatusSkipped, fmt.Sprintf("exec checks run programs only on the live root (/), not under %s; set sandbox: true to run %s inside the image", env.Paths.RootFS, e.argv[0])
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.argv[0], e.argv[1:]...)
	cmd.Env = append(os.Environ(), "AZURELINUX_PROBE_ROOTFS="+env.Paths.RootFS)
	cmd.Stdin = nil
	out := &limitedBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start).Round(time.Millisecond)
	last := lastLine(out.String())
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return StatusFail, fmt.Sprintf("%s timed out after %s%s", e.argv[0], e.timeout, suffix(last))
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return StatusFail, fmt.Sprintf("%s: %v%s", e.argv[0], ee.ProcessState, suffix(last))
		}
		return StatusFail, fmt.Sprintf("%s: %v", e.argv[0], unwrapPath(err))
	}
	return StatusPass, fmt.Sprintf("%s exited 0 in %s%s", e.argv[0], elapsed, suffix(last))
}

// execSandboxed runs an exec check's program inside the checked root.
func (env *Env) execSandboxed(ctx context.Context, e *execSpec) (Status, string) {
	start := time.Now()
	res, err := host.RunSandboxed(ctx, env.Paths.Root().Root(), host.Cmd{Path: e.argv[0], Args: e.argv[1:],
		Env: append(slices.Clone(host.MinimalEnv), "AZURELINUX_PROBE_ROOTFS=/"), Timeout: e.timeout, MaxOutput: 64 << 10})
	elapsed := time.Since(start).Round(time.Millisecond)
	last := lastLine(res.Output)
	switch {
	case err == nil:
		return StatusPass, fmt.Sprintf("%s exited 0 in %s inside %s%s", e.argv[0], elapsed, env.Paths.RootFS, suffix(last))
	case res.Exited:
		return StatusFail, fmt.Sprintf("%s (inside %s): %v%s", e.argv[0], env.Paths.RootFS, err, suffix(last))
	case errors.Is(err, host.ErrTimeout), errors.Is(err, host.ErrOutputLimit):
		return StatusFail, fmt.Sprintf("%s inside %s: %v%s", e.argv[0], env.Paths.RootFS, err, suffix(last))
	}
	// The sandbox could not be set up (not root, no such program in the
	// image): nothing was judged.
	return StatusError, fmt.Sprintf("%s: sandbox under %s: %v%s", e.argv[0], env.Paths.RootFS, err, suffix(last))
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if len(l) > 200 {
		l = l[:200] + "…"
	}
	return strings.ToValidUTF8(l, "?")
}

// limitedBuffer keeps the last max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.buf.Len() > b.max {
		keep := b.buf.Bytes()[b.buf.Len()-b.max:]
		b.buf = *bytes.NewBuffer(append([]byte(nil), keep...))
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
