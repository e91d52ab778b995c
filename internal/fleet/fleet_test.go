package fleet

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

func sample(v float64, labels ...string) *model.Sample {
	m := model.Metric{}
	for i := 0; i+1 < len(labels); i += 2 {
		m[model.LabelName(labels[i])] = model.LabelValue(labels[i+1])
	}
	return &model.Sample{Metric: m, Value: model.SampleValue(v)}
}

// fleetOf is two cohorts: two Azure Linux 3.0 hosts that pass
// rpmdb-sqlite, and an Azure Linux 4.0 host that fails it.
func fleetOf() map[string]model.Vector {
	host := func(inst, id, ver, kernel string) []string { return []string{"job", "p", "instance", inst} }
	v := map[string]model.Vector{}
	for _, h := range []struct{ inst, ver, kernel string }{
		{"a:1", "3.0", "6.6.1.azl3"}, {"b:1", "3.0", "6.6.1.azl3"}, {"c:1", "4.0", "6.18.3.azl4"},
	} {
		l := host(h.inst, "azurelinux", h.ver, h.kernel)
		v["azurelinux_os_info"] = append(v["azurelinux_os_info"], sample(1, append(l, "id", "azurelinux", "version_id", h.ver)...))
		v["azurelinux_kernel_info"] = append(v["azurelinux_kernel_info"], sample(1, append(l, "release", h.kernel)...))
		pass := 1.0
		if h.ver == "4.0" {
			pass = 0
			v["azurelinux_check_reason_info"] = append(v["azurelinux_check_reason_info"],
				sample(1, append(l, "check", "rpmdb-sqlite", "category", "vuln_scanner", "reason", "no rpmdb.sqlite")...))
		}
		v["azurelinux_check_status"] = append(v["azurelinux_check_status"],
			sample(pass, append(l, "check", "rpmdb-sqlite", "category", "vuln_scanner")...),
			sample(0, append(l, "check", "fips-mode", "category", "fips_crypto")...))
	}
	return v
}

func TestBuildMatrix(t *testing.T) {
	mx := build(Options{URL: "http://prom"}, fleetOf(), time.Unix(0, 0))
	if len(mx.Cohorts) != 2 || mx.Cohorts[0].Key != "azurelinux 3.0 / 6.6.1.azl3" || len(mx.Cohorts[0].Hosts) != 2 {
		t.Fatalf("cohorts: %+v", mx.Cohorts)
	}
	if mx.Regressions != 1 || len(mx.Categories) != 2 {
		t.Fatalf("regressions %d categories %+v", mx.Regressions, mx.Categories)
	}
	fips, vuln := mx.Categories[0].Rows[0], mx.Categories[1].Rows[0]
	if fips.Regression || fips.Cells[0].Text() != "0/2" || fips.Cells[0].Class() != "fail" {
		t.Errorf("fips row (fails everywhere, no regression): %+v", fips)
	}
	if !vuln.Regression || vuln.Cells[0].Text() != "2/2" || vuln.Cells[1].Text() != "0/1" || !vuln.Cells[1].Regression {
		t.Errorf("rpmdb row: %+v", vuln)
	}
	if f := vuln.Cells[1].Failures; len(f) != 1 || f[0].Host != "c:1" || f[0].Reason != "no rpmdb.sqlite" {
		t.Errorf("failures: %+v", f)
	}
	for _, format := range []string{"html", "markdown", "json"} {
		var b bytes.Buffer
		if err := mx.Write(&b, format); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"rpmdb-sqlite", "c:1: no rpmdb.sqlite", "1 regressions"} {
			if format == "json" {
				continue
			}
			if format == "markdown" && want == "c:1: no rpmdb.sqlite" {
				want = "on c:1 (azurelinux 4.0 / 6.18.3.azl4): no rpmdb.sqlite"
			}
			if !strings.Contains(b.String(), want) {
				t.Errorf("%s lacks %q:\n%s", format, want, b.String())
			}
		}
		if format == "json" && !json.Valid(b.Bytes()) {
			t.Errorf("invalid json")
		}
	}
}

func TestSelector(t *testing.T) {
	for sel, want := range map[string]string{"": "", `{job="x"}`: `job="x"`, ` { a="b", c=~"d" } `: `a="b", c=~"d"`, `job="x"`: "error"} {
		got, err := matchers(sel)
		if (err != nil) != (want == "error") || (err == nil && got != want) {
			t.Errorf("matchers(%q) = %q, %v", sel, got, err)
		}
	}
}

// TestByVMSize: --by-vm-size splits a cohort by the Azure VM size and the
// HTML report gets the column; hosts off Azure form their own cohort.
func TestByVMSize(t *testing.T) {
	v := fleetOf()
	v["azurelinux_azure_instance_info"] = model.Vector{
		sample(1, "job", "p", "instance", "a:1", "vm_size", "Standard_D8s_v5"),
		sample(1, "job", "p", "instance", "b:1", "vm_size", "Standard_NC24ads_A100_v4"),
	}
	mx := build(Options{URL: "http://prom", ByVMSize: true}, v, time.Unix(0, 0))
	var keys []string
	for _, c := range mx.Cohorts {
		keys = append(keys, c.Key)
	}
	want := []string{"azurelinux 3.0 / 6.6.1.azl3 / Standard_D8s_v5", "azurelinux 3.0 / 6.6.1.azl3 / Standard_NC24ads_A100_v4", "azurelinux 4.0 / 6.18.3.azl4 / not on Azure"}
	if strings.Join(keys, "|") != strings.Join(want, "|") {
		t.Errorf("cohorts %q, want %q", keys, want)
	}
	var b bytes.Buffer
	if err := mx.Write(&b, "html"); err != nil || !strings.Contains(b.String(), "<th>VM size</th>") || !strings.Contains(b.String(), "<td>Standard_D8s_v5</td>") {
		t.Errorf("html: %v", err)
	}
}
