package collectors

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestAzureMetadataHostile: an endpoint that redirects to another host,
// streams an endless body, sends huge headers or puts terminal escapes in
// an error answer (issue 14, network clients). The other host is never
// asked, every case ends within the request timeout, and nothing the server
// sent reaches the error unescaped.
func TestAzureMetadataHostile(t *testing.T) {
	var otherHits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		w.Write([]byte(`{"compute":{"vmId":"x","vmSize":"y"}}`))
	}))
	defer other.Close()
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"redirect to another host", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/metadata/instance", http.StatusTemporaryRedirect)
		}, "HTTP 307"},
		{"endless body", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"compute":{"vmId":"`))
			chunk := []byte(strings.Repeat("a", 64<<10))
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, "answer larger than 1048576 bytes"},
		{"huge headers", func(w http.ResponseWriter, r *http.Request) {
			for i := range 40 {
				w.Header().Add("X-Pad", strings.Repeat("h", 4000)+string(rune('a'+i%26)))
			}
			w.Write([]byte(`{"compute":{"vmId":"x","vmSize":"y"}}`))
		}, "server response headers exceeded 65536 bytes"},
		{"terminal escapes in an error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "busy\r\x1b[2K\x1b[1Aok", http.StatusServiceUnavailable)
		}, `HTTP 503: busy\x0d\x1b[2K\x1b[1Aok`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newIMDS(t, tc.handler)
			o := azureOpts(srv.URL)
			o.RequestTimeout = 5 * time.Second
			start := time.Now()
			m, err := runAzure(t, azureTree, o)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s", took)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
			if err != nil && strings.ContainsAny(err.Error(), "\r\x1b") {
				t.Errorf("error %q holds a control character", err)
			}
			if got := samples(t, m, "azurelinux_azure_metadata_up"); got[""] != 0 {
				t.Errorf("metadata_up = %v, want 0", got)
			}
		})
	}
	if otherHits.Load() != 0 {
		t.Errorf("the other host was asked %d times", otherHits.Load())
	}
}
