package collectors

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
	"github.com/azurelinux-probe/azurelinux-probe/internal/lenre"
)

func init() {
	register(Spec{
		Name:           "kernel",
		Needs:          "a running kernel (procfs, sysfs)",
		DefaultEnabled: true,
		Interval:       15 * time.Second,
		Timeout:        5 * time.Second,
		Options:        func() any { return defaultKernelOptions() },
		New:            newKernelCollector,
	})
}

type kernelOptions struct {
	// Modules is the watch list of azurelinux_kernel_module_loaded.
	Modules []string `yaml:"modules"`
	// ConfigOptions is the list of Kconfig options exported by
	// azurelinux_kernel_config_info.
	ConfigOptions []string `yaml:"config_options"`
}

func defaultKernelOptions() *kernelOptions {
	return &kernelOptions{
		Modules: []string{
			"hv_vmbus", "hv_netvsc", "hv_storvsc", "hv_utils", "hv_balloon", "pci_hyperv",
			"mana", "mlx5_core", "nvme", "nvidia", "nvidia_uvm", "amdgpu",
		},
		ConfigOptions: []string{
			"CONFIG_BPF_SYSCALL", "CONFIG_BPF_JIT", "CONFIG_BPF_JIT_ALWAYS_ON", "CONFIG_BPF_LSM",
			"CONFIG_BPF_UNPRIV_DEFAULT_OFF", "CONFIG_DEBUG_INFO_BTF", "CONFIG_DEBUG_INFO_BTF_MODULES",
			"CONFIG_HYPERV", "CONFIG_HYPERV_UTILS", "CONFIG_HYPERV_BALLOON", "CONFIG_HYPERV_NET",
			"CONFIG_HYPERV_STORAGE", "CONFIG_HYPERV_VSOCKETS", "CONFIG_PCI_HYPERV", "CONFIG_MICROSOFT_MANA",
			"CONFIG_SECURITY_LOCKDOWN_LSM", "CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT", "CONFIG_LSM",
			"CONFIG_SECURITY_SELINUX", "CONFIG_CRYPTO_FIPS", "CONFIG_MODULE_SIG", "CONFIG_MODULE_SIG_FORCE",
			"CONFIG_IKCONFIG_PROC",
		},
	}
}

// taintFlags are the bits of /proc/sys/kernel/tainted documented in
// Documentation/admin-guide/tainted-kernels.rst, indexed by bit: the letter
// the kernel prints and the TAINT_* name in lower case. Bit 19 (J) arrived
// in 6.15.
var taintFlags = [...]struct{ letter, reason string }{
	{"P", "proprietary_module"},
	{"F", "forced_module"},
	{"S", "cpu_out_of_spec"},
	{"R", "forced_rmmod"},
	{"M", "machine_check"},
	{"B", "bad_page"},
	{"U", "user"},
	{"D", "die"},
	{"A", "overridden_acpi_table"},
	{"W", "warn"},
	{"C", "staging_driver"},
	{"I", "firmware_workaround"},
	{"O", "oot_module"},
	{"E", "unsigned_module"},
	{"L", "soft_lockup"},
	{"K", "livepatch"},
	{"X", "aux"},
	{"T", "randstruct"},
	{"N", "test"},
	{"J", "fwctl"},
}

// knownLSMs are the Linux security modules reported as 0 when the kernel's
// active list lacks them, so that "bpf disappeared" is an ordinary
// comparison rather than an absent() query.
var knownLSMs = []string{
	"capability", "lockdown", "yama", "loadpin", "safesetid", "integrity", "selinux", "smack",
	"tomoyo", "apparmor", "bpf", "landlock", "ipe", "ima", "evm",
}

var seriesRE = regexp.MustCompile(`^(\d+)\.(\d+)`)

// releaseRE is the grammar of a kernel release (uname -r): at most 64
// characters (__NEW_UTS_LEN in include/uapi/linux/utsname.h) of the ones
// Makefile's KERNELRELEASE and distribution suffixes use, such as
// 6.18.31-1.3.azl4.x86_64 or 5.15.0-1064-azure.
var releaseRE = lenre.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._+~-]*$`, 1, 64)

var kernelInfoFact = declare(Fact{
	Collector: "kernel", Name: "info",
	Help:   "Running kernel; series is major.minor of the release. Constant 1.",
	Labels: []string{"release", "version", "series"},
})

var kernelTaintedFact = declare(Fact{
	Collector: "kernel", Name: "tainted",
	Help: "Raw taint mask from /proc/sys/kernel/tainted; 0 is untainted.",
})

var kernelTaintFlagFact = declare(Fact{
	Collector: "kernel", Name: "taint_flag",
	Help:     "1 when the taint bit is set, for every documented bit and any unknown bit that is set.",
	Labels:   []string{"flag", "reason"},
	Identity: []string{"flag", "reason"}, Bound: "the documented taint bits and set unknown bits (at most 64)",
})

var kernelLockdownInfoFact = declare(Fact{
	Collector: "kernel", Name: "lockdown_info",
	Help:   "Current kernel lockdown mode (none, integrity, confidentiality). Constant 1.",
	Labels: []string{"mode"},
})

var kernelLsmEnabledFact = declare(Fact{
	Collector: "kernel", Name: "lsm_enabled",
	Help:     "1 for each active Linux security module; 0 for well-known modules that are not active.",
	Labels:   []string{"lsm"},
	Identity: []string{"lsm"}, Bound: "the well-known modules and the active ones",
})

var kernelFipsEnabledFact = declare(Fact{
	Collector: "kernel", Name: "fips_enabled",
	Help: "1 when the kernel runs in FIPS mode (/proc/sys/crypto/fips_enabled).",
})

var kernelClocksourceInfoFact = declare(Fact{
	Collector: "kernel", Name: "clocksource_info",
	Help:   "Current clock source. Constant 1.",
	Labels: []string{"current"},
})

var kernelModuleLoadedFact = declare(Fact{
	Collector: "kernel", Name: "module_loaded",
	Help:     "1 when the watched module is loaded or built in.",
	Labels:   []string{"module"},
	Identity: []string{"module"}, Bound: "the watched modules (collectors.kernel.modules)",
})

var kernelConfigInfoFact = declare(Fact{
	Collector: "kernel", Name: "config_info",
	Help:     "Kernel build configuration for the watched options; value is y, m, n (not set) or the option's string. Constant 1.",
	Labels:   []string{"option", "value"},
	Identity: []string{"option"}, Bound: "the watched options (collectors.kernel.config_options)",
})

type kernelCollector struct {
	paths Paths
	opts  *kernelOptions

	// The kernel configuration cannot change while a kernel runs, so it is
	// parsed once per (source, release) and kept: only the options the
	// collector reads (configWanted), not the several thousand a
	// distribution kernel sets, which would stay in the daemon's heap, and
	// be scanned by each of its garbage collections, for its lifetime.
	mu           sync.Mutex
	configKey    string
	configCache  map[string]string
	configWanted map[string]bool
}

func newKernelCollector(env Env, opts any) (Collector, error) {
	o := opts.(*kernelOptions)
	for i, m := range o.Modules {
		o.Modules[i] = host.NormalizeModule(m)
	}
	for _, opt := range o.ConfigOptions {
		if !strings.HasPrefix(opt, "CONFIG_") {
			return nil, fmt.Errorf("config_options: %q does not start with CONFIG_", opt)
		}
	}
	wanted := map[string]bool{}
	for _, opt := range o.ConfigOptions {
		wanted[opt] = true
	}
	for _, d := range hypervDrivers {
		wanted[d.option] = true
		if d.option2 != "" {
			wanted[d.option2] = true
		}
	}
	return &kernelCollector{
		paths:        env.Paths,
		opts:         o,
		configWanted: wanted,
	}, nil
}

func (c *kernelCollector) Update(_ context.Context, m *Metrics) error {
	var errs []error
	release, err := readValue(c.paths.Proc("sys/kernel/osrelease"))
	if err != nil {
		// Nothing else about the kernel can be trusted without its release.
		return fmt.Errorf("kernel release: %w", err)
	}
	if !releaseRE.MatchString(release) {
		// It names /lib/modules/<release> and becomes a label: a value
		// that is not a release is described, never used.
		return fmt.Errorf("kernel release: %s", host.Invalid(release))
	}
	version, err := readValue(c.paths.Proc("sys/kernel/version"))
	if err != nil && !isNotExist(err) {
		errs = append(errs, err)
	}
	series := ""
	if g := seriesRE.FindStringSubmatch(release); g != nil {
		series = g[1] + "." + g[2]
	} else {
		errs = append(errs, fmt.Errorf("kernel release %q does not start with major.minor", release))
	}
	m.Set(kernelInfoFact, 1, release, version, series)

	errs = append(errs, c.updateTaint(m))
	errs = append(errs, c.updateSecurity(m))
	errs = append(errs, c.updateFIPS(m))
	if cs, err := readValue(c.paths.Sys("devices/system/clocksource/clocksource0/current_clocksource")); err == nil {
		m.Set(kernelClocksourceInfoFact, 1, cs)
	} else if !isNotExist(err) {
		errs = append(errs, err)
	}
	errs = append(errs, c.updateModules(m, release))
	errs = append(errs, c.updateConfig(m, release))
	errs = append(errs, c.updateBootFacts(m, release))
	return errors.Join(errs...)
}

func (c *kernelCollector) updateTaint(m *Metrics) error {
	mask, err := readUint(c.paths.Proc("sys/kernel/tainted"))
	if err != nil {
		return fmt.Errorf("taint mask: %w", err)
	}
	m.Set(kernelTaintedFact, float64(mask))
	for bit, f := range taintFlags {
		m.SetBool(kernelTaintFlagFact, mask&(1<<bit) != 0, f.letter, f.reason)
	}
	for bit := len(taintFlags); bit < 64; bit++ {
		if mask&(1<<bit) != 0 {
			m.Set(kernelTaintFlagFact, 1, "unknown_"+strconv.Itoa(bit), "unknown")
		}
	}
	return nil
}

// updateSecurity reports lockdown and the LSM list from securityfs. Where
// securityfs is not mounted there is nothing to report, which is not a
// failure of the collector.
func (c *kernelCollector) updateSecurity(m *Metrics) error {
	var errs []error
	if s, err := readValue(c.paths.Sys("kernel/security/lockdown")); err == nil {
		if mode, ok := bracketed(s); ok {
			m.Set(kernelLockdownInfoFact, 1, mode)
		} else {
			errs = append(errs, fmt.Errorf("lockdown: no [current] mode (%s)", host.Invalid(s)))
		}
	} else if !isNotExist(err) {
		errs = append(errs, err)
	}

	// The lsm file is a comma-separated list with no trailing newline.
	s, err := readValue(c.paths.Sys("kernel/security/lsm"))
	if isNotExist(err) {
		return errors.Join(errs...)
	}
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	active := map[string]bool{}
	for _, l := range strings.Split(s, ",") {
		if l = strings.TrimSpace(l); l != "" && !active[l] {
			active[l] = true
			m.Set(kernelLsmEnabledFact, 1, l)
		}
	}
	for _, l := range knownLSMs {
		if !active[l] {
			m.Set(kernelLsmEnabledFact, 0, l)
		}
	}
	return errors.Join(errs...)
}

// updateFIPS reports FIPS mode. A kernel built without CONFIG_CRYPTO_FIPS has
// no fips_enabled file and cannot be in FIPS mode.
func (c *kernelCollector) updateFIPS(m *Metrics) error {
	v, err := readUint(c.paths.Proc("sys/crypto/fips_enabled"))
	switch {
	case isNotExist(err):
		m.Set(kernelFipsEnabledFact, 0)
	case err != nil:
		return fmt.Errorf("fips: %w", err)
	default:
		m.SetBool(kernelFipsEnabledFact, v != 0)
	}
	return nil
}

// updateModules reports the watch list. A module counts as loaded when
// /proc/modules lists it, when modules.builtin names it, or when
// /sys/module/<name> exists (which covers built-in code with parameters on
// kernels built without module support, where neither file exists).
func (c *kernelCollector) updateModules(m *Metrics, release string) error {
	if len(c.opts.Modules) == 0 {
		return nil
	}
	mods, err := readModules(c.paths, release)
	for _, mod := range c.opts.Modules {
		m.SetBool(kernelModuleLoadedFact, ModulePresent(c.paths, mods, mod), mod)
	}
	return err
}

// readModules reads the kernel's loaded and built-in modules through the
// host layer (host.ReadModules), for the collectors and the checks alike.
func readModules(p Paths, release string) (host.Modules, error) {
	return host.ReadModules(p.Proc(), p.Root(), release)
}

// ModulePresent reports whether module is loaded or built into release,
// or has a /sys/module directory (built-in code with parameters on kernels
// built without module support, where neither file exists). The
// compatibility checks share it with the kernel collector.
func ModulePresent(p Paths, mods host.Modules, module string) bool {
	return mods.Present(module) || exists(p.Sys("module", host.NormalizeModule(module)))
}

// BuiltinModules returns the modules built into release (its
// modules.builtin); the boot collector reads it for every installed kernel.
func BuiltinModules(p Paths, release string) (map[string]bool, error) {
	return host.ReadBuiltinModules(p.Root(), release)
}

// ReadModules is readModules for the checks.
func ReadModules(p Paths, release string) (host.Modules, error) { return readModules(p, release) }

func (c *kernelCollector) updateConfig(m *Metrics, release string) error {
	if len(c.opts.ConfigOptions) == 0 {
		return nil
	}
	cfg, err := c.kernelConfig(release)
	if err != nil {
		return err
	}
	if cfg == nil {
		return nil // no configuration published on this host
	}
	for _, opt := range c.opts.ConfigOptions {
		v, ok := cfg[opt]
		if !ok {
			v = "n"
		}
		m.Set(kernelConfigInfoFact, 1, opt, v)
	}
	return nil
}

// kernelConfig returns the running kernel's configuration from the first of
// /proc/config.gz, /lib/modules/<release>/config, /usr/lib/modules/<release>/config
// and /boot/config-<release> that exists; nil when none does.
func (c *kernelCollector) kernelConfig(release string) (map[string]string, error) {
	sources := []host.Path{
		c.paths.Proc("config.gz"),
		c.paths.Root("lib/modules", release, "config"),
		c.paths.Root("usr/lib/modules", release, "config"),
		c.paths.Root("boot", "config-"+release),
	}
	for _, path := range sources {
		key := path.String() + "\x00" + release
		c.mu.Lock()
		if c.configKey == key {
			cfg := c.configCache
			c.mu.Unlock()
			return cfg, nil
		}
		c.mu.Unlock()

		raw, err := readFile(path, maxFileSize)
		if isNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("kernel config: %w", err)
		}
		if strings.HasSuffix(path.Base(), ".gz") {
			if raw, err = gunzip(raw, 4*maxFileSize); err != nil {
				return nil, fmt.Errorf("kernel config: %s: %w", path, err)
			}
		}
		all, err := parseKconfig(raw)
		if err != nil {
			return nil, fmt.Errorf("kernel config: %s: %w", path, err)
		}
		cfg := make(map[string]string, len(c.configWanted))
		for opt := range c.configWanted {
			if v, ok := all[opt]; ok {
				cfg[opt] = v
			}
		}
		c.mu.Lock()
		c.configKey, c.configCache = key, cfg
		c.mu.Unlock()
		return cfg, nil
	}
	return nil, nil
}

func gunzip(b []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("decompresses to more than %d bytes", limit)
	}
	return out, nil
}

// parseKconfig parses a kernel .config: CONFIG_X=value lines and
// "# CONFIG_X is not set" comments (recorded as "n"). String values lose
// their quotes.
func parseKconfig(b []byte) (map[string]string, error) {
	if bytes.IndexByte(b, 0) >= 0 {
		return nil, errNotText
	}
	cfg := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "# "); ok {
			if name, ok = strings.CutSuffix(name, " is not set"); ok && strings.HasPrefix(name, "CONFIG_") {
				cfg[name] = "n"
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(k, "CONFIG_") {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		}
		cfg[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(cfg) == 0 {
		return nil, errors.New("no CONFIG_ lines")
	}
	return cfg, nil
}

// bracketed returns the word in [brackets] of a sysfs choice file such as
// "none [integrity] confidentiality".
func bracketed(s string) (string, bool) {
	i := strings.IndexByte(s, '[')
	j := strings.IndexByte(s, ']')
	if i < 0 || j < i+2 {
		return "", false
	}
	return s[i+1 : j], true
}
