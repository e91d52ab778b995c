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
	h, err := newHandler(s, handlerOptions{TelemetryPath: "/metrics", MaxRequests: 1, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, url string) (int, http.Header, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, url, nil))
		b, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, rec.Result().Header, string(b)
	}
	manyParams := "/metrics?" + strings.Repeat("a=1&", 10001) + "collect[]=os&exclude[]=kernel"
	for _, tc := range []struct {
		method, url string
		code        int
		has, hasnt  []string
	}{
		{"GET", "/metrics", 200, []string{`azurelinux_test_fact{n="os"} 1`, `azurelinux_test_fact{n="kernel"} 1`,
			`azurelinux_probe_collector_success{collector="os"} 1`, "azurelinux_probe_build_info{", "go_goroutines"}, nil},
		{"GET", "/metrics?collect[]=os", 200, []string{`azurelinux_test_fact{n="os"} 1`, "go_goroutines"}, []string{`n="kernel"`, `collector="kernel"`}},
		{"GET", "/metrics?collect[]=os&collect[]=os&collect[]=os", 200, []string{`azurelinux_test_fact{n="os"} 1`}, []string{`n="kernel"`}},
		{"GET", "/metrics?exclude[]=os", 200, []string{`n="kernel"`}, []string{`n="os"`}},
		{"GET", "/metrics?exclude[]=os&exclude[]=kernel", 200, []string{"go_goroutines"}, []string{`n="kernel"`, `n="os"`}},
		{"GET", "/metrics?collect[]=os&exclude[]=kernel", 400, []string{"cannot be combined"}, nil},
		{"GET", "/metrics?collect[]=gpu", 400, []string{`collector "gpu" is not enabled (enabled: os, kernel)`}, nil},
		{"GET", "/metrics?collect[]=", 400, []string{`collector "" is not enabled`}, nil},
		{"GET", "/metrics?collect[]=%zz", 400, []string{"invalid query:", `invalid URL escape "%zz"`}, nil},
		// Go's parser stops at 10,000 parameters (GODEBUG
		// urlmaxqueryparams): an error, never the unfiltered body.
		{"GET", manyParams, 400, []string{"invalid query:"}, []string{"azurelinux_test_fact"}},
		{"GET", "/metrics?" + strings.Repeat("collect[]=os&", 300), 400, []string{"300 collect[]/exclude[] values, at most 256"}, nil},
		{"GET", "/metrics?other=1", 200, []string{`n="kernel"`, `n="os"`}, nil},
		{"POST", "/metrics", 405, []string{"method POST not allowed: use GET or HEAD"}, []string{"azurelinux_test_fact"}},
		{"DELETE", "/metrics", 405, nil, []string{"azurelinux_test_fact"}},
		{"HEAD", "/metrics", 200, nil, []string{"azurelinux_test_fact"}},
		{"GET", "/-/healthy", 200, []string{"OK"}, nil},
		{"GET", "/-/ready", 200, []string{"OK"}, nil},
		{"GET", "/", 200, []string{"azurelinux-probe", `href="/metrics"`, `href="/-/healthy"`, `href="/-/ready"`}, []string{"debug/pprof"}},
		{"GET", "/debug/pprof/heap", 404, nil, nil},
	} {
		code, hdr, body := do(tc.method, tc.url)
		name := tc.method + " " + tc.url
		if len(name) > 80 {
			name = name[:80] + "..."
		}
		if code != tc.code {
			t.Errorf("%s: status %d, want %d: %s", name, code, tc.code, body)
		}
		if code == 405 && hdr.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: Allow %q", name, hdr.Get("Allow"))
		}
		if hdr.Get("Content-Type") == "" {
			t.Errorf("%s: no Content-Type", name)
		}
		for _, s := range tc.has {
			if !strings.Contains(body, s) {
				t.Errorf("%s: body lacks %q", name, s)
			}
		}
		for _, s := range tc.hasnt {
			if strings.Contains(body, s) {
				t.Errorf("%s: body has %q", name, s)
			}
		}
	}
	// Every answer above on /metrics was counted, 4xx included (in a
	// body rendered afresh: the exporter's own metrics may be 1 s old).
	s.generation.Add(1)
	_, _, body := do("GET", "/metrics")
	for _, want := range []string{
		`promhttp_metric_handler_requests_total{code="200"} 7`,
		`promhttp_metric_handler_requests_total{code="400"} 6`,
		`promhttp_metric_handler_requests_total{code="405"} 2`,
		`promhttp_metric_handler_requests_total{code="503"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("request metrics lack %q:\n%s", want, grepLines(body, "promhttp_metric_handler_requests_total"))
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestPprofFlag: the profiles and their status-page link exist only with
// EnablePprof, and then every link answers.
func TestPprofFlag(t *testing.T) {
	s := newTestScheduler()
	h, err := newHandler(s, handlerOptions{TelemetryPath: "/metrics", EnablePprof: true, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if !strings.Contains(rec.Body.String(), `href="/debug/pprof/"`) {
		t.Errorf("status page lacks the profiling link:\n%s", rec.Body.String())
	}
	for _, u := range []string{"/debug/pprof/heap", "/debug/pprof/", "/metrics", "/-/healthy"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", u, nil))
		if rec.Code != 200 {
			t.Errorf("%s: %d", u, rec.Code)
		}
	}
}

// TestReady: /-/ready is 503 until every collector has published its first
// snapshot (a timed-out first refresh counts), 200 after; /-/healthy is 200
// throughout. (Before the daemon starts the collectors, serve's own check
// answers 503: TestServeEndToEnd.)
func TestReady(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	slow := testJob("slow", &fakeCollector{facts: []string{"slow"}, block: block})
	slow.timeout = 200 * 1e6 // 200 ms
	fast := testJob("fast", &fakeCollector{facts: []string{"fast"}})
	s := newScheduler(discard())
	s.events = make(chan string, 100)
	h, err := newHandler(s, handlerOptions{TelemetryPath: "/metrics", Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	get := func(url string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
		return rec.Code, rec.Body.String()
	}
	s.Start(&collectorSet{jobs: []*job{fast, slow}})
	defer s.Stop()
	waitEvent(t, s.events, "published fast")
	if code, body := get("/-/ready"); code != 503 || !strings.Contains(body, "collector slow has not finished its first refresh") {
		t.Errorf("during the first refresh: %d %q", code, body)
	}
	if code, _ := get("/-/healthy"); code != 200 {
		t.Errorf("healthy during the first refresh: %d", code)
	}
	waitEvent(t, s.events, "published slow") // its timeout
	if code, body := get("/-/ready"); code != 200 {
		t.Errorf("after every first refresh: %d %q", code, body)
	}
}

// TestFilteredSlots: past MaxRequests concurrent filtered renders such a
// scrape gets 503 at once, counted; a filtered scrape whose body is cached
// and a full scrape take no slot.
func TestFilteredSlots(t *testing.T) {
	s := newTestScheduler(testJob("os", &fakeCollector{facts: []string{"os"}}), testJob("kernel", &fakeCollector{facts: []string{"kernel"}}))
	s.RunOnce(t.Context())
	h := newMetricsHandler(s, handlerOptions{TelemetryPath: "/metrics", MaxRequests: 2, Logger: discard()})
	get := func(url string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
		return rec
	}
	if rec := get("/metrics?collect[]=os"); rec.Code != 200 {
		t.Fatalf("first filtered scrape: %d", rec.Code)
	}
	h.inFlight <- struct{}{}
	h.inFlight <- struct{}{}
	rec := get("/metrics?collect[]=kernel")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "limit of 2 concurrent filtered renders") {
		t.Errorf("status %d %q", rec.Code, rec.Body.String())
	}
	// Cached: the same selection, however spelt.
	for _, u := range []string{"/metrics?collect[]=os", "/metrics?exclude[]=kernel", "/metrics?collect[]=os&collect[]=os", "/metrics"} {
		if rec := get(u); rec.Code != 200 {
			t.Errorf("%s with the slots taken: %d", u, rec.Code)
		}
	}
	<-h.inFlight
	<-h.inFlight
	s.generation.Add(1)
	if body := get("/metrics").Body.String(); !strings.Contains(body, `promhttp_metric_handler_requests_total{code="503"} 1`) {
		t.Errorf("503 not counted:\n%s", grepLines(body, "promhttp_metric_handler_requests_total"))
	}
}

func TestCachedBody(t *testing.T) {
	f := &fakeCollector{facts: []string{"before"}}
	s := newTestScheduler(testJob("os", f))
	s.RunOnce(t.Context())
	h, err := newHandler(s, handlerOptions{TelemetryPath: "/metrics", Logger: discard()})
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
	if !strings.Contains(body(get(nil)), `azurelinux_test_fact{n="before"} 1`) {
		t.Error("plain body lacks the fact")
	}
	// A new snapshot is served at once, whatever the cache holds.
	f.facts = []string{"after"}
	s.RunOnce(t.Context())
	if b := body(get(nil)); !strings.Contains(b, `n="after"`) || strings.Contains(b, `n="before"`) {
		t.Error("the cached body outlived the snapshot it was rendered from")
	}
}

// FuzzSelection: any query either is refused with a reason or selects
// enabled collectors, each once, in scheduling order.
func FuzzSelection(f *testing.F) {
	for _, q := range []string{"", "collect[]=os", "exclude[]=os&exclude[]=os", "collect[]=%zz", "collect[]=os&exclude[]=kernel", "a=1&collect[]="} {
		f.Add(q)
	}
	s := newTestScheduler(testJob("os", &fakeCollector{}), testJob("kernel", &fakeCollector{}))
	h := newMetricsHandler(s, handlerOptions{TelemetryPath: "/metrics", Logger: discard()})
	f.Fuzz(func(t *testing.T, q string) {
		sel, err := h.selection(q)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("error without a reason")
			}
			return
		}
		if len(sel) >= 2 || (len(sel) == 1 && sel[0] != "os" && sel[0] != "kernel") {
			t.Fatalf("query %q selected %v", q, sel)
		}
	})
}
