package agent

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	promcollectors "github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
)

// HandlerOptions configure the HTTP handler.
type HandlerOptions struct {
	TelemetryPath string
	// MaxRequests caps concurrent scrapes that render per request (those
	// with collect[] or exclude[]); past it such a scrape gets 503. 0 means
	// no limit. Full scrapes are served from the cached body.
	MaxRequests int
	Logger      *slog.Logger
	// reload, when set, serves the configuration reload metrics.
	reload *reloadState
}

// NewHandler returns the probe's HTTP handler: the telemetry path, the
// health endpoints and the landing page. No path waits on a collector.
func NewHandler(sched *Scheduler, o HandlerOptions) (http.Handler, error) {
	exporter := prometheus.NewRegistry()
	exporter.MustRegister(
		promcollectors.NewGoCollector(),
		promcollectors.NewProcessCollector(promcollectors.ProcessCollectorOpts{}),
		buildInfo(),
	)
	if o.reload != nil {
		exporter.MustRegister(o.reload)
	}
	facts := prometheus.NewRegistry()
	facts.MustRegister(&factsCollector{sched: sched, timing: true})

	mh := &metricsHandler{
		sched:    sched,
		exporter: exporter,
		logger:   o.Logger,
		opts: promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(o.Logger.Handler(), slog.LevelError),
			ErrorHandling: promhttp.ContinueOnError,
		},
	}
	if o.MaxRequests > 0 {
		mh.inFlight = make(chan struct{}, o.MaxRequests)
	}
	mh.all = promhttp.InstrumentMetricHandler(exporter,
		&cachedHandler{sched: sched, gatherer: prometheus.Gatherers{exporter, facts}, logger: o.Logger})

	mux := http.NewServeMux()
	mux.Handle(o.TelemetryPath, mh)
	ok := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "OK")
	}
	mux.HandleFunc("/-/healthy", ok)
	mux.HandleFunc("/-/ready", ok)
	if o.TelemetryPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "azurelinux-probe",
			Description: "Facts about Azure Linux hosts: kernel, Hyper-V, GPU drivers, eBPF, systemd and userland",
			Version:     version.Info(),
			Links: []web.LandingLinks{
				{Address: o.TelemetryPath, Text: "Metrics"},
				{Address: "/-/healthy", Text: "Health"},
			},
		})
		if err != nil {
			return nil, err
		}
		mux.Handle("/", landing)
	}
	return mux, nil
}

// metricsHandler serves every collector's snapshot, or those that the
// collect[] or exclude[] query parameters select, as node_exporter does.
type metricsHandler struct {
	sched    *Scheduler
	exporter *prometheus.Registry
	logger   *slog.Logger
	opts     promhttp.HandlerOpts
	all      http.Handler
	inFlight chan struct{}
}

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	collect, exclude := q["collect[]"], q["exclude[]"]
	if len(collect) == 0 && len(exclude) == 0 {
		// The full body is rendered at most once per snapshot (renders are
		// serialised) and otherwise copied from memory: no limit needed.
		h.all.ServeHTTP(w, r)
		return
	}
	// A filtered scrape renders per request: that is what the limit guards.
	if h.inFlight != nil {
		select {
		case h.inFlight <- struct{}{}:
			defer func() { <-h.inFlight }()
		default:
			http.Error(w, fmt.Sprintf("limit of %d concurrent filtered scrapes reached, try again later", cap(h.inFlight)),
				http.StatusServiceUnavailable)
			return
		}
	}
	if len(collect) > 0 && len(exclude) > 0 {
		http.Error(w, "collect[] and exclude[] cannot be combined", http.StatusBadRequest)
		return
	}
	names := h.sched.Names()
	for _, n := range append(collect, exclude...) {
		if !slices.Contains(names, n) {
			http.Error(w, fmt.Sprintf("collector %q is not enabled (enabled: %s)", n, strings.Join(names, ", ")),
				http.StatusBadRequest)
			return
		}
	}
	filter := func(name string) bool { return slices.Contains(collect, name) }
	if len(exclude) > 0 {
		filter = func(name string) bool { return !slices.Contains(exclude, name) }
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&factsCollector{sched: h.sched, filter: filter, timing: true})
	promhttp.HandlerFor(prometheus.Gatherers{h.exporter, reg}, h.opts).ServeHTTP(w, r)
}
