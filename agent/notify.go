package agent

import (
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notify sends state to systemd when the probe runs under a Type=notify
// unit; elsewhere NOTIFY_SOCKET is unset and it does nothing.
func notify(logger *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		logger.Warn("sd_notify failed", "state", state, "err", err)
	}
}

func monotonicUsec() string { return daemon.SdNotifyMonotonicUsec() }

// startWatchdog pings systemd's watchdog at half of WatchdogSec when the unit
// sets it, and returns a function that stops the pings. The pings come from
// the main process's own goroutine, so a process that is wedged (deadlocked
// runtime, stopped) stops pinging and systemd restarts it; a hung collector
// does not, because it cannot block anything but its own refresh.
func startWatchdog(logger *slog.Logger) func() {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		logger.Warn("watchdog settings unreadable", "err", err)
		return func() {}
	}
	if interval <= 0 {
		return func() {}
	}
	logger.Info("systemd watchdog enabled", "interval", interval)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				notify(logger, daemon.SdNotifyWatchdog)
			}
		}
	}()
	return func() { close(done) }
}
