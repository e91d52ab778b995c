package agent

import (
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/version"

	"github.com/azurelinux-probe/azurelinux-probe/internal/factsdoc"
	"github.com/azurelinux-probe/azurelinux-probe/internal/fleet"
)

// statusPath is where the status page's data is served as JSON, for
// scripts and for `azurelinux-probe diff` given a probe's URL.
const statusPath = "/status.json"

// hostStatus is the host's status page: what `/` renders and /status.json
// serves. It is built from the scheduler's latest snapshots only (the
// checks job's snapshot included), so that a request never runs a
// collector.
type hostStatus struct {
	Generated  time.Time       `json:"generated"`
	Version    string          `json:"version"`
	Identity   hostIdentity    `json:"identity"`
	Collectors []collectorInfo `json:"collectors"`
	Checks     []checkCategory `json:"checks"`
	// Drift lists the facts that differ from --baseline.file (the checks
	// job's azurelinux_baseline_drift series).
	Drift []factsdoc.Drift `json:"drift"`
	// KernelLogEvents are azurelinux_kernel_log_events_total by category
	// (the kmsg collector), when it is enabled.
	KernelLogEvents []categoryCount `json:"kernel_log_events,omitempty"`
	// NextBoot is azurelinux_boot_kernel_ready per installed kernel, with
	// azurelinux_boot_kernel_not_ready_reason.
	NextBoot []kernelReadiness `json:"next_boot,omitempty"`
	// Facts is the facts document (as `facts --format=json` prints it), so
	// that `diff` compares a probe's URL with a saved document.
	Facts factsdoc.Doc `json:"facts"`
}

// hostIdentity names the host.
type hostIdentity struct {
	OS        string `json:"os"`
	ID        string `json:"id"`
	VersionID string `json:"version_id"`
	Variant   string `json:"variant,omitempty"`
	Kernel    string `json:"kernel"`
	VMSize    string `json:"vm_size,omitempty"`
	Region    string `json:"region,omitempty"`
}

// collectorInfo is one collector's latest refresh.
type collectorInfo struct {
	Name            string    `json:"name"`
	Success         bool      `json:"success"`
	Finished        time.Time `json:"finished,omitzero"`
	DurationSeconds float64   `json:"duration_seconds"`
	Error           string    `json:"error,omitempty"`
}

// checkCategory is the checks of one category.
type checkCategory struct {
	Category string `json:"category"`
	Passed   int    `json:"passed"`
	Failed   int    `json:"failed"`
	// Skipped counts checks that the checks job reports as not
	// applicable (azurelinux_checks_skipped, where the checks expose it).
	Skipped int           `json:"skipped,omitempty"`
	Checks  []checkStatus `json:"checks"`
}

// checkStatus is one check's verdict: "pass" or "fail" (a check that could
// not be judged is a failure whose reason says so).
type checkStatus struct {
	Name    string `json:"name"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason,omitempty"`
}

// categoryCount is a count by category.
type categoryCount struct {
	Category string  `json:"category"`
	Count    float64 `json:"count"`
}

// kernelReadiness is one installed kernel's next-boot readiness.
type kernelReadiness struct {
	Release string   `json:"release"`
	Ready   bool     `json:"ready"`
	Reasons []string `json:"reasons,omitempty"`
}

// buildStatus assembles the status from sched's latest snapshots.
func buildStatus(sched *scheduler) (*hostStatus, error) {
	reports, err := reportsOf(sched)
	if err != nil {
		return nil, err
	}
	snaps := sched.Snapshots()
	st := &hostStatus{Generated: time.Now().UTC(), Version: version.Version, Drift: []factsdoc.Drift{}}
	cats := map[string]*checkCategory{}
	category := func(name string) *checkCategory {
		c := cats[name]
		if c == nil {
			c = &checkCategory{Category: name}
			cats[name] = c
		}
		return c
	}
	reasons := map[string]string{}
	var statuses []sample
	notReady := map[string][]string{}
	for _, r := range reports {
		ci := collectorInfo{Name: r.Name, Success: r.Success, DurationSeconds: r.DurationSeconds, Error: r.Error}
		if s := snaps[r.Name]; s != nil {
			ci.Finished = s.Finished.UTC()
		}
		st.Collectors = append(st.Collectors, ci)
		if r.Name != checksJobName {
			st.Facts.Collectors = append(st.Facts.Collectors, r)
		}
		for _, s := range r.Metrics {
			l := s.Labels
			switch s.Name {
			case "azurelinux_os_info":
				st.Identity.OS, st.Identity.ID, st.Identity.VersionID, st.Identity.Variant =
					l["pretty_name"], l["id"], l["version_id"], l["variant_id"]
			case "azurelinux_kernel_info":
				st.Identity.Kernel = l["release"]
			case "azurelinux_azure_instance_info":
				st.Identity.VMSize, st.Identity.Region = l["vm_size"], l["location"]
			case "azurelinux_check_status":
				statuses = append(statuses, s)
			case "azurelinux_check_reason_info":
				reasons[l["check"]] = l["reason"]
			case "azurelinux_checks_skipped":
				category(l["category"]).Skipped = int(s.Value)
			case "azurelinux_baseline_drift":
				st.Drift = append(st.Drift, factsdoc.Drift{Collector: l["collector"], Fact: l["fact"]})
			case "azurelinux_kernel_log_events_total":
				st.KernelLogEvents = append(st.KernelLogEvents, categoryCount{Category: l["category"], Count: s.Value})
			case "azurelinux_boot_kernel_ready":
				st.NextBoot = append(st.NextBoot, kernelReadiness{Release: l["release"], Ready: s.Value == 1})
			case "azurelinux_boot_kernel_not_ready_reason":
				notReady[l["release"]] = append(notReady[l["release"]], l["reason"])
			}
		}
	}
	for _, s := range statuses {
		c := category(s.Labels["category"])
		cs := checkStatus{Name: s.Labels["check"], Verdict: "pass"}
		if s.Value == 1 {
			c.Passed++
		} else {
			c.Failed++
			cs.Verdict, cs.Reason = "fail", reasons[cs.Name]
		}
		c.Checks = append(c.Checks, cs)
	}
	for _, c := range cats {
		// Failures first, so that what broke is at the top of its group.
		slices.SortFunc(c.Checks, func(a, b checkStatus) int {
			if a.Verdict != b.Verdict {
				return strings.Compare(a.Verdict, b.Verdict) // "fail" < "pass"
			}
			return strings.Compare(a.Name, b.Name)
		})
		st.Checks = append(st.Checks, *c)
	}
	slices.SortFunc(st.Checks, func(a, b checkCategory) int { return strings.Compare(a.Category, b.Category) })
	for i := range st.NextBoot {
		st.NextBoot[i].Reasons = notReady[st.NextBoot[i].Release]
		slices.Sort(st.NextBoot[i].Reasons)
	}
	slices.SortFunc(st.NextBoot, func(a, b kernelReadiness) int { return strings.Compare(a.Release, b.Release) })
	slices.SortFunc(st.KernelLogEvents, func(a, b categoryCount) int { return strings.Compare(a.Category, b.Category) })
	return st, nil
}

// statusPage serves / (the HTML page) and /status.json from sched's
// latest snapshots. links are the page's links: only paths this handler
// serves.
type statusPage struct {
	sched *scheduler
	links []statusLink
}

type statusLink struct{ Path, Text string }

func newStatusPage(sched *scheduler, o handlerOptions) *statusPage {
	p := &statusPage{sched: sched, links: []statusLink{
		{o.TelemetryPath, "Metrics"}, {statusPath, "Status as JSON"},
		{"/-/healthy", "Health"}, {"/-/ready", "Readiness"},
	}}
	if o.EnablePprof {
		p.links = append(p.links, statusLink{"/debug/pprof/", "Profiling"})
	}
	return p
}

func (p *statusPage) serveJSON(w http.ResponseWriter, r *http.Request) {
	st, err := buildStatus(p.sched)
	if err != nil {
		plain(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(st)
}

func (p *statusPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The mux sends every unknown path here: only / is the page, so that
	// a mistyped path answers 404 rather than a copy of the page.
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	st, err := buildStatus(p.sched)
	if err != nil {
		plain(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// The page has no script and loads nothing: inline CSS only.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	statusTemplate.Execute(w, struct {
		*hostStatus
		Links []statusLink
	}{st, p.links})
}

var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.Format(time.RFC3339)
	},
	"secs": func(f float64) string {
		return time.Duration(f * float64(time.Second)).Round(time.Millisecond).String()
	},
}).Parse(statusHTML))

const statusHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>azurelinux-probe: {{.Identity.OS}}</title>
<style>` + fleet.CSS + `</style></head><body>
<h1>azurelinux-probe status</h1>
<nav>{{range .Links}}<a href="{{.Path}}">{{.Text}}</a>{{end}}</nav>
<h2>Host</h2>
<table id="identity">
<tr><th>OS</th><td>{{.Identity.OS}} ({{.Identity.ID}} {{.Identity.VersionID}}{{with .Identity.Variant}}, variant {{.}}{{end}})</td></tr>
<tr><th>Kernel</th><td>{{.Identity.Kernel}}</td></tr>
{{with .Identity.VMSize}}<tr><th>VM size</th><td>{{.}}</td></tr>{{end}}
{{with .Identity.Region}}<tr><th>Region</th><td>{{.}}</td></tr>{{end}}
<tr><th>Probe</th><td>{{.Version}}, page generated {{ts .Generated}}</td></tr>
</table>
<h2>Compatibility matrix</h2>
{{range .Checks}}<h3>{{.Category}}: {{.Passed}} passed, {{.Failed}} failed{{if .Skipped}}, {{.Skipped}} skipped{{end}}</h3>
<table class="checks"><tr><th>Check</th><th>Result</th><th>Reason</th></tr>
{{range .Checks}}<tr class="{{.Verdict}}"><td>{{.Name}}</td><td>{{.Verdict}}</td><td class="reason">{{.Reason}}</td></tr>
{{end}}</table>
{{else}}<p>No checks have been evaluated yet.</p>
{{end}}
<h2>Drift against the baseline</h2>
{{if .Drift}}<table id="drift"><tr><th>Collector</th><th>Fact</th></tr>
{{range .Drift}}<tr class="fail"><td>{{.Collector}}</td><td><code>{{.Fact}}</code></td></tr>
{{end}}</table>{{else}}<p>No fact differs from the baseline (or no --baseline.file is set).</p>{{end}}
{{if .NextBoot}}<h2>Next boot readiness</h2>
<table id="nextboot"><tr><th>Kernel</th><th>Ready</th><th>Why not</th></tr>
{{range .NextBoot}}<tr class="{{if .Ready}}pass{{else}}fail{{end}}"><td>{{.Release}}</td><td>{{if .Ready}}ready{{else}}not ready{{end}}</td><td class="reason">{{range .Reasons}}{{.}} {{end}}</td></tr>
{{end}}</table>{{end}}
{{if .KernelLogEvents}}<h2>Kernel log events since boot</h2>
<table id="kmsg"><tr><th>Category</th><th>Events</th></tr>
{{range .KernelLogEvents}}<tr><td>{{.Category}}</td><td>{{.Count}}</td></tr>
{{end}}</table>{{end}}
<h2>Collectors</h2>
<table id="collectors"><tr><th>Collector</th><th>Health</th><th>Last refresh</th><th>Duration</th><th>Last error</th></tr>
{{range .Collectors}}<tr class="{{if .Success}}pass{{else}}fail{{end}}"><td>{{.Name}}</td><td>{{if .Success}}ok{{else}}failed{{end}}</td><td>{{ts .Finished}}</td><td>{{secs .DurationSeconds}}</td><td class="reason">{{.Error}}</td></tr>
{{end}}</table>
</body></html>
`
