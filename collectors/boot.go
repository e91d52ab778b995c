package collectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
	"github.com/azurelinux-probe/azurelinux-probe/internal/rpmver"
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
		// A changed module or initramfs that takes longer to stream (a
		// 100 MiB nvidia.ko.xz: see readBudget) goes on in the background
		// and serves a later refresh (readInBackground).
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
	modCache map[string]fileEntry[moduleFacts]
	irfCache map[string]fileEntry[initramfsResult]
	// seen are the cache keys the current refresh used; the others
	// (files of a removed kernel) are dropped at its end.
	seen map[string]bool
	// reads are the background reads started and not yet collected; sem
	// runs them one at a time.
	reads  map[string]*backgroundRead
	sem    chan struct{}
	logger *slog.Logger
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
	return &bootCollector{paths: env.Paths, opts: o, logger: logger, modCache: map[string]fileEntry[moduleFacts]{},
		irfCache: map[string]fileEntry[initramfsResult]{}, seen: map[string]bool{}, reads: map[string]*backgroundRead{}, sem: make(chan struct{}, 1)}, nil
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
		sort.Slice(releases, func(i, j int) bool { return rpmver.Compare(releases[i], releases[j]) < 0 })
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
