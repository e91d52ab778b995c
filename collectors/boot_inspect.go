package collectors

import (
	"context"
	"errors"
	"fmt"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// inspectKernel reads what one installed kernel has: built-in modules,
// the watched modules' files and what they say, and its initramfs.
func (c *bootCollector) inspectKernel(ctx context.Context, rel string, trust *trustStore, running bool) (*kernelState, error) {
	var errs []error
	st := &kernelState{release: rel, builtin: map[string]bool{}, files: map[string]host.Path{},
		modules: map[string]moduleFacts{}, trusted: map[string]*bool{}}
	dir := c.moduleDir(rel)
	builtin, err := BuiltinModules(c.paths, rel)
	errs = append(errs, err)
	for name := range builtin {
		st.builtin[name] = true
	}
	watched := map[string]bool{}
	for _, mod := range c.opts.Modules {
		watched[mod] = true
		// The running kernel tells its built-in modules itself: a
		// /sys/module/<name> without initstate is built in
		// (kernel/params.c creates it for built-in parameters and
		// modules, kernel/module/sysfs.c adds initstate to loadable ones).
		if running && exists(c.paths.Sys("module", mod)) && !exists(c.paths.Sys("module", mod, "initstate")) {
			st.builtin[mod] = true
		}
	}
	for _, mod := range c.opts.InitramfsModules {
		if running && exists(c.paths.Sys("module", mod)) && !exists(c.paths.Sys("module", mod, "initstate")) {
			st.builtin[mod] = true
		}
	}
	st.walkErr = c.findModules(ctx, dir, watched, st.files)
	errs = append(errs, st.walkErr)
	for _, mod := range c.opts.Modules {
		path := st.files[mod]
		if path.Root() == nil {
			continue
		}
		mf := c.module(ctx, path)
		st.modules[mod] = mf
		if mf.vermagicErr != errPending {
			errs = append(errs, mf.vermagicErr)
		}
		if mf.sigErr != mf.vermagicErr {
			errs = append(errs, mf.sigErr)
		}
		if mf.sig != nil {
			st.trusted[mod] = trust.trusted(mf.sig)
		}
	}
	st.initrd, st.initrdEr = c.initramfs(ctx, rel)
	st.initrdOK = st.initrdEr == nil && st.initrd != nil
	if st.initrdEr != nil && st.initrdEr != errPending {
		errs = append(errs, st.initrdEr)
	}
	return st, errors.Join(errs...)
}

// findModules walks /lib/modules/<release>/ for the files of the watched
// modules: kernel/, extra/ (akmods, vendor RPMs), updates/ and
// updates/dkms/ (DKMS), the directories depmod searches
// (depmod.d(5), the default "search updates built-in"). Where a module has
// more than one file the first in depmod's order wins: updates/ over
// extra/ and kernel/.
func (c *bootCollector) findModules(ctx context.Context, dir []string, watched map[string]bool, files map[string]host.Path) error {
	seen := 0
	prio := map[string]int{}
	var walk func(elems []string, depth int) error
	walk = func(elems []string, depth int) error {
		if depth > maxModuleDepth {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		ents, err := readDir(c.paths.Root(elems...))
		if err != nil {
			if isNotExist(err) && depth > 0 {
				return nil
			}
			return err
		}
		for _, e := range ents {
			if seen++; seen > maxModuleTreeWalk {
				return fmt.Errorf("%s: more than %d entries", c.paths.Root(dir...), maxModuleTreeWalk)
			}
			sub := append(append([]string{}, elems...), e.Name())
			switch {
			case e.IsDir():
				if depth == 0 && (e.Name() == "build" || e.Name() == "source") {
					continue
				}
				if err := walk(sub, depth+1); err != nil {
					return err
				}
			case e.Type().IsRegular():
				name, ok := moduleFileName(e.Name())
				if !ok || !watched[name] {
					continue
				}
				p := 1
				if len(sub) > len(dir) {
					switch sub[len(dir)] {
					case "updates":
						p = 3
					case "extra":
						p = 2
					}
				}
				if p > prio[name] {
					prio[name], files[name] = p, c.paths.Root(sub...)
				}
			}
		}
		return nil
	}
	err := walk(dir, 0)
	if err != nil && isNotExist(err) {
		return nil // a kernel known only from /boot or a BLS entry
	}
	if err != nil {
		return fmt.Errorf("modules of %s: %w", dir[len(dir)-1], err)
	}
	return nil
}

// moduleDir returns the elements of the release's module tree:
// /lib/modules/<release>, or /usr/lib/modules/<release> where only that
// exists (a root whose /lib is not the usual link to usr/lib).
func (c *bootCollector) moduleDir(rel string) []string {
	if !exists(c.paths.Root("lib", "modules", rel)) && exists(c.paths.Root("usr", "lib", "modules", rel)) {
		return []string{"usr", "lib", "modules", rel}
	}
	return []string{"lib", "modules", rel}
}
