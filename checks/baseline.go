package checks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// FactsDoc is the document `azurelinux-probe facts --format=json` prints and
// `baseline save` writes: every collector with its samples, in a stable,
// sorted order.
type FactsDoc struct {
	Collectors []CollectorFacts `json:"collectors"`
}

// CollectorFacts is one collector's refresh in a FactsDoc.
type CollectorFacts struct {
	Name            string   `json:"name"`
	Success         bool     `json:"success"`
	Error           string   `json:"error,omitempty"`
	DurationSeconds float64  `json:"duration_seconds"`
	Metrics         []Sample `json:"metrics"`
}

// Sample is one series in a FactsDoc.
type Sample struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
}

// String renders the sample as name{a="b",...} with sorted labels.
func (s Sample) String() string { return Series(s).String() }

// maxBaselineSize bounds a baseline file; a real one is tens of kilobytes.
const maxBaselineSize = 64 << 20

// LoadBaseline reads a baseline written by `baseline save`. A file that is
// not one (empty, truncated, corrupt, or not a facts document) is an error
// that says so; the file is only ever read.
func LoadBaseline(path string) (*FactsDoc, error) {
	// Non-blocking and regular files only: a FIFO as --baseline.file must
	// not hang `check` or the daemon (internal/host/operator.go).
	b, err := host.ReadRegularFile(path, maxBaselineSize)
	if errors.Is(err, host.ErrTooLarge) {
		return nil, fmt.Errorf("baseline %s: larger than %d bytes: not a facts document", path, maxBaselineSize)
	}
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	doc, err := ParseBaseline(b)
	if err != nil {
		return nil, fmt.Errorf("baseline %s is corrupt or truncated (write a new one with `azurelinux-probe baseline save`): %w", path, err)
	}
	return doc, nil
}

// ParseBaseline parses a facts document.
func ParseBaseline(b []byte) (*FactsDoc, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("empty file")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var doc struct {
		Collectors *[]CollectorFacts `json:"collectors"`
	}
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("JSON ends early after %d bytes", len(b))
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, err)
		}
		return nil, fmt.Errorf("not a facts document: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("data after the JSON document at byte %d", dec.InputOffset())
	}
	if doc.Collectors == nil {
		return nil, errors.New(`no "collectors" list: not a facts document`)
	}
	seen := map[string]bool{}
	for i, c := range *doc.Collectors {
		if c.Name == "" {
			return nil, fmt.Errorf("collector #%d has no name", i+1)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("collector %s appears twice", c.Name)
		}
		seen[c.Name] = true
		for j, s := range c.Metrics {
			if s.Name == "" {
				return nil, fmt.Errorf("collector %s: sample #%d has no name", c.Name, j+1)
			}
		}
	}
	return &FactsDoc{Collectors: *doc.Collectors}, nil
}

// SaveBaseline writes b to path atomically: a temporary file in the same
// directory, fsync, rename over path, fsync of the directory. A reader (or a
// crash) sees the old file or the new one, never a truncated one.
func SaveBaseline(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(b); err != nil {
		return fmt.Errorf("baseline: write %s: %w", tmp.Name(), err)
	}
	// A baseline holds the host's facts (versions, addresses, tags): 0600,
	// or the mode of the file it replaces so that an operator's choice
	// (0640 for a monitoring group) survives a save.
	mode := os.FileMode(0o600)
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
		mode = st.Mode().Perm()
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("baseline: fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("baseline: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Drift is one fact whose value differs between the baseline and now.
type Drift struct {
	Collector string `json:"collector"`
	Fact      string `json:"fact"`
	// Was and Now are the values; "" means absent.
	Was string `json:"was"`
	Now string `json:"now"`
}

// identityLabels lists, for _info metrics that describe one of several
// things, the labels that say which thing: the other labels are the fact's
// value. An _info metric not listed is one fact whose value is all its
// labels (azurelinux_kernel_info: the kernel release changed). Any other
// metric's labels all identify it and its sample value is the fact's value
// (azurelinux_kernel_module_loaded{module="nvidia"}: 1 became 0).
var identityLabels = map[string][]string{
	"azurelinux_kernel_config_info":                 {"option"},
	"azurelinux_gpu_device_info":                    {"pci_address"},
	"azurelinux_gpu_driver_info":                    {"driver"},
	"azurelinux_hyperv_vmbus_device_info":           {"instance"},
	"azurelinux_hyperv_pci_passthrough_device_info": {"pci_address"},
	"azurelinux_userland_tool_info":                 {"tool"},
	"azurelinux_userland_tool_symlink_info":         {"tool"},
	"azurelinux_systemd_unit_info":                  {"name"},
	"azurelinux_storage_disk_info":                  {"device"},
	"azurelinux_storage_azure_disk_link_info":       {"link"},
}

// volatileMetrics change without anything about the host changing (counts
// of loaded programs, timings, counters); they are not baseline facts.
// Metrics ending in _seconds or _total are volatile too.
var volatileMetrics = []string{
	"azurelinux_ebpf_programs_loaded", "azurelinux_ebpf_maps_loaded", "azurelinux_ebpf_links",
	"azurelinux_ebpf_canary_verified_instructions", "azurelinux_systemd_unit_failed_dropped",
}

func volatile(name string) bool {
	return strings.HasSuffix(name, "_seconds") || strings.HasSuffix(name, "_total") ||
		strings.HasPrefix(name, "azurelinux_probe_") || slices.Contains(volatileMetrics, name)
}

// FactKey returns the identity of a sample: its metric name and identifying
// labels, rendered as name{label="value",...}.
func FactKey(s Sample) string {
	ids, isInfo := identityLabels[s.Name]
	if !isInfo && !strings.HasSuffix(s.Name, "_info") {
		return renderLabels(s.Name, s.Labels, nil)
	}
	if ids == nil {
		ids = []string{} // no identifying labels: the metric is one fact
	}
	return renderLabels(s.Name, s.Labels, ids)
}

// factValue returns the value part of a sample: for an _info metric its
// non-identifying labels, otherwise the sample value.
func factValue(s Sample) string {
	ids, isInfo := identityLabels[s.Name]
	if !isInfo && !strings.HasSuffix(s.Name, "_info") {
		return strconv.FormatFloat(s.Value, 'g', -1, 64)
	}
	rest := map[string]string{}
	for k, v := range s.Labels {
		if !slices.Contains(ids, k) {
			rest[k] = v
		}
	}
	v := renderLabels("", rest, nil)
	if s.Value != 1 || math.IsNaN(s.Value) {
		v += " " + strconv.FormatFloat(s.Value, 'g', -1, 64)
	}
	return v
}

// renderLabels renders name{k="v",...} with sorted keys, keeping only the
// keys in only when only is not nil.
func renderLabels(name string, labels map[string]string, only []string) string {
	var keys []string
	for k := range labels {
		if only == nil || slices.Contains(only, k) {
			keys = append(keys, k)
		}
	}
	if only != nil && len(keys) == 0 {
		return name
	}
	if len(keys) == 0 {
		if name == "" {
			return "{}"
		}
		return name
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Quote(labels[k])
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// facts returns a collector's facts: identity → sorted values (an _info
// metric without identifying labels may have several series, such as one per
// active taint).
func facts(c CollectorFacts) map[string]string {
	multi := map[string][]string{}
	for _, s := range c.Metrics {
		if volatile(s.Name) {
			continue
		}
		k := FactKey(s)
		multi[k] = append(multi[k], factValue(s))
	}
	out := map[string]string{}
	for k, vs := range multi {
		slices.Sort(vs)
		out[k] = strings.Join(vs, ", ")
	}
	return out
}

// Compare returns the facts that differ between base and now, per
// collector, sorted by collector and fact. Only collectors that succeeded in
// both are compared (a failed refresh lacks facts that did not change);
// skipped names the others with the reason.
func Compare(base, now *FactsDoc) (drifts []Drift, skipped []string) {
	cur := map[string]CollectorFacts{}
	for _, c := range now.Collectors {
		cur[c.Name] = c
	}
	for _, b := range base.Collectors {
		n, ok := cur[b.Name]
		switch {
		case !ok:
			skipped = append(skipped, b.Name+": not enabled now")
			continue
		case !b.Success:
			skipped = append(skipped, b.Name+": failed in the baseline")
			continue
		case !n.Success:
			skipped = append(skipped, b.Name+": failed now")
			continue
		}
		bf, nf := facts(b), facts(n)
		keys := map[string]bool{}
		for k := range bf {
			keys[k] = true
		}
		for k := range nf {
			keys[k] = true
		}
		var sorted []string
		for k := range keys {
			sorted = append(sorted, k)
		}
		slices.Sort(sorted)
		for _, k := range sorted {
			if bf[k] != nf[k] {
				drifts = append(drifts, Drift{Collector: b.Name, Fact: k, Was: bf[k], Now: nf[k]})
			}
		}
	}
	for _, n := range now.Collectors {
		found := false
		for _, b := range base.Collectors {
			found = found || b.Name == n.Name
		}
		if !found {
			skipped = append(skipped, n.Name+": not in the baseline")
		}
	}
	slices.SortFunc(drifts, func(a, b Drift) int {
		if c := strings.Compare(a.Collector, b.Collector); c != 0 {
			return c
		}
		return strings.Compare(a.Fact, b.Fact)
	})
	return drifts, skipped
}
