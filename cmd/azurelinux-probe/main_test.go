package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/agent"
	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

var update = flag.Bool("update", false, "rewrite the golden files under collectors/testdata/golden")

const (
	treesDir  = "../../collectors/testdata/trees"
	goldenDir = "../../collectors/testdata/golden"
	imdsDir   = "../../collectors/testdata/imds"
	// runMainEnv makes the test binary act as azurelinux-probe itself, so
	// that the end-to-end test runs the real program without a build step.
	runMainEnv = "AZURELINUX_PROBE_TEST_RUN_MAIN"
)

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Exit(agent.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	// Isolated collectors run the probe's executable, which under go test
	// is this binary: its children must act as the program.
	os.Setenv(runMainEnv, "1")
	os.Exit(m.Run())
}

// allCollectors enables every registered collector, default or not.
func allCollectors() []string {
	var args []string
	for _, s := range collectors.Specs() {
		args = append(args, "--collector."+s.Name)
	}
	return args
}

func trees(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(treesDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	if len(out) < 4 {
		t.Fatalf("want at least 4 fixture trees, found %v", out)
	}
	return out
}

// TestFactsGolden runs `facts` against every fixture tree and compares the
// Prometheus output, and each failed collector's error, with the committed
// golden files. Run with -update to rewrite them after a deliberate change.
//
// The azure collector of a tree that is an Azure VM asks a loopback server
// that answers with collectors/testdata/imds/<tree>.json (404 when there is
// none), so that the run never reaches the real metadata address; the tag
// allow-list names "env" so that the tag metric shows too.
func TestFactsGolden(t *testing.T) {
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tree, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		name := filepath.Base(tree) + ".json"
		if strings.HasSuffix(r.URL.Path, "/scheduledevents") {
			name = filepath.Base(tree) + ".scheduledevents.json"
		}
		b, err := os.ReadFile(filepath.Join(imdsDir, name))
		if err != nil || r.Header.Get("Metadata") != "true" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(b)
	}))
	defer imds.Close()
	for _, tree := range trees(t) {
		t.Run(tree, func(t *testing.T) {
			root, err := filepath.Abs(filepath.Join(treesDir, tree))
			if err != nil {
				t.Fatal(err)
			}
			config := filepath.Join(t.TempDir(), "config.yml")
			endpoint := imds.URL + "/" + tree + "/metadata/instance?api-version=2023-07-01"
			if err := os.WriteFile(config, []byte("collectors:\n  azure:\n    endpoint: "+endpoint+"\n    tags: [env]\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"--path.rootfs=" + root, "--log.level=error", "--config.file=" + config}, allCollectors()...)

			var prom, stderr bytes.Buffer
			code := agent.Main(append([]string{"facts", "--format=prometheus"}, args...), &prom, &stderr)

			var js bytes.Buffer
			agent.Main(append([]string{"facts", "--format=json"}, args...), &js, io.Discard)
			var report struct {
				Collectors []struct {
					Name    string `json:"name"`
					Success bool   `json:"success"`
					Error   string `json:"error"`
				} `json:"collectors"`
			}
			if err := json.Unmarshal(js.Bytes(), &report); err != nil {
				t.Fatalf("facts --format=json: %v\n%s", err, js.String())
			}
			var errs strings.Builder
			failed := false
			for _, c := range report.Collectors {
				if !c.Success {
					failed = true
					e := strings.ReplaceAll(strings.ReplaceAll(c.Error, root, "<rootfs>"), imds.URL, "<imds>")
					fmt.Fprintf(&errs, "%s: %s\n", c.Name, e)
				}
			}
			if wantCode := map[bool]int{false: 0, true: 1}[failed]; code != wantCode {
				t.Errorf("facts exit status %d, want %d (stderr: %s)", code, wantCode, stderr.String())
			}
			golden(t, filepath.Join(goldenDir, tree+".prom"), prom.String())
			golden(t, filepath.Join(goldenDir, tree+".errors"), errs.String())
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/azurelinux-probe -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the output (run with -update after a deliberate change):\n%s",
			path, lineDiff(string(want), got))
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if count[l] > 0 {
			fmt.Fprintf(&b, "- %s\n", l)
			count[l]--
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if count[l] < 0 {
			fmt.Fprintf(&b, "+ %s\n", l)
			count[l]++
		}
	}
	return b.String()
}

// probe is a running azurelinux-probe process.
type probe struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string
	log   *bytes.Buffer
	addr  string
}

var listenRE = regexp.MustCompile(`msg="Listening on" address=(\S+)`)

// startProbe runs the program with args and waits until it listens.
func startProbe(t *testing.T, args ...string) *probe {
	t.Helper()
	return startProbeEnv(t, nil, args...)
}

func startProbeEnv(t *testing.T, env []string, args ...string) *probe {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(append(os.Environ(), runMainEnv+"=1"), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &probe{t: t, cmd: cmd, lines: make(chan string, 1000), log: &bytes.Buffer{}}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("probe log:\n%s", p.log.String())
		}
	})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	m := listenRE.FindStringSubmatch(p.waitLog(`msg="Listening on"`))
	p.addr = m[1]
	return p
}

// waitLog returns the first log line (from now on) that contains s.
func (p *probe) waitLog(s string) string {
	p.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("probe exited before logging %q", s)
			}
			p.log.WriteString(line + "\n")
			if strings.Contains(line, s) {
				return line
			}
		case <-deadline:
			p.t.Fatalf("no log line with %q within 20s", s)
		}
	}
}

func (p *probe) get(path string) (int, string) {
	p.t.Helper()
	resp, err := http.Get("http://" + p.addr + path)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestServeEndToEnd runs the program as a user would: the os collector reads
// a truncated os-release while the kernel collector reads this host's live
// kernel. The broken collector must report success 0 and the other must keep
// serving real facts; health endpoints, SIGHUP and SIGTERM must work.
func TestServeEndToEnd(t *testing.T) {
	broken, _ := filepath.Abs(filepath.Join(treesDir, "broken"))
	// systemd's notify socket, as a Type=notify unit with WatchdogSec=1s
	// provides it.
	notifyPath := filepath.Join(t.TempDir(), "notify")
	notifyConn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notifyConn.Close()
	notes := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := notifyConn.Read(buf)
			if err != nil {
				close(notes)
				return
			}
			notes <- string(buf[:n])
		}
	}()
	waitNote := func(want string) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case n := <-notes:
				if strings.Contains(n, want) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q sent to the notify socket within 20s", want)
			}
		}
	}

	p := startProbeEnv(t, []string{"NOTIFY_SOCKET=" + notifyPath, "WATCHDOG_USEC=400000"},
		"--web.listen-address=127.0.0.1:0", "--path.rootfs="+broken,
		"--path.procfs=/proc", "--path.sysfs=/sys", "--collector.disable-defaults",
		"--collector.os", "--collector.kernel")
	waitNote("READY=1")
	waitNote("WATCHDOG=1")
	p.waitLog("first snapshot complete")

	code, body := p.get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: status %d", code)
	}
	release, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`azurelinux_probe_collector_success{collector="os"} 0`,
		`azurelinux_probe_collector_success{collector="kernel"} 1`,
		fmt.Sprintf(`release="%s"`, strings.TrimSpace(string(release))),
		`azurelinux_probe_build_info{`,
		`azurelinux_probe_collector_duration_seconds{collector="kernel"}`,
		`azurelinux_probe_collector_last_success_timestamp_seconds{collector="kernel"}`,
		`azurelinux_probe_collector_interval_seconds{collector="kernel"} 15`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	promtoolCheck(t, body)
	if missing := undocumented(t, body); len(missing) > 0 {
		t.Errorf("served metrics missing from docs/metrics.md: %v", missing)
	}
	// The truncated os-release still yields the keys before the cut.
	if !strings.Contains(body, `azurelinux_os_version{id="azurelinux"} 4`) {
		t.Errorf("/metrics lacks the os facts read before the truncation")
	}
	if strings.Contains(body, "azurelinux_probe_collector_last_success_timestamp_seconds{collector=\"os\"}") {
		t.Errorf("os never succeeded but has a last-success timestamp")
	}

	if code, body := p.get("/metrics?collect[]=kernel"); code != 200 || strings.Contains(body, "azurelinux_os_") ||
		!strings.Contains(body, "azurelinux_kernel_info") {
		t.Errorf("collect[]=kernel: status %d, os facts or kernel facts wrong", code)
	}
	if code, _ := p.get("/metrics?collect[]=nosuch"); code != 400 {
		t.Errorf("collect[]=nosuch: status %d, want 400", code)
	}
	for _, path := range []string{"/-/healthy", "/-/ready"} {
		if code, body := p.get(path); code != 200 || strings.TrimSpace(body) != "OK" {
			t.Errorf("%s: %d %q", path, code, body)
		}
	}
	if _, body := p.get("/"); !strings.Contains(body, "azurelinux-probe") || !strings.Contains(body, "/metrics") {
		t.Errorf("status page lacks the program name or the metrics link")
	}

	p.cmd.Process.Signal(syscall.SIGHUP)
	waitNote("RELOADING=1")
	p.waitLog("configuration reloaded")
	waitNote("READY=1")
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog("shutting down")
	waitNote("STOPPING=1")
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := agent.Main([]string{"version"}, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "azurelinux-probe, version") {
		t.Errorf("version: %d %q", code, out.String())
	}
	var help bytes.Buffer
	if code := agent.Main([]string{"--help"}, &help, io.Discard); code != 0 || !strings.Contains(help.String(), "--web.listen-address") {
		t.Errorf("--help: exit %d, output %q", code, help.String())
	}
	if code := agent.Main([]string{"facts", "--help"}, &help, io.Discard); code != 0 || !strings.Contains(help.String(), "--format") {
		t.Errorf("facts --help: exit %d", code)
	}
	if code := agent.Main([]string{"--no-such-flag"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
}

const metricsDoc = "../../docs/metrics.md"

// TestMetricsDoc keeps docs/metrics.md equal to what the code describes.
func TestMetricsDoc(t *testing.T) {
	doc, err := agent.MetricsDoc()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, metricsDoc, doc)
}

var typeLineRE = regexp.MustCompile(`(?m)^# TYPE (\S+) `)

// undocumented returns the metric families in exposition that
// docs/metrics.md does not list. client_golang's standard families are
// documented as a group.
func undocumented(t *testing.T, exposition string) []string {
	t.Helper()
	doc, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, m := range typeLineRE.FindAllStringSubmatch(exposition, -1) {
		name := m[1]
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") || strings.HasPrefix(name, "promhttp_") {
			continue
		}
		if !strings.Contains(string(doc), "`"+name+"`") {
			missing = append(missing, name)
		}
	}
	return missing
}

func TestGoldenMetricsDocumented(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.prom"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if missing := undocumented(t, string(b)); len(missing) > 0 {
			t.Errorf("%s serves metrics missing from docs/metrics.md: %v", f, missing)
		}
	}
}

// promtoolCheck lints exposition with `promtool check metrics`. Without
// promtool the check is skipped, except in CI, where it fails.
func promtoolCheck(t *testing.T, exposition string) {
	t.Helper()
	if _, err := exec.LookPath("promtool"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (make test installs it)")
		}
		t.Log("promtool not installed: metric lint skipped (make test installs it)")
		return
	}
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
