package main

import (
	"bytes"
	"encoding/json"
	"os"
	"runtime/debug"
	"strings"
	"testing"
)

func TestProvides(t *testing.T) {
	in := "github.com/alecthomas/kingpin/v2 v2.4.0\ngithub.com/alecthomas/units v0.0.0-20240927000941-0f3dac36c52b\n"
	var out bytes.Buffer
	if err := run([]string{"provides", "-lines"}, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	want := "bundled(golang(github.com/alecthomas/kingpin/v2)) = 2.4.0\n" +
		"bundled(golang(github.com/alecthomas/units)) = 0.0.0~20240927000941.0f3dac36c52b\n"
	if out.String() != want {
		t.Errorf("provides -lines:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	if err := run([]string{"provides"}, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "%azurelinux_probe_bundled_provides \\\n") ||
		!strings.Contains(out.String(), "Provides: bundled(golang(github.com/alecthomas/kingpin/v2)) = 2.4.0\\\n") {
		t.Errorf("provides macro file:\n%s", out.String())
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{nil, "", "usage"},
		{[]string{"bogus"}, "", `unknown command "bogus"`},
		{[]string{"provides"}, "github.com/a/b\n", "module list on standard input: line 1"},
		{[]string{"provides"}, "", "no modules"},
		{[]string{"provides"}, strings.Repeat("x", 1<<20+1), "larger than"},
		{[]string{"sbom", "-name", "n", "-version", "1"}, "", "usage"},
		{[]string{"sbom", "-name", "n", "-version", "1", "/nonexistent/bin"}, "", "/nonexistent/bin"},
		{[]string{"sbom", "-name", "n", "-version", "1", "main.go"}, "", "main.go"},
		{[]string{"sbom", "-name", "n", "-version", "1", "-epoch", "soon", os.Args[0]}, "", `epoch "soon"`},
	} {
		err := run(tc.args, strings.NewReader(tc.stdin), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

// The SBOM of a real binary: this test's own, whose build information
// the runtime reports too.
func TestSBOMOfABinary(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"sbom", "-name", "pkgmeta-test", "-version", "1.0.0", "-epoch", "0", os.Args[0]}, nil, &out); err != nil {
		t.Fatal(err)
	}
	var bom struct {
		SpecVersion string `json:"specVersion"`
		Metadata    struct {
			Timestamp string `json:"timestamp"`
		} `json:"metadata"`
		Components []struct{ Name, Version string } `json:"components"`
	}
	if err := json.Unmarshal(out.Bytes(), &bom); err != nil {
		t.Fatal(err)
	}
	bi, _ := debug.ReadBuildInfo()
	if bom.SpecVersion != "1.5" || bom.Metadata.Timestamp != "1970-01-01T00:00:00Z" || len(bom.Components) != len(bi.Deps)+1 ||
		bom.Components[0].Name != "stdlib" || bom.Components[0].Version != bi.GoVersion {
		t.Errorf("SBOM of %s: %+v (build info: %d modules, %s)", os.Args[0], bom, len(bi.Deps), bi.GoVersion)
	}
}
