package collectors

import (
	"sort"
	"strings"
)

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func (c *bootCollector) emitKernel(m *Metrics, st *kernelState) {
	for _, mod := range c.opts.Modules {
		path := st.files[mod]
		switch {
		case path.Root() != nil:
			m.SetBool(bootModulePresent, true, st.release, mod)
		case st.builtin[mod]:
			m.SetBool(bootModulePresent, true, st.release, mod)
			continue
		case st.walkErr == nil:
			m.SetBool(bootModulePresent, false, st.release, mod)
			continue
		default:
			continue
		}
		mf := st.modules[mod]
		if mf.vermagicErr == nil {
			m.SetBool(bootModuleVermagic, vermagicMatches(mf.vermagic, st.release), st.release, mod)
		}
		if mf.sigErr == nil {
			m.SetBool(bootModuleSigned, mf.signed, st.release, mod)
			if mf.sig != nil {
				m.Set(bootModuleSigner, 1, st.release, mod, mf.sig.Signer, mf.sig.KeyID)
			}
		}
		if t := st.trusted[mod]; t != nil {
			m.SetBool(bootModuleTrusted, *t, st.release, mod)
		}
	}
	if st.initrdOK {
		for _, mod := range c.opts.InitramfsModules {
			if !st.builtin[mod] {
				m.SetBool(bootInitramfsModule, st.initrd[mod], st.release, mod)
			}
		}
	}
}

// vermagicMatches reports whether a vermagic string ("6.18.31-1.6.azl4.x86_64
// SMP preempt mod_unload modversions ") was built for release:
// include/linux/vermagic.h puts UTS_RELEASE first.
func vermagicMatches(vermagic, release string) bool {
	first, _, _ := strings.Cut(strings.TrimSpace(vermagic), " ")
	return first == release
}

// readiness returns why booting st would lose something the running
// kernel has, and whether a fact it needs is unknown.
func (c *bootCollector) readiness(st *kernelState, active map[string]bool, enforce bool) (reasons []string, unknown bool) {
	for _, mod := range c.opts.Modules {
		if !active[mod] || st.builtin[mod] {
			continue
		}
		path := st.files[mod]
		if path.Root() == nil {
			if st.walkErr != nil {
				unknown = true
			} else {
				reasons = append(reasons, "missing:"+mod)
			}
			continue
		}
		mf := st.modules[mod]
		if mf.vermagicErr != nil {
			unknown = true
		} else if !vermagicMatches(mf.vermagic, st.release) {
			reasons = append(reasons, "vermagic:"+mod)
		}
		if !enforce {
			continue
		}
		switch {
		case mf.sigErr != nil:
			unknown = true
		case !mf.signed:
			reasons = append(reasons, "unsigned:"+mod)
		case st.trusted[mod] != nil && !*st.trusted[mod]:
			reasons = append(reasons, "untrusted:"+mod)
		}
	}
	for _, mod := range c.opts.InitramfsModules {
		if !active[mod] || st.builtin[mod] {
			continue
		}
		switch {
		case !st.initrdOK:
			unknown = true
		case !st.initrd[mod]:
			reasons = append(reasons, "initramfs:"+mod)
		}
	}
	sort.Strings(reasons)
	return reasons, unknown
}
