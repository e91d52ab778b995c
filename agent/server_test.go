package agent

import (
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

// TestMaxRequests: past --web.max-requests concurrent scrapes, a scrape gets
// 503 at once instead of queueing.
func TestMaxRequests(t *testing.T) {
	s := newTestScheduler()
	h := &metricsHandler{sched: s, inFlight: make(chan struct{}, 2)}
	h.inFlight <- struct{}{}
	h.inFlight <- struct{}{}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "limit of 2 concurrent scrapes") {
		t.Errorf("status %d %q", rec.Code, rec.Body.String())
	}
}
