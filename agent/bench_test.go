package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// sizedCollector emits n facts.
type sizedCollector struct{ n int }

func (c sizedCollector) Update(_ context.Context, m *collectors.Metrics) error {
	for i := range c.n {
		m.Set(testFact, float64(i), fmt.Sprintf("fact-%05d", i))
	}
	return nil
}

// BenchmarkScrape: a scrape of a cached snapshot costs what copying its
// body costs, whatever the refresh behind it cost. bytes/op is the body.
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		for _, enc := range []string{"identity", "gzip"} {
			b.Run(fmt.Sprintf("series=%d/%s", n, enc), func(b *testing.B) {
				s := newTestScheduler(testJob("sized", sizedCollector{n}))
				s.RunOnce(context.Background())
				h, err := newHandler(s, handlerOptions{TelemetryPath: "/metrics", Logger: discard()})
				if err != nil {
					b.Fatal(err)
				}
				req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
				req.Header.Set("Accept-Encoding", enc)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				b.SetBytes(int64(rec.Body.Len()))
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					h.ServeHTTP(discardWriter{}, req)
				}
			})
		}
	}
}

// BenchmarkRender: the cost of rendering a body (once per snapshot), for
// comparison with the scrape of the cached body.
func BenchmarkRender(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) {
			s := newTestScheduler(testJob("sized", sizedCollector{n}))
			s.RunOnce(context.Background())
			h, err := newHandler(s, handlerOptions{TelemetryPath: "/metrics", Logger: discard()})
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			b.ReportAllocs()
			for b.Loop() {
				s.generation.Add(1) // as a publish does: the cached body is stale
				h.ServeHTTP(discardWriter{}, req)
			}
		})
	}
}

type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) WriteHeader(int)             {}
