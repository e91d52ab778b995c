package agent

import (
	"bytes"
	"compress/gzip"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

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

// cachedHandler serves the full /metrics body rendered once per snapshot
// generation (and at most maxBodyAge old), per negotiated format and
// encoding, so that a scrape costs about what serving a static file costs.
type cachedHandler struct {
	sched    *Scheduler
	gatherer prometheus.Gatherer
	logger   *slog.Logger

	mu     sync.Mutex
	bodies map[string]*renderedBody
}

type renderedBody struct {
	generation  uint64
	rendered    time.Time
	body        []byte
	contentType string
	gzip        bool
}

func (h *cachedHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	format := expfmt.NegotiateIncludingOpenMetrics(r.Header)
	gz := acceptsGzip(r.Header.Get("Accept-Encoding"))
	key := string(format)
	if gz {
		key += ";gzip"
	}
	b, err := h.body(key, format, gz)
	if err != nil {
		h.logger.Error("render metrics", "err", err)
		http.Error(w, "render metrics: "+err.Error(), http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", b.contentType)
	hdr.Set("Content-Length", strconv.Itoa(len(b.body)))
	hdr.Add("Vary", "Accept-Encoding")
	if b.gzip {
		hdr.Set("Content-Encoding", "gzip")
	}
	w.Write(b.body)
}

func (h *cachedHandler) body(key string, format expfmt.Format, gz bool) (*renderedBody, error) {
	gen := h.sched.generation.Load()
	h.mu.Lock()
	defer h.mu.Unlock()
	if b := h.bodies[key]; b != nil && b.generation == gen && time.Since(b.rendered) < maxBodyAge {
		return b, nil
	}
	b, err := h.render(format, gz)
	if err != nil {
		return nil, err
	}
	b.generation = gen
	if h.bodies == nil {
		h.bodies = map[string]*renderedBody{}
	}
	h.bodies[key] = b
	return b, nil
}

func (h *cachedHandler) render(format expfmt.Format, gz bool) (*renderedBody, error) {
	families, err := h.gatherer.Gather()
	if err != nil {
		// As promhttp's ContinueOnError: serve what was gathered.
		h.logger.Error("gather metrics", "err", err)
	}
	var buf bytes.Buffer
	var out interface {
		Write([]byte) (int, error)
	} = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		out = zw
	}
	enc := expfmt.NewEncoder(out, format)
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
	if zw != nil {
		if err := zw.Close(); err != nil {
			return nil, err
		}
	}
	return &renderedBody{rendered: time.Now(), body: buf.Bytes(), contentType: string(format), gzip: gz}, nil
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.TrimSpace(coding) != "*" {
			continue
		}
		if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				return false
			}
		}
		return true
	}
	return false
}
