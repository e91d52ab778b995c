package agent

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// The HTTP server's timeouts and header cap. A scrape of a cached body
// reads a few hundred bytes of headers and writes tens of kB: each bound is
// far above what one takes, and bounds what a client that stalls can hold.
const (
	// readHeaderTimeout: the request headers arrive in one packet.
	readHeaderTimeout = 5 * time.Second
	// readTimeout: a scrape has no body.
	readTimeout = 10 * time.Second
	// writeTimeout: from the end of the headers to the end of the answer,
	// longer than Prometheus' default scrape timeout (10 s).
	writeTimeout = 30 * time.Second
	// idleTimeout keeps a scraper's keep-alive connection across a 1 min
	// scrape interval; under the connection limits an idle connection is
	// the first to go anyway.
	idleTimeout = 2 * time.Minute
	// maxHeaderBytes: Prometheus sends about 500 bytes of headers.
	// net/http reads up to this plus 4096 bytes before answering 431.
	maxHeaderBytes = 16 << 10
	// stuckAfter: a connection busy with one request for longer than
	// this (a client that does not read its answer, or trickles its
	// headers) may be closed to admit a new one.
	stuckAfter = 2 * time.Second
	// sendBuffer is each connection's SO_SNDBUF (the kernel doubles it):
	// a few bodies of a large host.
	sendBuffer = 128 << 10
)

// newHTTPServer returns the server for one listener, with the timeouts
// above and the connection states reported to lim. net/http's own log lines
// (TLS handshake errors of scanners) go to the debug level.
func newHTTPServer(h http.Handler, lim *connLimiter, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         lim.connState,
		ConnContext:       withConn,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
}

// Connection states as the limiter sees them.
const (
	connNew int32 = iota // accepted, no request byte read yet
	connActive
	connIdle
)

// connLimiter caps the open connections per server and per source address.
// At a cap it sheds rather than refuses when it can: the connection that
// has been idle (or unused) longest, else one stuck on a request for over
// stuckAfter, is closed to admit the new one; only when every connection is
// busy with a recent request is the new one closed. So idle keep-alive
// floods, trickled headers and clients that never read cannot lock out a
// scraper, and every connection costs bounded memory, one goroutine and
// one fd.
type connLimiter struct {
	max, perSource int

	mu       sync.Mutex
	conns    map[*limitedConn]struct{}
	bySource map[string]int

	open prometheus.GaugeFunc
	shed *prometheus.CounterVec
}

func newConnLimiter(max, perSource int) *connLimiter {
	l := &connLimiter{max: max, perSource: perSource, conns: map[*limitedConn]struct{}{}, bySource: map[string]int{}}
	l.open = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "azurelinux_probe_http_connections",
		Help: selfHelp("azurelinux_probe_http_connections")}, func() float64 {
		l.mu.Lock()
		defer l.mu.Unlock()
		return float64(len(l.conns))
	})
	l.shed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "azurelinux_probe_http_connections_shed_total",
		Help: selfHelp("azurelinux_probe_http_connections_shed_total")}, []string{"limit", "victim"})
	for _, lim := range []string{"source", "server"} {
		for _, v := range []string{"new", "idle", "stuck"} {
			l.shed.WithLabelValues(lim, v)
		}
	}
	return l
}

// collectors are the limiter's metrics, served with the exporter's own.
func (l *connLimiter) collectors() []prometheus.Collector {
	return []prometheus.Collector{l.open, l.shed}
}

// listener wraps ln; onFirstAccept runs once, in the serving goroutine,
// before the first connection is accepted.
func (l *connLimiter) listener(ln net.Listener, onFirstAccept func()) net.Listener {
	return &limitedListener{Listener: ln, lim: l, onFirst: onFirstAccept}
}

type limitedListener struct {
	net.Listener
	lim     *connLimiter
	onFirst func()
	once    sync.Once
}

func (ll *limitedListener) Accept() (net.Conn, error) {
	ll.once.Do(func() {
		if ll.onFirst != nil {
			ll.onFirst()
		}
	})
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := ll.lim.admit(c); lc != nil {
			return lc, nil
		}
	}
}

// sourceOf is the address a connection is counted under: the IP of a TCP
// peer, else the network (a Unix or vsock listener is one source).
func sourceOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	if a == nil {
		return ""
	}
	return a.Network()
}

// admit returns c tracked, or nil when it was refused (and closed).
func (l *connLimiter) admit(c net.Conn) *limitedConn {
	src := sourceOf(c.RemoteAddr())
	now := monoNow()
	var victims []*limitedConn
	l.mu.Lock()
	if l.perSource > 0 && l.bySource[src] >= l.perSource {
		v := l.victim(src, now)
		if v == nil {
			l.mu.Unlock()
			l.shed.WithLabelValues("source", "new").Inc()
			c.Close()
			return nil
		}
		victims = append(victims, v)
		l.remove(v)
		l.shed.WithLabelValues("source", v.kind()).Inc()
	}
	if l.max > 0 && len(l.conns) >= l.max {
		v := l.fairVictim(src, now)
		if v == nil {
			l.mu.Unlock()
			l.shed.WithLabelValues("server", "new").Inc()
			for _, v := range victims {
				v.Conn.Close()
			}
			c.Close()
			return nil
		}
		victims = append(victims, v)
		l.shed.WithLabelValues("server", v.kind()).Inc()
		l.remove(v)
	}
	lc := &limitedConn{Conn: c, lim: l, source: src}
	if tc, ok := c.(*net.TCPConn); ok {
		// A fixed send buffer instead of the kernel's autotuning (up to
		// tcp_wmem's 4 MB): a client that never reads pins at most this
		// much kernel memory, and its writer blocks after one body
		// rather than after dozens of pipelined ones.
		tc.SetWriteBuffer(sendBuffer)
	}
	lc.since.Store(now)
	l.conns[lc] = struct{}{}
	l.bySource[src]++
	l.mu.Unlock()
	// Closing the socket ends the server's goroutine on it, which then
	// calls lc.Close (a no-op for the limiter by then).
	for _, v := range victims {
		v.Conn.Close()
	}
	return lc
}

// victim returns the connection of src (any source when src is "") that
// has been idle or unused the longest, else the one stuck longest on a
// request, or nil when all are busy with recent requests. Called with l.mu
// held; a linear scan of at most max connections, only at a cap.
func (l *connLimiter) victim(src string, now int64) *limitedConn {
	var idle, stuck *limitedConn
	for c := range l.conns {
		if src != "" && c.source != src {
			continue
		}
		if c.state.Load() != connActive {
			if idle == nil || c.since.Load() < idle.since.Load() {
				idle = c
			}
		} else if now-c.since.Load() > int64(stuckAfter) {
			if stuck == nil || c.since.Load() < stuck.since.Load() {
				stuck = c
			}
		}
	}
	if idle != nil {
		return idle
	}
	return stuck
}

// fairVictim picks the connection to close at the server cap for a new
// one from src. When another source holds more connections than src, the
// victim is one of the biggest holder's (idle first, then stuck, then the
// oldest busy one): many sources at their per-source cap cannot lock out
// one more. Otherwise it is the longest idle or stuck connection of any
// source, or nil. Called with l.mu held.
func (l *connLimiter) fairVictim(src string, now int64) *limitedConn {
	hog, most := "", 0
	for s, n := range l.bySource {
		if n > most {
			hog, most = s, n
		}
	}
	if hog == "" || most <= l.bySource[src]+1 {
		return l.victim("", now)
	}
	if v := l.victim(hog, now); v != nil {
		return v
	}
	var oldest *limitedConn
	for c := range l.conns {
		if c.source == hog && (oldest == nil || c.since.Load() < oldest.since.Load()) {
			oldest = c
		}
	}
	return oldest
}

// remove forgets c; called with l.mu held.
func (l *connLimiter) remove(c *limitedConn) {
	if _, ok := l.conns[c]; !ok {
		return
	}
	delete(l.conns, c)
	if l.bySource[c.source]--; l.bySource[c.source] <= 0 {
		delete(l.bySource, c.source)
	}
}

// connState is the server's ConnState hook: it records when a connection
// became busy or idle.
func (l *connLimiter) connState(c net.Conn, s http.ConnState) {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok { // *tls.Conn
		c = nc.NetConn()
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	switch s {
	case http.StateActive:
		lc.state.Store(connActive)
	case http.StateIdle:
		lc.state.Store(connIdle)
	default:
		return
	}
	lc.since.Store(monoNow())
}

// monoBase is the origin of monoNow.
var monoBase = time.Now()

// monoNow is the monotonic clock in nanoseconds since monoBase: the
// connection states change twice a request, and time.Since reads one clock
// where time.Now reads two (the wall clock as well).
func monoNow() int64 { return int64(time.Since(monoBase)) }

type limitedConn struct {
	net.Conn
	lim    *connLimiter
	source string
	state  atomic.Int32
	since  atomic.Int64 // when the state last changed, monoNow
	gather gathering    // while a body is written (gather.go)
}

func (c *limitedConn) kind() string {
	if c.state.Load() == connActive {
		return "stuck"
	}
	return "idle"
}

func (c *limitedConn) Close() error {
	c.lim.mu.Lock()
	c.lim.remove(c)
	c.lim.mu.Unlock()
	return c.Conn.Close()
}

// authGuard sits in front of exporter-toolkit's basic auth (web.Serve
// wraps the server's handler in its own, so this wraps that). There a
// password not seen recently costs a bcrypt comparison, one at a time for
// the whole server (exporter-toolkit web/handler.go bcryptMtx), and every
// request consumes the global rate_limit; so unguarded, a flood of wrong
// passwords delays or refuses everyone's scrapes. The guard keeps a record
// per source address:
//   - a source whose latest answer was not 401 (a scraper with the right
//     password) goes straight through;
//   - any other source's requests take one of authSlots slots (429 when
//     they are taken), so at most that many comparisons queue ahead of a
//     scraper's;
//   - a source answered 401 may fail authBurst times, then once per
//     authInterval; past that it is answered 429 before the toolkit.
//
// A 401 also closes its connection, so that a failed client does not keep
// it.
type authGuard struct {
	next      http.Handler
	logger    *slog.Logger
	slots     chan struct{}
	mu        sync.Mutex
	sources   map[string]*authSource
	throttled prometheus.Counter
}

type authSource struct {
	good     bool          // the latest answer was not 401
	warned   bool          // its throttling was logged
	failures *rate.Limiter // nil before the first 401
}

const (
	authSlots    = 2
	authBurst    = 3
	authInterval = time.Second
	// authSources bounds the per-source records; past it arbitrary ones
	// are forgotten (a source then starts afresh, without a record).
	authSources = 4096
)

func newAuthGuard(next http.Handler, throttled prometheus.Counter, logger *slog.Logger) *authGuard {
	return &authGuard{next: next, logger: logger, slots: make(chan struct{}, authSlots), sources: map[string]*authSource{}, throttled: throttled}
}

func (g *authGuard) throttle(w http.ResponseWriter, why string) {
	g.throttled.Inc()
	w.Header().Set("Retry-After", "1")
	http.Error(w, why+", try again later", http.StatusTooManyRequests)
}

func (g *authGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	src := r.RemoteAddr
	if host, _, err := net.SplitHostPort(src); err == nil {
		src = host
	}
	g.mu.Lock()
	rec := g.sources[src]
	good := rec != nil && rec.good
	// A token per request, taken before it goes on, so that concurrent
	// requests of one source cannot all pass on the same token.
	limited := rec != nil && rec.failures != nil && !rec.failures.Allow()
	warn := limited && !rec.warned
	if warn {
		rec.warned = true
	}
	g.mu.Unlock()
	if warn {
		g.logger.Warn("too many failed authentications, answering 429 until a request authenticates", "source", src)
	}
	if limited {
		g.throttle(w, "too many failed authentications from "+src)
		return
	}
	if !good {
		select {
		case g.slots <- struct{}{}:
			defer func() { <-g.slots }()
		default:
			g.throttle(w, "too many authentications in progress")
			return
		}
	}
	sw := &statusWriter{ResponseWriter: w}
	g.next.ServeHTTP(sw, r)
	g.record(src, sw.code != http.StatusUnauthorized)
}

// record notes the outcome of a request from src.
func (g *authGuard) record(src string, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rec := g.sources[src]
	if rec == nil {
		if len(g.sources) >= authSources {
			for k := range g.sources {
				delete(g.sources, k)
				if len(g.sources) < authSources*9/10 {
					break
				}
			}
		}
		rec = &authSource{}
		g.sources[src] = rec
	}
	rec.good = ok
	switch {
	case ok:
		rec.failures, rec.warned = nil, false
	case rec.failures == nil:
		rec.failures = rate.NewLimiter(rate.Every(authInterval), authBurst)
		rec.failures.Allow() // this failure
	}
}

// statusWriter records the status code of the answer and asks for the
// connection to be closed after a 401.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
		if code == http.StatusUnauthorized {
			s.Header().Set("Connection", "close")
		}
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
