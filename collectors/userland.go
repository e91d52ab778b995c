package collectors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
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
	execLive   = "live"
	execAlways = "always"
	execNever  = "never"
)

type userlandOptions struct {
	// Exec says when the tools' version commands run. "always" (the
	// default) runs the tools found under --path.rootfs, whatever the root:
	// that is how a mounted golden image or a fixture tree reports its own
	// dnf5, rpm and openssl. "live" runs them only when the root is "/",
	// for images you do not trust enough to run their binaries (they run
	// as the probe's user, with no shell, a timeout and an output limit);
	// "never" runs nothing. Without running them, versions come from files
	// where a file tells (glibc, OpenSSL and systemd libraries).
	Exec string `yaml:"exec"`
	// CommandTimeout bounds each version command.
	CommandTimeout time.Duration `yaml:"command_timeout"`
}

func defaultUserlandOptions() *userlandOptions {
	return &userlandOptions{Exec: execAlways, CommandTimeout: 3 * time.Second}
}

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

// rpmDBs are the rpm database files that tell the backend, in the order rpm
// and vulnerability scanners probe them: the /usr/lib/sysimage/rpm location
// of Azure Linux 4.0 and Fedora first, then /var/lib/rpm.
var rpmDBs = []struct{ file, backend string }{
	{"usr/lib/sysimage/rpm/rpmdb.sqlite", "sqlite"},
	{"usr/lib/sysimage/rpm/Packages.db", "ndb"},
	{"usr/lib/sysimage/rpm/Packages", "bdb"},
	{"var/lib/rpm/rpmdb.sqlite", "sqlite"},
	{"var/lib/rpm/Packages.db", "ndb"},
	{"var/lib/rpm/Packages", "bdb"},
}

var userlandToolInfoFact = declare(Fact{
	Collector: "userland", Name: "tool_info",
	Help:     "Version of a userland tool (glibc through ldd, systemd through systemctl) and the path it was found at; constant 1.",
	Labels:   []string{"tool", "version", "path"},
	Identity: []string{"tool"}, Bound: "the known tools",
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
	case execLive, execAlways, execNever:
	default:
		return nil, fmt.Errorf("exec %q: want %s, %s or %s", o.Exec, execLive, execAlways, execNever)
	}
	if o.CommandTimeout <= 0 {
		return nil, fmt.Errorf("command_timeout %s must be above 0", o.CommandTimeout)
	}
	return &userlandCollector{
		opts:  *o,
		paths: env.Paths,
	}, nil
}

// execAllowed reports whether version commands may run under this root.
func (c *userlandCollector) execAllowed() bool {
	switch c.opts.Exec {
	case execAlways:
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
		full := filepath.Join(c.paths.Root(dir), bin)
		li, lerr := os.Lstat(full)
		if lerr != nil {
			continue
		}
		resolved := c.paths.Root(dir, bin)
		if c.paths.RootFS == "/" || c.paths.RootFS == "" {
			// Root resolves links only under another root.
			if r, err := filepath.EvalSymlinks(full); err == nil {
				resolved = r
			}
		}
		fi, serr := os.Stat(resolved)
		if serr != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		if li.Mode()&os.ModeSymlink != 0 {
			target = filepath.Base(resolved)
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
	out, err := c.run(ctx, c.paths.Root(path), t.args)
	// A version banner counts when the command ended by itself, even with
	// a non-zero status; not when it was killed for time or output.
	var exitErr *exec.ExitError
	if err == nil || errors.As(err, &exitErr) {
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
var validVersion = regexp.MustCompile(`^\d[0-9A-Za-z.+~_:-]{0,63}$`)

// maxCommandOutput bounds what a version command may print; version banners
// are a few hundred bytes, dnf5's with plugins a few KiB.
const maxCommandOutput = 64 << 10

var errOutputLimit = fmt.Errorf("output exceeds %d KiB", maxCommandOutput>>10)

// limitWriter keeps what is written up to its limit, then fails, which
// cancels the command, which kills it.
type limitWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	hit    bool
	cancel context.CancelFunc
}

func (w *limitWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len()+len(p) > maxCommandOutput {
		w.hit = true
		w.cancel() // kills the command's process group
		return 0, errOutputLimit
	}
	return w.buf.Write(p)
}

// run executes path with args: no shell, an empty environment but a fixed
// PATH and the C locale, no stdin, stdout and stderr together (python2
// printed its version on stderr), under the command timeout. The command
// runs in its own process group, which is killed whole on timeout, so that
// a script's children cannot keep the output pipe (and this refresh) open.
func (c *userlandCollector) run(ctx context.Context, path string, args []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "LANG=C"}
	cmd.Dir = "/"
	out := limitWriter{cancel: cancel}
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	out.mu.Lock()
	defer out.mu.Unlock()
	text := out.buf.String()
	switch {
	case out.hit:
		return text, errOutputLimit
	case ctx.Err() != nil:
		return text, fmt.Errorf("no answer within %s", c.opts.CommandTimeout)
	}
	return text, err
}

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
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
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
func scanFile(path string, re *regexp.Regexp) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s: not a regular file", path)
	}
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
		entries, err := os.ReadDir(c.paths.Root(d))
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

// rpmdbMagic checks the first bytes of an rpm database file against its
// backend's format.
func rpmdbMagic(head []byte, backend string) bool {
	if len(head) == 0 {
		// SQLite opens a zero-length file as an empty database; for the
		// others an empty file is taken at its name (an image that was
		// emptied of its package data still says which backend it uses).
		return true
	}
	switch backend {
	case "sqlite":
		return bytes.HasPrefix(head, []byte("SQLite format 3\x00"))
	case "ndb":
		return bytes.HasPrefix(head, []byte("RpmP"))
	case "bdb":
		// Berkeley DB hash or btree magic at offset 12, either byte order.
		if len(head) < 16 {
			return false
		}
		for _, magic := range [][]byte{{0x00, 0x06, 0x15, 0x61}, {0x61, 0x15, 0x06, 0x00}, {0x00, 0x05, 0x31, 0x62}, {0x62, 0x31, 0x05, 0x00}} {
			if bytes.Equal(head[12:16], magic) {
				return true
			}
		}
	}
	return false
}

// readHead reads up to n bytes from the start of a regular file.
func readHead(path string, n int) ([]byte, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b[:k], nil
}

// updateRPMDB reports the first rpm database found. /var/lib/rpm is often a
// link to /usr/lib/sysimage/rpm: the database is reported once, at its
// real place.
func (c *userlandCollector) updateRPMDB(m *Metrics) error {
	for _, db := range rpmDBs {
		p := c.paths.Root(db.file)
		head, err := readHead(p, 16)
		if isNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("rpmdb: %w", err)
		}
		if !rpmdbMagic(head, db.backend) {
			return fmt.Errorf("rpmdb: %s is not a %s database", p, db.backend)
		}
		real := p
		if rel, err := filepath.Rel(filepath.Clean(c.paths.Root()), p); err == nil && c.paths.RootFS != "/" {
			real = "/" + rel
		}
		m.Set(rpmdbInfoFact, 1, real, db.backend)
		return nil
	}
	return nil
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
		return fmt.Errorf("selinux: %s: want 0 or 1, got %s", c.paths.Sys("fs/selinux/enforce"), quoteOutput(enforce))
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
	vars, _ := parseOSRelease(text) // KEY=value lines and comments, as os-release
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
