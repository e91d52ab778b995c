package collectors

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

func init() {
	register(Spec{
		Name:           "boot",
		DefaultEnabled: true,
		// A package transaction must show within a minute. A refresh with
		// nothing changed on disk lists /lib/modules and stats the watched
		// modules and initramfs images only: module and initramfs contents
		// are cached by file identity (BenchmarkBootRefresh: 5 kernels
		// with 5,000 modules each).
		Interval: 30 * time.Second,
		// A changed nvidia.ko.xz (about 100 MiB decompressed) or initramfs
		// takes a second or two to stream on a small VM.
		Timeout: 20 * time.Second,
		Options: func() any { return defaultBootOptions() },
		New:     newBootCollector,
	})
}

type bootOptions struct {
	// Modules is the watch list; by default the kernel collector's.
	Modules []string `yaml:"modules"`
	// InitramfsModules are the drivers a VM needs in its initramfs to find
	// its disk and network (those not built into the kernel).
	InitramfsModules []string `yaml:"initramfs_modules"`
	// Certificates are the X.509 certificates (DER or PEM, paths under the
	// root) of the keys that sign out-of-tree modules, for
	// azurelinux_boot_kernel_module_signer_trusted.
	Certificates []string `yaml:"certificates"`
}

func defaultBootOptions() *bootOptions {
	return &bootOptions{
		Modules:          defaultKernelOptions().Modules,
		InitramfsModules: []string{"hv_vmbus", "hv_storvsc", "hv_netvsc", "nvme"},
		// DKMS's own key (dkms 3: mok_certificate in
		// /etc/dkms/framework.conf) and akmods' (kmodgenca).
		Certificates: []string{"/var/lib/dkms/mok.pub", "/etc/pki/akmods/certs/public_key.der"},
	}
}

const bootBound = "installed kernels (at most 64) × watched modules (the modules option)"

var (
	bootKernelInfo = declare(Fact{
		Collector: "boot", Name: "kernel_info",
		Help:     "One installed kernel (a /lib/modules/<release> tree, a /boot/vmlinuz-<release> or a BLS entry): running is \"true\" for the running kernel, next for the one grub boots next (the BLS entry next_entry or saved_entry names in /boot/grub2/grubenv, else the newest entry; without BLS entries the newest kernel). Constant 1.",
		Labels:   []string{"release", "running", "next"},
		Identity: []string{"release"},
		Bound:    "at most 64 installed kernels",
	})
	bootModulePresent = declare(Fact{
		Collector: "boot", Name: "kernel_module_present",
		Help:     "1 when the watched module is a file under /lib/modules/<release>/ (kernel/, extra/, updates/, updates/dkms/) or listed in its modules.builtin.",
		Labels:   []string{"release", "module"},
		Identity: []string{"release", "module"},
		Bound:    bootBound,
	})
	bootModuleVermagic = declare(Fact{
		Collector: "boot", Name: "kernel_module_vermagic_match",
		Help:     "1 when the vermagic of the module file's .modinfo section is built for the release (its first word is the release). No series for a built-in module or an unreadable file.",
		Labels:   []string{"release", "module"},
		Identity: []string{"release", "module"},
		Bound:    bootBound,
	})
	bootModuleSigned = declare(Fact{
		Collector: "boot", Name: "kernel_module_signed",
		Help:     "1 when the module file carries an appended PKCS#7 signature (~Module signature appended~). No series for a built-in module or an unreadable trailer.",
		Labels:   []string{"release", "module"},
		Identity: []string{"release", "module"},
		Bound:    bootBound,
	})
	bootModuleSigner = declare(Fact{
		Collector: "boot", Name: "kernel_module_signer_info",
		Help:     "Signer of a signed module file: signer is the issuer's common name and key_id the certificate serial, as modinfo prints signer and sig_key. Constant 1.",
		Labels:   []string{"release", "module", "signer", "key_id"},
		Identity: []string{"release", "module"},
		Bound:    bootBound,
	})
	bootModuleTrusted = declare(Fact{
		Collector: "boot", Name: "kernel_module_signer_trusted",
		Help:     "Decided only for a module signed by one of the certificates option's certificates (DKMS's /var/lib/dkms/mok.pub, akmods' public_key.der): 1 when /proc/keys (the kernel's keyrings as root reads them) lists that certificate's key (\"<subject>: <subject key id>\"), 0 when /proc/keys lists asymmetric keys but not that one. No series otherwise: a signature names its key by issuer and serial, a keyring entry by subject and key id, so a module signed by any other key (the distribution's in-tree key, whose certificate is only inside the kernel image) or a host whose /proc/keys is unreadable or lists no keys is undecided. /proc/keys does not say which keyring holds a key, so a key only on .platform (which module loading does not use, kernel/module/signing.c) reads as trusted.",
		Labels:   []string{"release", "module"},
		Identity: []string{"release", "module"},
		Bound:    bootBound,
	})
	bootInitramfsModule = declare(Fact{
		Collector: "boot", Name: "initramfs_module_present",
		Help:     "1 when /boot/initramfs-<release>.img holds the boot driver (the initramfs_modules option) that the release does not build in; read in memory, never unpacked.",
		Labels:   []string{"release", "module"},
		Identity: []string{"release", "module"},
		Bound:    "installed kernels (at most 64) × boot drivers (the initramfs_modules option)",
	})
	bootDKMS = declare(Fact{
		Collector: "boot", Name: "dkms_module_info",
		Help:     "One DKMS module build from /var/lib/dkms/<module>/<version>/<release>/: state built, or installed when /var/lib/dkms/<module>/kernel-<release>-<arch> points at it; added (release \"\") for a version with no build. akmods' results too: /var/cache/akmods/<module>/<version>-for-<release>.log is installed, a .failed.log without it failed. Constant 1.",
		Labels:   []string{"module", "version", "release", "state"},
		Identity: []string{"module", "version", "release"},
		Bound:    "at most 256 DKMS builds",
	})
	bootKernelReady = declare(Fact{
		Collector: "boot", Name: "kernel_ready",
		Help:     "1 when booting the release keeps every watched module the running kernel has (present, vermagic for the release, signed and not signed by a key known untrusted when signatures are enforced) and its initramfs holds the boot drivers it does not build in; no series when a fact it needs is unknown.",
		Labels:   []string{"release"},
		Identity: []string{"release"},
		Bound:    "at most 64 installed kernels",
	})
	bootNotReady = declare(Fact{
		Collector: "boot", Name: "kernel_not_ready_reason",
		Help:     "One reason the release is not ready, as <what>:<module>: missing, vermagic, unsigned, untrusted (a module file) or initramfs (a boot driver the initramfs lacks). Constant 1.",
		Labels:   []string{"release", "reason"},
		Identity: []string{"release", "reason"},
		Bound:    "installed kernels × 5 reasons per watched module",
	})
	bootNextNotReady = declare(Fact{
		Collector: "boot", Name: "next_kernel_not_ready_reason",
		Help:     "azurelinux_boot_kernel_not_ready_reason of the kernel that boots next only, so that one check or alert names what the next reboot loses. Constant 1.",
		Labels:   []string{"release", "reason"},
		Identity: []string{"release", "reason"},
		Bound:    "5 reasons per watched module",
	})
)

// Bounds of what one refresh reads.
const (
	maxKernels        = 64
	maxModuleTreeWalk = 100000
	maxModuleDepth    = 12
	maxDKMSBuilds     = 256
	maxKeyLines       = 10000
)

type bootCollector struct {
	paths    Paths
	opts     *bootOptions
	mu       sync.Mutex
	modCache map[string]cachedModule
	irfCache map[string]cachedInitramfs
	// seen are the cache keys the current refresh used; the others
	// (files of a removed kernel) are dropped at its end.
	seen map[string]bool
	// reads are the background reads started and not yet collected; sem
	// runs them one at a time.
	reads  map[string]*backgroundRead
	sem    chan struct{}
	logger *slog.Logger
}

// bootFileID identifies one version of a file: a package transaction replaces
// files (a new inode) or rewrites them (a new size or time).
type bootFileID struct {
	dev, ino   uint64
	size       int64
	mtime      time.Time
	ctimeSec   int64
	ctimeNsec  int64
	hasInodeID bool
}

func fileIdentity(fi os.FileInfo) bootFileID {
	id := bootFileID{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino, id.hasInodeID = uint64(st.Dev), st.Ino, true
		id.ctimeSec, id.ctimeNsec = st.Ctim.Sec, st.Ctim.Nsec
	}
	return id
}

type cachedModule struct {
	id    bootFileID
	facts moduleFacts
}

type cachedInitramfs struct {
	id   bootFileID
	mods map[string]bool
	err  error
}

func newBootCollector(env Env, opts any) (Collector, error) {
	o := opts.(*bootOptions)
	for i, m := range o.Modules {
		o.Modules[i] = host.NormalizeModule(m)
	}
	for i, m := range o.InitramfsModules {
		o.InitramfsModules[i] = host.NormalizeModule(m)
	}
	for _, c := range o.Certificates {
		if !strings.HasPrefix(c, "/") {
			return nil, fmt.Errorf("certificates: %q is not an absolute path", c)
		}
	}
	logger := env.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &bootCollector{paths: env.Paths, opts: o, logger: logger, modCache: map[string]cachedModule{},
		irfCache: map[string]cachedInitramfs{}, seen: map[string]bool{}, reads: map[string]*backgroundRead{}, sem: make(chan struct{}, 1)}, nil
}

// kernelState is what the collector knows about one installed kernel.
type kernelState struct {
	release  string
	builtin  map[string]bool
	files    map[string]host.Path // module name → its file
	walkErr  error
	modules  map[string]moduleFacts
	trusted  map[string]*bool
	initrd   map[string]bool
	initrdOK bool
	initrdEr error
}

func (c *bootCollector) Update(ctx context.Context, m *Metrics) error {
	var errs []error
	secureBoot, sbKnown, err := c.secureBoot()
	errs = append(errs, err)
	if sbKnown {
		m.SetBool(bootSecureBoot, secureBoot)
	}
	enforced, enfKnown, err := c.sigEnforced()
	errs = append(errs, err)
	if enfKnown {
		m.SetBool(bootSigEnforced, enforced)
	}

	releases, entries, err := c.installedKernels()
	errs = append(errs, err)
	// The running kernel counts as installed even without a module tree
	// on disk (a kernel the hypervisor supplies, as on Firecracker): a
	// reboot boots it again.
	running, _ := readValue(c.paths.Proc("sys", "kernel", "osrelease"))
	if running != "" && validRelease(running) && !slices.Contains(releases, running) {
		releases = append(releases, running)
		sort.Slice(releases, func(i, j int) bool { return versionCompare(releases[i], releases[j]) < 0 })
	}
	if len(releases) == 0 {
		if err := errors.Join(errs...); err != nil {
			return err
		}
		return ErrNoData
	}
	next, err := c.nextBoot(entries, releases[len(releases)-1])
	errs = append(errs, err)

	trust, err := c.trustStore()
	errs = append(errs, err)

	// The watched modules the running kernel has are what a reboot must
	// keep; an image root (no running kernel) must keep what any of its
	// kernels has.
	var active map[string]bool
	if running != "" {
		var mods host.Modules
		mods, err = readModules(c.paths, running)
		errs = append(errs, err)
		active = map[string]bool{}
		for name := range mods.Loaded {
			active[name] = true
		}
		for name := range mods.Builtin {
			active[name] = true
		}
	}

	c.mu.Lock()
	c.seen = map[string]bool{}
	c.mu.Unlock()
	defer c.pruneCaches(ctx)
	states := make([]*kernelState, 0, len(releases))
	for _, rel := range releases {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		st, err := c.inspectKernel(ctx, rel, trust, rel == running)
		errs = append(errs, err)
		states = append(states, st)
	}
	if running == "" {
		active = map[string]bool{}
		for _, st := range states {
			for _, mod := range c.opts.Modules {
				if st.builtin[mod] || st.files[mod].Root() != nil {
					active[mod] = true
				}
			}
		}
	}

	enforce := (sbKnown && secureBoot) || (enfKnown && enforced)
	for _, st := range states {
		m.Set(bootKernelInfo, 1, st.release, boolLabel(st.release == running), boolLabel(st.release == next))
		c.emitKernel(m, st)
		reasons, unknown := c.readiness(st, active, enforce)
		switch {
		case len(reasons) > 0:
			m.Set(bootKernelReady, 0, st.release)
		case !unknown:
			m.Set(bootKernelReady, 1, st.release)
		}
		for _, r := range reasons {
			m.Set(bootNotReady, 1, st.release, r)
			if st.release == next {
				m.Set(bootNextNotReady, 1, st.release, r)
			}
		}
	}
	errs = append(errs, c.updateDKMS(m))
	errs = append(errs, c.updateAkmods(m))
	return errors.Join(errs...)
}

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
	sort.Slice(releases, func(i, j int) bool { return versionCompare(releases[i], releases[j]) < 0 })
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
		if e.version != "" && (newest == "" || versionCompare(e.version, newest) > 0) {
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

// versionCompare orders kernel releases as rpm's rpmvercmp does for the
// digit and letter runs that releases are made of (rpmio/rpmvercmp.c; grub's
// blscfg sorts entries with the same rule).
func versionCompare(a, b string) int {
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	isAlpha := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	for {
		for len(a) > 0 && !isDigit(a[0]) && !isAlpha(a[0]) {
			a = a[1:]
		}
		for len(b) > 0 && !isDigit(b[0]) && !isAlpha(b[0]) {
			b = b[1:]
		}
		if len(a) == 0 || len(b) == 0 {
			return len(a) - len(b)
		}
		digit := isDigit(a[0])
		run := func(s string) (string, string) {
			i := 0
			for i < len(s) && (isDigit(s[i]) == digit) && (isDigit(s[i]) || isAlpha(s[i])) {
				i++
			}
			return s[:i], s[i:]
		}
		var sa, sb string
		sa, a = run(a)
		sb, b = run(b)
		if sb == "" {
			if digit {
				return 1
			}
			return -1
		}
		if digit {
			sa, sb = strings.TrimLeft(sa, "0"), strings.TrimLeft(sb, "0")
			if len(sa) != len(sb) {
				return len(sa) - len(sb)
			}
		}
		if d := strings.Compare(sa, sb); d != 0 {
			return d
		}
	}
}

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

// module returns the facts of the module file at path, from the cache when
// the file has not changed.
func (c *bootCollector) module(ctx context.Context, path host.Path) moduleFacts {
	fi, err := stat(path)
	if err != nil {
		return moduleFacts{vermagicErr: err, sigErr: err}
	}
	id := fileIdentity(fi)
	key := path.String()
	c.mu.Lock()
	c.seen[key] = true
	cm, ok := c.modCache[key]
	c.mu.Unlock()
	if ok && cm.id == id {
		return cm.facts
	}
	v, done := c.readInBackground(ctx, key, id, func(ctx context.Context) any { return inspectModule(ctx, path) })
	if !done {
		c.logger.Info("module still being read; its facts are unknown until a later refresh", "file", path)
		return moduleFacts{vermagicErr: errPending, sigErr: errPending}
	}
	mf := v.(moduleFacts)
	c.mu.Lock()
	c.modCache[key] = cachedModule{id, mf}
	c.mu.Unlock()
	return mf
}

// errPending marks a fact whose file is still being read in the
// background: unknown for now, not an error.
var errPending = errors.New("still being read")

// readBudget bounds one background read: a 100 MiB nvidia.ko.xz takes
// ulikunitz/xz about half a minute on a loaded 2-core VM (it decodes a
// 19 MiB amdgpu.ko.xz in 4 to 8 s here).
const readBudget = 2 * time.Minute

// backgroundRead is one file read that outlives the refresh that started
// it, so that a slow decompression completes and is cached for the next
// refresh rather than being started over, and cut off by the refresh
// timeout, on every refresh. Reads run one at a time.
type backgroundRead struct {
	id   bootFileID
	done chan struct{}
	val  any
}

// readInBackground returns fn's result for the version id of path,
// starting fn (under readBudget) unless it runs already, and waiting for
// it as long as ctx allows; false when ctx ends first.
func (c *bootCollector) readInBackground(ctx context.Context, path string, id bootFileID, fn func(context.Context) any) (any, bool) {
	c.mu.Lock()
	r := c.reads[path]
	if r == nil || r.id != id {
		r = &backgroundRead{id: id, done: make(chan struct{})}
		c.reads[path] = r
		go func() {
			defer close(r.done)
			c.sem <- struct{}{}
			defer func() { <-c.sem }()
			bctx, cancel := context.WithTimeout(context.Background(), readBudget)
			defer cancel()
			defer func() {
				if p := recover(); p != nil {
					r.val = nil
				}
			}()
			r.val = fn(bctx)
		}()
	}
	c.mu.Unlock()
	select {
	case <-r.done:
		c.mu.Lock()
		if c.reads[path] == r {
			delete(c.reads, path)
		}
		c.mu.Unlock()
		if r.val == nil {
			return nil, false
		}
		return r.val, true
	case <-ctx.Done():
		return nil, false
	}
}

// initramfs returns the modules in /boot/initramfs-<release>.img (Azure
// Linux and Fedora's kernel-install name), nil without error when there is
// none.
func (c *bootCollector) initramfs(ctx context.Context, rel string) (map[string]bool, error) {
	path := c.paths.Root("boot", "initramfs-"+rel+".img")
	fi, err := stat(path)
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	id := fileIdentity(fi)
	key := path.String()
	c.mu.Lock()
	c.seen[key] = true
	ci, ok := c.irfCache[key]
	c.mu.Unlock()
	if ok && ci.id == id {
		return ci.mods, ci.err
	}
	v, done := c.readInBackground(ctx, key, id, func(ctx context.Context) any {
		f, err := openRegular(path)
		if err != nil {
			return cachedInitramfs{id: id, err: fmt.Errorf("initramfs: %w", err)}
		}
		defer f.Close()
		mods, err := initramfsModules(ctx, f, rel)
		if err != nil {
			return cachedInitramfs{id: id, err: fmt.Errorf("initramfs %s: %w", path, err)}
		}
		return cachedInitramfs{id: id, mods: mods}
	})
	if !done {
		c.logger.Info("initramfs still being read; its facts are unknown until a later refresh", "file", path)
		return nil, errPending
	}
	ci = v.(cachedInitramfs)
	c.mu.Lock()
	c.irfCache[key] = ci
	c.mu.Unlock()
	return ci.mods, ci.err
}

// secureBoot reads the SecureBoot EFI variable: 4 bytes of attributes and
// one byte of value (efivarfs, Documentation/filesystems/efivarfs.rst).
func (c *bootCollector) secureBoot() (on, known bool, err error) {
	path := c.paths.Sys("firmware", "efi", "efivars", "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c")
	b, err := readFile(path, 64)
	if isNotExist(err) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("secure boot: %w", err)
	}
	if len(b) != 5 {
		return false, false, fmt.Errorf("secure boot: %s: %d bytes, want 5", path, len(b))
	}
	return b[4] == 1, true, nil
}

// sigEnforced reads sig_enforce (kernel/module/signing.c, a bool
// parameter: Y or N).
func (c *bootCollector) sigEnforced() (on, known bool, err error) {
	v, err := readValue(c.paths.Sys("module", "module", "parameters", "sig_enforce"))
	if isNotExist(err) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("module signature enforcement: %w", err)
	}
	switch v {
	case "Y", "1":
		return true, true, nil
	case "N", "0":
		return false, true, nil
	}
	return false, false, fmt.Errorf("module signature enforcement: %q is not Y or N", v)
}

// trustStore decides whether a module signer is trusted where that can be
// decided. A signature names its key by issuer and serial; the kernel's
// keyrings in /proc/keys name keys by "<subject>: <subject key id>"
// (crypto/asymmetric_keys/x509_public_key.c, x509_key_preparse). The two
// meet only through a certificate that carries both: those of the
// certificates option (DKMS's and akmods' signing keys). So:
//
//   - a signature by one of those certificates is trusted (1) when
//     /proc/keys lists the certificate's key, untrusted (0) when /proc/keys
//     is readable, lists asymmetric keys and not this one;
//   - any other signature (the distribution's in-tree signing key, whose
//     certificate is only inside the kernel image) is undecided: no series.
type trustStore struct {
	certs []*x509.Certificate
	// keys are the descriptions of asymmetric keys in /proc/keys; nil when
	// the keyrings could not be read.
	keys map[string]bool
}

func (c *bootCollector) trustStore() (*trustStore, error) {
	ts := &trustStore{}
	var errs []error
	for _, p := range c.opts.Certificates {
		path := c.paths.Root(strings.TrimPrefix(p, "/"))
		b, err := readFile(path, 64<<10)
		if isNotExist(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("certificate: %w", err))
			continue
		}
		if blk, _ := pem.Decode(b); blk != nil {
			b = blk.Bytes
		}
		cert, err := x509.ParseCertificate(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("certificate %s: %w", path, err))
			continue
		}
		ts.certs = append(ts.certs, cert)
	}
	text, err := readText(c.paths.Proc("keys"), maxFileSize)
	switch {
	case err == nil:
		ts.keys = parseProcKeys(text)
	case !isNotExist(err) && !errors.Is(err, os.ErrPermission):
		errs = append(errs, fmt.Errorf("keyrings: %w", err))
	}
	return ts, errors.Join(errs...)
}

// parseProcKeys returns the descriptions of the asymmetric keys in
// /proc/keys (security/keys/proc.c, proc_keys_show: the type is printed
// "%-9.9s", so "asymmetri"; asymmetric_key_describe then prints the
// description followed by ": <subtype> <key id> [...]").
func parseProcKeys(text string) map[string]bool {
	keys := map[string]bool{}
	for i, line := range strings.Split(text, "\n") {
		if i >= maxKeyLines {
			break
		}
		f := strings.Fields(line)
		if len(f) < 9 || f[7] != "asymmetri" {
			continue
		}
		// The description starts after the eighth field.
		idx := 0
		for k := 0; k < 8; k++ {
			idx += strings.Index(line[idx:], f[k]) + len(f[k])
		}
		keys[strings.TrimSpace(line[idx:])] = true
	}
	return keys
}

// keyDescription is the description the kernel gives the key of cert:
// x509_key_preparse's "<name>: <hex of the subject key id, else the
// serial>", with the name from x509_fabricate_name (CN, O, or "O: CN").
func keyDescription(cert *x509.Certificate) string {
	cn, o := cert.Subject.CommonName, ""
	if len(cert.Subject.Organization) > 0 {
		o = cert.Subject.Organization[0]
	}
	name := cn
	switch {
	case cn == "":
		name = o
	case o == "" || strings.HasPrefix(cn, o) || (len(o) >= 7 && strings.Contains(cn, o)):
		name = cn
	default:
		name = o + ": " + cn
	}
	id := cert.SubjectKeyId
	if len(id) == 0 {
		id = cert.SerialNumber.Bytes()
	}
	return name + ": " + hex.EncodeToString(id)
}

func (ts *trustStore) trusted(sig *moduleSignature) *bool {
	if ts == nil || ts.keys == nil || len(ts.keys) == 0 {
		return nil
	}
	for _, cert := range ts.certs {
		if !bytes.Equal(cert.RawIssuer, sig.Issuer) || !bytes.Equal(cert.SerialNumber.Bytes(), sig.Serial) {
			continue
		}
		desc := keyDescription(cert)
		ok := false
		for k := range ts.keys {
			if k == desc || strings.HasPrefix(k, desc+":") {
				ok = true
				break
			}
		}
		return &ok
	}
	return nil
}

// updateDKMS reports DKMS's builds: /var/lib/dkms/<module>/<version>/
// <release>/<arch>/ holds a build, and /var/lib/dkms/<module>/
// kernel-<release>-<arch> links to the installed one (dkms 3, dkms.in:
// "Make the installed one known").
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
				// ../<version>/<release>/<arch> or an absolute equivalent.
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

// pruneCaches drops what a complete refresh did not use, so that the
// caches hold only the installed kernels' files.
func (c *bootCollector) pruneCaches(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range c.modCache {
		if !c.seen[p] {
			delete(c.modCache, p)
		}
	}
	for p := range c.irfCache {
		if !c.seen[p] {
			delete(c.irfCache, p)
		}
	}
}
