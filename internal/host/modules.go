package host

import (
	"errors"
	"fmt"
	"strings"
)

// Modules is what the kernel says of its modules: the loaded ones of
// /proc/modules with their taint letters, and the built-in ones of a
// release's modules.builtin. Names are spelt as the kernel does ('_', not
// '-').
type Modules struct {
	// Loaded maps a loaded module to its taint letters ("POE" from a
	// trailing "(POE)"; "" when untainted), as kernel/module/procfs.c
	// m_show prints them.
	Loaded map[string]string
	// Builtin holds the modules of modules.builtin (scripts/Makefile.vmlinux
	// writes one kernel/…/name.ko path per line).
	Builtin map[string]bool
}

// Present reports whether name is loaded or built in.
func (m Modules) Present(name string) bool {
	name = NormalizeModule(name)
	_, loaded := m.Loaded[name]
	return loaded || m.Builtin[name]
}

// NormalizeModule spells a module name as the kernel does in /proc/modules.
func NormalizeModule(name string) string { return strings.ReplaceAll(name, "-", "_") }

// ReadModules reads proc/modules under procfs and, when release is not
// empty, modules.builtin of that release under root (/lib/modules, else
// /usr/lib/modules). It returns what it could read with any error; missing
// files are not errors (a kernel without module support has no
// /proc/modules).
func ReadModules(procfs, root Path, release string) (Modules, error) {
	m := Modules{Loaded: map[string]string{}, Builtin: map[string]bool{}}
	var errs []error
	text, err := procfs.Join("modules").ReadText(MaxFileSize)
	switch {
	case err == nil:
		for _, line := range strings.Split(text, "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			taint := ""
			if last := f[len(f)-1]; len(f) > 1 && strings.HasPrefix(last, "(") && strings.HasSuffix(last, ")") {
				taint = strings.Trim(last, "()")
			}
			m.Loaded[NormalizeModule(f[0])] = taint
		}
	case !isNotExist(err):
		errs = append(errs, fmt.Errorf("loaded modules: %w", err))
	}
	if release == "" {
		return m, errors.Join(errs...)
	}
	for _, dir := range []string{"lib/modules", "usr/lib/modules"} {
		text, err := root.Join(dir, release, "modules.builtin").ReadText(MaxFileSize)
		if isNotExist(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("built-in modules: %w", err))
			break
		}
		for _, line := range strings.Split(text, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				base := line[strings.LastIndexByte(line, '/')+1:]
				m.Builtin[NormalizeModule(strings.TrimSuffix(base, ".ko"))] = true
			}
		}
		break
	}
	return m, errors.Join(errs...)
}
