package checks

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
	"github.com/azurelinux-probe/azurelinux-probe/internal/lenre"
)

// repoDirs hold dnf repository files under the root: the admin's, the
// distribution's (dnf5 reads /etc/distro.repos.d and /usr/share/dnf5/repos.d
// too).
var repoDirs = []string{"/etc/yum.repos.d", "/etc/distro.repos.d", "/usr/share/dnf5/repos.d"}

// repoFileRE is the name of a repository file shown in a reason.
var repoFileRE = lenre.MustCompile(`^[A-Za-z0-9._+@-]+$`, 1, 200)

// repoSection is one [id] section of a .repo file.
type repoSection struct {
	id, file string
	line     int
	keys     map[string]string
}

func (r repoSection) enabled() bool {
	v, ok := r.keys["enabled"]
	if !ok {
		return true // dnf's default
	}
	switch strings.ToLower(v) {
	case "1", "yes", "true", "on":
		return true
	}
	return false
}

// parseRepoFile parses a dnf .repo file (INI: [section] headers, key=value
// lines, '#' and ';' comments, indented continuation lines appended to the
// previous value, as baseurl lists use).
func parseRepoFile(name string, r io.Reader) ([]repoSection, error) {
	var out []repoSection
	var cur *repoSection
	lastKey := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if raw[0] == ' ' || raw[0] == '\t' {
			if cur != nil && lastKey != "" {
				cur.keys[lastKey] += " " + line
				continue
			}
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return out, fmt.Errorf("%s:%d: malformed section header (%d bytes)", name, n, len(line))
			}
			out = append(out, repoSection{id: strings.TrimSpace(line[1 : len(line)-1]), file: name, line: n, keys: map[string]string{}})
			cur = &out[len(out)-1]
			lastKey = ""
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || cur == nil {
			return out, fmt.Errorf("%s:%d: want key=value inside a [repository] section (a line of %d bytes)", name, n, len(line))
		}
		lastKey = strings.ToLower(strings.TrimSpace(k))
		cur.keys[lastKey] = strings.TrimSpace(v)
	}
	return out, sc.Err()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// dnfConf is dnf's (and dnf5's) main configuration: its [main] reposdir
// replaces the repository directories, and it may define repositories
// itself (dnf.conf(5); dnf5's libdnf5 ConfigMain "reposdir").
const dnfConf = "/etc/dnf/dnf.conf"

// dnfConfig returns the repository directories dnf reads under the root
// and the repositories dnf.conf defines.
func (env *Env) dnfConfig() (dirs []string, repos []repoSection, problems []string) {
	dirs = repoDirs
	text, err := readSmall(env.Paths.Root(dnfConf))
	if err != nil {
		if !os.IsNotExist(err) {
			problems = append(problems, fmt.Sprintf("%s: %v", dnfConf, unwrapPath(err)))
		}
		return dirs, nil, problems
	}
	secs, err := parseRepoFile(dnfConf, strings.NewReader(text))
	if err != nil {
		problems = append(problems, err.Error())
	}
	for _, sec := range secs {
		if sec.id != "main" {
			repos = append(repos, sec)
			continue
		}
		if v, ok := sec.keys["reposdir"]; ok {
			dirs = nil
			for _, d := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
				if strings.HasPrefix(d, "/") && len(dirs) < 16 {
					dirs = append(dirs, filepath.Clean(d))
				}
			}
		}
	}
	return dirs, repos, problems
}

func (env *Env) repos(ctx context.Context) ([]repoSection, []string) {
	dirs, all, problems := env.dnfConfig()
	for _, dir := range dirs {
		matches, err := env.Paths.Root(dir).Glob("*.repo")
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", dir, unwrapPath(err)))
		}
		for _, m := range matches {
			if ctx.Err() != nil {
				return all, append(problems, fmt.Sprintf("%s: not all repository files read: %v", dir, ctx.Err()))
			}
			// The name is the tree's: shown only when it looks like one.
			name := dir + "/" + host.Show(m.Base(), repoFileRE)
			text, err := readSmall(m)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", name, unwrapPath(err)))
				continue
			}
			secs, err := parseRepoFile(name, strings.NewReader(text))
			if err != nil {
				problems = append(problems, err.Error())
			}
			all = append(all, secs...)
		}
	}
	return all, problems
}

func (env *Env) repo(ctx context.Context, r *repoSpec) (Status, string) {
	all, problems := env.repos(ctx)
	want := describeRepo(r)
	var disabled []string
	for _, s := range all {
		if r.id != "" {
			if ok, _ := filepath.Match(r.id, s.id); !ok {
				continue
			}
		}
		if r.url != "" && !strings.Contains(s.keys["baseurl"]+" "+s.keys["metalink"]+" "+s.keys["mirrorlist"], r.url) {
			continue
		}
		where := fmt.Sprintf("[%s] in %s", host.Show(s.id, repoIDRE), s.file)
		if !s.enabled() {
			disabled = append(disabled, where)
			continue
		}
		if !r.metadata {
			return StatusPass, where + " is enabled"
		}
		return env.repoMetadata(ctx, r, s, where)
	}
	msg := "no enabled repository matches " + want
	if len(disabled) > 0 {
		msg += "; disabled: " + strings.Join(disabled, ", ")
	} else if len(all) == 0 {
		msg += fmt.Sprintf("; no repository files in %s under %s", strings.Join(repoDirs, ", "), env.Paths.RootFS)
	}
	if len(problems) > 0 {
		// A file that could not be read may hold the repository.
		return StatusError, msg + "; " + strings.Join(problems, "; ")
	}
	return StatusFail, msg
}

func describeRepo(r *repoSpec) string {
	var parts []string
	if r.id != "" {
		parts = append(parts, "id "+r.id)
	}
	if r.url != "" {
		parts = append(parts, "url containing "+r.url)
	}
	return strings.Join(parts, " and ")
}

// repoMetadata fetches <baseurl>/repodata/repomd.xml of the first baseurl
// with the dnf variables substituted, within the check's timeout, and
// checks that the answer is repository metadata. The baseurl and the
// variables are the checked tree's, so the reason names the repository
// and the file, never the URL (see repoclient.go).
func (env *Env) repoMetadata(ctx context.Context, r *repoSpec, s repoSection, where string) (Status, string) {
	urls := strings.FieldsFunc(s.keys["baseurl"], func(c rune) bool { return c == ',' || c == ' ' || c == '\t' })
	if len(urls) == 0 {
		return StatusFail, where + " has no baseurl (metalink and mirrorlist are not fetched)"
	}
	u, err := env.expandRepoURL(urls[0])
	if err != nil {
		return StatusFail, fmt.Sprintf("%s: %v", where, err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	client := env.HTTPClient
	if client == nil {
		client = newRepoClient(r.timeout, env.RepoProxy)
	}
	repomd, n, err := fetchRepomdBody(ctx, client, u)
	if err != nil {
		if ctx.Err() != nil || isTimeout(err) {
			return StatusFail, fmt.Sprintf("%s: its first baseurl is not reachable within %s", where, r.timeout)
		}
		return StatusFail, fmt.Sprintf("%s: its first baseurl: %v", where, err)
	}
	if len(r.packages) > 0 {
		href, err := primaryHref(repomd)
		if err != nil {
			return StatusFail, fmt.Sprintf("%s: %v", where, err)
		}
		missing, read, err := primaryLacks(ctx, client, u, href, r.packages)
		switch {
		case err != nil && (ctx.Err() != nil || isTimeout(err)):
			return StatusFail, fmt.Sprintf("%s: its primary metadata was not read within %s", where, r.timeout)
		case err != nil:
			return StatusFail, fmt.Sprintf("%s: %v", where, err)
		case len(missing) > 0:
			return StatusFail, fmt.Sprintf("%s: its primary metadata (%d packages) lacks %s", where, read, strings.Join(missing, ", "))
		}
		return StatusPass, fmt.Sprintf("%s is enabled and its primary metadata lists %s", where, strings.Join(r.packages, ", "))
	}
	return StatusPass, fmt.Sprintf("%s is enabled and its first baseurl answers with repository metadata (%d bytes)", where, n)
}

// isTimeout reports whether err is a deadline expiring.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func (env *Env) basearch() string {
	if env.Arch != "" {
		return env.Arch
	}
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}
