package collectors

import (
	"errors"
	"fmt"
	"strings"
)

// updateDKMS reports DKMS's builds: /var/lib/dkms/<module>/<version>/
// <release>/<arch>/ holds a build, and /var/lib/dkms/<module>/
// kernel-<release>-<arch> links to the installed one (dkms 3, dkms.in,
// do_install: "Create the kernel-<kernelver> symlink to designate this
// version as active").
func (c *bootCollector) updateDKMS(m *Metrics) error {
	ents, err := readDir(c.paths.Root("var", "lib", "dkms"))
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dkms: %w", err)
	}
	n := 0
	var errs []error
	for _, mod := range ents {
		if !mod.IsDir() {
			continue
		}
		name := mod.Name()
		vers, err := readDir(c.paths.Root("var", "lib", "dkms", name))
		if err != nil {
			errs = append(errs, fmt.Errorf("dkms: %w", err))
			continue
		}
		installed := map[string]bool{}
		for _, v := range vers {
			if rest, ok := strings.CutPrefix(v.Name(), "kernel-"); ok {
				target, err := readLink(c.paths.Root("var", "lib", "dkms", name, v.Name()))
				if err != nil {
					continue
				}
				// <version>/<release>/<arch> as do_install writes it, or
				// a ../ or absolute equivalent.
				parts := strings.Split(strings.Trim(target, "/"), "/")
				if len(parts) >= 3 {
					ver, rel := parts[len(parts)-3], parts[len(parts)-2]
					if strings.HasPrefix(rest, rel+"-") {
						installed[ver+"\x00"+rel] = true
					}
				}
			}
		}
		for _, v := range vers {
			if !v.IsDir() || strings.HasPrefix(v.Name(), "kernel-") {
				continue
			}
			builds, err := readDir(c.paths.Root("var", "lib", "dkms", name, v.Name()))
			if err != nil {
				errs = append(errs, fmt.Errorf("dkms: %w", err))
				continue
			}
			any := false
			for _, b := range builds {
				if !b.IsDir() || b.Name() == "source" || b.Name() == "build" || !validRelease(b.Name()) {
					continue
				}
				if n++; n > maxDKMSBuilds {
					return errors.Join(append(errs, fmt.Errorf("dkms: more than %d builds", maxDKMSBuilds))...)
				}
				state := "built"
				if installed[v.Name()+"\x00"+b.Name()] {
					state = "installed"
				}
				m.Set(bootDKMS, 1, name, v.Name(), b.Name(), state)
				any = true
			}
			if !any {
				m.Set(bootDKMS, 1, name, v.Name(), "", "added")
			}
		}
	}
	return errors.Join(errs...)
}

// updateAkmods reports akmods' results (rpmfusion akmods, buildinstall_kmod):
// /var/cache/akmods/<module>/<version>-<release of the kmod>-for-<kernel>.log
// after a build and install that succeeded, .failed.log after one that
// failed.
func (c *bootCollector) updateAkmods(m *Metrics) error {
	ents, err := readDir(c.paths.Root("var", "cache", "akmods"))
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("akmods: %w", err)
	}
	n := 0
	var errs []error
	for _, mod := range ents {
		if !mod.IsDir() {
			continue
		}
		logs, err := readDir(c.paths.Root("var", "cache", "akmods", mod.Name()))
		if err != nil {
			errs = append(errs, fmt.Errorf("akmods: %w", err))
			continue
		}
		ok := map[string]bool{}
		for _, l := range logs {
			if name, found := strings.CutSuffix(l.Name(), ".log"); found && !strings.HasSuffix(name, ".failed") {
				ok[name] = true
			}
		}
		for _, l := range logs {
			name, found := strings.CutSuffix(l.Name(), ".log")
			if !found || strings.HasPrefix(name, ".") {
				continue
			}
			state := "installed"
			if base, failed := strings.CutSuffix(name, ".failed"); failed {
				if ok[base] {
					continue
				}
				name, state = base, "failed"
			}
			ver, rel, found := strings.Cut(name, "-for-")
			if !found || ver == "" || !validRelease(rel) {
				continue
			}
			if n++; n > maxDKMSBuilds {
				return errors.Join(append(errs, fmt.Errorf("akmods: more than %d results", maxDKMSBuilds))...)
			}
			m.Set(bootDKMS, 1, mod.Name(), ver, rel, state)
		}
	}
	return errors.Join(errs...)
}
