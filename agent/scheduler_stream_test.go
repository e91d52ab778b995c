package agent

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// streamCollector counts its refreshes and signals new data on demand.
type streamCollector struct {
	changed chan struct{}
	updates atomic.Int64
}

func (c *streamCollector) Update(ctx context.Context, m *collectors.Metrics) error {
	c.updates.Add(1)
	m.Set(testFact, float64(c.updates.Load()), "n")
	return nil
}

func (c *streamCollector) Changed() <-chan struct{} { return c.changed }

// TestStreamingCollectorRefreshesOnData: a streaming collector with an
// hour-long interval is refreshed within a second of signalling new data,
// and a burst of signals costs at most one refresh per streamGap.
func TestStreamingCollectorRefreshesOnData(t *testing.T) {
	c := &streamCollector{changed: make(chan struct{}, 1)}
	s := newScheduler(slog.New(slog.DiscardHandler))
	s.events = make(chan string, 1000)
	s.Start(&collectorSet{jobs: []*job{testJob("stream", c)}})
	defer s.Stop()
	waitEvent(t, s.events, "published stream")
	start := time.Now()
	c.changed <- struct{}{}
	waitEvent(t, s.events, "published stream")
	if d := time.Since(start); d > time.Second {
		t.Errorf("refresh %s after the signal, want under 1s", d)
	}
	if got := c.updates.Load(); got != 2 {
		t.Errorf("%d refreshes, want 2", got)
	}

	// A burst of 1,000 signals over 500 ms: at most one refresh per gap.
	before := c.updates.Load()
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		select {
		case c.changed <- struct{}{}:
		default:
		}
		time.Sleep(500 * time.Microsecond)
	}
	// The last signal is served too.
	waitUntil(t, 2*time.Second, func() bool { return len(c.changed) == 0 })
	got := c.updates.Load() - before
	if max := int64(500*time.Millisecond/streamGap) + 2; got < 1 || got > max {
		t.Errorf("%d refreshes for a 500 ms burst, want 1..%d", got, max)
	}
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
