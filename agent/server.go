package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	promcollectors "github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// handlerOptions configure the HTTP handler.
type handlerOptions struct {
	TelemetryPath string
	// MaxRequests caps concurrent renders of filtered scrapes (collect[]
	// or exclude[]) whose body is not cached yet; past it such a scrape
	// gets 503. 0 means no limit. Full scrapes and filtered scrapes of a
	// cached filter set never take a slot.
	MaxRequests int
	// EnablePprof serves net/http/pprof under /debug/pprof/ and links it
	// from the status page; off by default (it exposes the heap).
	EnablePprof bool
	// Ready reports whether /-/ready answers 200; nil means the
	// scheduler's Ready.
	Ready  func() error
	Logger *slog.Logger
	// Extra are more of the exporter's own collectors (the connection
	// limiter's counters) served with go_ and process_.
	Extra []prometheus.Collector
	// reload, when set, serves the configuration reload metrics.
	reload *reloadState
}

// newHandler returns the probe's HTTP handler: the telemetry path, the
// health endpoints, the status page (/) and its JSON (/status.json). No path
// waits on a collector: the page renders the latest snapshots.
func newHandler(sched *scheduler, o handlerOptions) (http.Handler, error) {
	mux := http.NewServeMux()
	mux.Handle(o.TelemetryPath, newMetricsHandler(sched, o))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { plain(w, http.StatusOK, "OK") })
	ready := o.Ready
	if ready == nil {
		ready = sched.Ready
	}
	// 503 until every enabled collector has published its first snapshot
	// (a refresh that times out publishes a failed one), so that a
	// load balancer or a rollout waits for complete facts.
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			plain(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
		plain(w, http.StatusOK, "OK")
	})
	if o.EnablePprof {
		addPprof(mux)
	}
	page := newStatusPage(sched, o)
	mux.HandleFunc(statusPath, page.serveJSON)
	if o.TelemetryPath != "/" {
		mux.Handle("/", page)
	}
	return mux, nil
}

func newMetricsHandler(sched *scheduler, o handlerOptions) *metricsHandler {
	exporter := prometheus.NewRegistry()
	exporter.MustRegister(
		promcollectors.NewGoCollector(),
		promcollectors.NewProcessCollector(promcollectors.ProcessCollectorOpts{}),
		buildInfo(),
	)
	if o.reload != nil {
		exporter.MustRegister(o.reload)
	}
	for _, c := range o.Extra {
		exporter.MustRegister(c)
	}
	mh := &metricsHandler{
		sched:    sched,
		exporter: exporter,
		logger:   o.Logger,
		cache:    &bodyCache{sched: sched, logger: o.Logger},
		full:     prometheus.Gatherers{exporter, newFactsRegistry(sched, nil)},
	}
	mh.instrument(exporter)
	if o.MaxRequests > 0 {
		mh.inFlight = make(chan struct{}, o.MaxRequests)
	}
	return mh
}

func plain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}

func newFactsRegistry(sched *scheduler, filter func(string) bool) prometheus.Gatherer {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&factsCollector{sched: sched, filter: filter, timing: true})
	return reg
}

// metricsHandler serves every collector's snapshot, or those that the
// collect[] or exclude[] query parameters select, as node_exporter does,
// from bodies cached per filter set, format and encoding.
type metricsHandler struct {
	sched    *scheduler
	exporter *prometheus.Registry
	logger   *slog.Logger
	cache    *bodyCache
	full     prometheus.Gatherer
	// inFlight holds a slot per filtered render in progress.
	inFlight chan struct{}

	negMu        sync.Mutex
	negotiations map[headerPair]negotiation

	// The request metrics of promhttp.InstrumentMetricHandler (same
	// names), counted for every answer: children resolved once, so that
	// counting allocates nothing.
	requestsVec   *prometheus.CounterVec
	requests      map[int]prometheus.Counter
	inFlightGauge prometheus.Gauge
}

// statusCodes are the answers the handler gives; the counter of each
// exists from the start, as promhttp initialises 200, 500 and 503.
var statusCodes = []int{http.StatusOK, http.StatusBadRequest, http.StatusMethodNotAllowed,
	http.StatusInternalServerError, http.StatusServiceUnavailable}

func (h *metricsHandler) instrument(reg prometheus.Registerer) {
	cnt := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promhttp_metric_handler_requests_total",
		Help: "Total number of scrapes by HTTP status code.",
	}, []string{"code"})
	h.inFlightGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "promhttp_metric_handler_requests_in_flight",
		Help: "Current number of scrapes being served.",
	})
	reg.MustRegister(cnt, h.inFlightGauge)
	h.requests = map[int]prometheus.Counter{}
	for _, c := range statusCodes {
		h.requests[c] = cnt.WithLabelValues(strconv.Itoa(c))
	}
	h.requestsVec = cnt
}

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.inFlightGauge.Inc()
	code := h.serve(w, r)
	h.inFlightGauge.Dec()
	if c, ok := h.requests[code]; ok {
		c.Inc()
	} else {
		h.requestsVec.WithLabelValues(strconv.Itoa(code)).Inc()
	}
}

// errSlotsTaken is a filtered render refused for want of a slot.
var errSlotsTaken = errors.New("filtered render slots taken")

// serve answers r and returns the status code it answered with.
func (h *metricsHandler) serve(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		plain(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: use GET or HEAD")
		return http.StatusMethodNotAllowed
	}
	// The filter is validated and made canonical before anything is
	// rendered or a slot taken: a bad query costs a parse.
	selected, err := h.selection(r.URL.RawQuery)
	if err != nil {
		plain(w, http.StatusBadRequest, err.Error())
		return http.StatusBadRequest
	}
	accept, acceptEncoding := r.Header.Get("Accept"), r.Header.Get("Accept-Encoding")
	if selected == nil {
		// A scraper sends the same headers every time: their
		// negotiation is remembered, so that a full scrape parses
		// nothing and allocates nothing of its own.
		n := h.negotiated(accept, acceptEncoding)
		b, err := h.cache.get(n.key, func() (*renderedBody, error) { return renderBody(h.full, n.format, n.encoding, h.logger) })
		if err != nil {
			h.logger.Error("render metrics", "err", err)
			plain(w, http.StatusInternalServerError, "render metrics: "+err.Error())
			return http.StatusInternalServerError
		}
		b.write(w, r)
		return http.StatusOK
	}
	// A filtered body is cached under its canonical selection: the
	// same collectors however collect[] or exclude[] spelt them.
	n := h.negotiated(accept, acceptEncoding)
	key := strings.Join(selected, ",") + "|" + n.key
	b, err := h.cache.get(key, func() (*renderedBody, error) {
		if h.inFlight != nil {
			select {
			case h.inFlight <- struct{}{}:
				defer func() { <-h.inFlight }()
			default:
				return nil, errSlotsTaken
			}
		}
		filter := func(name string) bool { return slices.Contains(selected, name) }
		return renderBody(prometheus.Gatherers{h.exporter, newFactsRegistry(h.sched, filter)}, n.format, n.encoding, h.logger)
	})
	switch {
	case errors.Is(err, errSlotsTaken):
		w.Header().Set("Retry-After", "1")
		plain(w, http.StatusServiceUnavailable,
			fmt.Sprintf("limit of %d concurrent filtered renders reached, try again later", cap(h.inFlight)))
		return http.StatusServiceUnavailable
	case err != nil:
		h.logger.Error("render metrics", "err", err)
		plain(w, http.StatusInternalServerError, "render metrics: "+err.Error())
		return http.StatusInternalServerError
	}
	b.write(w, r)
	return http.StatusOK
}

// negotiation is the outcome of negotiating one pair of Accept and
// Accept-Encoding headers.
type negotiation struct {
	format   expfmt.Format
	encoding string
	key      string // the body cache's key of the full body
}

type headerPair struct{ accept, encoding string }

// maxNegotiations bounds the remembered header pairs: a fleet's scrapers
// send a handful; past the bound a pair is negotiated every time.
const maxNegotiations = 64

func (h *metricsHandler) negotiated(accept, acceptEncoding string) negotiation {
	k := headerPair{accept, acceptEncoding}
	h.negMu.Lock()
	n, ok := h.negotiations[k]
	h.negMu.Unlock()
	if ok {
		return n
	}
	hdr := http.Header{}
	if accept != "" {
		hdr.Set("Accept", accept)
	}
	n.format = negotiateFormat(hdr)
	n.encoding = negotiateEncoding(acceptEncoding)
	n.key = string(n.format) + "|" + n.encoding
	h.negMu.Lock()
	if h.negotiations == nil {
		h.negotiations = map[headerPair]negotiation{}
	}
	if len(h.negotiations) < maxNegotiations {
		h.negotiations[k] = n
	}
	h.negMu.Unlock()
	return n
}

// maxFilterParams bounds the collect[] and exclude[] values a query may
// carry: a name may repeat, but no real scraper sends more than a few
// times the number of collectors.
const maxFilterParams = 256

// selection parses the query and returns the enabled collectors that
// collect[] or exclude[] select, in scheduling order and deduplicated, or
// nil when the query selects every collector (the full body). An
// unparsable query, an unknown name or both parameters at once is an error
// that says why.
func (h *metricsHandler) selection(rawQuery string) ([]string, error) {
	if rawQuery == "" {
		return nil, nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		// Serving the unfiltered body for a query that could not be read
		// would answer a different question than the one asked.
		return nil, fmt.Errorf("invalid query: %v", err)
	}
	collect, exclude := q["collect[]"], q["exclude[]"]
	if len(collect) == 0 && len(exclude) == 0 {
		return nil, nil
	}
	if len(collect) > 0 && len(exclude) > 0 {
		return nil, errors.New("collect[] and exclude[] cannot be combined")
	}
	if len(collect)+len(exclude) > maxFilterParams {
		return nil, fmt.Errorf("%d collect[]/exclude[] values, at most %d allowed", len(collect)+len(exclude), maxFilterParams)
	}
	names := h.sched.Names()
	for _, n := range append(collect, exclude...) {
		if !slices.Contains(names, n) {
			if len(n) > 64 {
				n = n[:64] + "..."
			}
			return nil, fmt.Errorf("collector %q is not enabled (enabled: %s)", n, strings.Join(names, ", "))
		}
	}
	var out []string
	for _, n := range names {
		if slices.Contains(collect, n) || (len(exclude) > 0 && !slices.Contains(exclude, n)) {
			out = append(out, n)
		}
	}
	if len(out) == len(names) {
		return nil, nil // the same body as a full scrape
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}
