package agent

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// closingCollector counts how often it was closed.
type closingCollector struct{ closed atomic.Int32 }

func (c *closingCollector) Update(context.Context, *collectors.Metrics) error { return nil }
func (c *closingCollector) Close() error                                      { c.closed.Add(1); return nil }

// TestStartClosesReplacedCollectors: a reload (Start with a new set) closes
// the collectors it replaces, so that one holding a connection (systemd's
// D-Bus) does not leak it on every SIGHUP.
func TestStartClosesReplacedCollectors(t *testing.T) {
	s := newScheduler(slog.New(slog.DiscardHandler))
	first, second := &closingCollector{}, &closingCollector{}
	set := func(c collectors.Collector) *collectorSet {
		return &collectorSet{jobs: []*job{{name: "x", c: c, interval: time.Hour, timeout: time.Second}}}
	}
	s.Start(set(first))
	s.Start(set(second))
	s.Stop()
	if n := first.closed.Load(); n != 1 {
		t.Errorf("replaced collector closed %d times, want 1", n)
	}
	if n := second.closed.Load(); n != 0 {
		t.Errorf("running collector closed %d times, want 0", n)
	}
}
