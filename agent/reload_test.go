package agent

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestReloaderTimeout: a reload that blocks (a config file on a hung
// mount) is abandoned at its timeout, leaving the signal loop free; a
// second SIGHUP while it still runs starts nothing; its late result is
// dropped; the next reload runs normally.
func TestReloaderTimeout(t *testing.T) {
	unblock := make(chan struct{})
	calls := 0
	r := &reloader{timeout: 20 * time.Millisecond, logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		build: func() (*collectorSet, error) {
			calls++
			if calls == 1 {
				<-unblock
				return &collectorSet{}, nil
			}
			return nil, errors.New("bad config")
		}}
	if r.done() != nil || r.expired() != nil {
		t.Fatal("idle reloader has channels")
	}
	if !r.start() {
		t.Fatal("first reload refused")
	}
	select {
	case <-r.expired():
		r.abandon()
	case <-r.done():
		t.Fatal("blocked reload returned")
	case <-time.After(10 * time.Second):
		t.Fatal("timeout never fired")
	}
	if r.expired() != nil {
		t.Error("abandoned reload still has a live timer")
	}
	if r.start() {
		t.Fatal("a second reload started while the first still runs")
	}
	close(unblock)
	res, apply := r.finish(<-r.done())
	if apply || res.set == nil {
		t.Errorf("late result: apply=%v set=%v, want dropped", apply, res.set)
	}
	if !r.start() {
		t.Fatal("reload refused after the stuck one returned")
	}
	select {
	case res := <-r.done():
		if res, apply := r.finish(res); !apply || res.err == nil {
			t.Errorf("second reload: apply=%v err=%v", apply, res.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second reload never returned")
	}
}
