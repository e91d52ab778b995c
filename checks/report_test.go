package checks

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/factsdoc"
)

var sampleReport = &Report{
	Results: []Result{
		{Name: "kernel-series-6.18", Category: "golden_image", Kind: "fact", Source: "embedded:x.yml:3", Pass: true,
			Reason: `azurelinux_kernel_info{series="6.18"} 1`, Duration: 2 * time.Millisecond},
		{Name: "rpm-6", Category: "package_manager", Description: "rpm is at least 6.0", Kind: "rpm", Source: "embedded:x.yml:9",
			Reason: "rpm-4.18.2-1.azl3.x86_64 is older than 6.0"},
		{Name: "bootstrap", Category: "golden_image", Kind: "exec", Source: "/etc/azurelinux-probe/checks.d/team.yml:2",
			Reason: "/opt/b.sh: exit status 1: bad \x1b[31mcolour\x1b[0m & <xml>"},
	},
	Baseline: "base.json",
	Drift:    []factsdoc.Drift{{Collector: "kernel", Fact: "azurelinux_kernel_info", Was: `{release="6.18.5"}`, Now: `{release="6.18.31"}`}},
}

func TestReportTable(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport.Write(&b, "table"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"CHECK               CATEGORY         RESULT  REASON",
		"kernel-series-6.18  golden_image     pass    azurelinux_kernel_info{series=\"6.18\"} 1",
		"rpm-6               package_manager  FAIL    rpm-4.18.2-1.azl3.x86_64 is older than 6.0",
		"3 checks: 1 passed, 2 failed",
		"baseline base.json: 1 facts drifted",
		`kernel     azurelinux_kernel_info  {release="6.18.5"}  {release="6.18.31"}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if sampleReport.Failed() != 3 {
		t.Errorf("Failed() = %d, want 2 checks + 1 drift", sampleReport.Failed())
	}
}

func TestReportJSON(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport.Write(&b, "json"); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Checks []struct {
			Name, Category, Reason string
			Pass                   bool
		}
		Drift   []factsdoc.Drift
		Summary struct{ Checks, Passed, Failed, Drifted int }
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Checks) != 3 || got.Checks[1].Name != "rpm-6" || got.Checks[1].Pass || got.Summary.Failed != 2 || got.Summary.Drifted != 1 {
		t.Errorf("json: %+v", got)
	}
}

// JUnitSuites is the subset of the JUnit schema that CI systems read.
type JUnitSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Cases    []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Time      string `xml:"time,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// ParseJUnit parses JUnit XML strictly.
func ParseJUnit(b []byte) (*JUnitSuites, error) {
	var s JUnitSuites
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	if err := dec.Decode(&s); err != nil {
		return nil, err
	}
	return &s, nil
}

func TestReportJUnit(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport.Write(&b, "junit"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Errorf("no XML declaration:\n%s", b.String())
	}
	s, err := ParseJUnit(b.Bytes())
	if err != nil {
		t.Fatalf("invalid XML: %v\n%s", err, b.String())
	}
	if s.Tests != 4 || s.Failures != 3 || len(s.Suites) != 3 {
		t.Fatalf("tests %d failures %d suites %d, want 4, 3, 3", s.Tests, s.Failures, len(s.Suites))
	}
	gi := s.Suites[0]
	if gi.Name != "golden_image" || gi.Tests != 2 || gi.Failures != 1 || gi.Cases[0].Failure != nil || gi.Cases[0].Time != "0.002" {
		t.Errorf("golden_image suite: %+v", gi)
	}
	f := gi.Cases[1].Failure
	if f == nil || f.Type != "exec" || !strings.Contains(f.Message, "bad ?[31mcolour?[0m & <xml>") ||
		!strings.Contains(f.Text, "defined at /etc/azurelinux-probe/checks.d/team.yml:2") {
		t.Errorf("bootstrap failure: %+v", f)
	}
	if pm := s.Suites[1]; pm.Cases[0].Classname != "azurelinux-probe.package_manager" || !strings.Contains(pm.Cases[0].Failure.Text, "rpm is at least 6.0") {
		t.Errorf("package_manager suite: %+v", pm)
	}
	if bl := s.Suites[2]; bl.Name != "baseline" || bl.Failures != 1 || bl.Cases[0].Failure.Type != "drift" {
		t.Errorf("baseline suite: %+v", bl)
	}
}

// TestReportTableEscapesControl: terminal escapes and carriage returns in
// a reason or a drifted value (image content) are printed escaped, so they
// cannot erase or rewrite the table's lines (issue 14, case 6).
func TestReportTableEscapesControl(t *testing.T) {
	r := &Report{
		Results: []Result{
			{Name: "os-azurelinux-4.0", Category: "golden_image", Pass: false,
				Reason: "ID=evil\r\x1b[2K\x1b[1Aos-azurelinux-4.0 golden_image pass"},
		},
		Baseline: "b.json",
		Drift:    []factsdoc.Drift{{Collector: "os", Fact: "azurelinux_os_info\x1b]0;title\x07", Was: "{a=\"\x1b[8m\"}", Now: "x\u009b2J"}},
	}
	var b bytes.Buffer
	if err := r.Write(&b, "table"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.ContainsAny(out, "\r\x1b\x07\u009b") {
		t.Errorf("table holds a control character:\n%q", out)
	}
	for _, want := range []string{`ID=evil \x1b[2K\x1b[1Aos-azurelinux-4.0`, `azurelinux_os_info\x1b]0;title\x07`, `\u009b2J`} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
