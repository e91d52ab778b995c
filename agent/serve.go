package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
)

func (o *options) serve(logger *slog.Logger) error {
	logger.Info("starting "+programName, "version", version.Info(), "build_context", version.BuildContext())
	logPageByPage(logger)
	if !strings.HasPrefix(o.telemetryPath, "/") {
		return fmt.Errorf("--web.telemetry-path %q must start with /", o.telemetryPath)
	}
	if *o.web.WebConfigFile != "" {
		if err := web.Validate(*o.web.WebConfigFile); err != nil {
			return fmt.Errorf("web config: %w", err)
		}
	}
	set, err := o.build(logger)
	if err != nil {
		return err
	}
	logger.Info("enabled collectors", "collectors", strings.Join(set.Names(), ","), "rootfs", o.rootfs)

	sched := newScheduler(logger)
	// The collectors of the running configuration, without the checks
	// job, for a reload whose config file is invalid but whose checks are
	// not (or the reverse): each part reloads on its own.
	running := slices.Clone(set.jobs)
	state := &reloadState{}
	state.record(o.addChecks(set, sched, logger))
	limiter := newConnLimiter(o.maxConns, o.maxConnsSource)
	throttled := prometheus.NewCounter(prometheus.CounterOpts{Name: "azurelinux_probe_http_auth_throttled_total",
		Help: selfHelp("azurelinux_probe_http_auth_throttled_total")})
	// Listening starts before the collectors do (READY=1 needs the
	// listener): /-/ready is 503 until they are started and each has
	// published its first snapshot.
	var started atomic.Bool
	ready := func() error {
		if !started.Load() {
			return errors.New("collectors not started yet")
		}
		return sched.Ready()
	}
	handler, err := newHandler(sched, handlerOptions{TelemetryPath: o.telemetryPath, MaxRequests: o.maxRequests,
		EnablePprof: o.enablePprof, Ready: ready, Logger: logger, Extra: append(limiter.collectors(), throttled), reload: state})
	if err != nil {
		return err
	}
	listeners, err := o.listen()
	if err != nil {
		return err
	}
	served, shutdown := o.startServers(listeners, handler, limiter, throttled, logger)
	// Parsing the flags, the configuration and the checks touched pages that
	// serving does not need either.
	releasePages(logger, "configured")
	sched.Start(set)
	started.Store(true)
	settled, stopSettled := context.WithCancel(context.Background())
	defer stopSettled()
	go func() {
		// Nor does it need what the first refresh of every collector at
		// once and the first evaluation of the checks touched.
		if sched.waitFirstSnapshots(settled, "") == nil {
			releasePages(logger, "first snapshot")
		}
	}()
	notify(logger, "READY=1")
	stopWatchdog := startWatchdog(logger)
	defer stopWatchdog()

	return o.run(sched, running, state, served, shutdown, logger)
}

// run serves until SIGTERM or a server's end, reloading on SIGHUP (each
// reload under reloadTimeout, one at a time).
func (o *options) run(sched *scheduler, running []*job, state *reloadState, served <-chan error, shutdown func() error, logger *slog.Logger) error {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(signals)
	// The config file, the checks files and the web config reload
	// independently (prepareReload); what the build of a reload found is
	// handed to the loop with its set.
	var mu sync.Mutex
	var outcome struct {
		now []*job
		ok  bool
	}
	reload := &reloader{timeout: reloadTimeout, logger: logger, build: func() (*collectorSet, error) {
		mu.Lock()
		prev := running
		mu.Unlock()
		set, now, ok := o.prepareReload(logger, sched, prev)
		mu.Lock()
		outcome.now, outcome.ok = now, ok
		mu.Unlock()
		return set, nil
	}}
	for {
		select {
		case err := <-served:
			sched.Stop()
			shutdown()
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		case res := <-reload.done():
			if res, apply := reload.finish(res); !apply {
				logger.Warn("an abandoned reload returned at last; its result is dropped", "err", res.err)
			} else if res.err != nil {
				logger.Error("reload failed, keeping the running configuration", "err", res.err)
				notify(logger, "READY=1")
			} else {
				sched.Start(res.set)
				mu.Lock()
				running = outcome.now
				ok := outcome.ok
				mu.Unlock()
				state.record(ok)
				if ok {
					logger.Info("configuration reloaded", "collectors", strings.Join(res.set.Names(), ","))
				}
				notify(logger, "READY=1")
			}
		case <-reload.expired():
			reload.abandon()
			notify(logger, "READY=1")
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				if !reload.start() {
					logger.Warn("SIGHUP ignored: the previous reload is still running")
					continue
				}
				notify(logger, "RELOADING=1\n"+monotonicUsec())
				continue
			}
			logger.Info("shutting down", "signal", sig.String())
			notify(logger, "STOPPING=1")
			sched.Stop()
			return shutdown()
		}
	}
}

// startServers serves handler on every listener, one server each: web.Serve
// replaces the server's handler with its TLS and basic-auth one, which two
// listeners on one server would do twice, concurrently. shutdown stops them
// all.
func (o *options) startServers(listeners []net.Listener, handler http.Handler, limiter *connLimiter,
	throttled prometheus.Counter, logger *slog.Logger) (served chan error, shutdown func() error) {
	var servers []*http.Server
	served = make(chan error, len(listeners))
	for _, l := range listeners {
		srv := newHTTPServer(handler, limiter, logger)
		servers = append(servers, srv)
		guard := func() {
			// web.Serve has installed its handler by the time it
			// accepts: put the failed-authentication guard before it.
			if *o.web.WebConfigFile != "" {
				srv.Handler = newAuthGuard(srv.Handler, throttled, logger)
			}
		}
		go func() { served <- web.Serve(limiter.listener(l, guard), srv, o.web, logger) }()
	}
	shutdown = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var errs []error
		for _, srv := range servers {
			errs = append(errs, srv.Shutdown(ctx))
		}
		return errors.Join(errs...)
	}
	return served, shutdown
}

// prepareReload rereads the configuration on SIGHUP. The config file, the
// checks files and the web config reload independently: an invalid config
// file keeps the running collectors and still reloads valid checks, and
// invalid checks keep the previous checks under newly configured
// collectors. It returns the set to start, the collectors it holds without
// the checks job, and whether everything loaded.
func (o *options) prepareReload(logger *slog.Logger, sched *scheduler, running []*job) (*collectorSet, []*job, bool) {
	ok := true
	set, err := o.build(logger)
	if err != nil {
		logger.Error("reload: invalid configuration, keeping the running collectors", "err", err)
		set, ok = &collectorSet{jobs: slices.Clone(running)}, false
	}
	collectorsNow := slices.Clone(set.jobs)
	if !o.addChecks(set, sched, logger) {
		ok = false
	}
	if f := *o.web.WebConfigFile; f != "" {
		if err := web.Validate(f); err != nil {
			logger.Error("reload: invalid web config; exporter-toolkit rereads it on each connection and refuses them until it is fixed", "file", f, "err", err)
			ok = false
		}
	}
	return set, collectorsNow, ok
}
