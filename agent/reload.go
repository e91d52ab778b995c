package agent

import (
	"log/slog"
	"time"
)

// reloadTimeout bounds one SIGHUP reload (reading the config, the checks
// and the baseline, building the collectors). Those reads refuse FIFOs and
// devices, but a file on a hung network mount can still block in read(2):
// past the timeout the running configuration is kept and the daemon keeps
// answering signals, SIGTERM included.
const reloadTimeout = 30 * time.Second

// reloadResult is what one reload built.
type reloadResult struct {
	set *collectorSet
	err error
}

// reloader runs at most one reload at a time, in its own goroutine, so that
// the daemon's signal loop never waits on it. A reload abandoned at its
// timeout keeps the slot until it returns (its result is then dropped), so
// repeated SIGHUPs at a hung file cannot pile up goroutines and threads.
type reloader struct {
	timeout time.Duration
	build   func() (*collectorSet, error)
	logger  *slog.Logger

	result    chan reloadResult // nil while no reload runs
	timer     *time.Timer
	abandoned bool
}

// start begins a reload, or reports false when one is still running.
func (r *reloader) start() bool {
	if r.result != nil {
		return false
	}
	ch := make(chan reloadResult, 1)
	r.result, r.abandoned = ch, false
	go func() {
		set, err := r.build()
		ch <- reloadResult{set, err}
	}()
	r.timer = time.NewTimer(r.timeout)
	return true
}

// done returns the channel the running reload's result arrives on (nil, so
// never ready, when none runs).
func (r *reloader) done() <-chan reloadResult { return r.result }

// expired returns the channel that fires at the running reload's timeout.
func (r *reloader) expired() <-chan time.Time {
	if r.timer == nil || r.abandoned {
		return nil
	}
	return r.timer.C
}

// finish takes the result of the reload that returned; apply is false when
// it had already been abandoned at its timeout.
func (r *reloader) finish(res reloadResult) (_ reloadResult, apply bool) {
	apply = !r.abandoned
	r.result, r.abandoned = nil, false
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	return res, apply
}

// abandon gives up on the running reload at its timeout.
func (r *reloader) abandon() {
	r.abandoned = true
	r.logger.Error("reload did not finish within its timeout, keeping the running configuration",
		"timeout", r.timeout)
}
