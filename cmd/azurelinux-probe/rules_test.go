package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

const (
	rulesFile     = "../../packaging/prometheus/azurelinux-probe.rules.yml"
	rulesTestFile = "../../packaging/prometheus/azurelinux-probe.rules.test.yml"
)

// needTool returns the path of tool, skipping the test when it is missing
// outside CI and failing it in CI (make test installs it).
func needTool(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (make test installs it)", tool)
		}
		t.Skipf("%s is not installed (make test installs it)", tool)
	}
	return p
}

// defaultPrometheus3Dir is where `make prometheus3` installs Prometheus 3
// and its promtool (PROMETHEUS3_DIR overrides it).
const defaultPrometheus3Dir = "/var/cache/azurelinux-probe-test/prometheus3/bin"

// prometheusTool returns tool ("prometheus" or "promtool") of each
// Prometheus major the tests run against: 2 from the PATH (Debian's 2.42),
// 3 from the cache `make prometheus3` fills. A missing one skips outside
// CI and fails in CI, like needTool.
func prometheusTool(t *testing.T, tool string) map[string]string {
	t.Helper()
	dir := os.Getenv("PROMETHEUS3_DIR")
	if dir == "" {
		dir = defaultPrometheus3Dir
	}
	v3 := filepath.Join(dir, tool)
	if _, err := os.Stat(v3); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s of Prometheus 3 is not in %s (make prometheus3 builds it)", tool, dir)
		}
		t.Logf("%s of Prometheus 3 is not in %s (make prometheus3 builds it): only Prometheus 2", tool, dir)
		v3 = ""
	}
	out := map[string]string{"v2": needTool(t, tool)}
	if v3 != "" {
		out["v3"] = v3
	}
	return out
}

// TestRulesPromtool: the shipped rules are valid and every alert fires on
// its regression and stays silent otherwise (the test file covers each),
// for the promtool of both Prometheus majors.
func TestRulesPromtool(t *testing.T) {
	for major, promtool := range prometheusTool(t, "promtool") {
		for _, args := range [][]string{
			{"check", "rules", rulesFile},
			{"test", "rules", rulesTestFile},
			{"check", "config", "../../packaging/prometheus/prometheus-fleet.yml"},
		} {
			out, err := exec.Command(promtool, args...).CombinedOutput()
			if err != nil {
				t.Errorf("promtool (%s) %s: %v\n%s", major, strings.Join(args, " "), err, out)
			}
		}
	}
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert: (\S+)`).FindAllStringSubmatch(string(rules), -1) {
		fires := regexp.MustCompile(`alertname: ` + m[1] + `\n\s*exp_alerts:\n\s*- exp_labels`)
		silent := regexp.MustCompile(`alertname: ` + m[1] + `\n\s*exp_alerts: \[\]`)
		if !fires.Match(tests) || !silent.Match(tests) {
			t.Errorf("alert %s lacks a firing and a silent case in %s", m[1], rulesTestFile)
		}
	}
}

// TestRulesUseServedMetrics: a rule that names a metric the probe never
// emits would never fire. Every azurelinux_ metric in the rules must be in
// docs/metrics.md, which the code generates.
func TestRulesUseServedMetrics(t *testing.T) {
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, name := range regexp.MustCompile(`\bazurelinux_[a-z0-9_]+`).FindAllString(string(rules), -1) {
		seen[name] = true
	}
	var missing []string
	for name := range seen {
		if !strings.Contains(string(doc), "`"+name+"`") {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("rules reference metrics the probe does not serve (not in docs/metrics.md): %v", missing)
	}
	if len(seen) < 20 {
		t.Errorf("only %d metrics found in the rules: is the pattern wrong?", len(seen))
	}
}

// TestRulesNoIntegerLe: Prometheus 3 normalises le and quantile label values
// to floats at ingestion (le="1" is stored as le="1.0", docs/migration.md),
// so a rule matching an integer le or quantile would stop matching.
func TestRulesNoIntegerLe(t *testing.T) {
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`\b(le|quantile)\s*(=|!=|=~|!~)\s*"[+-]?[0-9]+"`)
	for _, m := range re.FindAllString(string(rules), -1) {
		t.Errorf("%s: integer label matcher %s (Prometheus 3 stores it with .0)", rulesFile, m)
	}
	if !re.MatchString(`rate(x_bucket{le="1"}[5m])`) || re.MatchString(`x_bucket{le="1.0"}`) {
		t.Fatal("the integer le pattern is wrong")
	}
}
