package pkgmeta

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func TestRPMVersion(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"v2.4.0", "2.4.0"},
		// Pseudo-versions of go.mod: no tag, pre-release of a tag (-0.),
		// pre-release of a pre-release.
		{"v0.0.0-20240927000941-0f3dac36c52b", "0.0.0~20240927000941.0f3dac36c52b"},
		{"v1.101.1-0.20240301121107-c6c8733fa1e6", "1.101.1~0.20240301121107.c6c8733fa1e6"},
		{"v1.2.0-rc.1.0.20240301121107-c6c8733fa1e6", "1.2.0~rc.1.0.20240301121107.c6c8733fa1e6"},
		{"v1.2.0-rc.1", "1.2.0~rc.1"},
		{"v2.0.0+incompatible", "2.0.0+incompatible"},
		{"v0.0.0-20200804184101-5ec99f83aff1", "0.0.0~20200804184101.5ec99f83aff1"},
	} {
		got, err := RPMVersion(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("RPMVersion(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "2.4.0", "(devel)", "v1.2", "v1.2.3 ", "v1.2.3-", "v1.2.3-a_b", "v1.2.3\n"} {
		if got, err := RPMVersion(bad); err == nil {
			t.Errorf("RPMVersion(%q) = %q, want an error", bad, got)
		}
	}
}

// rpmvercmp's order (rpm --eval '%{lua: print(rpm.vercmp(a, b))}') is the
// Go module order of the versions it converts: a pseudo-version sorts
// before the tag it is a pre-release of.
func TestRPMVersionOrder(t *testing.T) {
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Skip("no rpm")
	}
	for _, tc := range [][2]string{
		{"v0.0.0-20200804184101-5ec99f83aff1", "v0.0.0-20240927000941-0f3dac36c52b"},
		{"v1.101.1-0.20240301121107-c6c8733fa1e6", "v1.101.1"},
		{"v1.101.0", "v1.101.1-0.20240301121107-c6c8733fa1e6"},
		{"v1.2.0-rc.1", "v1.2.0"},
		{"v1.9.0", "v1.10.0"},
	} {
		a, _ := RPMVersion(tc[0])
		b, _ := RPMVersion(tc[1])
		out, err := exec.Command("rpm", "--eval", `%{lua: print(rpm.vercmp("`+a+`", "`+b+`"))}`).Output()
		if err != nil {
			t.Fatalf("rpm --eval: %v", err)
		}
		if got := strings.TrimSpace(string(out)); got != "-1" {
			t.Errorf("rpm.vercmp(%q, %q) = %s, want -1 (%s < %s)", a, b, got, tc[0], tc[1])
		}
	}
}

func FuzzRPMVersion(f *testing.F) {
	for _, s := range []string{"v2.4.0", "v0.0.0-20240927000941-0f3dac36c52b", "v2.0.0+incompatible", "v1.2.0-rc.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := RPMVersion(v)
		if err != nil {
			return
		}
		// An RPM version: no dash (the version-release separator), no
		// space, nothing an rpm dependency token refuses.
		if got == "" || strings.ContainsAny(got, "- \t\n,<>=") {
			t.Fatalf("RPMVersion(%q) = %q", v, got)
		}
	})
}

func TestParseModuleList(t *testing.T) {
	mods, err := ParseModuleList("github.com/a/b v1.0.0\n\ngithub.com/c/d v0.0.0-20240927000941-0f3dac36c52b\ngithub.com/a/b v1.0.0\n")
	if err != nil || len(mods) != 2 {
		t.Fatalf("ParseModuleList = %v, %v", mods, err)
	}
	for _, bad := range []string{
		"github.com/a/b",
		"github.com/a/b v1.0.0 extra",
		"github.com/a/b v1.0.0\ngithub.com/a/b v1.1.0",
		"github.com/a/b (devel)",
		"-bad v1.0.0",
		"github.com/a(b) v1.0.0",
	} {
		if _, err := ParseModuleList(bad); err == nil {
			t.Errorf("ParseModuleList(%q): no error", bad)
		}
	}
}

// The macro file, loaded by a real rpmspec as the spec loads it, declares
// one Provides per module.
func TestProvidesMacroInRPM(t *testing.T) {
	mods := []Module{
		{Path: "github.com/z/last", Version: "v1.0.0"},
		{Path: "github.com/alecthomas/units", Version: "v0.0.0-20240927000941-0f3dac36c52b"},
		{Path: "example.com/fork", Version: "v1.2.0-rc.1", Replaces: "github.com/orig/mod"},
	}
	text, err := ProvidesMacro(mods)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"bundled(golang(github.com/alecthomas/units)) = 0.0.0~20240927000941.0f3dac36c52b",
		"bundled(golang(github.com/orig/mod)) = 1.2.0~rc.1",
		"bundled(golang(github.com/z/last)) = 1.0.0",
	}
	lines, err := ProvidesLines(mods)
	if err != nil || strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("ProvidesLines = %q, %v; want %q", lines, err, want)
	}
	if _, err := exec.LookPath("rpmspec"); err != nil {
		t.Skip("no rpmspec")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bundled.inc"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := "Name: t\nVersion: 1\nRelease: 1\nSummary: t\nLicense: MIT\nSource3: bundled.inc\n" +
		"%{load:%{SOURCE3}}\n%{azurelinux_probe_bundled_provides}\nBuildArch: noarch\n%description\nt\n%files\n"
	if err := os.WriteFile(filepath.Join(dir, "t.spec"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("rpmspec", "-q", "--provides", "--define", "_sourcedir "+dir, filepath.Join(dir, "t.spec")).CombinedOutput()
	if err != nil {
		t.Fatalf("rpmspec: %v\n%s", err, out)
	}
	got := strings.TrimSpace(string(out))
	if got != strings.Join(append(want, "t = 1-1"), "\n") {
		t.Errorf("rpmspec -q --provides:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if _, err := ProvidesMacro(nil); err == nil {
		t.Error("ProvidesMacro(nil): no error")
	}
	if _, err := ProvidesLines(append(mods, Module{Path: "github.com/orig/mod", Version: "v1.0.0"})); err == nil {
		t.Error("ProvidesLines with a module twice: no error")
	}
}

// bomSchema compiles the CycloneDX 1.5 JSON schema vendored in testdata
// (CycloneDX/specification schema/, commit e02a34ae42a4), with its two
// referenced schemas, format assertions on.
func bomSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, f := range []string{"bom-1.5.schema.json", "spdx.schema.json", "jsf-0.82.schema.json"} {
		r, err := os.Open(filepath.Join("testdata", "cyclonedx-1.5", f))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(r)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := c.AddResource("http://cyclonedx.org/schema/"+f, doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile("http://cyclonedx.org/schema/bom-1.5.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, what string, data []byte) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: not JSON: %v", what, err)
	}
	if err := s.Validate(inst); err != nil {
		t.Fatalf("%s does not validate against the CycloneDX 1.5 schema: %v", what, err)
	}
}

type bomView struct {
	SpecVersion  string `json:"specVersion"`
	SerialNumber string `json:"serialNumber"`
	Metadata     struct {
		Timestamp string `json:"timestamp"`
		Component struct {
			Name, Version, PURL string
		} `json:"component"`
	} `json:"metadata"`
	Components []struct {
		Name, Version, PURL string
		Properties          []struct{ Name, Value string }
	} `json:"components"`
	Dependencies []struct {
		Ref       string   `json:"ref"`
		DependsOn []string `json:"dependsOn"`
	} `json:"dependencies"`
}

func TestCycloneDX(t *testing.T) {
	schema := bomSchema(t)
	fixture, err := os.ReadFile("testdata/azurelinux-probe.buildinfo")
	if err != nil {
		t.Fatal(err)
	}
	// (ParseBuildInfo leaves GoVersion, the first line, unset.)
	parse := func() *debug.BuildInfo {
		bi, err := debug.ParseBuildInfo(string(fixture))
		if err != nil {
			t.Fatal(err)
		}
		bi.GoVersion = strings.TrimPrefix(strings.SplitN(string(fixture), "\n", 2)[0], "go\t")
		return bi
	}
	probe := parse()
	self, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("the test binary has no build information")
	}
	replaced := parse()
	replaced.Deps[0].Replace = &debug.Module{Path: "example.com/fork/kingpin", Version: "v2.4.1-0.20250101000000-abcdefabcdef"}
	epoch := time.Unix(1764547200, 0)
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		ts   time.Time
	}{
		// The probe's own build information (`go build -trimpath` of
		// ./cmd/azurelinux-probe, 44 modules), with and without a date.
		{"probe", probe, time.Time{}},
		{"probe dated", probe, epoch},
		// This test binary's (another real module set).
		{"test binary", self, epoch},
		{"replace", replaced, epoch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := CycloneDX(tc.bi, SBOMOptions{Name: "azurelinux-probe", Version: "0.1.0", License: "Apache-2.0", Timestamp: tc.ts})
			if err != nil {
				t.Fatal(err)
			}
			validate(t, schema, tc.name, out)
			again, _ := CycloneDX(tc.bi, SBOMOptions{Name: "azurelinux-probe", Version: "0.1.0", License: "Apache-2.0", Timestamp: tc.ts})
			if !bytes.Equal(out, again) {
				t.Error("two SBOMs of one build differ")
			}
			var bom bomView
			if err := json.Unmarshal(out, &bom); err != nil {
				t.Fatal(err)
			}
			if bom.SpecVersion != "1.5" || !strings.HasPrefix(bom.SerialNumber, "urn:uuid:") {
				t.Errorf("specVersion %q serialNumber %q", bom.SpecVersion, bom.SerialNumber)
			}
			if want := map[bool]string{true: "", false: "2025-12-01T00:00:00Z"}[tc.ts.IsZero()]; bom.Metadata.Timestamp != want {
				t.Errorf("timestamp %q, want %q", bom.Metadata.Timestamp, want)
			}
			// One component per module, plus the toolchain's stdlib.
			if len(bom.Components) != len(tc.bi.Deps)+1 {
				t.Fatalf("%d components, want %d modules + stdlib", len(bom.Components), len(tc.bi.Deps))
			}
			std := bom.Components[0]
			if std.Name != "stdlib" || std.Version != tc.bi.GoVersion || std.PURL != "pkg:golang/stdlib@"+strings.TrimPrefix(tc.bi.GoVersion, "go") {
				t.Errorf("stdlib component %+v", std)
			}
			byName := map[string]string{}
			for _, c := range bom.Components[1:] {
				byName[c.Name] = c.Version
				if c.PURL != "pkg:golang/"+c.Name+"@"+c.Version {
					t.Errorf("purl %q for %s %s", c.PURL, c.Name, c.Version)
				}
			}
			for _, d := range tc.bi.Deps {
				m := d
				if d.Replace != nil {
					m = d.Replace
				}
				if byName[m.Path] != m.Version {
					t.Errorf("module %s %s: component version %q", m.Path, m.Version, byName[m.Path])
				}
			}
			if len(bom.Dependencies) != 1 || len(bom.Dependencies[0].DependsOn) != len(bom.Components) ||
				bom.Dependencies[0].Ref != bom.Metadata.Component.PURL {
				t.Errorf("dependencies %+v", bom.Dependencies)
			}
		})
	}
	// The schema check itself bites: a component type CycloneDX does not
	// define, a serial number that is no UUID.
	good, _ := CycloneDX(probe, SBOMOptions{Name: "azurelinux-probe", Version: "0.1.0"})
	for _, bad := range [][2]string{{`"type": "library"`, `"type": "module"`}, {`"serialNumber": "urn:uuid:`, `"serialNumber": "urn:x:`}} {
		inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(bytes.Replace(good, []byte(bad[0]), []byte(bad[1]), 1)))
		if err := schema.Validate(inst); err == nil {
			t.Errorf("an SBOM with %s validates", bad[1])
		}
	}
	if tc := probe.Deps; len(tc) != 44 {
		t.Errorf("fixture has %d modules, want the 44 of ./cmd/azurelinux-probe", len(tc))
	}
	// Errors name what is wrong; nothing is guessed.
	local := parse()
	local.Deps[0].Replace = &debug.Module{Path: "../kingpin"}
	if _, err := CycloneDX(local, SBOMOptions{Name: "n", Version: "1"}); err == nil || !strings.Contains(err.Error(), "replaced by the directory") {
		t.Errorf("local replace: %v", err)
	}
	if _, err := CycloneDX(probe, SBOMOptions{Name: "n"}); err == nil {
		t.Error("no version: no error")
	}
}

// TestSBOMFile validates an SBOM file, the one the RPM installs
// (scripts/package-test.sh sets AZURELINUX_PROBE_SBOM).
func TestSBOMFile(t *testing.T) {
	f := os.Getenv("AZURELINUX_PROBE_SBOM")
	if f == "" {
		t.Skip("AZURELINUX_PROBE_SBOM is not set")
	}
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	validate(t, bomSchema(t), f, data)
	var bom bomView
	if err := json.Unmarshal(data, &bom); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: CycloneDX %s, %d components", f, bom.SpecVersion, len(bom.Components))
}

func FuzzParseModuleList(f *testing.F) {
	f.Add("github.com/a/b v1.0.0\ngithub.com/c/d v0.0.0-20240927000941-0f3dac36c52b\n")
	f.Add("github.com/a/b v1.0.0 extra\n")
	f.Fuzz(func(t *testing.T, text string) {
		mods, err := ParseModuleList(text)
		if err != nil {
			return
		}
		// Whatever parses makes a macro file rpm can take: one Provides
		// line per module, nothing that ends the macro early.
		lines, err := ProvidesLines(mods)
		if err != nil {
			t.Fatalf("parsed %q but ProvidesLines: %v", text, err)
		}
		for _, l := range lines {
			if strings.ContainsAny(l, "\n\\%") {
				t.Fatalf("Provides line %q", l)
			}
		}
	})
}
