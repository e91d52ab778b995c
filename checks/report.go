package checks

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/azurelinux-probe/azurelinux-probe/internal/factsdoc"
	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// Report is what the check command prints.
type Report struct {
	Results []Result `json:"checks"`
	// Baseline is the baseline file compared with, if any.
	Baseline string `json:"baseline,omitempty"`
	// Drift lists the facts that differ from the baseline.
	Drift []factsdoc.Drift `json:"drift,omitempty"`
	// Skipped names collectors left out of the comparison, with why.
	Skipped []string `json:"baseline_skipped,omitempty"`

	// Ignored lists files of the checks directory that were not loaded
	// (not *.yml or *.yaml), so that a misnamed file is seen.
	Ignored []string `json:"ignored_files,omitempty"`
}

// Count returns how many checks have the verdict st.
func (r *Report) Count(st Status) int {
	n := 0
	for _, c := range r.Results {
		if c.Verdict() == st {
			n++
		}
	}
	return n
}

// Failed returns how many checks failed plus how many facts drifted.
func (r *Report) Failed() int { return r.Count(StatusFail) + len(r.Drift) }

// Errors returns how many checks could not be judged.
func (r *Report) Errors() int { return r.Count(StatusError) }

// ExitCode is the check command's exit status for the report: 2 when a
// check could not be judged, else 1 when one failed or a fact drifted,
// else 0 (every check passed or was skipped).
func (r *Report) ExitCode() int {
	switch {
	case r.Errors() > 0:
		return 2
	case r.Failed() > 0:
		return 1
	}
	return 0
}

// Write prints the report in format: "table", "json" or "junit".
func (r *Report) Write(w io.Writer, format string) error {
	switch format {
	case "table":
		return r.table(w)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		type summary struct {
			Checks   int `json:"checks"`
			Passed   int `json:"passed"`
			Failed   int `json:"failed"`
			Skipped  int `json:"skipped"`
			Errors   int `json:"errors"`
			Drifted  int `json:"drifted"`
			ExitCode int `json:"exit_code"`
		}
		return enc.Encode(struct {
			*Report
			Summary summary `json:"summary"`
		}{r, summary{len(r.Results), r.Count(StatusPass), r.Count(StatusFail), r.Count(StatusSkipped), r.Errors(), len(r.Drift), r.ExitCode()}})
	case "junit":
		return r.junit(w)
	}
	return fmt.Errorf("unknown format %q", format)
}

func (r *Report) table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tCATEGORY\tRESULT\tREASON")
	for _, c := range r.Results {
		res := map[Status]string{StatusPass: "pass", StatusFail: "FAIL", StatusSkipped: "skipped", StatusError: "ERROR"}[c.Verdict()]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cell(c.Name), cell(c.Category), res, cell(c.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d checks: %d passed, %d failed, %d skipped, %d errors\n", len(r.Results),
		r.Count(StatusPass), r.Count(StatusFail), r.Count(StatusSkipped), r.Errors())
	for _, f := range r.Ignored {
		fmt.Fprintf(w, "ignored (not *.yml or *.yaml): %s\n", f)
	}
	if r.Baseline == "" {
		return nil
	}
	fmt.Fprintf(w, "\nbaseline %s: %d facts drifted\n", cell(r.Baseline), len(r.Drift))
	if len(r.Drift) > 0 {
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "COLLECTOR\tFACT\tBASELINE\tNOW")
		for _, d := range r.Drift {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cell(d.Collector), cell(d.Fact), cell(orAbsent(d.Was)), cell(orAbsent(d.Now)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "not compared: %s\n", cell(s))
	}
	return nil
}

func orAbsent(s string) string {
	if s == "" {
		return "(absent)"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// cell is s as one table cell: on one line, with control characters
// escaped, so that a value from a checked image (a reason quoting a file,
// a drifted label) cannot move the cursor, erase or rewrite lines already
// printed on a terminal (ESC [ 1A, ESC [ 2K, CR).
func cell(s string) string { return host.EscapeControl(oneLine(s)) }

// JUnit XML, as Jenkins, GitHub Actions test reporters, Azure Pipelines'
// PublishTestResults and Packer post-processors read it (the Ant schema
// that Jenkins' junit plugin documents): one test suite per category, one
// test case per check, a <failure> carrying a failed check's reason, an
// <error> a check that could not be judged, <skipped message=…/> one that
// does not apply under this root.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Error     *junitFailure `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func (r *Report) junit(w io.Writer) error {
	out := junitSuites{Name: "azurelinux-probe check"}
	byCat := map[string]*junitSuite{}
	var order []string
	for _, c := range r.Results {
		s := byCat[c.Category]
		if s == nil {
			s = &junitSuite{Name: c.Category}
			byCat[c.Category] = s
			order = append(order, c.Category)
		}
		tc := junitCase{Name: c.Name, Classname: "azurelinux-probe." + c.Category,
			Time: fmt.Sprintf("%.3f", c.Duration.Seconds())}
		text := c.Reason
		if c.Description != "" {
			text = c.Description + "\n" + c.Reason
		}
		text += "\n(" + c.Kind + " check defined at " + c.Source + ")"
		switch c.Verdict() {
		case StatusPass:
			tc.SystemOut = xmlSafe(text)
		case StatusSkipped:
			tc.Skipped = &junitSkipped{Message: xmlSafe(oneLine(c.Reason))}
			tc.SystemOut = xmlSafe(text)
			s.Skipped++
		case StatusError:
			tc.Error = &junitFailure{Message: xmlSafe(oneLine(c.Reason)), Type: c.Kind, Text: xmlSafe(text)}
			s.Errors++
		default:
			tc.Failure = &junitFailure{Message: xmlSafe(oneLine(c.Reason)), Type: c.Kind, Text: xmlSafe(text)}
			s.Failures++
		}
		s.Tests++
		s.Cases = append(s.Cases, tc)
	}
	for _, cat := range order {
		s := byCat[cat]
		var total float64
		for _, c := range r.Results {
			if c.Category == cat {
				total += c.Duration.Seconds()
			}
		}
		s.Time = fmt.Sprintf("%.3f", total)
		out.Suites = append(out.Suites, *s)
	}
	if r.Baseline != "" {
		s := junitSuite{Name: "baseline", Time: "0.000"}
		for _, d := range r.Drift {
			s.Tests++
			s.Failures++
			msg := fmt.Sprintf("%s: %s was %s, now %s", d.Collector, d.Fact, orAbsent(d.Was), orAbsent(d.Now))
			s.Cases = append(s.Cases, junitCase{Name: d.Fact, Classname: "azurelinux-probe.baseline." + d.Collector,
				Time: "0.000", Failure: &junitFailure{Message: xmlSafe(msg), Type: "drift", Text: xmlSafe(msg)}})
		}
		if len(r.Drift) == 0 {
			s.Tests = 1
			s.Cases = append(s.Cases, junitCase{Name: "no-drift", Classname: "azurelinux-probe.baseline", Time: "0.000",
				SystemOut: xmlSafe("no fact drifted from " + r.Baseline)})
		}
		out.Suites = append(out.Suites, s)
	}
	for _, s := range out.Suites {
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Errors += s.Errors
		out.Skipped += s.Skipped
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// xmlSafe drops the characters XML 1.0 cannot carry (control characters
// from a command's output), which encoding/xml would otherwise escape into
// character references that XML parsers reject.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20 || r == 0xFFFE || r == 0xFFFF || (r >= 0xD800 && r <= 0xDFFF):
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}

// FailedByCategory counts the checks of each category that did not pass
// and were not skipped (failed, or could not be judged), every category of
// results present (with 0 when none failed).
func FailedByCategory(results []Result) map[string]int {
	return countByCategory(results, func(r Result) bool { return r.Verdict() == StatusFail || r.Verdict() == StatusError })
}

// SkippedByCategory counts the skipped checks of each category.
func SkippedByCategory(results []Result) map[string]int {
	return countByCategory(results, func(r Result) bool { return r.Verdict() == StatusSkipped })
}

func countByCategory(results []Result, count func(Result) bool) map[string]int {
	out := map[string]int{}
	for _, r := range results {
		if _, ok := out[r.Category]; !ok {
			out[r.Category] = 0
		}
		if count(r) {
			out[r.Category]++
		}
	}
	return out
}

// Sorted returns the keys of m in order.
func Sorted[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
