package collectors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/azurelinux-probe/azurelinux-probe/internal/lenre"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

func init() {
	register(Spec{
		Name:           "userland",
		DefaultEnabled: true,
		// These facts change with a package update, not by the second;
		// SIGHUP refreshes at once after one.
		Interval: 5 * time.Minute,
		Timeout:  20 * time.Second,
		Options:  func() any { return defaultUserlandOptions() },
		New:      newUserlandCollector,
	})
}

// Values of userlandOptions.Exec.
const (
	execLive    = "live"
	execSandbox = "sandbox"
	execAlways  = "always"
	execNever   = "never"
)

type userlandOptions struct {
	// Exec says when the tools' version commands run. "live" (the
	// default) runs them only when the root is "/": nothing from an image
	// or tree runs on the host. "sandbox" runs an image's tools inside the
	// image (host.RunSandboxed: chrooted, in their own namespaces without
	// network, as nobody with no capabilities), so that they load the
	// image's libraries and report the image's versions. "always" runs the
	// tools found under --path.rootfs on the host as they are, which only
	// a tree you built yourself deserves (the fixture trees' scripts).
	// "never" runs nothing. Without running them, versions come from files
	// where a file tells (glibc, OpenSSL and systemd libraries).
	Exec string `yaml:"exec"`
	// CommandTimeout bounds each version command.
	CommandTimeout time.Duration `yaml:"command_timeout"`
	// Packages are package names watched in the rpm database besides
	// watchedPackages (azurelinux_userland_package_info).
	Packages []string `yaml:"packages"`
}

func defaultUserlandOptions() *userlandOptions {
	return &userlandOptions{Exec: execLive, CommandTimeout: 3 * time.Second, Packages: []string{}}
}

// watchedPackages are the packages whose versions the rpm database gives in
// every mode, without running anything: what the userland tools' versions
// come from on Azure Linux 4.0. Each inner list is one fact: the first
// name installed counts (kernel-core is Fedora-style split kernels', kernel
// the unsplit package's).
var watchedPackages = [][]string{
	{"dnf5"}, {"rpm"}, {"openssl-libs"}, {"systemd"}, {"glibc"}, {"python3"}, {"kernel-core", "kernel"},
}

// Bounds on the package facts.
const (
	maxExtraPackages   = 32
	maxPackageVersions = 8 // installed kernels are kept 3 by default (dnf's installonly_limit)
)

var rpmNameRE = regexp.MustCompile(`^[a-zA-Z0-9._+-]{1,255}$`)

// binDirs are where the tools are looked up under the root: the
// distribution's directories, not /usr/local, because the facts describe
// what the distribution ships.
var binDirs = []string{"usr/bin", "usr/sbin", "bin", "sbin"}

// libDirs are where shared libraries are looked up under the root.
var libDirs = []string{"usr/lib64", "usr/lib/x86_64-linux-gnu", "usr/lib/aarch64-linux-gnu", "usr/lib", "lib64", "lib"}

// tool describes one userland fact: the command that prints its version
// and how to read that output (formats in ../shared/reference/formats.md §7).
type tool struct {
	name, bin string
	args      []string
	parse     func(out string) (string, bool)
	// fromFiles finds the version without running anything, where a
	// shipped file tells it; it returns the version and the file's path.
	fromFiles func(c *userlandCollector) (version, path string, err error)
}

var (
	dnf5VersionRE    = regexp.MustCompile(`(?m)^dnf5 version (\S+)`)
	dnf4VersionRE    = regexp.MustCompile(`\A\s*(\d+\.\d+[.\d]*)\s*\n`)
	tdnfVersionRE    = regexp.MustCompile(`(?m)^tdnf: (\S+)`)
	rpmVersionRE     = regexp.MustCompile(`(?m)^RPM version (\S+)`)
	opensslVersionRE = regexp.MustCompile(`(?m)^OpenSSL (\S+)`)
	systemctlRE      = regexp.MustCompile(`(?m)^systemd (\d\S*)(?: \(([^)\s]+)\))?`)
	pythonVersionRE  = regexp.MustCompile(`(?m)^Python (\d\S*)`)
	lddVersionRE     = regexp.MustCompile(`\A[^\n]*?(\d+\.\d+(?:\.\d+)?)[ \t]*(?:\n|\z)`)
)

func reParse(re *regexp.Regexp) func(string) (string, bool) {
	return func(out string) (string, bool) {
		m := re.FindStringSubmatch(out)
		if m == nil {
			return "", false
		}
		return m[1], true
	}
}

// parseDnf reads `dnf --version`: dnf5's banner where dnf is dnf5 (Fedora
// 41 and later), dnf4's bare version on its first line otherwise.
func parseDnf(out string) (string, bool) {
	if v, ok := reParse(dnf5VersionRE)(out); ok {
		return v, true
	}
	return reParse(dnf4VersionRE)(out)
}

// parseTdnf reads `tdnf --version` ("tdnf: 3.5.8"); a tdnf that is dnf5's
// compatibility link answers with dnf5's banner.
func parseTdnf(out string) (string, bool) {
	if v, ok := reParse(tdnfVersionRE)(out); ok {
		return v, true
	}
	return reParse(dnf5VersionRE)(out)
}

// parseSystemctl reads `systemctl --version`'s first line, "systemd 258
// (258.4-4.azl4)": the full version in parentheses when it extends the
// major, else the major.
func parseSystemctl(out string) (string, bool) {
	m := systemctlRE.FindStringSubmatch(out)
	if m == nil {
		return "", false
	}
	if strings.HasPrefix(m[2], m[1]) {
		return m[2], true
	}
	return m[1], true
}

var tools = []tool{
	{name: "dnf5", bin: "dnf5", args: []string{"--version"}, parse: reParse(dnf5VersionRE)},
	{name: "dnf", bin: "dnf", args: []string{"--version"}, parse: parseDnf},
	{name: "tdnf", bin: "tdnf", args: []string{"--version"}, parse: parseTdnf},
	{name: "rpm", bin: "rpm", args: []string{"--version"}, parse: reParse(rpmVersionRE)},
	{name: "openssl", bin: "openssl", args: []string{"version"}, parse: reParse(opensslVersionRE), fromFiles: opensslFromFiles},
	{name: "systemd", bin: "systemctl", args: []string{"--version"}, parse: parseSystemctl, fromFiles: systemdFromFiles},
	{name: "python3", bin: "python3", args: []string{"--version"}, parse: reParse(pythonVersionRE)},
	{name: "glibc", bin: "ldd", args: []string{"--version"}, parse: reParse(lddVersionRE), fromFiles: glibcFromFiles},
}

var userlandToolInfoFact = declare(Fact{
	Collector: "userland", Name: "tool_info",
	Help:     "Version of a userland tool (glibc through ldd, systemd through systemctl) and the path it was found at; constant 1.",
	Labels:   []string{"tool", "version", "path"},
	Identity: []string{"tool"}, Bound: "the known tools",
})

var userlandPackageInfoFact = declare(Fact{
	Collector: "userland", Subsystem: "userland", Name: "package_info",
	Help:     "An installed package of the watched list (dnf5, rpm, openssl-libs, systemd, glibc, python3, kernel-core or kernel, and collectors.userland.packages), from the rpm database under the root, in every exec mode: nothing is run; constant 1.",
	Labels:   []string{"name", "version", "release", "arch"},
	Identity: []string{"name", "version", "release", "arch"},
	Bound:    "the watched packages (7 and at most 32 configured), at most 8 installed versions each",
})

var userlandToolPresentFact = declare(Fact{
	Collector: "userland", Name: "tool_present",
	Help:     "1 when the tool is installed in the distribution's bin directories, 0 when not.",
	Labels:   []string{"tool"},
	Identity: []string{"tool"}, Bound: "the known tools",
})

var userlandToolSymlinkInfoFact = declare(Fact{
	Collector: "userland", Name: "tool_symlink_info",
	Help:     "The tool is a symbolic link to target (tdnf to dnf5 is dnf5's compatibility link); constant 1.",
	Labels:   []string{"tool", "target"},
	Identity: []string{"tool"}, Bound: "the known tools",
})

type userlandCollector struct {
	opts  userlandOptions
	paths Paths
}

func newUserlandCollector(env Env, opts any) (Collector, error) {
	o := opts.(*userlandOptions)
	switch o.Exec {
	case execLive, execSandbox, execAlways, execNever:
	default:
		return nil, fmt.Errorf("exec %q: want %s, %s, %s or %s", o.Exec, execLive, execSandbox, execAlways, execNever)
	}
	if o.CommandTimeout <= 0 {
		return nil, fmt.Errorf("command_timeout %s must be above 0", o.CommandTimeout)
	}
	if len(o.Packages) > maxExtraPackages {
		return nil, fmt.Errorf("packages: %d names, at most %d", len(o.Packages), maxExtraPackages)
	}
	for _, n := range o.Packages {
		if !rpmNameRE.MatchString(n) {
			return nil, fmt.Errorf("packages: %q is not a package name", n)
		}
	}
	return &userlandCollector{
		opts:  *o,
		paths: env.Paths,
	}, nil
}

// execAllowed reports whether version commands may run under this root.
func (c *userlandCollector) execAllowed() bool {
	switch c.opts.Exec {
	case execAlways, execSandbox:
		return true
	case execLive:
		return c.paths.RootFS == "/" || c.paths.RootFS == ""
	}
	return false
}

func (c *userlandCollector) Update(ctx context.Context, m *Metrics) error {
	type result struct {
		version, path string
		err           error
	}
	results := make([]result, len(tools))
	found := make([]string, len(tools)) // in-root path of each tool's binary
	links := map[string]string{}        // tool name -> the tool it links to
	var errs []error
	for i, t := range tools {
		path, target := c.lookup(t.bin)
		found[i] = path
		m.SetBool(userlandToolPresentFact, path != "", t.name)
		if target != "" {
			m.Set(userlandToolSymlinkInfoFact, 1, t.name, target)
			for _, o := range tools {
				if o.bin == target && o.name != t.name {
					links[t.name] = o.name
				}
			}
		}
	}

	// The commands run concurrently, so that hung tools cost one timeout,
	// not one each.
	var wg sync.WaitGroup
	for i, t := range tools {
		if found[i] == "" {
			if t.fromFiles != nil {
				v, p, err := t.fromFiles(c)
				results[i] = result{v, p, err}
			}
			continue
		}
		if _, ok := links[t.name]; ok {
			continue // reported with the tool it links to
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.version(ctx, t, found[i])
			results[i] = result{v, found[i], err}
		}()
	}
	wg.Wait()
	for i, t := range tools {
		if o, ok := links[t.name]; ok {
			for j := range tools {
				if tools[j].name == o && results[j].version != "" {
					results[i] = result{results[j].version, found[i], nil}
				}
			}
		}
		r := results[i]
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.name, r.err))
		}
		if r.version != "" {
			m.Set(userlandToolInfoFact, 1, t.name, r.version, r.path)
		}
	}

	errs = append(errs, c.updateRPMDB(m), c.updateCryptoPolicy(m), c.updateSELinux(m))
	return errors.Join(errs...)
}

// lookup finds bin in the bin directories under the root. It returns its
// path inside the root ("/usr/bin/dnf5"), and when it is a symbolic link,
// the name of what it finally resolves to. A dangling link or a file that
// is not executable is not the tool.
func (c *userlandCollector) lookup(bin string) (path, target string) {
	for _, dir := range binDirs {
		full := c.paths.Root(dir, bin)
		li, lerr := full.Lstat()
		if lerr != nil {
			continue
		}
		resolved, rerr := full.Resolve()
		if rerr != nil {
			continue
		}
		fi, serr := resolved.Stat()
		if serr != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		if li.Mode()&os.ModeSymlink != 0 {
			target = resolved.Base()
			if target == bin {
				target = "" // /bin/x -> /usr/bin/x: the same tool
			}
		}
		return "/" + filepath.Join(dir, bin), target
	}
	return "", ""
}

// version finds t's version: by running its version command where that is
// allowed, else from files.
func (c *userlandCollector) version(ctx context.Context, t tool, path string) (string, error) {
	if !c.execAllowed() {
		if t.fromFiles == nil {
			return "", nil
		}
		v, _, err := t.fromFiles(c)
		return v, err
	}
	cmd := strings.Join(append([]string{path}, t.args...), " ")
	var res host.Result
	var err error
	if c.opts.Exec == execSandbox && !c.paths.IsLiveRoot() {
		res, err = host.RunSandboxed(ctx, c.paths.Root().Root(), host.Cmd{Path: path, Args: t.args,
			Timeout: c.opts.CommandTimeout, MaxOutput: maxCommandOutput})
	} else {
		res, err = host.Run(ctx, host.Cmd{Path: c.paths.Root(path).Abs(), Args: t.args,
			Timeout: c.opts.CommandTimeout, MaxOutput: maxCommandOutput})
	}
	out := res.Output
	// A version banner counts when the command ended by itself, even with
	// a non-zero status; not when it was killed for time or output.
	if res.Exited {
		if v, ok := t.parse(out); ok && validVersion.MatchString(v) {
			return v, nil
		}
	}
	if err != nil && out == "" {
		return "", fmt.Errorf("%s: %w", cmd, err)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w (output %s)", cmd, err, quoteOutput(out))
	}
	return "", fmt.Errorf("%s: unexpected output %s", cmd, quoteOutput(out))
}

// validVersion is what a version label may hold: 5.2.18.0, 258.4-4.azl4,
// 252.39-1~deb12u2, 3.14.0rc1.
var validVersion = lenre.MustCompile(`^\d[0-9A-Za-z.+~_:-]*$`, 1, 64)

// maxCommandOutput bounds what a version command may print; version banners
// are a few hundred bytes, dnf5's with plugins a few KiB.
const maxCommandOutput = 64 << 10

// quoteOutput shows the start of a command's output in an error.
func quoteOutput(s string) string {
	if s == "" {
		return "(none)"
	}
	line, _, _ := strings.Cut(s, "\n")
	if !utf8.ValidString(line) || strings.ContainsRune(line, 0) {
		return "(binary data)"
	}
	return strconv.Quote(truncate(line, 80))
}

// findLib returns the first of names present in the library directories.
func (c *userlandCollector) findLib(names ...string) string {
	for _, dir := range libDirs {
		for _, n := range names {
			p := c.paths.Root(dir, n)
			if fi, err := p.Stat(); err == nil && fi.Mode().IsRegular() {
				return "/" + filepath.Join(dir, n)
			}
		}
	}
	return ""
}

// maxScan bounds how much of a shared library is scanned for its banner.
const maxScan = 32 << 20

// scanFile returns the first match of re's first group in the file at
// path (a binary), reading it in chunks that overlap by 256 bytes, so a
// banner that spans two chunks is found too.
func scanFile(path host.Path, re *regexp.Regexp) (string, error) {
	f, err := path.Open()
	if err != nil {
		return "", err
	}
	defer f.Close()
	const chunk, overlap = 1 << 20, 256
	buf := make([]byte, 0, chunk+overlap)
	var read int64
	for read < maxScan {
		n, err := io.ReadFull(f, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		read += int64(n)
		if m := re.FindSubmatch(buf); m != nil {
			return string(m[1]), nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return "", nil
			}
			return "", fmt.Errorf("%s: %w", path, err)
		}
		if len(buf) > overlap {
			buf = buf[:copy(buf, buf[len(buf)-overlap:])]
		}
	}
	return "", nil
}

var (
	// glibc's libc.so.6 carries "GNU C Library (GNU libc) stable release
	// version 2.42." (Debian: "(Debian GLIBC 2.36-9+deb12u14)").
	glibcBannerRE = regexp.MustCompile(`GNU C Library [^\x00\n]*? release version (\d+\.\d+(?:\.\d+)?)`)
	// libcrypto carries OPENSSL_VERSION_TEXT, "OpenSSL 3.5.4 30 Sep 2025".
	opensslBannerRE = regexp.MustCompile(`OpenSSL (\d+\.\d+\.\d+[a-z]?(?:-\w+)?) \d{1,2} [A-Z][a-z]{2} \d{4}`)
	// systemd's private library is named after its version:
	// libsystemd-shared-258.4-4.azl4.so (Fedora style), -252.so (Debian).
	systemdSharedRE = regexp.MustCompile(`^libsystemd-shared-(\d+\S*)\.so$`)
)

func glibcFromFiles(c *userlandCollector) (string, string, error) {
	return bannerFromLib(c, glibcBannerRE, "libc.so.6")
}

func opensslFromFiles(c *userlandCollector) (string, string, error) {
	return bannerFromLib(c, opensslBannerRE, "libcrypto.so.3", "libcrypto.so.1.1")
}

func bannerFromLib(c *userlandCollector, re *regexp.Regexp, names ...string) (string, string, error) {
	p := c.findLib(names...)
	if p == "" {
		return "", "", nil
	}
	v, err := scanFile(c.paths.Root(p), re)
	if err != nil || v == "" {
		return "", "", err
	}
	return v, p, nil
}

func systemdFromFiles(c *userlandCollector) (string, string, error) {
	for _, dir := range libDirs {
		d := filepath.Join(dir, "systemd")
		entries, err := c.paths.Root(d).ReadDir()
		if err != nil {
			continue
		}
		for _, e := range entries {
			if m := systemdSharedRE.FindStringSubmatch(e.Name()); m != nil {
				return m[1], "/" + filepath.Join(d, e.Name()), nil
			}
		}
	}
	return "", "", nil
}

// updateRPMDB reports the first rpm database found, and the watched
// packages in it. /var/lib/rpm is often a link to /usr/lib/sysimage/rpm:
// the database is reported once, at its real place.
func (c *userlandCollector) updateRPMDB(m *Metrics) error {
	db, err := host.FindRPMDB(c.paths.Root())
	switch {
	case errors.Is(err, host.ErrNoRPMDB):
		return nil
	case err != nil:
		return fmt.Errorf("rpmdb: %w", err)
	}
	m.Set(rpmdbInfoFact, 1, db.Real.InRoot(), db.Backend)
	pkgs, err := host.ReadRPMPackages(db)
	if err != nil {
		return fmt.Errorf("rpmdb: %w", err)
	}
	for _, p := range watchedInstalled(pkgs, c.opts.Packages) {
		m.Set(userlandPackageInfoFact, 1, p.Name, p.Version, p.Release, p.Arch)
	}
	return nil
}

// watchedInstalled returns the installed packages of the watched list and
// the extras, at most maxPackageVersions per name, in list order.
func watchedInstalled(pkgs []host.RPMPackage, extras []string) []host.RPMPackage {
	byName := map[string][]host.RPMPackage{}
	for _, p := range pkgs {
		if len(byName[p.Name]) < maxPackageVersions {
			byName[p.Name] = append(byName[p.Name], p)
		}
	}
	watch := slices.Clone(watchedPackages)
	for _, e := range extras {
		watch = append(watch, []string{e})
	}
	var out []host.RPMPackage
	seen := map[string]bool{}
	for _, alts := range watch {
		for _, name := range alts {
			if got := byName[name]; len(got) > 0 {
				if !seen[name] {
					out = append(out, got...)
					seen[name] = true
				}
				break
			}
		}
	}
	return out
}

var cryptoPolicyRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(?::[A-Za-z0-9_-]+)*$`)

// updateCryptoPolicy reads the policy update-crypto-policies applied last,
// e.g. DEFAULT, FIPS or FIPS:OSPP; where it never ran, the configured one
// (/etc/crypto-policies/config, which may hold comments).
func (c *userlandCollector) updateCryptoPolicy(m *Metrics) error {
	p := c.paths.Root("etc/crypto-policies/state/current")
	v, err := readValue(p)
	if isNotExist(err) {
		p = c.paths.Root("etc/crypto-policies/config")
		var text string
		text, err = readText(p, maxValueSize)
		var lines []string
		for _, l := range strings.Split(text, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
		v = strings.Join(lines, "\n")
		if err == nil && v == "" {
			err = fmt.Errorf("%s: no policy", p)
		}
	}
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("crypto policy: %w", err)
	}
	if n := strings.Count(v, "\n") + 1; n > 1 {
		return fmt.Errorf("crypto policy: %s: want one policy name, got %d lines", p, n)
	}
	if !cryptoPolicyRE.MatchString(v) {
		return fmt.Errorf("crypto policy: %s: not a policy name: %s", p, quoteOutput(v))
	}
	m.Set(cryptoPolicyInfoFact, 1, v)
	return nil
}

// updateSELinux reports the SELinux mode. selinuxfs tells the running
// mode; without it, SELinux is disabled when the kernel command line says
// selinux=0 or the LSM list lacks it (Azure Linux 3.0 boots with
// selinux=0 while its config says enforcing); otherwise the configured
// mode is what the next boot gets.
func (c *userlandCollector) updateSELinux(m *Metrics) error {
	enforce, err := readValue(c.paths.Sys("fs/selinux/enforce"))
	switch {
	case err == nil && enforce == "1":
		m.Set(selinuxModeFact, 2)
		return nil
	case err == nil && enforce == "0":
		m.Set(selinuxModeFact, 1)
		return nil
	case err == nil:
		return fmt.Errorf("selinux: %s: want 0 or 1 (%s)", c.paths.Sys("fs/selinux/enforce"), host.Invalid(enforce))
	case !isNotExist(err):
		return fmt.Errorf("selinux: %w", err)
	}
	if cmdline, err := readValue(c.paths.Proc("cmdline")); err == nil {
		for _, f := range strings.Fields(cmdline) {
			if f == "selinux=0" {
				m.Set(selinuxModeFact, 0)
				return nil
			}
		}
	}
	if lsm, err := readValue(c.paths.Sys("kernel/security/lsm")); err == nil {
		active := false
		for _, l := range strings.Split(lsm, ",") {
			active = active || l == "selinux"
		}
		if !active {
			m.Set(selinuxModeFact, 0)
			return nil
		}
	}
	p := c.paths.Root("etc/selinux/config")
	text, err := readText(p, 64<<10)
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("selinux: %w", err)
	}
	vars, _ := host.ParseOSRelease(text) // KEY=value lines and comments, as os-release
	switch mode := strings.ToLower(vars["SELINUX"]); mode {
	case "enforcing":
		m.Set(selinuxModeFact, 2)
	case "permissive":
		m.Set(selinuxModeFact, 1)
	case "disabled":
		m.Set(selinuxModeFact, 0)
	default:
		return fmt.Errorf("selinux: %s: SELINUX=%s is not enforcing, permissive or disabled", p, quoteOutput(mode))
	}
	return nil
}
