package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// Snapshot is the outcome of one collector refresh. It is immutable once
// published.
type Snapshot struct {
	// Metrics are the facts of the refresh. A failed refresh keeps the facts
	// it read before the failure (they are current) and drops everything
	// else: facts of an earlier refresh are never served as current.
	Metrics []prometheus.Metric
	Success bool
	Err     error
	// NotApplicable is the reason when the collector's facts do not exist
	// under this root (collectors.ErrNotApplicable); it is then a success
	// with no facts.
	NotApplicable string
	// Duration is how long the refresh ran (up to the timeout).
	Duration time.Duration
	// Finished is when the refresh ended; LastSuccess is when the latest
	// successful one ended (zero if none has).
	Finished    time.Time
	LastSuccess time.Time
}

// job is one enabled collector with its schedule and latest snapshot.
type job struct {
	name     string
	c        collectors.Collector
	interval time.Duration
	timeout  time.Duration

	// running is set while an Update is in flight. An Update abandoned at
	// its timeout may still be running when the next refresh is due; that
	// refresh fails at once instead of stacking a second goroutine on a
	// hung source.
	running atomic.Bool
	snap    atomic.Pointer[Snapshot]
	// lastErr is the error text last logged, so a persistent failure is
	// logged once at error level and not every interval.
	lastErr string
}

// Scheduler refreshes each enabled collector in the background and keeps
// its latest snapshot.
type Scheduler struct {
	logger *slog.Logger
	jobs   atomic.Pointer[[]*job]
	// generation changes whenever a snapshot is published or the set of
	// collectors changes, so that rendered output can be cached until then.
	generation atomic.Uint64

	mu     sync.Mutex // guards cancel and wg across Start and Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// changed is closed (and replaced) whenever a snapshot is published, so
	// that a component waiting for snapshots (the checks) needs no polling.
	changedMu sync.Mutex
	changed   chan struct{}

	// events, when set (by tests), receives "published <name>" after each
	// snapshot is stored and "idle <name>" when an Update returns, even one
	// abandoned at its timeout.
	events chan string
}

// Set is a built set of enabled collectors with their schedules.
type Set struct {
	jobs []*job
}

// Names returns the collectors in the set, in order.
func (s *Set) Names() []string {
	out := make([]string, len(s.jobs))
	for i, j := range s.jobs {
		out[i] = j.name
	}
	return out
}

// BuildSet builds the enabled collectors, in registry order, with options and
// schedules from cfg.
func BuildSet(cfg *Config, enabled []string, env collectors.Env) (*Set, error) {
	return buildSet(cfg, enabled, env, nil)
}

// buildSet is BuildSet with isolated collectors refreshing in child
// processes when iso is not nil (in-process otherwise).
func buildSet(cfg *Config, enabled []string, env collectors.Env, iso *isolation) (*Set, error) {
	set := &Set{}
	for _, spec := range collectors.Specs() {
		if !contains(enabled, spec.Name) {
			continue
		}
		opts, err := cfg.options(spec)
		if err != nil {
			return nil, err
		}
		cenv := env
		cenv.Logger = env.Logger.With("collector", spec.Name)
		var c collectors.Collector
		c, err = spec.New(cenv, opts)
		if err != nil {
			return nil, fmt.Errorf("collector %s: %w", spec.Name, err)
		}
		if na := spec.ApplicableTo(env.Paths); na != nil {
			// Built above only to validate its options: under an image
			// it does not run at all, in-process or in a child.
			if closer, ok := c.(io.Closer); ok {
				closer.Close()
			}
			c = notApplicable{na}
		} else if spec.Isolated && iso != nil {
			// The in-process collector above validated the options.
			if closer, ok := c.(io.Closer); ok {
				closer.Close()
			}
			if c, err = newIsolated(spec, opts, iso); err != nil {
				return nil, err
			}
		}
		cc := cfg.Collectors[spec.Name]
		set.jobs = append(set.jobs, &job{name: spec.Name, c: c, interval: cc.Interval, timeout: cc.Timeout})
	}
	return set, nil
}

// notApplicable stands in for a collector whose facts do not exist under
// the root: every refresh reports the same ErrNotApplicable.
type notApplicable struct{ err error }

func (n notApplicable) Update(context.Context, *collectors.Metrics) error { return n.err }

// validateDisabled builds, and closes at once, every collector that is not
// in enabled, so that the options of a disabled collector are validated
// when the configuration loads, not on the day it is enabled.
func validateDisabled(cfg *Config, enabled []string, env collectors.Env) error {
	for _, spec := range collectors.Specs() {
		if contains(enabled, spec.Name) {
			continue
		}
		opts, err := cfg.options(spec)
		if err != nil {
			return fmt.Errorf("%w (the collector is disabled; its options are validated all the same)", err)
		}
		c, err := spec.New(env, opts)
		if err != nil {
			return fmt.Errorf("collector %s (disabled; its options are validated all the same): %w", spec.Name, err)
		}
		if closer, ok := c.(io.Closer); ok {
			closer.Close()
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// NewScheduler returns a scheduler with no collectors; Start gives it some.
func NewScheduler(logger *slog.Logger) *Scheduler {
	s := &Scheduler{logger: logger}
	s.jobs.Store(&[]*job{})
	return s
}

// Start stops the collectors currently scheduled and schedules set instead,
// each refreshing at once and then on its interval. A collector that was
// scheduled before keeps serving its last snapshot until its first refresh in
// the new set completes.
func (s *Scheduler) Start(set *Set) {
	s.Stop()
	old := map[string]*Snapshot{}
	for _, j := range *s.jobs.Load() {
		if snap := j.snap.Load(); snap != nil {
			old[j.name] = snap
		}
	}
	for _, j := range set.jobs {
		if snap, ok := old[j.name]; ok {
			j.snap.Store(snap)
		}
	}
	jobs := set.jobs
	prev := s.jobs.Swap(&jobs)
	// A replaced collector may hold a connection (systemd's D-Bus): close
	// it, or every reload would leak one.
	for _, j := range *prev {
		if cl, ok := j.c.(io.Closer); ok && !slices.ContainsFunc(jobs, func(n *job) bool { return n.c == j.c }) {
			if err := cl.Close(); err != nil {
				s.logger.Debug("close replaced collector", "collector", j.name, "err", err)
			}
		}
	}
	s.generation.Add(1)

	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	start := time.Now()
	var remaining atomic.Int64
	remaining.Store(int64(len(jobs)))
	firstDone := func() {
		if remaining.Add(-1) == 0 {
			s.logger.Info("first snapshot complete", "collectors", len(jobs), "elapsed", time.Since(start))
		}
	}
	for _, j := range jobs {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.loop(ctx, j, firstDone)
		}()
	}
}

// Stop ends the refresh loops. A refresh in flight is abandoned.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
		s.wg.Wait()
		s.cancel = nil
	}
}

// loop refreshes j at once and then every interval until ctx ends, calling
// firstDone after the first refresh.
func (s *Scheduler) loop(ctx context.Context, j *job, firstDone func()) {
	t := time.NewTimer(0)
	defer t.Stop()
	for first := true; ; first = false {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.refresh(ctx, j)
		if first && ctx.Err() == nil {
			firstDone()
		}
		t.Reset(j.interval)
	}
}

// RunOnce refreshes every collector of the scheduled set once, concurrently,
// and returns when all have finished or timed out.
func (s *Scheduler) RunOnce(ctx context.Context) {
	var wg sync.WaitGroup
	for _, j := range *s.jobs.Load() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.refresh(ctx, j)
		}()
	}
	wg.Wait()
}

// Load schedules set without starting background refreshes (for one-shot
// commands, followed by RunOnce).
func (s *Scheduler) Load(set *Set) {
	jobs := set.jobs
	s.jobs.Store(&jobs)
	s.generation.Add(1)
}

type outcome struct {
	metrics *collectors.Metrics
	err     error
}

// refresh runs one Update of j under its timeout and publishes the
// snapshot. A panic in the collector is a failed refresh, not a crash.
func (s *Scheduler) refresh(ctx context.Context, j *job) {
	start := time.Now()
	if !j.running.CompareAndSwap(false, true) {
		s.publish(j, start, nil, fmt.Errorf("previous refresh still running after its %s timeout", j.timeout))
		return
	}
	rctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			j.running.Store(false)
			s.event("idle " + j.name)
		}()
		m := &collectors.Metrics{}
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					// A collector that panicked is in an unknown state:
					// nothing it emitted is served. A panic is a bug, so
					// every one is logged with its stack (once per
					// refresh, never in a loop: the next try waits for
					// the interval).
					m = &collectors.Metrics{}
					err = fmt.Errorf("panic: %v", r)
					s.logger.Error("collector panicked", "collector", j.name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				}
			}()
			err = j.c.Update(rctx, m)
		}()
		done <- outcome{m, errors.Join(err, m.Err())}
	}()
	select {
	case o := <-done:
		s.publish(j, start, o.metrics.List(), o.err)
	case <-rctx.Done():
		if ctx.Err() != nil {
			return // shutting down or reloading: publish nothing
		}
		s.publish(j, start, nil, fmt.Errorf("timed out after %s", j.timeout))
	}
}

func (s *Scheduler) publish(j *job, start time.Time, metrics []prometheus.Metric, err error) {
	now := time.Now()
	snap := &Snapshot{Metrics: metrics, Duration: now.Sub(start), Finished: now}
	if prev := j.snap.Load(); prev != nil {
		snap.LastSuccess = prev.LastSuccess
	}
	switch {
	case err == nil:
		snap.Success = true
	case errors.Is(err, collectors.ErrNoData):
		snap.Success = true
		s.logger.Debug("collector found no data", "collector", j.name, "reason", err)
		err = nil
	case errors.Is(err, collectors.ErrNotApplicable):
		snap.Success = true
		snap.NotApplicable = collectors.NotApplicableReason(err)
		snap.Metrics = nil
		if j.lastErr == "" {
			s.logger.Debug("collector not applicable", "collector", j.name, "reason", snap.NotApplicable)
		}
		err = nil
	default:
		snap.Err = err
	}
	if snap.Success {
		snap.LastSuccess = now
		if j.lastErr != "" {
			s.logger.Info("collector recovered", "collector", j.name)
		}
		j.lastErr = ""
	} else if msg := err.Error(); msg != j.lastErr {
		s.logger.Error("collector failed", "collector", j.name, "duration_seconds", snap.Duration.Seconds(), "err", err)
		j.lastErr = msg
	} else {
		s.logger.Debug("collector still failing", "collector", j.name, "err", err)
	}
	j.snap.Store(snap)
	s.generation.Add(1)
	s.changedMu.Lock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	s.changedMu.Unlock()
	s.event("published " + j.name)
}

// changes returns a channel closed at the next publication.
func (s *Scheduler) changes() <-chan struct{} {
	s.changedMu.Lock()
	defer s.changedMu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

// waitFirstSnapshots returns once every scheduled collector except the one
// called self has published a snapshot, or when ctx ends.
func (s *Scheduler) waitFirstSnapshots(ctx context.Context, self string) error {
	for {
		ch := s.changes()
		missing := ""
		for _, j := range *s.jobs.Load() {
			if j.name != self && j.snap.Load() == nil {
				missing = j.name
				break
			}
		}
		if missing == "" {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the first refresh of collector %s: %w", missing, ctx.Err())
		}
	}
}

func (s *Scheduler) event(e string) {
	if s.events != nil {
		s.events <- e
	}
}

// Snapshots returns the latest snapshot of each scheduled collector (nil
// before its first refresh), keyed by name.
func (s *Scheduler) Snapshots() map[string]*Snapshot {
	out := map[string]*Snapshot{}
	for _, j := range *s.jobs.Load() {
		out[j.name] = j.snap.Load()
	}
	return out
}

// Names returns the scheduled collectors, in order.
func (s *Scheduler) Names() []string {
	jobs := *s.jobs.Load()
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.name
	}
	return out
}
