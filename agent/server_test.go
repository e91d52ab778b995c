package agent

import (
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestHandler(t *testing.T) {
	s := newTestScheduler(
		testJob("os", &fakeCollector{facts: []string{"os"}}),
		testJob("kernel", &fakeCollector{facts: []string{"kernel"}}),
	)
	s.RunOnce(t.Context())
	h, err := NewHandler(s, HandlerOptions{TelemetryPath: "/metrics", MaxRequests: 1, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	get := func(url string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
		b, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, string(b)
	}
	for _, tc := range []struct {
		url        string
		code       int
		has, hasnt []string
	}{
		{"/metrics", 200, []string{`azurelinux_test_fact{n="os"} 1`, `azurelinux_test_fact{n="kernel"} 1`,
			`azurelinux_probe_collector_success{collector="os"} 1`, "azurelinux_probe_build_info{", "go_goroutines"}, nil},
		{"/metrics?collect[]=os", 200, []string{`azurelinux_test_fact{n="os"} 1`}, []string{`n="kernel"`, `collector="kernel"`}},
		{"/metrics?exclude[]=os", 200, []string{`n="kernel"`}, []string{`n="os"`}},
		{"/metrics?collect[]=os&exclude[]=kernel", 400, []string{"cannot be combined"}, nil},
		{"/metrics?collect[]=gpu", 400, []string{`collector "gpu" is not enabled (enabled: os, kernel)`}, nil},
		{"/-/healthy", 200, []string{"OK"}, nil},
		{"/-/ready", 200, []string{"OK"}, nil},
		{"/", 200, []string{"azurelinux-probe", `href="/metrics"`}, nil},
	} {
		code, body := get(tc.url)
		if code != tc.code {
			t.Errorf("%s: status %d, want %d", tc.url, code, tc.code)
		}
		for _, s := range tc.has {
			if !strings.Contains(body, s) {
				t.Errorf("%s: body lacks %q", tc.url, s)
			}
		}
		for _, s := range tc.hasnt {
			if strings.Contains(body, s) {
				t.Errorf("%s: body has %q", tc.url, s)
			}
		}
	}
}

// TestMaxRequests: past --web.max-requests concurrent filtered scrapes, such
// a scrape gets 503 at once instead of queueing.
func TestMaxRequests(t *testing.T) {
	s := newTestScheduler()
	h := &metricsHandler{sched: s, inFlight: make(chan struct{}, 2)}
	h.inFlight <- struct{}{}
	h.inFlight <- struct{}{}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics?collect[]=os", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "limit of 2 concurrent filtered scrapes") {
		t.Errorf("status %d %q", rec.Code, rec.Body.String())
	}
}

func TestCachedBody(t *testing.T) {
	f := &fakeCollector{facts: []string{"before"}}
	s := newTestScheduler(testJob("os", f))
	s.RunOnce(t.Context())
	h, err := NewHandler(s, HandlerOptions{TelemetryPath: "/metrics", Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	get := func(hdr map[string]string) *http.Response {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Result()
	}
	body := func(r *http.Response) string {
		var rd io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Fatal(err)
			}
			rd = zr
		}
		b, err := io.ReadAll(rd)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	plain := get(nil)
	if ct := plain.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("plain Content-Type %q", ct)
	}
	if !strings.Contains(body(plain), `azurelinux_test_fact{n="before"} 1`) {
		t.Error("plain body lacks the fact")
	}

	// What Prometheus 3 sends.
	zipped := get(map[string]string{"Accept-Encoding": "gzip",
		"Accept": "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"})
	if zipped.Header.Get("Content-Encoding") != "gzip" {
		t.Error("gzip not used though accepted")
	}
	if ct := zipped.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("negotiated Content-Type %q, want OpenMetrics", ct)
	}
	if b := body(zipped); !strings.Contains(b, `azurelinux_test_fact{n="before"} 1`) || !strings.HasSuffix(b, "# EOF\n") {
		t.Errorf("OpenMetrics body wrong:\n%s", b)
	}
	if get(map[string]string{"Accept-Encoding": "gzip;q=0"}).Header.Get("Content-Encoding") == "gzip" {
		t.Error("gzip used though refused with q=0")
	}

	// A new snapshot is served at once, whatever the cache holds.
	f.facts = []string{"after"}
	s.RunOnce(t.Context())
	if b := body(get(nil)); !strings.Contains(b, `n="after"`) || strings.Contains(b, `n="before"`) {
		t.Error("the cached body outlived the snapshot it was rendered from")
	}
}
