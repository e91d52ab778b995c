package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// TestStatusPageLinks: every link on the status page answers 200 (the
// profiling link only exists with EnablePprof), an unknown path is 404 and
// not a copy of the page, and /status.json is the same data as JSON.
func TestStatusPageLinks(t *testing.T) {
	for _, pprof := range []bool{false, true} {
		s := newTestScheduler(testJob("os", &fakeCollector{facts: []string{"os"}}))
		s.RunOnce(t.Context())
		h, err := newHandler(s, handlerOptions{TelemetryPath: "/metrics", EnablePprof: pprof, Logger: discard()})
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
		code, body := get(statusPath)
		var st hostStatus
		if code != 200 || json.Unmarshal([]byte(body), &st) != nil {
			t.Fatalf("%s: %d %s", statusPath, code, body)
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

// emitCollector emits the named facts (declared by the collectors) with
// their values and labels, then fails with err.
type emitCollector struct {
	emit []emitted
	err  error
}

type emitted struct {
	name   string
	value  float64
	labels []string
}

func (e *emitCollector) Update(_ context.Context, m *collectors.Metrics) error {
	for _, x := range e.emit {
		f, ok := collectors.LookupFact(x.name)
		if !ok {
			panic("undeclared " + x.name)
		}
		m.Set(f, x.value, x.labels...)
	}
	return e.err
}

// TestStatusContent: the page and the JSON say what the snapshots hold:
// the identity, a failed check with its reason (failures first in their
// category), next-boot readiness with the reason, and a failed collector's
// error in words; the HTML escapes what came from the host.
func TestStatusContent(t *testing.T) {
	os := testJob("os", &emitCollector{emit: []emitted{
		{"azurelinux_os_info", 1, []string{"azurelinux", "", "Microsoft Azure Linux", "Microsoft Azure Linux 4.0 <beta>", "4.0", "4.0", "cloud", "", ""}},
	}})
	boot := testJob("boot", &emitCollector{emit: []emitted{
		{"azurelinux_boot_kernel_ready", 0, []string{"6.18.40-1.azl4.x86_64"}},
		{"azurelinux_boot_kernel_not_ready_reason", 1, []string{"6.18.40-1.azl4.x86_64", "missing:nvidia"}},
	}, err: errors.New("boot: reading /boot/grub2/grubenv: permission denied")})
	checksJob := testJob(checksJobName, &emitCollector{emit: []emitted{
		{"azurelinux_check_status", 1, []string{"kernel-btf", "security_agent"}},
		{"azurelinux_check_status", 0, []string{"selinux-enforcing", "security_agent"}},
		{"azurelinux_check_reason_info", 1, []string{"selinux-enforcing", "security_agent", "azurelinux_selinux_mode 0"}},
	}})
	s := newTestScheduler(os, boot, checksJob)
	s.RunOnce(t.Context())
	st, err := buildStatus(s)
	if err != nil {
		t.Fatal(err)
	}
	if st.Identity.OS != "Microsoft Azure Linux 4.0 <beta>" || st.Identity.Variant != "cloud" || st.Identity.VersionID != "4.0" {
		t.Errorf("identity %+v", st.Identity)
	}
	if len(st.Checks) != 1 || st.Checks[0].Passed != 1 || st.Checks[0].Failed != 1 ||
		st.Checks[0].Checks[0] != (checkStatus{Name: "selinux-enforcing", Verdict: "fail", Reason: "azurelinux_selinux_mode 0"}) {
		t.Errorf("checks %+v", st.Checks)
	}
	if len(st.NextBoot) != 1 || st.NextBoot[0].Ready || len(st.NextBoot[0].Reasons) != 1 || st.NextBoot[0].Reasons[0] != "missing:nvidia" {
		t.Errorf("next boot %+v", st.NextBoot)
	}
	for _, c := range st.Collectors {
		if c.Name == "boot" && (c.Success || !strings.Contains(c.Error, "permission denied")) {
			t.Errorf("boot collector %+v", c)
		}
	}
	h, _ := newHandler(s, handlerOptions{TelemetryPath: "/metrics", Logger: discard()})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	page := rec.Body.String()
	for _, want := range []string{"Microsoft Azure Linux 4.0 &lt;beta&gt;", `<td>selinux-enforcing</td><td>fail</td><td class="reason">azurelinux_selinux_mode 0</td>`,
		"security_agent: 1 passed, 1 failed", "6.18.40-1.azl4.x86_64</td><td>not ready</td><td class=\"reason\">missing:nvidia", "reading /boot/grub2/grubenv: permission denied"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<beta>") || strings.Contains(page, "<script") {
		t.Error("host data not escaped, or a script on the page")
	}
}
