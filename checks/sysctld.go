package checks

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// sysctlDirs are where systemd-sysctl reads *.conf files, highest
// precedence first (sysctl.d(5); systemd src/sysctl/sysctl.c,
// CONF_PATHS_STRV("sysctl.d")): a file in an earlier directory replaces one
// of the same name in a later one, and the files are then applied in the
// lexicographic order of their names, so a later assignment wins.
var sysctlDirs = []string{"etc/sysctl.d", "run/sysctl.d", "usr/local/lib/sysctl.d", "usr/lib/sysctl.d", "lib/sysctl.d"}

// sysctlConf is read after the directories, as procps' `sysctl --system`
// does (Azure Linux and Debian also link it as /etc/sysctl.d/99-sysctl.conf).
const sysctlConf = "etc/sysctl.conf"

// Bounds on what the configured sysctls may cost to read.
const (
	maxSysctlFiles    = 256
	maxSysctlFileSize = 64 << 10
)

// sysctlSetting is one assignment from a sysctl.d file.
type sysctlSetting struct {
	key, value, file string
}

// configuredSysctls returns the assignments of the sysctl.d files under the
// root, in the order systemd-sysctl applies them. Files that cannot be read
// are returned as problems naming the file.
func configuredSysctls(p collectors.Paths) ([]sysctlSetting, []string) {
	chosen := map[string]string{} // file name -> in-root path of the one that counts
	var problems []string
	for _, dir := range sysctlDirs {
		entries, err := p.Root(dir).ReadDir()
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				problems = append(problems, fmt.Sprintf("/%s: %v", dir, unwrapPath(err)))
			}
			continue
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".conf") || e.IsDir() {
				continue
			}
			if _, seen := chosen[e.Name()]; !seen && len(chosen) < maxSysctlFiles {
				chosen[e.Name()] = dir + "/" + e.Name()
			}
		}
	}
	names := Sorted(chosen)
	files := make([]string, 0, len(names)+1)
	for _, n := range names {
		files = append(files, chosen[n])
	}
	if !slices.Contains(files, "etc/sysctl.d/99-sysctl.conf") {
		files = append(files, sysctlConf)
	}
	var out []sysctlSetting
	for _, f := range files {
		text, err := p.Root(f).ReadText(maxSysctlFileSize)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				problems = append(problems, fmt.Sprintf("/%s: %v", f, unwrapPath(err)))
			}
			continue
		}
		out = append(out, parseSysctlConf("/"+f, text)...)
	}
	return out, problems
}

// parseSysctlConf reads the assignments of one sysctl.d file: "key = value"
// lines, '#' and ';' comments, a leading '-' (ignore a failure to set)
// dropped (sysctl.d(5); systemd src/sysctl/sysctl.c parse_file).
func parseSysctlConf(file, text string) []sysctlSetting {
	var out []sysctlSetting
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue // systemd-sysctl ignores it with a warning
		}
		k = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(k), "-"))
		if k == "" {
			continue
		}
		out = append(out, sysctlSetting{key: normalizeSysctl(k), value: strings.Join(strings.Fields(v), " "), file: file})
	}
	return out
}

// normalizeSysctl writes a sysctl key with dots: in "net/ipv4/conf/eth0.1"
// (the first separator a slash) slashes separate and dots are part of
// names, as sysctl.d(5) says.
func normalizeSysctl(k string) string {
	i := strings.IndexAny(k, "./")
	if i < 0 || k[i] == '.' {
		return k
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '/':
			return '.'
		case '.':
			return '/'
		}
		return r
	}, k)
}

// configuredSysctl judges a sysctl check under an image root: by the value
// the sysctl.d files configure (what the image's first boot applies), since
// no kernel runs there. A sysctl no file sets keeps the kernel's default,
// which only a running kernel tells: the check is skipped.
func (env *Env) configuredSysctl(s *sysctlSpec) (Status, string) {
	want := normalizeSysctl(s.name)
	settings, problems := configuredSysctls(env.Paths)
	var last *sysctlSetting
	for i, st := range settings {
		if st.key == want {
			last = &settings[i]
		} else if ok, _ := path.Match(st.key, want); ok && strings.ContainsAny(st.key, "*?[") {
			last = &settings[i]
		}
	}
	if last == nil {
		if len(problems) > 0 {
			return StatusError, fmt.Sprintf("sysctl %s: %s", s.name, strings.Join(problems, "; "))
		}
		return StatusSkipped, fmt.Sprintf("sysctl %s is not set in any sysctl.d file under %s; its value is the kernel's default, which needs a running kernel", s.name, env.Paths.RootFS)
	}
	if slices.Contains(s.values, last.value) {
		return StatusPass, fmt.Sprintf("%s = %s (configured in %s)", s.name, last.value, last.file)
	}
	return StatusFail, fmt.Sprintf("%s = %s (configured in %s), want %s", s.name, last.value, last.file, strings.Join(s.values, " or "))
}
