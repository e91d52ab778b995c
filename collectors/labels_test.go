package collectors

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestLabelValuesCapped: every label value a collector emits is valid
// UTF-8 and at most MaxLabelBytes, whatever the host handed it, done once
// where collectors emit (issue 14, output hygiene).
func TestLabelValuesCapped(t *testing.T) {
	f := &Fact{Collector: "test", Name: "label", Labels: []string{"v"},
		desc: prometheus.NewDesc("azurelinux_test_label", "test", []string{"v"}, nil)}
	long := strings.Repeat("a", 412)
	for _, tc := range []struct{ name, in, want string }{
		{"short", "6.18.31-1.3.azl4.x86_64", "6.18.31-1.3.azl4.x86_64"},
		{"exactly the cap", strings.Repeat("b", 256), strings.Repeat("b", 256)},
		{"412 bytes", long, strings.Repeat("a", 253) + "…"},
		{"multi-byte at the cut", strings.Repeat("a", 252) + "中文字", strings.Repeat("a", 252) + "…"},
		{"invalid UTF-8", "bad\xff\xfevalue", "bad\uFFFDvalue"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := []string{tc.in}
			m := &Metrics{}
			m.Set(f, 1, in...)
			if err := m.Err(); err != nil {
				t.Fatal(err)
			}
			if in[0] != tc.in {
				t.Error("the caller's slice was modified")
			}
			var pb dto.Metric
			if err := m.List()[0].Write(&pb); err != nil {
				t.Fatal(err)
			}
			got := pb.GetLabel()[0].GetValue()
			if got != tc.want || len(got) > MaxLabelBytes || !utf8.ValidString(got) {
				t.Errorf("label %q (%d bytes), want %q", got, len(got), tc.want)
			}
		})
	}
}

func FuzzCapLabel(f *testing.F) {
	f.Add(strings.Repeat("é", 200))
	f.Add("a\xffb")
	f.Fuzz(func(t *testing.T, s string) {
		got := capLabel(s)
		if len(got) > MaxLabelBytes || !utf8.ValidString(got) {
			t.Fatalf("capLabel(%q) = %q (%d bytes)", s, got, len(got))
		}
		if len(s) <= MaxLabelBytes && utf8.ValidString(s) && got != s {
			t.Fatalf("capLabel changed a valid short value %q to %q", s, got)
		}
	})
}

// TestLabelGrammar: a label with a grammar (release) that a value fails is
// emitted as "invalid value, N bytes", wherever the fact is set.
func TestLabelGrammar(t *testing.T) {
	f := &Fact{Collector: "test", Name: "release_info", Labels: []string{"release", "other"},
		desc: prometheus.NewDesc("azurelinux_test_release_info", "test", []string{"release", "other"}, nil)}
	for _, tc := range []struct{ in, want string }{
		{"6.18.31-1.3.azl4.x86_64", "6.18.31-1.3.azl4.x86_64"},
		{"5.15.0-1064-azure", "5.15.0-1064-azure"},
		{"", ""},
		{"root:x:0:0:root:/root:/bin/bash", "invalid value, 31 bytes"},
		{"6.18\x1b[2K", "invalid value, 8 bytes"},
	} {
		m := &Metrics{}
		m.Set(f, 1, tc.in, "root:x:0:0")
		var pb dto.Metric
		if err := m.List()[0].Write(&pb); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, l := range pb.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if got["release"] != tc.want || got["other"] != "root:x:0:0" {
			t.Errorf("Set(%q): labels %v, want release %q and other untouched", tc.in, got, tc.want)
		}
	}
}
