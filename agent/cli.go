package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"
	"github.com/coreos/go-systemd/v22/activation"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
	"github.com/azurelinux-probe/azurelinux-probe/internal/exepages"
	"github.com/azurelinux-probe/azurelinux-probe/internal/heapprofile"
	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// defaultListenAddress is the documented default of --web.listen-address. It
// lies outside 9090-9100, where Prometheus, Alertmanager, Pushgateway and
// node_exporter listen.
const defaultListenAddress = ":9847"

const programName = "azurelinux-probe"

// options are the parsed command line.
type options struct {
	web             *web.FlagConfig
	telemetryPath   string
	maxRequests     int
	maxConns        int
	maxConnsSource  int
	enablePprof     bool
	rootfs          string
	procfs          string
	sysfs           string
	configFile      string
	disableDefaults bool
	collectorFlags  map[string]*bool
	optionFlags     []*optionFlag
	explicit        map[string]bool
	gomaxprocs      int
	memoryLimit     units.Base2Bytes
	log             promslog.Config
	format          string

	// The compatibility checks (agent/checks.go).
	checksDir      string
	checksEmbedded bool
	checksInterval time.Duration
	checksTimeout  time.Duration
	baselineFile   string
	repoProxy      *url.URL
	checkFormat    string
	checksSkip     []string
	checksDirSet   bool
	baselinePath   string
	checksState    checksState
}

// Main runs the probe with args (without the program name) and returns the
// process exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	// The reaper between the probe and each command it runs
	// (internal/host/reaper.go): no flags, no logging, nothing else.
	if len(args) > 0 && args[0] == host.ReaperArg {
		return host.ReaperMain(args[1:])
	}
	// The package inits are done: none of what they touched is needed again
	// (internal/exepages). A failure only costs memory.
	exepages.Release()
	o := &options{collectorFlags: map[string]*bool{}, explicit: map[string]bool{}}
	app := kingpin.New(programName,
		"In-guest probe for Azure Linux hosts: serves kernel, Hyper-V, GPU driver, eBPF, systemd and userland facts as Prometheus metrics.")
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	// --help and --version print and then ask to exit; Main returns
	// instead of calling os.Exit, so it records the request here.
	exitStatus := -1
	app.Terminate(func(code int) {
		if exitStatus < 0 {
			exitStatus = code
		}
	})
	app.HelpFlag.Short('h')

	o.addFlags(app)

	serveCmd := app.Command("serve", "Serve metrics over HTTP (the default).").Default()
	factsCmd := app.Command("facts", "Run every enabled collector once and print the facts.")
	factsCmd.Flag("format", "Output format: prometheus, json or table (default: table on a terminal, prometheus otherwise).").
		EnumVar(&o.format, "prometheus", "json", "table")
	checkCmd := app.Command("check", "Run every enabled collector once, evaluate the compatibility checks and print the report. "+
		"Each check passes, fails, is skipped (not applicable under this root, with the reason) or is an error (it could not be judged: a collector it reads failed, a file was unreadable). "+
		"Exit status: 0 every check passed or was skipped; 1 one failed, or a fact drifted from --baseline.file; 2 one was an error, or bad usage (invalid checks, configuration or baseline, a --checks.dir that does not exist, an unknown --checks.skip name).")
	checkCmd.Flag("format", "Output format: table, json or junit (JUnit XML: one test case per check, <failure>, <error> or <skipped message=…/>).").
		Default("table").EnumVar(&o.checkFormat, "table", "json", "junit")

	baselineCmd := app.Command("baseline", "Facts baselines for drift detection.")
	baselineSaveCmd := baselineCmd.Command("save", "Run every enabled collector once and write the facts (as facts --format=json) to FILE atomically.")
	baselineSaveCmd.Arg("file", "Where to write the baseline.").Required().StringVar(&o.baselinePath)
	checkConfigCmd := app.Command("check-config", "Validate the config file (every collector's options, enabled or not), every checks file of --checks.dir and the --web.config.file, "+
		"printing each problem as file:line:column and what is wrong (the nearest valid key for a typo); exit 0 when all are valid, 1 otherwise. systemctl reload runs it first.")
	ro, reportCmd, diffCmd := addReportCommands(app)
	versionCmd := app.Command("version", "Print the version.")
	collectCmd := app.Command("collect", "Refresh one collector and print its facts (how the daemon runs isolated collectors in a child process).").Hidden()
	collectName := collectCmd.Arg("collector", "Collector name.").Required().String()
	rpmCmd := app.Command(rpmPackagesCommand, "Print the packages of the rpm database at PATH under --path.rootfs as JSON (how the daemon reads rpm databases for rpm checks in a child process).").Hidden()
	rpmPath := rpmCmd.Arg("path", "Database path inside the root.").Required().String()

	cmd, err := app.Parse(args)
	o.checksSkip = splitCommas(o.checksSkip)
	if exitStatus >= 0 {
		return exitStatus
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return 2
	}
	if o.checksInterval < time.Second || o.checksTimeout <= 0 || o.checksTimeout > o.checksInterval {
		fmt.Fprintf(stderr, "%s: --checks.interval must be at least 1s and --checks.timeout above 0 and at most the interval\n", programName)
		return 2
	}
	if o.log.Writer == nil {
		o.log.Writer = stderr
	}
	logger := promslog.New(&o.log)
	if o.gomaxprocs > 0 {
		runtime.GOMAXPROCS(o.gomaxprocs)
	}

	if cmd != collectCmd.FullCommand() && cmd != versionCmd.FullCommand() {
		confineChildren(logger)
	}

	switch cmd {
	case collectCmd.FullCommand():
		return runCollectChild(*collectName, collectors.Env{Paths: o.paths(), Logger: logger.With("collector", *collectName)}, os.Stdin, stdout)
	case rpmCmd.FullCommand():
		return runRPMPackagesChild(o.paths(), *rpmPath, stdout, stderr)
	case checkConfigCmd.FullCommand():
		return o.checkConfig(stdout, stderr)
	case versionCmd.FullCommand():
		fmt.Fprintln(stdout, version.Print(programName))
		return 0
	case reportCmd.FullCommand():
		return ro.report(stdout, stderr)
	case diffCmd.FullCommand():
		return ro.diff(stdout, stderr)
	case checkCmd.FullCommand():
		return o.check(stdout, stderr, logger)
	case baselineSaveCmd.FullCommand():
		return o.baselineSave(o.baselinePath, stderr, logger)
	case factsCmd.FullCommand():
		return o.facts(stdout, logger)
	case serveCmd.FullCommand():
		return o.serveCommand(logger)
	}
	return 2
}

// serveCommand runs the daemon. Only the long-running daemon gets the soft
// memory limit: a child refreshing an isolated collector (the eBPF one
// parses the kernel's BTF) needs its heap for the few hundred milliseconds
// it lives.
func (o *options) serveCommand(logger *slog.Logger) int {
	if o.memoryLimit > 0 {
		debug.SetMemoryLimit(int64(o.memoryLimit))
	}
	if o.enablePprof {
		// Heap profiles are served: sample allocations again
		// (internal/heapprofile turned sampling off at start).
		heapprofile.Enable()
	}
	if err := o.serve(logger); err != nil {
		logger.Error("exiting", "err", err)
		return 1
	}
	return 0
}

// addFlags declares the probe's flags (those of every command) on app.
func (o *options) addFlags(app *kingpin.Application) {
	o.web = kingpinflag.AddFlags(app, defaultListenAddress)
	app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&o.telemetryPath)
	app.Flag("web.max-requests", "Maximum number of concurrent renders of filtered scrapes (collect[] or exclude[]) whose body is not cached yet; past it such a scrape gets 503; 0 disables the limit. Full scrapes and cached filter sets never take a slot.").
		Default("40").IntVar(&o.maxRequests)
	app.Flag("web.max-connections", "Maximum number of open HTTP connections per listener; at the cap the longest idle (or stuck) connection is closed to admit a new one; 0 disables the limit.").
		Default("256").IntVar(&o.maxConns)
	app.Flag("web.max-connections-per-source", "Maximum number of open HTTP connections from one source address, shed like --web.max-connections; 0 disables the limit.").
		Default("64").IntVar(&o.maxConnsSource)
	app.Flag("web.enable-pprof", "Serve Go runtime profiles under /debug/pprof/ (and link them from the status page).").
		Default("false").BoolVar(&o.enablePprof)
	app.Flag("runtime.memory-limit", "Soft limit of the serving daemon's Go heap and runtime (GOMEMLIMIT): past it the garbage collector works harder rather than let the heap grow. "+
		"The live heap is about 2 MB (cached facts, compiled checks, connection buffers); the runtime's own metadata maps about 6.5 MB more that count against the limit, little of it resident. "+
		"At the default the collector keeps close to its default goal under 8 scrapers (1.3 collections per 1,000 scrapes against 1.1 at 14MiB) and collects twice as often under 64, for 1 MB less RSS; "+
		"at 12MiB, 64 scrapers make it collect all the time. 0 disables the limit.").
		Envar("GOMEMLIMIT").Default("13MiB").BytesVar(&o.memoryLimit)
	app.Flag("runtime.gomaxprocs", "The target number of CPUs Go runs on (GOMAXPROCS); collectors mostly wait on files and syscalls, so one is plenty.").
		Envar("GOMAXPROCS").Default("1").IntVar(&o.gomaxprocs)
	app.Flag("path.rootfs", "Root of the file system the collectors read.").Default("/").StringVar(&o.rootfs)
	app.Flag("path.procfs", "procfs mount point (default: <path.rootfs>/proc).").PlaceHolder("<rootfs>/proc").StringVar(&o.procfs)
	app.Flag("path.sysfs", "sysfs mount point (default: <path.rootfs>/sys).").PlaceHolder("<rootfs>/sys").StringVar(&o.sysfs)
	app.Flag("config.file", "YAML configuration file laid over the embedded default.").PlaceHolder("FILE").StringVar(&o.configFile)
	app.Flag("collector.disable-defaults", "Disable every collector that is not enabled explicitly with --collector.<name>.").
		Default("false").BoolVar(&o.disableDefaults)
	for _, s := range collectors.Specs() {
		help := fmt.Sprintf("Enable the %s collector (default: %s).", s.Name, map[bool]string{true: "enabled", false: "disabled"}[s.DefaultEnabled])
		name := s.Name
		o.collectorFlags[name] = app.Flag("collector."+name, help).
			Default(fmt.Sprint(s.DefaultEnabled)).
			Action(func(*kingpin.ParseContext) error { o.explicit[name] = true; return nil }).Bool()
	}
	o.optionFlags = addOptionFlags(app)
	app.Flag("checks.dir", "Directory of the user's checks files (*.yml, *.yaml), evaluated with the embedded Azure Linux 4.0 matrix; a check named as an embedded one replaces it. For check, a directory given that does not exist is an error.").
		Default(defaultChecksDir).IsSetByUser(&o.checksDirSet).StringVar(&o.checksDir)
	app.Flag("checks.embedded", "Evaluate the embedded Azure Linux 4.0 matrix (--no-checks.embedded: only the files in --checks.dir).").
		Default("true").BoolVar(&o.checksEmbedded)
	app.Flag("checks.skip", "Checks not to evaluate, by name (comma-separated or repeated), in check and in the daemon; an unknown name is an error.").
		PlaceHolder("NAME[,NAME]").StringsVar(&o.checksSkip)
	app.Flag("checks.interval", "How often the daemon evaluates the checks.").Default("1m").DurationVar(&o.checksInterval)
	app.Flag("checks.timeout", "Bound on one evaluation of every check in the daemon; keep it above the longest exec or repo check timeout.").
		Default("30s").DurationVar(&o.checksTimeout)
	app.Flag("checks.repo-proxy", "HTTP proxy for the metadata requests of repo checks (metadata: true). Without it they go direct: "+
		"HTTP_PROXY and the other proxy variables are ignored, so a checked image's baseurl never reaches a proxy nobody chose for it.").
		PlaceHolder("URL").URLVar(&o.repoProxy)
	app.Flag("baseline.file", "Facts baseline (written by `baseline save`) that the daemon and check compare the current facts with (check fails on a drifted fact); it is only read.").
		PlaceHolder("FILE").StringVar(&o.baselineFile)
	promslogflag.AddFlags(app, &o.log)
	app.Version(version.Print(programName))
}

// init clears the main thread's ambient capability set: the Go runtime runs
// package initialisation locked to the main thread, so this reaches it even
// in a cgo build (the RPM's), where confineChildren cannot reach every
// thread. Effective and permitted sets are untouched. Not in the reaper,
// whose ambient set is what host.Run gave it for its command.
func init() {
	if len(os.Args) > 1 && os.Args[1] == host.ReaperArg {
		return
	}
	_ = host.ClearAmbientThisThread()
}

// confineChildren sets up how the probe starts every child: it empties the
// ambient capability set that systemd's AmbientCapabilities= gave the
// daemon, so that no child inherits the unit's capabilities by default
// (host.Run raises CAP_BPF and CAP_PERFMON for the eBPF collector's child
// only), and runs commands under the reaper (the probe's own binary), which
// kills a command's setsid grandchildren with it. A go test binary is not
// the probe and cannot be the reaper: under tests, Run kills the command's
// process group only, unless a test sets host.ReaperExecutable.
func confineChildren(logger *slog.Logger) {
	if err := host.ClearAmbient(); err != nil {
		// A cgo build: host.Run still confines each child it starts.
		logger.Debug("ambient capabilities not cleared process-wide", "err", err)
	}
	if host.ReaperExecutable == "" && !testing.Testing() {
		if exe, err := os.Executable(); err == nil {
			host.ReaperExecutable = exe
		}
	}
	if caps, err := host.ProcessCaps(); err == nil {
		logger.Debug("capabilities", "sets", caps)
	}
}

// splitCommas splits each value at commas, dropping empty names.
func splitCommas(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func (o *options) paths() collectors.Paths {
	return collectors.NewPaths(o.rootfs, o.procfs, o.sysfs)
}

// enabled returns the names of the collectors to run.
func (o *options) enabled() []string {
	var out []string
	for _, s := range collectors.Specs() {
		on := *o.collectorFlags[s.Name]
		if o.disableDefaults && !o.explicit[s.Name] {
			on = false
		}
		if on {
			out = append(out, s.Name)
		}
	}
	return out
}

// build loads the configuration and builds the enabled collectors.
func (o *options) build(logger *slog.Logger) (*collectorSet, error) {
	// The file's problems with their places and in words (check-config's
	// messages), before loadConfig stops at the first.
	if o.configFile != "" {
		if problems := validateConfigFile(o.configFile); len(problems) > 0 {
			return nil, configError(problems)
		}
	}
	cfg, err := loadConfig(o.configFile)
	if err != nil {
		return nil, err
	}
	applyOptionFlags(cfg, o.optionFlags)
	iso, err := o.isolation()
	if err != nil {
		return nil, err
	}
	env := collectors.Env{Paths: o.paths(), Logger: logger}
	if err := validateDisabled(cfg, o.enabled(), env); err != nil {
		return nil, err
	}
	return buildSet(cfg, o.enabled(), env, iso)
}

// isolation says how children of isolated collectors are started: the same
// binary, the same roots and the same logging.
func (o *options) isolation() (*isolation, error) {
	exe, err := selfExecutable()
	if err != nil {
		return nil, err
	}
	p := o.paths()
	flags := []string{"--path.rootfs=" + p.RootFS, "--path.procfs=" + p.ProcFS, "--path.sysfs=" + p.SysFS}
	if o.log.Level != nil {
		flags = append(flags, "--log.level="+o.log.Level.String())
	}
	if o.log.Format != nil {
		flags = append(flags, "--log.format="+o.log.Format.String())
	}
	return &isolation{exe: exe, flags: flags, stderr: o.log.Writer}, nil
}

func (o *options) facts(stdout io.Writer, logger *slog.Logger) int {
	set, err := o.build(logger)
	if err != nil {
		logger.Error("invalid configuration", "err", err)
		return 2
	}
	sched := newScheduler(logger)
	sched.Load(set)
	sched.RunOnce(context.Background())

	format := o.format
	if format == "" {
		format = "prometheus"
		if isTerminal(stdout) {
			format = "table"
		}
	}
	if err := writeFacts(stdout, sched, format); err != nil {
		logger.Error("print facts", "err", err)
		return 1
	}
	for _, snap := range sched.Snapshots() {
		if snap == nil || !snap.Success {
			return 1
		}
	}
	return 0
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// listen opens the listeners before serving starts, so that READY=1 is sent
// only once connections are accepted.
func (o *options) listen() ([]net.Listener, error) {
	if o.web.WebSystemdSocket != nil && *o.web.WebSystemdSocket {
		ls, err := activation.Listeners()
		if err != nil {
			return nil, fmt.Errorf("systemd socket activation: %w", err)
		}
		if len(ls) == 0 {
			return nil, errors.New("systemd socket activation: no sockets passed")
		}
		return ls, nil
	}
	var ls []net.Listener
	for _, addr := range *o.web.WebListenAddresses {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, prev := range ls {
				prev.Close()
			}
			return nil, fmt.Errorf("listen: %w", err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// addReportCommands declares the fleet commands, report and diff, which read
// Prometheus or probes, not this host.
func addReportCommands(app *kingpin.Application) (ro *reportOptions, reportCmd, diffCmd *kingpin.CmdClause) {
	ro = &reportOptions{}
	reportCmd = app.Command("report", "Print the fleet compatibility matrix (checks by category, one column per cohort of image and kernel, regressions marked, failing hosts with their reasons) from a Prometheus server that scrapes the probes; exit 0 without regression, 1 with one, 2 when the matrix cannot be built.")
	reportCmd.Flag("prometheus.url", "The Prometheus server, e.g. http://prometheus:9090.").Required().StringVar(&ro.prometheusURL)
	reportCmd.Flag("selector", `Which probes: label matchers in braces, e.g. {job="azurelinux-probe"} (default: every target).`).StringVar(&ro.selector)
	reportCmd.Flag("format", "Output format: html (one self-contained file), markdown (a pull request comment) or json.").
		Default("html").EnumVar(&ro.format, "html", "markdown", "json")
	reportCmd.Flag("by-vm-size", "Split cohorts by Azure VM size as well.").BoolVar(&ro.byVMSize)
	reportCmd.Flag("timeout", "Timeout of each query.").Default("30s").DurationVar(&ro.timeout)
	diffCmd = app.Command("diff", "Compare two facts documents fact by fact: files written by facts --format=json or baseline save, or probes' URLs (their /status.json); exit 0 when equal, 1 when they differ, 2 when one cannot be read.")
	diffCmd.Arg("a", "First facts document: a file or a probe's http(s) URL.").Required().StringVar(&ro.diffA)
	diffCmd.Arg("b", "Second facts document: a file or a probe's http(s) URL.").Required().StringVar(&ro.diffB)
	diffCmd.Flag("format", "Output format: table, markdown or json.").Default("table").EnumVar(&ro.diffFormat, "table", "markdown", "json")
	diffCmd.Flag("timeout", "Timeout of each probe request.").Default("30s").DurationVar(&ro.timeout)
	return ro, reportCmd, diffCmd
}
