package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azurelinux-probe/azurelinux-probe/agent"
)

// readmeExample is a block of README.md that shows a command and its
// output: "$ azurelinux-probe ARGS" then some of the lines it prints, in
// order ("…" marks where lines are left out; the facts sample leaves out
// HELP and TYPE lines and most series without one).
type readmeExample struct {
	line   int
	args   []string
	output []string
}

func readmeExamples(t *testing.T, readme string) []readmeExample {
	t.Helper()
	var out []readmeExample
	lines := strings.Split(readme, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "```") || i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "$ azurelinux-probe ") {
			continue
		}
		ex := readmeExample{line: i + 2, args: strings.Fields(strings.TrimPrefix(lines[i+1], "$ azurelinux-probe "))}
		for i += 2; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			ex.output = append(ex.output, lines[i])
		}
		out = append(out, ex)
	}
	return out
}

// TestReadmeExamples runs every "$ azurelinux-probe …" example of README.md
// from the repository root and requires each line it shows to be printed,
// in order (white space in table columns aside), so that the README cannot
// go stale. The
// azure collector asks a loopback server (the endpoint of
// examples/imds-loopback.yml, moved to this test's port), never the real
// metadata address.
func TestReadmeExamples(t *testing.T) {
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile("collectors/testdata/imds/azl4-azure-gen2.json")
		if err != nil || r.URL.Path != "/metadata/instance" || r.Header.Get("Metadata") != "true" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(b)
	}))
	defer imds.Close()
	t.Chdir("../..")
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("examples/imds-loopback.yml")
	if err != nil {
		t.Fatalf("README.md names examples/imds-loopback.yml: %v", err)
	}
	loopback := filepath.Join(t.TempDir(), "imds-loopback.yml")
	if !strings.Contains(string(example), "http://127.0.0.1:8089/") {
		t.Fatalf("examples/imds-loopback.yml no longer points at http://127.0.0.1:8089/")
	}
	put(t, loopback, strings.ReplaceAll(string(example), "http://127.0.0.1:8089", imds.URL))

	examples := readmeExamples(t, string(readme))
	if len(examples) < 2 {
		t.Fatalf("%d examples in README.md, want the facts and the check samples", len(examples))
	}
	for _, ex := range examples {
		args := []string{}
		hasConfig := false
		for _, a := range ex.args {
			if a == "--config.file=examples/imds-loopback.yml" {
				a, hasConfig = "--config.file="+loopback, true
			}
			args = append(args, a)
		}
		if !hasConfig {
			args = append(args, "--config.file="+loopback)
		}
		var stdout, stderr bytes.Buffer
		agent.Main(append(args, "--log.level=error"), &stdout, &stderr)
		got := strings.Split(stdout.String(), "\n")
		j := 0
		for _, want := range ex.output {
			if want == "…" || want == "" {
				continue
			}
			for j < len(got) && norm(got[j]) != norm(want) {
				j++
			}
			if j == len(got) {
				t.Errorf("README.md:%d: azurelinux-probe %s: the output lacks, in order:\n%s\noutput:\n%s%s",
					ex.line, strings.Join(ex.args, " "), want, stdout.String(), stderr.String())
				break
			}
			j++
		}
	}
}

// norm collapses runs of blanks, which a table's column widths change.
func norm(s string) string { return strings.Join(strings.Fields(s), " ") }
