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

// snapshot is the outcome of one collector refresh. It is immutable once
// published.
type snapshot struct {
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

	snap atomic.Pointer[snapshot]
	// lastErr is the error text last logged, so a persistent failure is
	// logged once at error level and not every interval.
	lastErr string
}

// scheduler refreshes each enabled collector in the background and keeps
// its latest snapshot.
type scheduler struct {
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

	// flights holds, per collector name, the refresh in flight: it
	// outlives the jobs (a reload builds new ones), so a refresh abandoned
	// at its timeout and still running on a hung source is not started
	// again by the rebuilt collector either.
	flights sync.Map // string -> *flight

	// events, when set (by tests), receives "published <name>" after each
	// snapshot is stored and "idle <name>" when an Update returns, even one
	// abandoned at its timeout.
	events chan string
}

// collectorSet is a built set of enabled collectors with their schedules.
type collectorSet struct {
	jobs []*job
}

// Names returns the collectors in the set, in order.
func (s *collectorSet) Names() []string {
	out := make([]string, len(s.jobs))
	for i, j := range s.jobs {
		out[i] = j.name
	}
	return out
}

// notApplicable stands in for a collector whose facts do not exist under
// the root: every refresh reports the same ErrNotApplicable.
type notApplicable struct{ err error }

func (n notApplicable) Update(context.Context, *collectors.Metrics) error { return n.err }

// newScheduler returns a scheduler with no collectors; Start gives it some.
func newScheduler(logger *slog.Logger) *scheduler {
	s := &scheduler{logger: logger}
	s.jobs.Store(&[]*job{})
	return s
}

// Start stops the collectors currently scheduled and schedules set instead,
// each refreshing at once and then on its interval. A collector that was
// scheduled before keeps serving its last snapshot until its first refresh in
// the new set completes.
func (s *scheduler) Start(set *collectorSet) {
	s.Stop()
	old := map[string]*snapshot{}
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
func (s *scheduler) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
		s.wg.Wait()
		s.cancel = nil
	}
}

// streamGap is the shortest time between two refreshes of a streaming
// collector that new data triggered: a flood of kernel log lines costs at
// most 20 snapshots a second, and a line still shows in /metrics well
// within a second (docs/benchmarks.md: p50 13 ms, p90 50 ms).
const streamGap = 50 * time.Millisecond

// loop refreshes j at once and then every interval until ctx ends, calling
// firstDone after the first refresh. A streaming collector
// ([collectors.Streamer]) is also refreshed when it signals new data, no
// sooner than streamGap after its previous refresh.
func (s *scheduler) loop(ctx context.Context, j *job, firstDone func()) {
	t := time.NewTimer(0)
	defer t.Stop()
	var changed <-chan struct{}
	if st, ok := j.c.(collectors.Streamer); ok {
		changed = st.Changed()
	}
	var last time.Time
	for first := true; ; first = false {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changed:
			if wait := streamGap - time.Since(last); wait > 0 {
				gap := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					gap.Stop()
					return
				case <-gap.C:
				}
			}
		}
		// This refresh reads everything that arrived until now: a signal
		// sent meanwhile must not cost a second refresh (and a record
		// after it a second gap).
		select {
		case <-changed:
		default:
		}
		last = time.Now()
		s.refresh(ctx, j)
		if first && ctx.Err() == nil {
			firstDone()
		}
		t.Reset(j.interval)
	}
}

// RunOnce refreshes every collector of the scheduled set once, concurrently,
// and returns when all have finished or timed out.
func (s *scheduler) RunOnce(ctx context.Context) {
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
func (s *scheduler) Load(set *collectorSet) {
	jobs := set.jobs
	s.jobs.Store(&jobs)
	s.generation.Add(1)
}

// flight is the in-flight state of one collector name.
type flight struct {
	// running is set while an Update is in flight. An Update abandoned at
	// its timeout may still be running when the next refresh is due; that
	// refresh fails at once instead of stacking a second goroutine (and,
	// for a read blocked in the kernel, a second OS thread) on a hung
	// source.
	running atomic.Bool
	// abandoned counts the refreshes given up (at their timeout, or at a
	// reload or shutdown) whose Update has not returned yet: the
	// azurelinux_probe_collector_abandoned_refreshes gauge.
	abandoned atomic.Int64
}

// flight returns the in-flight state of the collector called name.
func (s *scheduler) flight(name string) *flight {
	f, _ := s.flights.LoadOrStore(name, &flight{})
	return f.(*flight)
}

// Abandoned returns how many refreshes of the collector called name were
// abandoned and are still running.
func (s *scheduler) Abandoned(name string) int64 { return s.flight(name).abandoned.Load() }

type outcome struct {
	metrics *collectors.Metrics
	err     error
}

// refresh runs one Update of j under its timeout and publishes the
// snapshot. A panic in the collector is a failed refresh, not a crash.
func (s *scheduler) refresh(ctx context.Context, j *job) {
	start := time.Now()
	f := s.flight(j.name)
	if !f.running.CompareAndSwap(false, true) {
		s.publish(j, start, nil, fmt.Errorf("previous refresh still running after its %s timeout", j.timeout))
		return
	}
	rctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	done := make(chan outcome, 1)
	// gaveUp and returned, under mu, decide which of the Update's return
	// and the abandonment comes first, so abandoned is counted up and down
	// exactly once.
	var mu sync.Mutex
	gaveUp, returned := false, false
	abandon := func() {
		mu.Lock()
		defer mu.Unlock()
		if !returned {
			gaveUp = true
			f.abandoned.Add(1)
		}
	}
	go func() {
		var o outcome
		defer func() {
			mu.Lock()
			returned = true
			if gaveUp {
				f.abandoned.Add(-1)
			}
			mu.Unlock()
			f.running.Store(false)
			s.event("idle " + j.name)
			// Only with the flight clear: the refresh publishes on this,
			// and the next may start the moment it has.
			done <- o
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
		o = outcome{m, boundErrors(errors.Join(err, m.Err()))}
	}()
	select {
	case o := <-done:
		s.publish(j, start, o.metrics.List(), o.err)
	case <-rctx.Done():
		abandon()
		if ctx.Err() != nil {
			return // shutting down or reloading: publish nothing
		}
		s.publish(j, start, nil, fmt.Errorf("timed out after %s", j.timeout))
	}
}

func (s *scheduler) publish(j *job, start time.Time, metrics []prometheus.Metric, err error) {
	now := time.Now()
	snap := &snapshot{Metrics: metrics, Duration: now.Sub(start), Finished: now}
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
func (s *scheduler) changes() <-chan struct{} {
	s.changedMu.Lock()
	defer s.changedMu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

// waitFirstSnapshots returns once every scheduled collector except the one
// called self has published a snapshot, or when ctx ends.
func (s *scheduler) waitFirstSnapshots(ctx context.Context, self string) error {
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

func (s *scheduler) event(e string) {
	if s.events != nil {
		s.events <- e
	}
}

// Snapshots returns the latest snapshot of each scheduled collector (nil
// before its first refresh), keyed by name.
func (s *scheduler) Snapshots() map[string]*snapshot {
	out := map[string]*snapshot{}
	for _, j := range *s.jobs.Load() {
		out[j.name] = j.snap.Load()
	}
	return out
}

// Names returns the scheduled collectors, in order.
func (s *scheduler) Names() []string {
	jobs := *s.jobs.Load()
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.name
	}
	return out
}
