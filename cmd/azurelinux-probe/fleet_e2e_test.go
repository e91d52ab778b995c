package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/agent"
	"github.com/azurelinux-probe/azurelinux-probe/internal/fleet"
)

// fleetTrees are the four probes of the fleet tests: Azure Linux 3.0, 4.0,
// 4.0 whose GPU lost its driver, and 4.0 on bare metal.
var fleetTrees = []string{"azl3", "azl4-azure-gen2", "azure-gpu-nodriver", "azl4-baremetal"}

// fleet is four probes serving fixture trees and a Prometheus scraping them
// (and itself, as a target that is not a probe).
type fleetEnv struct {
	prom   string
	probes map[string]*probe // by tree
}

func startFleet(t *testing.T, prometheus string) *fleetEnv {
	t.Helper()
	dir := t.TempDir()
	f := &fleetEnv{probes: map[string]*probe{}}
	var targets []string
	for _, tree := range fleetTrees {
		root, _ := filepath.Abs(filepath.Join(treesDir, tree))
		// No azure collector: it would ask the real instance metadata
		// address, which no test may do.
		p := startProbe(t, "--web.listen-address=127.0.0.1:0", "--path.rootfs="+root, "--no-collector.azure",
			"--checks.interval=1s", "--checks.timeout=1s", "--checks.dir="+t.TempDir())
		f.probes[tree] = p
		targets = append(targets, fmt.Sprintf("%q", p.addr))
	}
	f.prom = freeAddr(t)
	config := filepath.Join(dir, "prometheus.yml")
	writeFile(t, config, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: azurelinux-probe
    static_configs: [{targets: [%s]}]
  - job_name: prometheus
    static_configs: [{targets: [%q]}]
`, strings.Join(targets, ", "), f.prom))
	startPrometheus(t, prometheus, config, dir, f.prom)
	// Every probe's checks scraped (Prometheus runs on its own clock: poll
	// its API with a deadline).
	deadline := time.Now().Add(90 * time.Second)
	for {
		var v struct {
			Data struct {
				Result []json.RawMessage `json:"result"`
			} `json:"data"`
		}
		q := `count by (instance) (azurelinux_check_status{job="azurelinux-probe"}) and on () count(up{job="prometheus"} == 1) == 1`
		resp, err := http.Get("http://" + f.prom + "/api/v1/query?query=" + url.QueryEscape(q))
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
		}
		if len(v.Data.Result) == len(fleetTrees) {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("the four probes' checks not in Prometheus within 90s (%d instances)", len(v.Data.Result))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func runReport(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := agent.Main(append([]string{"report"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// TestFleetReport: a real Prometheus (2.42 and 3.x) scrapes four probes
// serving the 3.0, 4.0, 4.0-without-GPU-driver and bare-metal trees;
// `report` builds the matrix in every format: the cells, the regressions
// between 3.0 and 4.0 and the reasons are those the trees cause. The HTML
// report and a probe's status page are opened in headless Chromium.
func TestFleetReport(t *testing.T) {
	for major, prometheus := range prometheusTool(t, "prometheus") {
		t.Run(major, func(t *testing.T) { fleetReport(t, major, prometheus) })
	}
}

func fleetReport(t *testing.T, major, prometheus string) {
	f := startFleet(t, prometheus)
	promURL := "http://" + f.prom
	sel := `--selector={job="azurelinux-probe"}`

	code, out, stderr := runReport(t, "--prometheus.url="+promURL, sel, "--format=json")
	if code != 1 {
		t.Fatalf("report --format=json: exit %d (want 1: there are regressions)\n%s", code, stderr)
	}
	var mx fleet.Matrix
	if err := json.Unmarshal([]byte(out), &mx); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	cohortOf := map[string]int{} // tree -> column
	for i, c := range mx.Cohorts {
		for _, h := range c.Hosts {
			for tree, p := range f.probes {
				if p.addr == h {
					cohortOf[tree] = i
				}
			}
		}
	}
	if len(cohortOf) != len(fleetTrees) {
		t.Fatalf("cohorts %+v do not hold the four probes", mx.Cohorts)
	}
	if c := mx.Cohorts[cohortOf["azl3"]]; !strings.HasPrefix(c.Image, "azurelinux 3.0") || len(c.Hosts) != 1 {
		t.Errorf("the 3.0 cohort: %+v", c)
	}
	if cohortOf["azl3"] == cohortOf["azl4-azure-gen2"] {
		t.Errorf("3.0 and 4.0 in one cohort: %+v", mx.Cohorts)
	}
	cell := func(check, tree string) fleet.Cell {
		for _, cat := range mx.Categories {
			for _, r := range cat.Rows {
				if r.Check == check {
					return r.Cells[cohortOf[tree]]
				}
			}
		}
		t.Fatalf("no row %s", check)
		return fleet.Cell{}
	}
	// The 4.0 checks pass on every 4.0 VM (the gen2 VM and bare metal run
	// one kernel: one cohort) and fail on 3.0: regressions, with the 3.0
	// host and the reason its probe exports.
	for _, check := range []string{"os-azurelinux-4.0", "kernel-series-6.18"} {
		c3, c4 := cell(check, "azl3"), cell(check, "azl4-azure-gen2")
		if c3.Text() != "0/1" || !c3.Regression || c4.Text() != "2/2" || c4.Regression {
			t.Errorf("%s: 3.0 %+v, 4.0 %+v", check, c3, c4)
		}
		if len(c3.Failures) != 1 || c3.Failures[0].Host != f.probes["azl3"].addr || !strings.Contains(c3.Failures[0].Reason, "found azurelinux_") {
			t.Errorf("%s: failures %+v", check, c3.Failures)
		}
	}
	// The sqlite rpmdb: only the gen2 tree has one, so its cohort is
	// partial (1/2) and the check is no regression; the 3.0 reason says
	// where it looked.
	rpmdb := cell("rpmdb-sqlite", "azl3")
	if rpmdb.Text() != "0/1" || rpmdb.Regression || cell("rpmdb-sqlite", "azl4-azure-gen2").Class() != "partial" ||
		len(rpmdb.Failures) != 1 || rpmdb.Failures[0].Reason != "/usr/lib/sysimage/rpm/rpmdb.sqlite does not exist" {
		t.Errorf("rpmdb-sqlite: %+v", rpmdb)
	}
	if mx.Regressions < 3 {
		t.Errorf("%d regressions", mx.Regressions)
	}
	// The GPU whose driver is gone fails the drivers check on that host
	// only: its reason names the device.
	gpu := cell("gpus-bound", "azure-gpu-nodriver")
	if gpu.Text() != "0/1" || !gpu.Regression || len(gpu.Failures) != 1 || gpu.Failures[0].Host != f.probes["azure-gpu-nodriver"].addr ||
		!strings.Contains(gpu.Failures[0].Reason, `driver=""`) {
		t.Errorf("gpus-bound on the GPU without driver: %+v", gpu)
	}
	gpuReason := ""
	if len(gpu.Failures) > 0 {
		gpuReason = gpu.Failures[0].Reason
	}
	rpmReason := cell("rpmdb-sqlite", "azl3").Failures[0].Reason

	code, md, _ := runReport(t, "--prometheus.url="+promURL, sel, "--format=markdown")
	if code != 1 || !strings.Contains(md, "| **os-azurelinux-4.0** ⚠️ regression | **❌ 0/1** ⚠️ |") ||
		!strings.Contains(md, "| rpmdb-sqlite | ❌ 0/1 |") ||
		!strings.Contains(md, "- `rpmdb-sqlite` on "+f.probes["azl3"].addr+" (azurelinux 3.0 / 6.6.104.2-4.azl3): /usr/lib/sysimage/rpm/rpmdb.sqlite does not exist") {
		t.Errorf("markdown (exit %d):\n%s", code, md)
	}
	code, page, _ := runReport(t, "--prometheus.url="+promURL, sel, "--format=html")
	if code != 1 || !strings.Contains(page, "<style>") || strings.Contains(page, "<script") || regexp.MustCompile(`(src|href)="http`).MatchString(page) {
		t.Errorf("html is not one self-contained file (exit %d)", code)
	}

	// In a real browser: the cells, the regression marks and the reasons
	// are on the rendered page.
	shots := os.Getenv("FLEET_SCREENSHOTS") // make screenshots: where the README's pictures go
	if shots == "" {
		shots = t.TempDir()
	}
	reportFile := filepath.Join(t.TempDir(), "report.html")
	writeFile(t, reportFile, page)
	text := browserText(t, "file://"+reportFile, filepath.Join(shots, "report-"+major+".png"))
	for _, want := range []string{"os-azurelinux-4.0 (regression) 0/1 regression " + f.probes["azl3"].addr, "rpmdb-sqlite 0/1 " + f.probes["azl3"].addr, f.probes["azl3"].addr + ": " + firstWords(rpmReason), firstWords(gpuReason)} {
		if !strings.Contains(text, want) {
			t.Errorf("the report in Chromium lacks %q:\n%s", want, text)
		}
	}
	status := browserText(t, "http://"+f.probes["azl3"].addr+"/", filepath.Join(shots, "status-"+major+".png"))
	for _, want := range []string{"Compatibility matrix", "rpmdb-sqlite fail " + firstWords(rpmReason), "Azure Linux 3.0", "Collectors"} {
		if !strings.Contains(status, want) {
			t.Errorf("the status page in Chromium lacks %q:\n%s", want, status)
		}
	}

	// The three errors a user meets, each in words.
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"unreachable":  {[]string{"--prometheus.url=http://" + freeAddr(t)}, "connection refused"},
		"no targets":   {[]string{"--prometheus.url=" + promURL, `--selector={job="nosuch"}`}, "matches no target"},
		"not probes":   {[]string{"--prometheus.url=" + promURL, `--selector={job="prometheus"}`}, "not azurelinux-probe daemons"},
		"bad selector": {[]string{"--prometheus.url=" + promURL, `--selector=job="x"`}, "label matchers in braces"},
	} {
		code, _, stderr := runReport(t, append(tc.args, "--format=json", "--timeout=10s")...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q, want %q", name, code, stderr, tc.want)
		}
	}
}

// firstWords is the start of a reason, up to where the browser may wrap
// or the template may escape it differently.
func firstWords(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 30 {
		s = s[:30]
	}
	return s
}

// browserText opens u in headless Chromium (Debian's chromium), saves a
// screenshot to png and returns the page's text as rendered into the DOM
// (tags removed, whitespace folded).
func browserText(t *testing.T, u, png string) string {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium not installed")
		}
		t.Skip("chromium not installed (make test installs it)")
	}
	profile := t.TempDir()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=" + profile}
	run := func(extra ...string) []byte {
		cmd := exec.Command(chromium, append(args, extra...)...)
		cmd.Dir = profile
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		done := make(chan struct{})
		timer := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill(); close(done) })
		out, err := cmd.Output()
		if !timer.Stop() {
			<-done
		}
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", extra, err, stderr.String())
		}
		return out
	}
	dom := run("--dump-dom", u)
	run("--screenshot="+png, "--window-size=1600,1400", "--hide-scrollbars", u)
	if st, err := os.Stat(png); err != nil || st.Size() == 0 {
		t.Errorf("no screenshot %s: %v", png, err)
	}
	body := regexp.MustCompile(`(?s)<(style|script)[^>]*>.*?</(style|script)>`).ReplaceAll(dom, nil)
	text := regexp.MustCompile(`<[^>]*>`).ReplaceAll(body, []byte(" "))
	return strings.Join(strings.Fields(html.UnescapeString(string(text))), " ")
}
