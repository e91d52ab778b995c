package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/factsdoc"
	"github.com/azurelinux-probe/azurelinux-probe/internal/fleet"
)

// reportOptions are the report and diff commands' flags.
type reportOptions struct {
	prometheusURL string
	selector      string
	format        string
	byVMSize      bool
	timeout       time.Duration
	diffA, diffB  string
	diffFormat    string
}

// report prints the fleet matrix read from Prometheus. Exit status: 0
// without regression, 1 when a check regressed between cohorts, 2 when the
// matrix could not be built (the error says why).
func (r *reportOptions) report(stdout, stderr io.Writer) int {
	mx, err := fleet.Query(context.Background(), fleet.Options{
		URL: r.prometheusURL, Selector: r.selector, ByVMSize: r.byVMSize, Timeout: r.timeout,
	})
	if err != nil {
		fmt.Fprintf(stderr, "%s: report: %v\n", programName, err)
		return 2
	}
	if err := mx.Write(stdout, r.format); err != nil {
		fmt.Fprintf(stderr, "%s: report: %v\n", programName, err)
		return 2
	}
	if mx.Regressions > 0 {
		return 1
	}
	return 0
}

// maxStatusSize bounds a probe's /status.json as diff reads it, like a
// baseline file (factsdoc's maxBaselineSize).
const maxStatusSize = 64 << 20

// loadFacts reads a facts document from a file (`facts --format=json`,
// `baseline save`) or, for an http(s) URL, from a probe's /status.json.
func loadFacts(ctx context.Context, src string, timeout time.Duration) (*factsdoc.Doc, error) {
	if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
		doc, err := factsdoc.Load(src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		return doc, nil
	}
	u := strings.TrimSuffix(src, "/")
	if !strings.HasSuffix(u, statusPath) {
		u += statusPath
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("probe at %s: %w", src, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("probe at %s: %s answered %s (a probe older than the status page has no %s)", src, u, resp.Status, statusPath)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusSize+1))
	if err != nil {
		return nil, fmt.Errorf("probe at %s: %w", src, err)
	}
	if len(b) > maxStatusSize {
		return nil, fmt.Errorf("probe at %s: %s is larger than %d bytes", src, u, maxStatusSize)
	}
	var st struct {
		Facts json.RawMessage `json:"facts"`
	}
	if err := json.Unmarshal(b, &st); err != nil || st.Facts == nil {
		return nil, fmt.Errorf("probe at %s: %s is not a status document", src, u)
	}
	doc, err := factsdoc.Parse(st.Facts)
	if err != nil {
		return nil, fmt.Errorf("probe at %s: %s: %w", src, u, err)
	}
	return doc, nil
}

// diffResult is what `diff --format=json` prints.
type diffResult struct {
	A       string           `json:"a"`
	B       string           `json:"b"`
	Differs []factsdoc.Drift `json:"differences"`
	Skipped []string         `json:"skipped,omitempty"`
}

// diff compares two facts documents fact by fact with factsdoc.Compare
// (A as the baseline: Was is A's value, Now is B's). Exit status: 0 the
// same, 1 they differ, 2 one could not be read.
func (r *reportOptions) diff(stdout, stderr io.Writer) int {
	ctx := context.Background()
	a, err := loadFacts(ctx, r.diffA, r.timeout)
	if err != nil {
		fmt.Fprintf(stderr, "%s: diff: %v\n", programName, err)
		return 2
	}
	b, err := loadFacts(ctx, r.diffB, r.timeout)
	if err != nil {
		fmt.Fprintf(stderr, "%s: diff: %v\n", programName, err)
		return 2
	}
	res := diffResult{A: r.diffA, B: r.diffB}
	res.Differs, res.Skipped = factsdoc.Compare(a, b)
	if res.Differs == nil {
		res.Differs = []factsdoc.Drift{}
	}
	if err := res.write(stdout, r.diffFormat); err != nil {
		fmt.Fprintf(stderr, "%s: diff: %v\n", programName, err)
		return 2
	}
	if len(res.Differs) > 0 {
		return 1
	}
	return 0
}

func orAbsent(s string) string {
	if s == "" {
		return "(absent)"
	}
	return s
}

func (d *diffResult) write(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	case "markdown":
		var b strings.Builder
		fmt.Fprintf(&b, "## Facts: %s vs %s\n\n%d facts differ.\n\n| Collector | Fact | A | B |\n|---|---|---|---|\n",
			strings.ReplaceAll(d.A, "|", `\|`), strings.ReplaceAll(d.B, "|", `\|`), len(d.Differs))
		esc := strings.NewReplacer("|", `\|`, "\n", " ", "`", "'")
		for _, x := range d.Differs {
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", esc.Replace(x.Collector), esc.Replace(x.Fact), esc.Replace(orAbsent(x.Was)), esc.Replace(orAbsent(x.Now)))
		}
		for _, s := range d.Skipped {
			fmt.Fprintf(&b, "\nNot compared: %s", esc.Replace(s))
		}
		b.WriteString("\n")
		_, err := io.WriteString(w, b.String())
		return err
	case "table":
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintf(tw, "COLLECTOR\tFACT\tA\tB\n")
		for _, x := range d.Differs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cellText(x.Collector), cellText(x.Fact), cellText(orAbsent(x.Was)), cellText(orAbsent(x.Now)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "\n%d facts differ between %s (A) and %s (B)\n", len(d.Differs), d.A, d.B)
		for _, s := range d.Skipped {
			fmt.Fprintf(w, "not compared: %s\n", s)
		}
		return nil
	}
	return fmt.Errorf("unknown format %q", format)
}

// cellText keeps a table cell on one line: a tab or newline in a fact
// value would break the columns.
func cellText(s string) string {
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
}
