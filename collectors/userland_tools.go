package collectors

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
	"github.com/azurelinux-probe/azurelinux-probe/internal/lenre"
)

// The userland collector's tools: where each is installed under the root,
// what it links to, and the version its version command prints (or, where
// nothing may run, a shipped file tells: userland_files.go).

// binDirs are where the tools are looked up under the root: the
// distribution's directories, not /usr/local, because the facts describe
// what the distribution ships.
var binDirs = []string{"usr/bin", "usr/sbin", "bin", "sbin"}

// tool describes one userland fact: the command that prints its version
// and how to read that output (the outputs each parser reads, variants
// included, are in TestVersionParsers, userland_test.go).
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

// updateTools reports each known tool: whether it is installed, what it
// links to, and its version.
func (c *userlandCollector) updateTools(ctx context.Context, m *Metrics) error {
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
