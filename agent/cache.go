package agent

import (
	"bytes"
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// maxBodyAge bounds how long a rendered /metrics body is reused. The facts
// in it change only when a collector publishes (which invalidates the body
// at once); the bound is for the probe's own go_ and process_ metrics, which
// may thus be up to this old. Prometheus scrapes every 15 s or more, so a
// single scraper always gets a fresh rendering; a burst of scrapers shares
// one.
const maxBodyAge = time.Second

// maxCachedBodies bounds the cache: a body per filter set, format (with its
// escaping) and encoding. A full scrape by one Prometheus uses one entry;
// past the bound stale entries go first, then any.
const maxCachedBodies = 256

// Content encodings, in the order of preference among equal q-values.
const (
	encIdentity = "identity"
	encGzip     = "gzip"
	encZstd     = "zstd"
)

// bodyCache holds rendered /metrics bodies keyed by filter set, negotiated
// format and encoding, each rendered at most once per snapshot generation
// (and at most maxBodyAge old), so that a scrape, filtered or not, costs
// about what serving a static file costs. Renders of different keys run in
// parallel; scrapes of one key wait for its one render.
type bodyCache struct {
	sched  *scheduler
	logger *slog.Logger

	mu      sync.Mutex
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	mu   sync.Mutex
	body *renderedBody
}

// renderedBody is immutable once stored; its header values are shared,
// ready-made slices so that serving it allocates nothing.
type renderedBody struct {
	generation  uint64
	rendered    time.Time
	body        []byte
	contentType []string
	length      []string
	encoding    []string // nil for identity
}

var varyValues = []string{"Accept", "Accept-Encoding"}

// write serves b, with the body only for a GET.
func (b *renderedBody) write(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr["Content-Type"] = b.contentType
	hdr["Content-Length"] = b.length
	hdr["Vary"] = varyValues
	if b.encoding != nil {
		hdr["Content-Encoding"] = b.encoding
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		writeWhole(w, r, b.body)
	}
}

// get returns the fresh body for key, rendering it with render when the
// cached one is stale or missing. render returns nil and an error the caller
// reports when it cannot render (the filtered-render slots are taken).
func (c *bodyCache) get(key string, render func() (*renderedBody, error)) (*renderedBody, error) {
	gen := c.sched.generation.Load()
	c.mu.Lock()
	e := c.entries[key]
	if e == nil {
		if c.entries == nil {
			c.entries = map[string]*cacheEntry{}
		}
		c.makeRoom(gen)
		e = &cacheEntry{}
		c.entries[key] = e
	}
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if b := e.body; b != nil && b.generation == gen && time.Since(b.rendered) < maxBodyAge {
		return b, nil
	}
	b, err := render()
	if err != nil {
		return nil, err
	}
	b.generation = gen
	e.body = b
	return b, nil
}

// makeRoom drops entries while the cache is full: those rendered from an
// older generation first, then arbitrary ones. Called with c.mu held.
func (c *bodyCache) makeRoom(gen uint64) {
	if len(c.entries) < maxCachedBodies {
		return
	}
	for k, e := range c.entries {
		// TryLock: an entry being rendered is in use, not stale.
		if e.mu.TryLock() {
			stale := e.body == nil || e.body.generation != gen
			e.mu.Unlock()
			if stale {
				delete(c.entries, k)
			}
		}
	}
	for k := range c.entries {
		if len(c.entries) < maxCachedBodies {
			break
		}
		delete(c.entries, k)
	}
}

// renderBody gathers g and encodes it in format with encoding. As promhttp
// with ContinueOnError, a gather error is logged and what was gathered is
// served. OpenMetrics carries the _created lines of the counters that
// client_golang records a creation time for, as promhttp does with
// EnableOpenMetricsTextCreatedSamples (the protobuf format carries
// created_timestamp always).
func renderBody(g prometheus.Gatherer, format expfmt.Format, encoding string, logger *slog.Logger) (*renderedBody, error) {
	families, err := g.Gather()
	if err != nil {
		logger.Error("gather metrics", "err", err)
	}
	var buf bytes.Buffer
	var out io.Writer = &buf
	var closeOut func() error
	switch encoding {
	case encGzip:
		zw := gzip.NewWriter(&buf)
		out, closeOut = zw, zw.Close
	case encZstd:
		// As client_golang's promhttp/zstd: the fastest level, which
		// on exposition text compresses about as well as gzip.
		zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		out, closeOut = zw, zw.Close
	}
	enc := expfmt.NewEncoder(out, format, expfmt.WithCreatedLines())
	for _, mf := range families {
		if err := enc.Encode(mf); err != nil {
			return nil, err
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			return nil, err
		}
	}
	if closeOut != nil {
		if err := closeOut(); err != nil {
			return nil, err
		}
	}
	b := &renderedBody{rendered: time.Now(), body: buf.Bytes(),
		contentType: []string{string(format)}, length: []string{strconv.Itoa(buf.Len())}}
	if encoding != encIdentity {
		b.encoding = []string{encoding}
	}
	return b, nil
}

// negotiateFormat picks the exposition format for an Accept header exactly
// as client_golang's promhttp does with EnableOpenMetrics (promhttp/http.go
// HandlerForTransactional: expfmt.NegotiateAccept with
// expfmt.DefaultOpenMetricsAcceptedFormats), which is what Prometheus'
// scrape code (scrape/scrape.go acceptHeader) is tested against: the
// highest-q clause that a format matches, with its escaping= parameter or
// the default escaping, else the text format 0.0.4.
func negotiateFormat(h http.Header) expfmt.Format {
	return expfmt.NegotiateAccept(h, acceptedFormats...)
}

var acceptedFormats = expfmt.DefaultOpenMetricsAcceptedFormats()

// negotiateEncoding picks the content encoding for an Accept-Encoding
// header (RFC 9110 section 12.5.3): the offered coding with the highest
// q-value, zstd before gzip before identity on a tie (Prometheus'
// zstd-scrape sends "zstd,gzip", its default "gzip"); identity when the
// header is absent or nothing offered is acceptable.
func negotiateEncoding(header string) string {
	if header == "" {
		return encIdentity
	}
	q := map[string]float64{}
	star, hasStar := 0.0, false
	for n, part := range strings.Split(header, ",") {
		if n >= 32 {
			break // a real client lists a handful
		}
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		weight := 1.0
		for _, p := range strings.Split(params, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), "q="); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f <= 1 {
					weight = f
				} else {
					weight = 0
				}
			}
		}
		if coding == "*" {
			star, hasStar = weight, true
			continue
		}
		q[coding] = weight
	}
	best, bestQ := encIdentity, 0.0
	for _, coding := range []string{encZstd, encGzip, encIdentity} {
		w, ok := q[coding]
		if !ok && hasStar {
			w, ok = star, true
		}
		if !ok && coding == encIdentity {
			w = 0.001 // acceptable unless refused (RFC 9110 12.5.3)
		}
		if w > bestQ {
			best, bestQ = coding, w
		}
	}
	return best
}
