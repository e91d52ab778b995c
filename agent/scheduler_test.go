package agent

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// testFact is the fact the agent's tests' collectors emit; its collector
// "test" is not registered, so it never appears in docs/metrics.md (whose
// test runs in cmd/).
var testFact = collectors.Declare(collectors.Fact{Collector: "test", Name: "fact", Help: "A test fact.", Labels: []string{"n"}, Identity: []string{"n"}})

// fakeCollector emits facts and returns err, or panics, or blocks until
// release is closed, as a test asks.
type fakeCollector struct {
	facts   []string
	err     error
	panic   string
	block   chan struct{}
	started chan struct{}
}

func (f *fakeCollector) Update(ctx context.Context, m *collectors.Metrics) error {
	for _, n := range f.facts {
		m.Set(testFact, 1, n)
	}
	if f.started != nil {
		close(f.started)
	}
	if f.panic != "" {
		panic(f.panic)
	}
	if f.block != nil {
		<-f.block // ignores ctx on purpose: a collector stuck in a syscall does
	}
	return f.err
}

func newTestScheduler(jobs ...*job) *scheduler {
	s := newScheduler(slog.New(slog.DiscardHandler))
	s.Load(&collectorSet{jobs: jobs})
	return s
}

func testJob(name string, c collectors.Collector) *job {
	return &job{name: name, c: c, interval: time.Hour, timeout: time.Second}
}

func TestRefreshOutcomes(t *testing.T) {
	ok := testJob("ok", &fakeCollector{facts: []string{"a", "b"}})
	nodata := testJob("nodata", &fakeCollector{err: collectors.ErrNoData})
	partial := testJob("partial", &fakeCollector{facts: []string{"a"}, err: errors.New("/sys/x: empty")})
	panicky := testJob("panicky", &fakeCollector{facts: []string{"a"}, panic: "index out of range"})
	s := newTestScheduler(ok, nodata, partial, panicky)
	s.RunOnce(context.Background())
	snaps := s.Snapshots()

	for _, tc := range []struct {
		name    string
		success bool
		metrics int
		err     string
	}{
		{"ok", true, 2, ""},
		{"nodata", true, 0, ""},
		{"partial", false, 1, "/sys/x: empty"},
		{"panicky", false, 0, "panic: index out of range"},
	} {
		snap := snaps[tc.name]
		if snap == nil {
			t.Fatalf("%s: no snapshot", tc.name)
		}
		if snap.Success != tc.success || len(snap.Metrics) != tc.metrics {
			t.Errorf("%s: success %v with %d metrics, want %v with %d", tc.name, snap.Success, len(snap.Metrics), tc.success, tc.metrics)
		}
		if got := errString(snap.Err); got != tc.err {
			t.Errorf("%s: error %q, want %q", tc.name, got, tc.err)
		}
		if tc.success != !snap.LastSuccess.IsZero() {
			t.Errorf("%s: last success %v with success %v", tc.name, snap.LastSuccess, tc.success)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestFailureDropsOldFacts: a refresh that fails must not leave the facts of
// the previous refresh in place, but keeps the time of the last success.
func TestFailureDropsOldFacts(t *testing.T) {
	f := &fakeCollector{facts: []string{"gpu0", "gpu1"}}
	j := testJob("gpu", f)
	s := newTestScheduler(j)
	s.RunOnce(context.Background())
	first := s.Snapshots()["gpu"]
	if !first.Success || len(first.Metrics) != 2 {
		t.Fatalf("first refresh: %+v", first)
	}
	f.facts, f.err = nil, errors.New("/proc/driver/nvidia/version: no such file")
	s.RunOnce(context.Background())
	second := s.Snapshots()["gpu"]
	if second.Success || len(second.Metrics) != 0 {
		t.Errorf("failed refresh still serves %d facts, success %v", len(second.Metrics), second.Success)
	}
	if !second.LastSuccess.Equal(first.LastSuccess) {
		t.Errorf("last success moved from %v to %v on a failure", first.LastSuccess, second.LastSuccess)
	}
}

// TestTimeoutAndStuckCollector: a collector that never returns is reported
// as timed out, and while it is still stuck the next refresh fails at once
// instead of starting a second goroutine on the same hung source.
func TestTimeoutAndStuckCollector(t *testing.T) {
	f := &fakeCollector{facts: []string{"x"}, block: make(chan struct{})}
	j := testJob("hung", f)
	j.timeout = 50 * time.Millisecond
	s := newTestScheduler(j)
	s.events = make(chan string, 100)

	start := time.Now()
	s.RunOnce(context.Background())
	snap := s.Snapshots()["hung"]
	if snap.Success || errString(snap.Err) != "timed out after 50ms" || len(snap.Metrics) != 0 {
		t.Fatalf("hung collector: %+v", snap)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("RunOnce took %v for a 50ms timeout", elapsed)
	}

	s.RunOnce(context.Background())
	snap = s.Snapshots()["hung"]
	if snap.Success || !strings.Contains(errString(snap.Err), "previous refresh still running") {
		t.Fatalf("second refresh of a stuck collector: %+v", snap)
	}

	// Once the source answers again, the collector recovers.
	close(f.block)
	waitEvent(t, s.events, "idle hung")
	s.RunOnce(context.Background())
	if snap = s.Snapshots()["hung"]; !snap.Success || len(snap.Metrics) != 1 {
		t.Errorf("after recovery: %+v", snap)
	}
}

// TestStartServesAndReloads: background loops publish a first snapshot, and
// a reload keeps serving the previous snapshot until the new one lands.
func TestStartServesAndReloads(t *testing.T) {
	s := newScheduler(slog.New(slog.DiscardHandler))
	s.events = make(chan string, 100)
	s.Start(&collectorSet{jobs: []*job{testJob("a", &fakeCollector{facts: []string{"1"}})}})
	defer s.Stop()
	waitEvent(t, s.events, "published a")

	block := make(chan struct{})
	s.Start(&collectorSet{jobs: []*job{testJob("a", &fakeCollector{facts: []string{"2"}, block: block})}})
	if snap := s.Snapshots()["a"]; snap == nil || len(snap.Metrics) != 1 {
		t.Errorf("reload dropped the served snapshot: %+v", snap)
	}
	close(block)
}

// TestBackToBackRefreshes: a refresh that starts the moment the previous one
// published (RunOnce after RunOnce, a reload right after a refresh) finds the
// flight clear. The Update's goroutine used to hand over its outcome before
// clearing it, so the next refresh now and then failed with "previous
// refresh still running" (TestCachedBody in the RPM's %check, 2026-12-01).
func TestBackToBackRefreshes(t *testing.T) {
	j := testJob("os", &fakeCollector{facts: []string{"a"}})
	s := newTestScheduler(j)
	failed := 0
	var last error
	for i := 0; i < 20000; i++ {
		s.RunOnce(t.Context())
		if snap := j.snap.Load(); !snap.Success {
			failed++
			last = snap.Err
		}
	}
	if failed > 0 {
		t.Errorf("%d of 20000 back-to-back refreshes failed, the last with %v", failed, last)
	}
}
