package agent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"

	"github.com/azurelinux-probe/azurelinux-probe/checks"
	"github.com/azurelinux-probe/azurelinux-probe/collectors"
	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// Collectors whose Spec is Isolated refresh in a child process: the probe's
// own binary run as `azurelinux-probe collect NAME`, with the collector's
// options on standard input, its facts in the text exposition format on
// standard output and its log lines on standard error. What the refresh
// allocates (the eBPF collector parses the kernel's BTF, several MB), the
// file descriptors and kernel objects it opens, and a crash, all end with the
// child; the daemon's own memory stays that of serving cached facts.

const (
	// collectErrorPrefix and collectNoDataPrefix start the comment lines
	// after the facts by which the child reports a failure or an absent
	// source.
	collectErrorPrefix  = "# collect-error: "
	collectNoDataPrefix = "# collect-nodata: "
	// maxChildAddressSpace bounds a child's address space (RLIMIT_AS): a
	// refresh needs a few tens of MB; the Go runtime reserves far less
	// than this.
	maxChildAddressSpace = 2 << 30
	// maxIsolatedOutput bounds what the parent reads of the child's facts.
	maxIsolatedOutput = 16 << 20
	// exitNoData is the child's exit status for ErrNoData.
	exitNoData = 3
)

// isolation is how to start a child for an isolated collector.
type isolation struct {
	exe    string    // the probe's executable
	flags  []string  // --path.* and --log.* flags for the child
	stderr io.Writer // where the child's log lines go
}

// isolatedCollector runs one collector's refresh in a child process.
type isolatedCollector struct {
	name    string
	iso     *isolation
	options []byte // the collector's options as YAML
	// logged is what the children have logged, so that a line a child
	// repeats on every refresh (a capability it lacks, a probe the kernel
	// refuses) reaches the log once, as it would from a long-lived
	// collector, and again when it comes back after a refresh without it.
	logged logDedup
}

func newIsolated(spec collectors.Spec, opts any, iso *isolation) (*isolatedCollector, error) {
	var raw []byte
	if opts != nil {
		var err error
		if raw, err = yaml.Marshal(opts); err != nil {
			return nil, fmt.Errorf("collector %s: encode options for the child process: %w", spec.Name, err)
		}
	}
	return &isolatedCollector{name: spec.Name, iso: iso, options: raw}, nil
}

// childCaps are the capabilities each isolated collector's child gets, of
// those the daemon holds (the unit grants CAP_BPF and CAP_PERFMON; a site
// drop-in may add CAP_NET_ADMIN for the network program types, and root
// holds all). Every other child, and every command, gets none.
var childCaps = map[string][]host.Capability{
	"ebpf": {host.CapBPF, host.CapPerfmon, host.CapNetAdmin, host.CapSysAdmin},
}

// capsOf returns the capabilities of the child of collector name. A
// collector isolated because its root is not this system's keeps only
// CAP_SETPCAP, which host.Run needs to start the commands it runs (the
// userland collector's) with none.
func capsOf(name string) []host.Capability {
	if caps, ok := childCaps[name]; ok {
		return caps
	}
	return []host.Capability{host.CapSetPCAP}
}

// childEnv is the environment of a collector's child: MinimalEnv and the
// probe's own AZURELINUX_PROBE_* variables, nothing else of the daemon's.
func childEnv() []string {
	env := append([]string(nil), host.MinimalEnv...)
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AZURELINUX_PROBE_") {
			env = append(env, kv)
		}
	}
	return env
}

func (c *isolatedCollector) Update(ctx context.Context, m *collectors.Metrics) error {
	args := append([]string{"collect", c.name}, c.iso.flags...)
	var out limitedBuffer
	out.limit = maxIsolatedOutput
	var tail tailBuffer
	c.logged.nextRefresh()
	// The refresh's own deadline governs; host.Run's timeout only backs it.
	timeout := 10 * time.Minute
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d) + time.Second
	}
	// host.Run: its own process group, killed whole at the deadline, with
	// only the capabilities this collector needs.
	_, runErr := host.Run(ctx, host.Cmd{
		Path: c.iso.exe, Args: args, Env: childEnv(),
		Stdin:   bytes.NewReader(c.options),
		Stdout:  &out,
		Stderr:  io.MultiWriter(&dedupWriter{d: &c.logged, w: c.iso.stderr}, &tail),
		Timeout: timeout,
		Caps:    capsOf(c.name),
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if out.overflow {
		return fmt.Errorf("collector process wrote more than %d bytes", maxIsolatedOutput)
	}

	facts, trailer := splitTrailer(out.String())
	perr := emitExposition(m, facts)
	var exitErr *exec.ExitError
	switch {
	case runErr == nil:
		return perr
	case errors.As(runErr, &exitErr) && exitErr.ExitCode() == exitNoData:
		return fmt.Errorf("%w: %s", collectors.ErrNoData, trailer.noData)
	case errors.As(runErr, &exitErr) && exitErr.ExitCode() == 1 && trailer.err != "":
		// One error per line the child reported, so that the scheduler's
		// bound (boundErrors) counts them as the in-process ones are.
		var errs []error
		for _, line := range strings.Split(trailer.err, "\n") {
			errs = append(errs, errors.New(line))
		}
		return errors.Join(append(errs, perr)...)
	}
	return fmt.Errorf("collector process: %w (last output: %q)", runErr, tail.String())
}

// maxRPMListOutput bounds the package list a child prints: a few thousand
// packages are a few hundred KB of JSON.
const maxRPMListOutput = 16 << 20

// rpmLister reads rpm databases for the daemon's rpm checks in a child,
// `azurelinux-probe rpm-packages PATH`: the pure-Go sqlite engine, the copy
// of a database of tens of MB and its parse then never enter the daemon's
// memory, and a malformed database cannot crash it. The checks keep the
// package list of an unchanged database, so a child runs only when the
// database changes (a package was installed or removed).
func (iso *isolation) rpmLister() checks.RPMLister {
	return func(ctx context.Context, rel string) ([]byte, error) {
		var out limitedBuffer
		out.limit = maxRPMListOutput
		var tail tailBuffer
		timeout := time.Minute
		if d, ok := ctx.Deadline(); ok {
			timeout = time.Until(d) + time.Second
		}
		// No capabilities: the rpm database is world-readable.
		_, err := host.Run(ctx, host.Cmd{
			Path: iso.exe, Args: append([]string{rpmPackagesCommand, rel}, iso.flags...), Env: childEnv(),
			Stdout: &out, Stderr: &tail, Timeout: timeout, MaxOutput: maxRPMListOutput + 1<<20,
		})
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case out.overflow:
			return nil, fmt.Errorf("rpm reader process wrote more than %d bytes", maxRPMListOutput)
		case err != nil && tail.String() != "":
			return nil, errors.New(tail.String())
		case err != nil:
			return nil, fmt.Errorf("rpm reader process: %w", err)
		}
		return out.Bytes(), nil
	}
}

// rpmPackagesCommand is the hidden subcommand of rpmLister's child.
const rpmPackagesCommand = "rpm-packages"

// runRPMPackagesChild is the child's side of rpmLister: the packages of the
// database at rel as JSON on stdout, or the reason on stderr and status 1.
func runRPMPackagesChild(paths collectors.Paths, rel string, stdout, stderr io.Writer) int {
	if err := checks.WriteRPMPackages(paths, rel, stdout); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

type trailer struct{ err, noData string }

// splitTrailer separates the child's report lines from its facts.
func splitTrailer(s string) (string, trailer) {
	var facts strings.Builder
	var t trailer
	var errLines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 64<<10), maxIsolatedOutput)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, collectErrorPrefix):
			errLines = append(errLines, strings.TrimPrefix(line, collectErrorPrefix))
		case strings.HasPrefix(line, collectNoDataPrefix):
			t.noData = strings.TrimPrefix(line, collectNoDataPrefix)
		default:
			facts.WriteString(line)
			facts.WriteByte('\n')
		}
	}
	t.err = strings.Join(errLines, "\n")
	return facts.String(), t
}

// emitExposition turns the child's text exposition back into metrics. Every
// metric must be declared (collectors.Facts): the daemon serves the
// declaration's type, help and label order, and an unknown name is an error
// rather than a series no document describes.
func emitExposition(m *collectors.Metrics, text string) error {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return fmt.Errorf("collector process output: %w", err)
	}
	names := make([]string, 0, len(families))
	for n := range families {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fact, ok := collectors.LookupFact(n)
		if !ok {
			return fmt.Errorf("collector process output: undeclared metric %s", n)
		}
		mf := families[n]
		for _, s := range mf.GetMetric() {
			byName := make(map[string]string, len(s.GetLabel()))
			for _, l := range s.GetLabel() {
				byName[l.GetName()] = l.GetValue()
			}
			values := make([]string, len(fact.Labels))
			badLabels := len(byName) != len(fact.Labels)
			for i, l := range fact.Labels {
				v, ok := byName[l]
				values[i] = v
				badLabels = badLabels || !ok
			}
			if badLabels {
				return fmt.Errorf("collector process output: %s: labels %v, declared %v", n, s.GetLabel(), fact.Labels)
			}
			var v float64
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				v = s.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = s.GetGauge().GetValue()
			default:
				v = s.GetUntyped().GetValue()
			}
			m.Set(fact, v, values...)
		}
	}
	return nil
}

// runCollectChild is the child's side: `azurelinux-probe collect NAME`
// builds the collector from the options on stdin, refreshes it once and
// prints its facts, then the report line, and exits 0, 1 (failure) or 3 (no
// data).
func runCollectChild(name string, env collectors.Env, stdin io.Reader, stdout io.Writer) int {
	// A refresh that reads an untrusted tree, or parses the kernel's BTF,
	// must not take the host's memory with it: past the limit allocation
	// fails and the child dies, as it does at its timeout, alone.
	if err := unix.Setrlimit(unix.RLIMIT_AS, &unix.Rlimit{Cur: maxChildAddressSpace, Max: maxChildAddressSpace}); err != nil {
		fmt.Fprintf(stdout, "%slimit address space: %v\n", collectErrorPrefix, err)
		return 1
	}
	spec, ok := collectors.Lookup(name)
	if !ok {
		fmt.Fprintf(stdout, "%sno collector %q\n", collectErrorPrefix, name)
		return 1
	}
	var opts any
	if spec.Options != nil {
		opts = spec.Options()
		raw, err := io.ReadAll(stdin)
		if err != nil {
			fmt.Fprintf(stdout, "%sread options: %v\n", collectErrorPrefix, err)
			return 1
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(opts); err != nil && !errors.Is(err, io.EOF) {
			fmt.Fprintf(stdout, "%soptions: %v\n", collectErrorPrefix, err)
			return 1
		}
	}
	c, err := spec.New(env, opts)
	if err != nil {
		fmt.Fprintf(stdout, "%s%v\n", collectErrorPrefix, err)
		return 1
	}
	m := &collectors.Metrics{}
	uerr := errors.Join(c.Update(context.Background(), m), m.Err())
	if errors.Is(uerr, collectors.ErrNoData) && len(m.List()) == 0 {
		fmt.Fprintf(stdout, "%s%v\n", collectNoDataPrefix, uerr)
		return exitNoData
	}
	families, err := gather(metricList(m.List()))
	if err != nil {
		uerr = errors.Join(uerr, err)
	}
	enc := expfmt.NewEncoder(stdout, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range families {
		if err := enc.Encode(mf); err != nil {
			return 1
		}
	}
	if uerr != nil && !errors.Is(uerr, collectors.ErrNoData) {
		for _, line := range strings.Split(uerr.Error(), "\n") {
			fmt.Fprintf(stdout, "%s%s\n", collectErrorPrefix, line)
		}
		return 1
	}
	return 0
}

// limitedBuffer keeps at most limit bytes and notes an overflow.
type limitedBuffer struct {
	bytes.Buffer
	limit    int
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.limit {
		b.overflow = true
		return 0, errors.New("output limit")
	}
	return b.Buffer.Write(p)
}

// tailBuffer keeps the last 2 KiB written, for error messages.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2048 {
		t.b = t.b[len(t.b)-2048:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.b)) }

// selfExecutable is the binary a child runs: the probe itself.
func selfExecutable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the probe's executable for isolated collectors: %w", err)
	}
	return exe, nil
}

// logDedup remembers the log lines of one collector's latest two refreshes
// by their content without the timestamp: a line is forwarded unless the
// previous refresh logged it too (a lasting condition) or this one already
// did. A condition that clears and comes back is thus logged again.
type logDedup struct {
	mu         sync.Mutex
	prev, this map[string]bool
}

// maxRememberedLogLines bounds what logDedup remembers of one refresh;
// past it every line is forwarded.
const maxRememberedLogLines = 1024

var logTimeRE = regexp.MustCompile(`(^|\s)time=\S+|"time":"[^"]*",?`)

// nextRefresh starts a refresh: what the last one logged becomes the
// previous refresh's lines.
func (d *logDedup) nextRefresh() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.prev, d.this = d.this, nil
}

// first reports whether line (ignoring its time) is to be forwarded: it
// was not logged by the previous refresh nor yet by this one.
func (d *logDedup) first(line string) bool {
	key := logTimeRE.ReplaceAllString(line, "")
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.this[key] {
		return false
	}
	if d.this == nil {
		d.this = map[string]bool{}
	}
	if len(d.this) < maxRememberedLogLines {
		d.this[key] = true
	}
	return !d.prev[key]
}

// dedupWriter forwards whole lines to w, each distinct line once.
type dedupWriter struct {
	d       *logDedup
	w       io.Writer
	partial []byte
}

func (dw *dedupWriter) Write(p []byte) (int, error) {
	dw.partial = append(dw.partial, p...)
	for {
		i := bytes.IndexByte(dw.partial, '\n')
		if i < 0 {
			break
		}
		line := dw.partial[:i+1]
		if dw.d.first(string(line)) {
			dw.w.Write(line)
		}
		dw.partial = dw.partial[i+1:]
	}
	return len(p), nil
}
