package agent

import (
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestStatusPageLinks: every link on the status page answers 200 (the
// profiling link only exists with EnablePprof), an unknown path is 404 and
// not a copy of the page, and /status.json is the same data as JSON.
func TestStatusPageLinks(t *testing.T) {
	for _, pprof := range []bool{false, true} {
		s := newTestScheduler(testJob("os", &fakeCollector{facts: []string{"os"}}))
		s.RunOnce(t.Context())
		h, err := NewHandler(s, HandlerOptions{TelemetryPath: "/metrics", EnablePprof: pprof, Logger: discard()})
		if err != nil {
			t.Fatal(err)
		}
		get := func(u string) (int, string) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", u, nil))
			return rec.Code, rec.Body.String()
		}
		code, page := get("/")
		if code != 200 {
			t.Fatalf("/: %d", code)
		}
		links := regexp.MustCompile(`href="([^"]+)"`).FindAllStringSubmatch(page, -1)
		if len(links) < 4 {
			t.Errorf("pprof=%v: only %d links", pprof, len(links))
		}
		for _, l := range links {
			if code, _ := get(l[1]); code != 200 {
				t.Errorf("pprof=%v: link %s answers %d", pprof, l[1], code)
			}
		}
		if got := strings.Contains(page, "/debug/pprof/"); got != pprof {
			t.Errorf("pprof=%v: profiling link present=%v", pprof, got)
		}
		if code, _ := get("/no-such-page"); code != 404 {
			t.Errorf("unknown path: %d, want 404", code)
		}
		code, body := get(StatusPath)
		var st Status
		if code != 200 || json.Unmarshal([]byte(body), &st) != nil {
			t.Fatalf("%s: %d %s", StatusPath, code, body)
		}
		if len(st.Collectors) != 1 || st.Collectors[0].Name != "os" || !st.Collectors[0].Success || len(st.Facts.Collectors) != 1 {
			t.Errorf("status collectors: %+v", st.Collectors)
		}
	}
}

func TestCapReason(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"short", "short"},
		{"two\nlines\t tabbed", "two lines tabbed"},
		{strings.Repeat("é", 200), strings.Repeat("é", 78) + "…"},
	} {
		got := capReason(tc.in)
		if got != tc.want || len(got) > maxReasonLen {
			t.Errorf("capReason(%.20q) = %q (%d bytes)", tc.in, got, len(got))
		}
	}
}
