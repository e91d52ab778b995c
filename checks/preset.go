package checks

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// presetDirs are where systemd reads *.preset files, highest precedence
// first (systemd.preset(5)): a file in an earlier directory replaces one of
// the same name in a later one; the files are read in the lexicographic
// order of their names and the first line matching a unit decides.
var presetDirs = []string{"etc/systemd/system-preset", "run/systemd/system-preset",
	"usr/local/lib/systemd/system-preset", "usr/lib/systemd/system-preset", "lib/systemd/system-preset"}

const (
	maxPresetFiles    = 256
	maxPresetFileSize = 256 << 10
)

// firstBoot reports whether the root's next boot is a first boot, on which
// systemd enables units by their presets (systemd src/core/main.c: with
// /etc/machine-id missing, empty or "uninitialized", PID 1 runs
// unit_file_preset_all before starting anything; machine-id(5) "First Boot
// Semantics").
func firstBoot(p collectors.Paths) bool {
	id, err := p.Root("etc/machine-id").ReadText(4096)
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	id = strings.TrimSpace(id)
	return err == nil && (id == "" || id == "uninitialized")
}

// presetFor returns what the root's presets say of unit ("enable",
// "disable" or "ignore"), the deciding file and line ("" when no line
// matches: systemd then enables it), how many preset files there are, and
// files that could not be read.
func presetFor(p collectors.Paths, unit string) (action, where string, files int, problems []string) {
	chosen := map[string]string{}
	for _, dir := range presetDirs {
		entries, err := p.Root(dir).ReadDir()
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				problems = append(problems, fmt.Sprintf("/%s: %v", dir, unwrapPath(err)))
			}
			continue
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".preset") && !e.IsDir() && len(chosen) < maxPresetFiles {
				if _, seen := chosen[e.Name()]; !seen {
					chosen[e.Name()] = dir + "/" + e.Name()
				}
			}
		}
	}
	files = len(chosen)
	for _, name := range Sorted(chosen) {
		f := chosen[name]
		text, err := p.Root(f).ReadText(maxPresetFileSize)
		if err != nil {
			problems = append(problems, fmt.Sprintf("/%s: %v", f, unwrapPath(err)))
			continue
		}
		for i, line := range strings.Split(text, "\n") {
			fields := strings.Fields(line)
			if len(fields) < 2 || strings.HasPrefix(fields[0], "#") || strings.HasPrefix(fields[0], ";") {
				continue
			}
			if ok, _ := path.Match(fields[1], unit); ok {
				return fields[0], fmt.Sprintf("/%s:%d: %s", f, i+1, strings.TrimSpace(line)), files, problems
			}
		}
	}
	return "", "", files, problems
}

// presetVerdict judges an enabled-state unit check on an image without an
// enablement link: on a first boot systemd applies the presets, so they
// decide; otherwise the links are the truth and the unit is not enabled.
func (env *Env) presetVerdict(u *unitSpec, noLink string) (Status, string) {
	if !firstBoot(env.Paths) {
		return StatusFail, noLink
	}
	action, where, files, problems := presetFor(env.Paths, u.name)
	switch {
	case files == 0:
		// No presets at all: a tree, not a distribution's image, whose
		// links are all there is to go by.
		return StatusFail, noLink
	case action == "enable":
		return StatusPass, fmt.Sprintf("%s will be enabled on the image's first boot by its preset (%s)", u.name, where)
	case action == "" && len(problems) > 0:
		return StatusError, noLink + "; presets unreadable: " + strings.Join(problems, "; ")
	case action == "":
		return StatusPass, fmt.Sprintf("%s will be enabled on the image's first boot: no preset line matches it (systemd's default is enable)", u.name)
	}
	return StatusFail, fmt.Sprintf("%s; its preset says %s (%s), which the image's first boot applies", noLink, action, where)
}
