// Package fleet builds the fleet compatibility matrix that `azurelinux-probe
// report` renders: the probes' check results, read from a Prometheus server
// over its HTTP API (client_golang api/prometheus/v1), grouped into cohorts
// of hosts that run the same image and kernel.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Options say which Prometheus to ask and about which hosts.
type Options struct {
	// URL is the Prometheus server, e.g. http://prometheus:9090.
	URL string
	// Selector is a series selector without a metric name, e.g.
	// {job="azurelinux-probe"}; empty selects every probe.
	Selector string
	// ByVMSize splits cohorts by Azure VM size as well.
	ByVMSize bool
	// Timeout bounds each query; 0 means 30s.
	Timeout time.Duration
	// Client is the HTTP client (tests); nil means a default one.
	Client *http.Client
}

// Matrix is the report: checks by category, one cell per cohort.
type Matrix struct {
	Generated  time.Time  `json:"generated"`
	Prometheus string     `json:"prometheus"`
	Selector   string     `json:"selector,omitempty"`
	ByVMSize   bool       `json:"by_vm_size,omitempty"`
	Cohorts    []Cohort   `json:"cohorts"`
	Categories []Category `json:"categories"`
	// Regressions counts the checks that pass in one cohort and fail in
	// another.
	Regressions     int              `json:"regressions"`
	KernelLogEvents []CohortEvents   `json:"kernel_log_events,omitempty"`
	NextBoot        []CohortNextBoot `json:"next_boot,omitempty"`
}

// Cohort is a group of hosts with the same image (os-release ID,
// VERSION_ID and VARIANT_ID), kernel release and, optionally, VM size.
type Cohort struct {
	Key    string   `json:"key"`
	Image  string   `json:"image"`
	Kernel string   `json:"kernel"`
	VMSize string   `json:"vm_size,omitempty"`
	Hosts  []string `json:"hosts"`
}

// Category is the rows of one check category.
type Category struct {
	Name string `json:"name"`
	Rows []Row  `json:"rows"`
}

// Row is one check across the cohorts; Cells are in the order of
// Matrix.Cohorts.
type Row struct {
	Check      string `json:"check"`
	Regression bool   `json:"regression"`
	Cells      []Cell `json:"cells"`
}

// Cell is one check in one cohort: how many of the cohort's hosts that
// report the check pass it, and why the others fail. Reporting 0 means no
// host of the cohort evaluates the check (skipped or not loaded there).
type Cell struct {
	Cohort    string        `json:"cohort"`
	Passing   int           `json:"passing"`
	Reporting int           `json:"reporting"`
	Failures  []HostFailure `json:"failures,omitempty"`
	// Regression: the check passes on every host of another cohort and
	// fails on a host of this one.
	Regression bool `json:"regression"`
}

// Class is the cell's colour: pass, fail, partial or none.
func (c Cell) Class() string {
	switch {
	case c.Reporting == 0:
		return "none"
	case c.Passing == c.Reporting:
		return "pass"
	case c.Passing == 0:
		return "fail"
	}
	return "partial"
}

// HostFailure is a host whose check failed, with the reason it exports
// (azurelinux_check_reason_info).
type HostFailure struct {
	Host   string `json:"host"`
	Reason string `json:"reason"`
}

// CohortEvents is the kernel-log events of one category summed over a
// cohort's hosts (azurelinux_kernel_log_events_total, since each boot).
type CohortEvents struct {
	Cohort   string  `json:"cohort"`
	Category string  `json:"category"`
	Events   float64 `json:"events"`
	Hosts    int     `json:"hosts"`
}

// CohortNextBoot is the hosts of a cohort whose next kernel is ready to
// boot, out of those that report one.
type CohortNextBoot struct {
	Cohort    string        `json:"cohort"`
	Ready     int           `json:"ready"`
	Reporting int           `json:"reporting"`
	NotReady  []HostFailure `json:"not_ready,omitempty"`
}

// maxSeries bounds what one query may return: a fleet of thousands of hosts
// with a hundred checks each.
const maxSeries = 500_000

// ErrNoTargets is returned when the selector matches no scraped target.
var ErrNoTargets = errors.New("the selector matches no target that Prometheus scrapes")

// ErrNoProbes is returned when the targets serve no probe metrics.
var ErrNoProbes = errors.New("no azurelinux_check_status series: the selected targets are not azurelinux-probe daemons, or their checks have not run yet")

// matchers returns the inside of the selector's braces.
func matchers(selector string) (string, error) {
	s := strings.TrimSpace(selector)
	if s == "" {
		return "", nil
	}
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return "", fmt.Errorf("selector %q: want label matchers in braces, such as {job=\"azurelinux-probe\"}", selector)
	}
	return strings.TrimSpace(s[1 : len(s)-1]), nil
}

type host struct {
	key, name string
	image     string
	kernel    string
	vmSize    string
}

// Query asks the Prometheus server of o for the probes' facts and builds
// the matrix. Errors say which of the three usual problems it is: the
// server is unreachable, the selector matches nothing, or the targets are
// not probes.
func Query(ctx context.Context, o Options) (*Matrix, error) {
	inner, err := matchers(o.Selector)
	if err != nil {
		return nil, err
	}
	cfg := api.Config{Address: o.URL}
	if o.Client != nil {
		cfg.Client = o.Client
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("prometheus URL %q: %w", o.URL, err)
	}
	promAPI := v1.NewAPI(client)
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	now := time.Now()
	query := func(metric string) (model.Vector, error) {
		qctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		q := metric + "{" + inner + "}"
		v, _, _, err := promAPI.Query(qctx, q, now)
		if err != nil {
			return nil, fmt.Errorf("query %s on Prometheus at %s: %w", q, o.URL, err)
		}
		vec, ok := v.(model.Vector)
		if !ok {
			return nil, fmt.Errorf("query %s: got a %s, want an instant vector", q, v.Type())
		}
		if len(vec) > maxSeries {
			return nil, fmt.Errorf("query %s: %d series, more than %d", q, len(vec), maxSeries)
		}
		return vec, nil
	}
	up, err := query("up")
	if err != nil {
		return nil, err
	}
	if len(up) == 0 {
		return nil, fmt.Errorf("%w (selector %q on %s)", ErrNoTargets, o.Selector, o.URL)
	}
	vecs := map[string]model.Vector{}
	for _, m := range []string{"azurelinux_check_status", "azurelinux_check_reason_info", "azurelinux_os_info",
		"azurelinux_kernel_info", "azurelinux_azure_instance_info", "azurelinux_kernel_log_events_total",
		"azurelinux_boot_kernel_info", "azurelinux_boot_kernel_ready", "azurelinux_boot_next_kernel_not_ready_reason"} {
		if vecs[m], err = query(m); err != nil {
			return nil, err
		}
	}
	if len(vecs["azurelinux_check_status"]) == 0 {
		return nil, fmt.Errorf("%w (selector %q on %s, %d targets)", ErrNoProbes, o.Selector, o.URL, len(up))
	}
	return build(o, vecs, now), nil
}

func hostKey(m model.Metric) string { return string(m["job"]) + "/" + string(m["instance"]) }

// build assembles the matrix from the query results.
// hostsOf gathers the probes of vecs with what puts them in a cohort.
func hostsOf(o Options, vecs map[string]model.Vector) map[string]*host {
	hosts := map[string]*host{}
	get := func(m model.Metric) *host {
		k := hostKey(m)
		h := hosts[k]
		if h == nil {
			h = &host{key: k, name: string(m["instance"])}
			hosts[k] = h
		}
		return h
	}
	for _, s := range vecs["azurelinux_check_status"] {
		get(s.Metric)
	}
	for _, s := range vecs["azurelinux_os_info"] {
		h := get(s.Metric)
		h.image = strings.TrimSpace(string(s.Metric["id"]) + " " + string(s.Metric["version_id"]))
		if v := s.Metric["variant_id"]; v != "" {
			h.image += " (" + string(v) + ")"
		}
	}
	for _, s := range vecs["azurelinux_kernel_info"] {
		get(s.Metric).kernel = string(s.Metric["release"])
	}
	if o.ByVMSize {
		for _, s := range vecs["azurelinux_azure_instance_info"] {
			get(s.Metric).vmSize = string(s.Metric["vm_size"])
		}
	}
	return hosts
}

func build(o Options, vecs map[string]model.Vector, now time.Time) *Matrix {
	hosts := hostsOf(o, vecs)
	cohorts := map[string]*Cohort{}
	cohortOf := map[string]string{}
	for _, h := range hosts {
		img, kern := h.image, h.kernel
		if img == "" {
			img = "unknown image"
		}
		if kern == "" {
			kern = "unknown kernel"
		}
		key := img + " / " + kern
		if o.ByVMSize {
			size := h.vmSize
			if size == "" {
				size = "not on Azure"
			}
			key += " / " + size
		}
		c := cohorts[key]
		if c == nil {
			c = &Cohort{Key: key, Image: img, Kernel: kern, VMSize: h.vmSize}
			cohorts[key] = c
		}
		c.Hosts = append(c.Hosts, h.name)
		cohortOf[h.key] = key
	}
	mx := &Matrix{Generated: now.UTC(), Prometheus: o.URL, Selector: o.Selector, ByVMSize: o.ByVMSize}
	for _, c := range cohorts {
		slices.Sort(c.Hosts)
		mx.Cohorts = append(mx.Cohorts, *c)
	}
	slices.SortFunc(mx.Cohorts, func(a, b Cohort) int { return strings.Compare(a.Key, b.Key) })
	index := map[string]int{}
	for i, c := range mx.Cohorts {
		index[c.Key] = i
	}

	reasons := map[string]string{} // host key + check
	for _, s := range vecs["azurelinux_check_reason_info"] {
		reasons[hostKey(s.Metric)+"\x00"+string(s.Metric["check"])] = string(s.Metric["reason"])
	}
	type rowKey struct{ category, check string }
	rows := map[rowKey][]Cell{}
	for _, s := range vecs["azurelinux_check_status"] {
		rk := rowKey{string(s.Metric["category"]), string(s.Metric["check"])}
		cells := rows[rk]
		if cells == nil {
			cells = make([]Cell, len(mx.Cohorts))
			for i, c := range mx.Cohorts {
				cells[i].Cohort = c.Key
			}
			rows[rk] = cells
		}
		k := hostKey(s.Metric)
		cell := &cells[index[cohortOf[k]]]
		cell.Reporting++
		if s.Value == 1 {
			cell.Passing++
			continue
		}
		reason := reasons[k+"\x00"+rk.check]
		if reason == "" {
			reason = "no reason exported (a probe older than azurelinux_check_reason_info)"
		}
		cell.Failures = append(cell.Failures, HostFailure{Host: hosts[k].name, Reason: reason})
	}
	cats := map[string]*Category{}
	for rk, cells := range rows {
		row := Row{Check: rk.check, Cells: cells}
		passesSomewhere := slices.ContainsFunc(cells, func(c Cell) bool { return c.Class() == "pass" })
		for i := range row.Cells {
			slices.SortFunc(row.Cells[i].Failures, func(a, b HostFailure) int { return strings.Compare(a.Host, b.Host) })
			if passesSomewhere && len(row.Cells[i].Failures) > 0 {
				row.Cells[i].Regression, row.Regression = true, true
			}
		}
		if row.Regression {
			mx.Regressions++
		}
		c := cats[rk.category]
		if c == nil {
			c = &Category{Name: rk.category}
			cats[rk.category] = c
		}
		c.Rows = append(c.Rows, row)
	}
	for _, c := range cats {
		slices.SortFunc(c.Rows, func(a, b Row) int { return strings.Compare(a.Check, b.Check) })
		mx.Categories = append(mx.Categories, *c)
	}
	slices.SortFunc(mx.Categories, func(a, b Category) int { return strings.Compare(a.Name, b.Name) })

	mx.KernelLogEvents = kernelLogByCohort(vecs, cohortOf)
	mx.NextBoot = nextBootByCohort(vecs, cohortOf, hosts)
	return mx
}

// kernelLogByCohort sums the kernel-log events of each cohort by category.
func kernelLogByCohort(vecs map[string]model.Vector, cohortOf map[string]string) []CohortEvents {
	var out []CohortEvents
	type evKey struct{ cohort, category string }
	events := map[evKey]*CohortEvents{}
	for _, s := range vecs["azurelinux_kernel_log_events_total"] {
		c, ok := cohortOf[hostKey(s.Metric)]
		if !ok {
			continue
		}
		ek := evKey{c, string(s.Metric["category"])}
		if events[ek] == nil {
			events[ek] = &CohortEvents{Cohort: c, Category: ek.category}
		}
		events[ek].Events += float64(s.Value)
		events[ek].Hosts++
	}
	for _, e := range events {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b CohortEvents) int {
		return strings.Compare(a.Cohort+"\x00"+a.Category, b.Cohort+"\x00"+b.Category)
	})

	return out
}

// nextBootByCohort counts, per cohort, the hosts whose next-boot kernel is
// ready, and lists the others with their reasons.
func nextBootByCohort(vecs map[string]model.Vector, cohortOf map[string]string, hosts map[string]*host) []CohortNextBoot {
	var out []CohortNextBoot
	next := map[string]string{} // host key: release grub boots next
	for _, s := range vecs["azurelinux_boot_kernel_info"] {
		if s.Metric["next"] == "true" {
			next[hostKey(s.Metric)] = string(s.Metric["release"])
		}
	}
	notReady := map[string][]string{}
	for _, s := range vecs["azurelinux_boot_next_kernel_not_ready_reason"] {
		k := hostKey(s.Metric)
		notReady[k] = append(notReady[k], string(s.Metric["reason"]))
	}
	boot := map[string]*CohortNextBoot{}
	for _, s := range vecs["azurelinux_boot_kernel_ready"] {
		k := hostKey(s.Metric)
		c, ok := cohortOf[k]
		if !ok || next[k] != string(s.Metric["release"]) {
			continue
		}
		b := boot[c]
		if b == nil {
			b = &CohortNextBoot{Cohort: c}
			boot[c] = b
		}
		b.Reporting++
		if s.Value == 1 {
			b.Ready++
			continue
		}
		r := notReady[k]
		slices.Sort(r)
		b.NotReady = append(b.NotReady, HostFailure{Host: hosts[k].name, Reason: next[k] + ": " + strings.Join(r, ", ")})
	}
	for _, b := range boot {
		slices.SortFunc(b.NotReady, func(a, b HostFailure) int { return strings.Compare(a.Host, b.Host) })
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b CohortNextBoot) int { return strings.Compare(a.Cohort, b.Cohort) })
	return out
}
