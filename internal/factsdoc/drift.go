package factsdoc

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// Drift is one fact whose value differs between the baseline and now.
type Drift struct {
	Collector string `json:"collector"`
	Fact      string `json:"fact"`
	// Was and Now are the values; "" means absent.
	Was string `json:"was"`
	Now string `json:"now"`
}

// Key returns the identity of a sample: its metric name and the labels its
// declaration names as identity, rendered as name{label="value",...}. A
// sample of a metric that nothing declares (a baseline written by another
// version) is identified by all its labels.
func Key(s Sample) string {
	f, ok := collectors.LookupFact(s.Name)
	if !ok {
		return Render(s.Name, s.Labels, nil)
	}
	return Render(s.Name, s.Labels, nonNil(f.Identity))
}

// value returns the value part of a sample: when every label is identity,
// the sample value (azurelinux_kernel_module_loaded{module="nvidia"}: 1
// became 0); otherwise the other labels (azurelinux_kernel_info's release),
// followed by the sample value unless it is 1.
func value(s Sample) string {
	f, ok := collectors.LookupFact(s.Name)
	if !ok || len(f.Identity) == len(f.Labels) {
		return strconv.FormatFloat(s.Value, 'g', -1, 64)
	}
	rest := map[string]string{}
	for k, v := range s.Labels {
		if !slices.Contains(f.Identity, k) {
			rest[k] = v
		}
	}
	v := Render("", rest, nil)
	if s.Value != 1 || math.IsNaN(s.Value) {
		v += " " + strconv.FormatFloat(s.Value, 'g', -1, 64)
	}
	return v
}

// volatile reports whether a metric's declaration says it changes by itself.
func volatile(name string) bool {
	f, ok := collectors.LookupFact(name)
	return ok && f.Volatile
}

func nonNil(ids []string) []string {
	if ids == nil {
		return []string{} // no identity labels: the metric is one fact
	}
	return ids
}

// Render renders name{k="v",...} with sorted keys, keeping only the keys in
// only when only is not nil.
func Render(name string, labels map[string]string, only []string) string {
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
		k := Key(s)
		multi[k] = append(multi[k], value(s))
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
func Compare(base, now *Doc) (drifts []Drift, skipped []string) {
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
		case (b.NotApplicable == "") != (n.NotApplicable == ""):
			// A live host's baseline against an image, or the reverse:
			// the facts were never comparable.
			skipped = append(skipped, b.Name+": applicable in only one of the baseline and now")
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
