package collectors

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/azurelinux-probe/azurelinux-probe/internal/rpmver"
)

// blsEntry is one Boot Loader Specification entry
// (https://uapi-group.org/specifications/specs/boot_loader_specification/).
type blsEntry struct {
	id, version, title string
}

// installedKernels returns the releases of the installed kernels, sorted,
// and the BLS entries.
func (c *bootCollector) installedKernels() ([]string, []blsEntry, error) {
	var errs []error
	set := map[string]bool{}
	for _, dir := range [][]string{{"lib", "modules"}, {"usr", "lib", "modules"}} {
		ents, err := readDir(c.paths.Root(dir...))
		if err != nil && !isNotExist(err) {
			errs = append(errs, fmt.Errorf("installed kernels: %w", err))
		}
		for _, e := range ents {
			if e.IsDir() && validRelease(e.Name()) {
				set[e.Name()] = true
			}
		}
	}
	ents, err := readDir(c.paths.Root("boot"))
	if err != nil && !isNotExist(err) {
		errs = append(errs, fmt.Errorf("installed kernels: %w", err))
	}
	for _, e := range ents {
		if rel, ok := strings.CutPrefix(e.Name(), "vmlinuz-"); ok && !strings.HasPrefix(rel, "0-rescue-") && validRelease(rel) {
			set[rel] = true
		}
	}
	entries, err := c.blsEntries()
	errs = append(errs, err)
	for _, e := range entries {
		if e.version != "" {
			set[e.version] = true
		}
	}
	releases := make([]string, 0, len(set))
	for r := range set {
		releases = append(releases, r)
	}
	sort.Slice(releases, func(i, j int) bool { return rpmver.Compare(releases[i], releases[j]) < 0 })
	if len(releases) > maxKernels {
		errs = append(errs, fmt.Errorf("installed kernels: more than %d, only the newest reported", maxKernels))
		releases = releases[len(releases)-maxKernels:]
	}
	return releases, entries, errors.Join(errs...)
}

// validRelease keeps label values and paths sane: a release is one path
// element of printable characters.
func validRelease(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r > '~' || r == '/' {
			return false
		}
	}
	return true
}

// blsEntries reads /boot/loader/entries/*.conf. An entry without a
// version line is an error naming its file; the others are still read.
func (c *bootCollector) blsEntries() ([]blsEntry, error) {
	dir := c.paths.Root("boot", "loader", "entries")
	ents, err := readDir(dir)
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("BLS entries: %w", err)
	}
	var out []blsEntry
	var errs []error
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".conf")
		if !ok || e.IsDir() {
			continue
		}
		path := c.paths.Root("boot", "loader", "entries", e.Name())
		text, err := readText(path, 64<<10)
		if err != nil {
			errs = append(errs, fmt.Errorf("BLS entry: %w", err))
			continue
		}
		be := blsEntry{id: id}
		for _, line := range strings.Split(text, "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
			switch k {
			case "version":
				be.version = strings.TrimSpace(v)
			case "title":
				be.title = strings.TrimSpace(v)
			}
		}
		if !validRelease(be.version) {
			errs = append(errs, fmt.Errorf("BLS entry %s: no valid version line", path))
			be.version = ""
		}
		out = append(out, be)
	}
	return out, errors.Join(errs...)
}

// nextBoot returns the release grub boots next: the entry named by
// next_entry (grub2-reboot) or saved_entry (grub2-set-default) in
// /boot/grub2/grubenv, matched by id (file name) or title as grub's
// blscfg does; without either, grub's default, the first entry in its
// order, which is newest first (grub-core/commands/blscfg.c, bls_cmp);
// without BLS entries, fallback (the newest installed kernel). "" when it
// cannot be told.
func (c *bootCollector) nextBoot(entries []blsEntry, fallback string) (string, error) {
	path := c.paths.Root("boot", "grub2", "grubenv")
	env := map[string]string{}
	text, err := readText(path, 64<<10)
	switch {
	case err == nil:
		for _, line := range strings.Split(text, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
				env[k] = v
			}
		}
	case !isNotExist(err):
		return "", fmt.Errorf("next boot: %w", err)
	}
	for _, key := range []string{"next_entry", "saved_entry"} {
		name := env[key]
		if name == "" {
			continue
		}
		for _, e := range entries {
			if e.id == name || e.title == name {
				if e.version == "" {
					return "", fmt.Errorf("next boot: %s: %s=%s names an entry without a version", path, key, name)
				}
				return e.version, nil
			}
		}
		return "", fmt.Errorf("next boot: %s: %s=%s names no entry in /boot/loader/entries", path, key, name)
	}
	newest := ""
	for _, e := range entries {
		if e.version != "" && (newest == "" || rpmver.Compare(e.version, newest) > 0) {
			newest = e.version
		}
	}
	if len(entries) == 0 {
		// No BLS entries (an image without them, a grub.cfg with
		// menuentries): kernel-install and grubby make the kernel just
		// installed the default, which is the newest.
		newest = fallback
	}
	return newest, nil
}
