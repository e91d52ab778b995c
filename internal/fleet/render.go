package fleet

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// CSS is the inline style sheet of the HTML report and of the probe's
// status page: one self-contained file, nothing loaded from elsewhere.
const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1b1b}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.4em 0 .4em;border-bottom:1px solid #ccc}h3{font-size:1em;margin:1em 0 .2em}
table{border-collapse:collapse;margin:.3em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f0f0f0}.pass{background:#d9f2d9}.fail{background:#f8d0d0}.partial{background:#fbe7b5}.none{background:#eee;color:#777}
.regression{outline:3px solid #b00;outline-offset:-3px;font-weight:bold}.reason{color:#444;font-size:.9em;font-weight:normal}
ul.failures{margin:.2em 0 0 1em;padding:0}#matrix td{max-width:24em;overflow-wrap:anywhere}nav a{margin-right:1em}code{font-size:.95em}.legend span{padding:.1em .5em;margin-right:.5em}`

// Write renders the matrix in format: html, markdown or json.
func (m *Matrix) Write(w io.Writer, format string) error {
	switch format {
	case "html":
		return htmlTemplate.Execute(w, m)
	case "markdown":
		return m.markdown(w)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	}
	return fmt.Errorf("unknown format %q (want html, markdown or json)", format)
}

// Text is the cell as the report prints it: passing/reporting, or "–"
// when no host of the cohort reports the check.
func (c Cell) Text() string {
	if c.Reporting == 0 {
		return "–"
	}
	return fmt.Sprintf("%d/%d", c.Passing, c.Reporting)
}

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"ts":  func(t time.Time) string { return t.Format(time.RFC3339) },
	"inc": func(n int) int { return n + 1 },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Azure Linux compatibility matrix</title>
<style>` + CSS + `</style></head><body>
<h1>Azure Linux compatibility matrix</h1>
<p>{{len .Cohorts}} cohorts from {{.Prometheus}}{{with .Selector}} ({{.}}){{end}} at {{ts .Generated}};
<strong>{{.Regressions}} regressions</strong> (a check that passes on every host of one cohort and fails in another).</p>
<p class="legend"><span class="pass">all pass</span><span class="partial">some fail</span><span class="fail">all fail</span><span class="none">not reported</span><span class="regression">regression</span></p>
<h2>Cohorts</h2>
<table id="cohorts"><tr><th>Cohort</th><th>Image</th><th>Kernel</th>{{if .ByVMSize}}<th>VM size</th>{{end}}<th>Hosts</th></tr>
{{$bySize := .ByVMSize}}{{range .Cohorts}}<tr><td>{{.Key}}</td><td>{{.Image}}</td><td>{{.Kernel}}</td>{{if $bySize}}<td>{{.VMSize}}</td>{{end}}<td>{{range .Hosts}}{{.}} {{end}}</td></tr>
{{end}}</table>
<h2>Checks</h2>
<table id="matrix"><tr><th>Check</th>{{range .Cohorts}}<th>{{.Key}}</th>{{end}}</tr>
{{range .Categories}}<tr><th colspan="{{len (index .Rows 0).Cells | inc}}">{{.Name}}</th></tr>
{{range .Rows}}<tr><td>{{if .Regression}}<strong>{{.Check}}</strong> (regression){{else}}{{.Check}}{{end}}</td>{{range .Cells}}<td class="{{.Class}}{{if .Regression}} regression{{end}}">{{.Text}}{{if .Regression}} regression{{end}}{{if .Failures}}<ul class="failures">{{range .Failures}}<li class="reason">{{.Host}}: {{.Reason}}</li>{{end}}</ul>{{end}}</td>{{end}}</tr>
{{end}}{{end}}</table>
{{if .NextBoot}}<h2>Next boot readiness</h2>
<table id="nextboot"><tr><th>Cohort</th><th>Next kernel ready</th><th>Not ready</th></tr>
{{range .NextBoot}}<tr><td>{{.Cohort}}</td><td class="{{if eq .Ready .Reporting}}pass{{else}}fail{{end}}">{{.Ready}}/{{.Reporting}}</td><td class="reason">{{range .NotReady}}{{.Host}}: {{.Reason}}<br>{{end}}</td></tr>
{{end}}</table>{{end}}
{{if .KernelLogEvents}}<h2>Kernel log events since boot</h2>
<table id="kmsg"><tr><th>Cohort</th><th>Category</th><th>Events</th><th>Hosts</th></tr>
{{range .KernelLogEvents}}<tr><td>{{.Cohort}}</td><td>{{.Category}}</td><td>{{.Events}}</td><td>{{.Hosts}}</td></tr>
{{end}}</table>{{end}}
</body></html>
`))

// md escapes a markdown table cell.
func md(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}

func (m *Matrix) markdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## Azure Linux compatibility matrix\n\n%d cohorts from %s", len(m.Cohorts), md(m.Prometheus))
	if m.Selector != "" {
		fmt.Fprintf(&b, " (`%s`)", strings.ReplaceAll(m.Selector, "`", "'"))
	}
	fmt.Fprintf(&b, "; **%d regressions** (passes on every host of one cohort, fails in another).\n\n", m.Regressions)
	b.WriteString("| Category | Check |")
	for _, c := range m.Cohorts {
		fmt.Fprintf(&b, " %s (%d) |", md(c.Key), len(c.Hosts))
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(m.Cohorts)) + "\n")
	var failures []string
	for _, cat := range m.Categories {
		for _, r := range cat.Rows {
			name := md(r.Check)
			if r.Regression {
				name = "**" + name + "** ⚠️ regression"
			}
			fmt.Fprintf(&b, "| %s | %s |", md(cat.Name), name)
			for _, c := range r.Cells {
				mark := map[string]string{"pass": "✅", "fail": "❌", "partial": "🟡", "none": ""}[c.Class()]
				text := strings.TrimSpace(mark + " " + c.Text())
				if c.Regression {
					text = "**" + text + "** ⚠️"
				}
				fmt.Fprintf(&b, " %s |", text)
				for _, f := range c.Failures {
					failures = append(failures, fmt.Sprintf("- `%s` on %s (%s): %s", r.Check, md(f.Host), md(c.Cohort), md(f.Reason)))
				}
			}
			b.WriteString("\n")
		}
	}
	if len(failures) > 0 {
		b.WriteString("\n<details><summary>Failures and their reasons</summary>\n\n" + strings.Join(failures, "\n") + "\n\n</details>\n")
	}
	if len(m.NextBoot) > 0 {
		b.WriteString("\n### Next boot readiness\n\n| Cohort | Next kernel ready | Not ready |\n|---|---|---|\n")
		for _, nb := range m.NextBoot {
			var why []string
			for _, f := range nb.NotReady {
				why = append(why, md(f.Host+": "+f.Reason))
			}
			fmt.Fprintf(&b, "| %s | %d/%d | %s |\n", md(nb.Cohort), nb.Ready, nb.Reporting, strings.Join(why, "; "))
		}
	}
	if len(m.KernelLogEvents) > 0 {
		b.WriteString("\n### Kernel log events since boot\n\n| Cohort | Category | Events | Hosts |\n|---|---|---|---|\n")
		for _, e := range m.KernelLogEvents {
			fmt.Fprintf(&b, "| %s | %s | %g | %d |\n", md(e.Cohort), md(e.Category), e.Events, e.Hosts)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
