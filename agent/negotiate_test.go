package agent

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeProtocolHeaders are Prometheus' scrape protocols and the media
// types it asks for them (prometheus/prometheus v0.316.0, config/config.go
// ScrapeProtocolsHeaders).
var scrapeProtocolHeaders = map[string]string{
	"PrometheusProto":      "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
	"PrometheusText0.0.4":  "text/plain;version=0.0.4",
	"PrometheusText1.0.0":  "text/plain;version=1.0.0",
	"OpenMetricsText0.0.1": "application/openmetrics-text;version=0.0.1",
	"OpenMetricsText1.0.0": "application/openmetrics-text;version=1.0.0",
	"OpenMetricsText2.0.0": "application/openmetrics-text;version=2.0.0",
}

// prometheusAccept builds the Accept header Prometheus sends for the scrape
// protocols sps with name escaping scheme, as scrape/scrape.go
// acceptHeader does (v0.316.0): weights from 0.(n+1) down, escaping= only
// on the text formats that carry it, and */* last.
func prometheusAccept(sps []string, scheme string) string {
	var vals []string
	weight := len(scrapeProtocolHeaders) + 1
	for _, sp := range sps {
		val := scrapeProtocolHeaders[sp]
		if sp == "PrometheusText1.0.0" || sp == "OpenMetricsText1.0.0" || sp == "OpenMetricsText2.0.0" {
			val += ";" + model.EscapingKey + "=" + scheme
		}
		val += fmt.Sprintf(";q=0.%d", weight)
		vals = append(vals, val)
		weight--
	}
	vals = append(vals, fmt.Sprintf("*/*;q=0.%d", weight))
	return strings.Join(vals, ",")
}

// Prometheus' protocol lists (config/config.go): the default, and the one
// scrape_native_histograms (or created-timestamp-zero-ingestion) selects.
var (
	defaultScrapeProtocols    = []string{"OpenMetricsText1.0.0", "OpenMetricsText0.0.1", "PrometheusText1.0.0", "PrometheusText0.0.4"}
	protoFirstScrapeProtocols = append([]string{"PrometheusProto"}, defaultScrapeProtocols...)
)

const (
	ctOM1   = "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping="
	ctOM001 = "application/openmetrics-text; version=0.0.1; charset=utf-8; escaping="
	ctText  = "text/plain; version=0.0.4; charset=utf-8; escaping="
	ctProto = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping="
)

// TestNegotiation: every Accept header Prometheus 3 sends, by default, with
// scrape_native_histograms, for each single scrape protocol, with each
// escaping scheme (metric_name_escaping_scheme), and none at all, gets the
// exact Content-Type client_golang's promhttp answers, a body in that format
// that carries the facts, and the requested encoding.
func TestNegotiation(t *testing.T) {
	s := newTestScheduler(testJob("os", &fakeCollector{facts: []string{"a.b"}}))
	s.RunOnce(t.Context())
	h, err := newHandler(s, handlerOptions{TelemetryPath: "/metrics", Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	type tc struct {
		name, accept, want string
	}
	var cases []tc
	for _, esc := range []string{"allow-utf-8", "underscores", "dots", "values"} {
		cases = append(cases,
			tc{"default/" + esc, prometheusAccept(defaultScrapeProtocols, esc), ctOM1 + esc},
			// The delimited protobuf clause has no escaping=: the default.
			tc{"scrape_native_histograms/" + esc, prometheusAccept(protoFirstScrapeProtocols, esc), ctProto + "underscores"},
			tc{"OpenMetricsText1.0.0/" + esc, prometheusAccept([]string{"OpenMetricsText1.0.0"}, esc), ctOM1 + esc},
			// No text 1.0.0 or OpenMetrics 2.0 encoder in prometheus/common
			// yet: */* matches no versioned format (expfmt matchFormat)
			// and the text format 0.0.4 is the fallback, as in promhttp;
			// Prometheus 3 parses it whatever it asked for.
			tc{"PrometheusText1.0.0/" + esc, prometheusAccept([]string{"PrometheusText1.0.0"}, esc), ctText + "underscores"},
			tc{"OpenMetricsText2.0.0/" + esc, prometheusAccept([]string{"OpenMetricsText2.0.0"}, esc), ctText + "underscores"},
		)
	}
	cases = append(cases,
		tc{"PrometheusProto", prometheusAccept([]string{"PrometheusProto"}, "allow-utf-8"), ctProto + "underscores"},
		tc{"PrometheusText0.0.4", prometheusAccept([]string{"PrometheusText0.0.4"}, "allow-utf-8"), ctText + "underscores"},
		tc{"OpenMetricsText0.0.1", prometheusAccept([]string{"OpenMetricsText0.0.1"}, "allow-utf-8"), ctOM001 + "underscores"},
		tc{"no Accept", "", ctText + "underscores"},
		tc{"curl", "*/*", ctText + "underscores"},
		tc{"text explicitly", "text/plain", ctText + "underscores"},
		tc{"unknown type", "application/json", ctText + "underscores"},
	)
	if got := prometheusAccept(defaultScrapeProtocols, "allow-utf-8"); got != "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.7,application/openmetrics-text;version=0.0.1;q=0.6,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.3" {
		t.Fatalf("Prometheus' default Accept header reconstructed wrongly: %s", got)
	}
	for _, c := range cases {
		for _, enc := range []string{"", "identity", "gzip", "zstd,gzip"} {
			t.Run(c.name+"/"+enc, func(t *testing.T) {
				req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
				if c.accept != "" {
					req.Header.Set("Accept", c.accept)
				}
				if enc != "" {
					req.Header.Set("Accept-Encoding", enc)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				resp := rec.Result()
				if ct := resp.Header.Get("Content-Type"); ct != c.want {
					t.Fatalf("Content-Type %q, want %q (Accept %q)", ct, c.want, c.accept)
				}
				wantEnc := map[string]string{"": "", "identity": "", "gzip": "gzip", "zstd,gzip": "zstd"}[enc]
				if got := resp.Header.Get("Content-Encoding"); got != wantEnc {
					t.Fatalf("Content-Encoding %q, want %q", got, wantEnc)
				}
				body := decompress(t, rec.Body.Bytes(), wantEnc)
				if fmt.Sprint(len(rec.Body.Bytes())) != resp.Header.Get("Content-Length") {
					t.Errorf("Content-Length %s for %d bytes", resp.Header.Get("Content-Length"), rec.Body.Len())
				}
				checkBody(t, expfmt.Format(c.want), body)
			})
		}
	}
}

func decompress(t *testing.T, b []byte, enc string) []byte {
	t.Helper()
	var r io.Reader = bytes.NewReader(b)
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkBody parses the body as its format says and finds the fact and a
// counter: text and protobuf with prometheus/common's decoders, OpenMetrics
// by its lines (common has no OpenMetrics parser), where client_golang's
// counters carry their _created line.
func checkBody(t *testing.T, format expfmt.Format, body []byte) {
	t.Helper()
	switch format.FormatType() {
	case expfmt.TypeOpenMetrics:
		s := string(body)
		for _, want := range []string{`azurelinux_test_fact{n="a.b"} 1.0`, "# TYPE promhttp_metric_handler_requests counter",
			`promhttp_metric_handler_requests_created{code="200"} `, "# EOF\n"} {
			if !strings.Contains(s, want) {
				t.Errorf("OpenMetrics body lacks %q", want)
			}
		}
		if !strings.HasSuffix(s, "# EOF\n") {
			t.Error("OpenMetrics body does not end with # EOF")
		}
	default:
		dec := expfmt.NewDecoder(bytes.NewReader(body), format)
		found := map[string]*dto.MetricFamily{}
		for {
			var mf dto.MetricFamily
			if err := dec.Decode(&mf); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("decode %s: %v", format, err)
			}
			found[mf.GetName()] = &mf
		}
		fact := found["azurelinux_test_fact"]
		if fact == nil || len(fact.Metric) != 1 || fact.Metric[0].GetGauge().GetValue() != 1 {
			t.Errorf("fact missing or wrong: %v", fact)
		}
		if format.FormatType() == expfmt.TypeProtoDelim {
			c := found["promhttp_metric_handler_requests_total"]
			if c == nil || c.Metric[0].GetCounter().GetCreatedTimestamp() == nil {
				t.Errorf("protobuf counter without created timestamp: %v", c)
			}
		}
	}
}

func TestNegotiateEncoding(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{"", "identity"},
		{"gzip", "gzip"},
		{"zstd,gzip", "zstd"},
		{"gzip, zstd", "zstd"},
		{"zstd;q=0.5, gzip", "gzip"},
		{"gzip;q=0", "identity"},
		{"gzip;q=0, *", "zstd"},
		{"br", "identity"},
		{"identity", "identity"},
		{"*", "zstd"},
		{"GZIP", "gzip"},
		{"gzip;q=bogus", "identity"},
		{"gzip;q=1.5", "identity"},
		{"deflate, gzip;q=1.0, *;q=0.5", "gzip"},
	} {
		if got := negotiateEncoding(tc.header); got != tc.want {
			t.Errorf("Accept-Encoding %q: %s, want %s", tc.header, got, tc.want)
		}
	}
}

func FuzzNegotiateEncoding(f *testing.F) {
	for _, s := range []string{"", "gzip", "zstd,gzip", "gzip;q=0, *", "a;q=0.5;q=1,,;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		switch negotiateEncoding(h) {
		case encIdentity, encGzip, encZstd:
		default:
			t.Fatalf("unknown encoding for %q", h)
		}
	})
}
