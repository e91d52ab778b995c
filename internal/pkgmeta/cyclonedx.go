package pkgmeta

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/url"
	"runtime/debug"
	"strings"
	"time"
)

// SBOMOptions name the application the SBOM describes.
type SBOMOptions struct {
	// Name and Version of the application (the RPM's name and version).
	Name, Version string
	// License is its SPDX license expression (the spec's License: of the
	// probe's own code), empty for none.
	License string
	// Timestamp is the BOM's creation time: SOURCE_DATE_EPOCH, so that
	// two builds of one tarball give the same file. Zero leaves it out.
	Timestamp time.Time
}

// The subset of CycloneDX 1.5 (https://cyclonedx.org/docs/1.5/json/)
// that describes a Go binary; field order is output order.
type cdxBOM struct {
	Schema       string          `json:"$schema"`
	BOMFormat    string          `json:"bomFormat"`
	SpecVersion  string          `json:"specVersion"`
	SerialNumber string          `json:"serialNumber"`
	Version      int             `json:"version"`
	Metadata     cdxMetadata     `json:"metadata"`
	Components   []cdxComponent  `json:"components"`
	Dependencies []cdxDependency `json:"dependencies"`
}

type cdxMetadata struct {
	Timestamp string       `json:"timestamp,omitempty"`
	Tools     cdxTools     `json:"tools"`
	Component cdxComponent `json:"component"`
}

type cdxTools struct {
	Components []cdxComponent `json:"components"`
}

type cdxComponent struct {
	Type        string        `json:"type"`
	BOMRef      string        `json:"bom-ref,omitempty"`
	Name        string        `json:"name"`
	Version     string        `json:"version,omitempty"`
	Description string        `json:"description,omitempty"`
	Licenses    []cdxLicense  `json:"licenses,omitempty"`
	PURL        string        `json:"purl,omitempty"`
	Properties  []cdxProperty `json:"properties,omitempty"`
}

type cdxLicense struct {
	Expression string `json:"expression"`
}

type cdxProperty struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type cdxDependency struct {
	Ref       string   `json:"ref"`
	DependsOn []string `json:"dependsOn"`
}

// purl is the package URL of a Go module or of the standard library
// (https://github.com/package-url/purl-spec, PURL-TYPES.rst "golang"):
// pkg:golang/NAMESPACE/NAME@VERSION, each path segment percent-encoded.
func purl(path, version string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "pkg:golang/" + strings.Join(segs, "/") + "@" + url.PathEscape(version)
}

// CycloneDX returns a CycloneDX 1.5 JSON SBOM of a Go binary from its
// build information: the application (the main module, with the build
// settings as properties), every module linked into it and the Go
// toolchain, as the component "stdlib" (the name and purl that syft gives
// the Go standard library, which vulnerability databases key Go's own
// advisories on). The output is deterministic: the serial number is
// derived from the content.
func CycloneDX(bi *debug.BuildInfo, opt SBOMOptions) ([]byte, error) {
	if opt.Name == "" || opt.Version == "" {
		return nil, fmt.Errorf("the application's name and version are required")
	}
	mods, err := Linked(bi)
	if err != nil {
		return nil, err
	}
	goVersion := bi.GoVersion
	if !strings.HasPrefix(goVersion, "go") || strings.ContainsAny(goVersion, " \t\n") {
		return nil, fmt.Errorf("toolchain version %q is not a Go release (goX.Y.Z)", goVersion)
	}
	mainRef := purl(bi.Main.Path, "v"+opt.Version)
	app := cdxComponent{
		Type: "application", BOMRef: mainRef, Name: opt.Name, Version: opt.Version, PURL: mainRef,
		Properties: []cdxProperty{{Name: "go:main:path", Value: bi.Path}},
	}
	if opt.License != "" {
		app.Licenses = []cdxLicense{{Expression: opt.License}}
	}
	for _, s := range bi.Settings {
		// -ldflags carries the -X version values; all settings are what
		// `go version -m` shows, kept so a rebuild can use the same.
		app.Properties = append(app.Properties, cdxProperty{Name: "go:build:" + s.Key, Value: s.Value})
	}
	std := cdxComponent{
		Type: "library", Name: "stdlib", Version: goVersion,
		Description: "Go standard library and runtime, built by the Go toolchain " + goVersion,
		PURL:        purl("stdlib", strings.TrimPrefix(goVersion, "go")),
		Properties:  []cdxProperty{{Name: "go:toolchain", Value: goVersion}},
	}
	std.BOMRef = std.PURL
	comps := []cdxComponent{std}
	deps := []string{std.BOMRef}
	for _, m := range mods {
		c := cdxComponent{Type: "library", Name: m.Path, Version: m.Version, PURL: purl(m.Path, m.Version)}
		c.BOMRef = c.PURL
		if m.Sum != "" {
			c.Properties = append(c.Properties, cdxProperty{Name: "go:module:sum", Value: m.Sum})
		}
		if m.Replaces != "" {
			c.Properties = append(c.Properties, cdxProperty{Name: "go:module:replaces", Value: m.Replaces})
		}
		comps = append(comps, c)
		deps = append(deps, c.BOMRef)
	}
	bom := cdxBOM{
		Schema:      "http://cyclonedx.org/schema/bom-1.5.schema.json",
		BOMFormat:   "CycloneDX",
		SpecVersion: "1.5",
		Version:     1,
		Metadata: cdxMetadata{
			Tools: cdxTools{Components: []cdxComponent{{
				Type: "application", Name: "pkgmeta",
				Description: "internal/cmd/pkgmeta: the SBOM from the binary's debug/buildinfo",
				Version:     opt.Version,
			}}},
			Component: app,
		},
		Components:   comps,
		Dependencies: []cdxDependency{{Ref: mainRef, DependsOn: deps}},
	}
	if !opt.Timestamp.IsZero() {
		bom.Metadata.Timestamp = opt.Timestamp.UTC().Format(time.RFC3339)
	}
	// The serial number (an RFC 4122 URN, as the schema requires) is the
	// SHA-256 of the BOM without it: unique per content, and the same for
	// the same build.
	body, err := json.Marshal(bom)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	sum[6] = sum[6]&0x0f | 0x80 // version 8 (RFC 9562: custom)
	sum[8] = sum[8]&0x3f | 0x80 // RFC 4122 variant
	bom.SerialNumber = fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(bom); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
