package collectors

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/lenre"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

func init() {
	register(Spec{
		Name:           "systemd",
		DefaultEnabled: true,
		Interval:       30 * time.Second,
		Timeout:        10 * time.Second,
		Options:        func() any { return defaultSystemdOptions() },
		New:            newSystemdCollector,
	})
}

// systemdOptions configure the systemd collector.
type systemdOptions struct {
	// Address is the D-Bus address of systemd's bus, e.g.
	// unix:path=/run/dbus/system_bus_socket. Empty means
	// $DBUS_SYSTEM_BUS_ADDRESS, else the system bus socket under
	// --path.rootfs, else (as root) systemd's private socket there.
	Address string `yaml:"address"`
	// CallTimeout bounds every D-Bus call, connection set-up included, within
	// the refresh timeout.
	CallTimeout time.Duration `yaml:"call_timeout"`
	// Units is the watch list of azurelinux_systemd_unit_info and
	// azurelinux_systemd_unit_restarts_total; a name without a unit type
	// suffix is a .service.
	Units []string `yaml:"units"`
	// MaxFailedUnits caps the series of azurelinux_systemd_unit_failed.
	MaxFailedUnits int `yaml:"max_failed_units"`
}

func defaultSystemdOptions() *systemdOptions {
	return &systemdOptions{
		CallTimeout: 3 * time.Second,
		Units: []string{
			"waagent", "hypervkvpd", "hypervvssd", "nvidia-persistenced", "nvidia-fabricmanager",
			"containerd", "kubelet", "cloud-init", "chronyd", "sshd", "systemd-networkd",
		},
		MaxFailedUnits: 100,
	}
}

// systemStates are the values of the Manager's SystemState property
// (org.freedesktop.systemd1(5)), all exported so that an alert can match
// state="degraded" == 1 without knowing the others.
var systemStates = []string{"initializing", "starting", "running", "degraded", "maintenance", "stopping"}

// bootPhases are the phases systemd-analyze prints, in boot order.
var bootPhases = []string{"firmware", "loader", "kernel", "initrd", "userspace"}

const (
	systemdBusName    = "org.freedesktop.systemd1"
	systemdObjectPath = dbus.ObjectPath("/org/freedesktop/systemd1")
	systemdManager    = "org.freedesktop.systemd1.Manager"
)

var systemdInfoFact = declare(Fact{
	Collector: "systemd", Name: "info",
	Help:   "systemd's Version manager property, as the distribution tags it; constant 1.",
	Labels: []string{"version"},
})

var systemdVersionFact = declare(Fact{
	Collector: "systemd", Name: "version",
	Help: "systemd's version as a number: 258.4-4.azl4 reads 258.4, 258 reads 258.",
})

var systemdSystemStateFact = declare(Fact{
	Collector: "systemd", Name: "system_state",
	Help:     "1 for systemd's current SystemState, 0 for the other known states.",
	Labels:   []string{"state"},
	Identity: []string{"state"}, Bound: "the known states and the current one",
})

var systemdUnitsFailedFact = declare(Fact{
	Collector: "systemd", Name: "units_failed",
	Help: "Units in the failed state (the manager's NFailedUnits).",
})

var systemdUnitFailedFact = declare(Fact{
	Collector: "systemd", Name: "unit_failed",
	Help:     "1 per failed unit, at most max_failed_units of them (by name).",
	Labels:   []string{"name"},
	Identity: []string{"name"}, Bound: "at most collectors.systemd.max_failed_units (100); the rest are counted in azurelinux_systemd_unit_failed_dropped_total",
})

var systemdUnitFailedDroppedTotalFact = declare(Fact{
	Collector: "systemd", Name: "unit_failed_dropped_total",
	Help:    "Failed-unit series left out by max_failed_units, summed over the refreshes since the probe started.",
	Counter: true, Volatile: true,
})

var systemdUnitInfoFact = declare(Fact{
	Collector: "systemd", Name: "unit_info",
	Help:     "State of each watched unit; constant 1. A unit that is not installed reads load_state=\"not-found\".",
	Labels:   []string{"name", "load_state", "active_state", "sub_state"},
	Identity: []string{"name"}, Bound: "the watched units (collectors.systemd.units)",
})

var systemdUnitRestartsTotalFact = declare(Fact{
	Collector: "systemd", Name: "unit_restarts_total",
	Help:    "Automatic restarts of a watched, loaded service (NRestarts, systemd 235 or later).",
	Labels:  []string{"name"},
	Counter: true, Identity: []string{"name"}, Volatile: true, Bound: "the watched units",
})

var systemdBootPhaseSecondsFact = declare(Fact{
	Collector: "systemd", Name: "boot_phase_seconds",
	Help:     "Time spent in each boot phase as systemd-analyze computes it; phases that took 0 are left out.",
	Labels:   []string{"phase"},
	Identity: []string{"phase"}, Volatile: true, Bound: "the boot phases systemd-analyze knows",
})

var systemdVirtualizationInfoFact = declare(Fact{
	Collector: "systemd", Name: "virtualization_info",
	Help:   "Virtualization and confidential-computing technology systemd detected (\"none\" when none); constant 1.",
	Labels: []string{"virtualization", "confidential"},
})

var systemdTaintedInfoFact = declare(Fact{
	Collector: "systemd", Name: "tainted_info",
	Help:   "1 per flag of systemd's Tainted property (for example unmerged-usr, cgroupsv1, support-ended).",
	Labels: []string{"taint"},
	Bound:  "the flags of systemd's Tainted property",
})

// systemdCollector reads systemd's state over D-Bus through one long-lived
// connection. node_exporter's systemd collector (collector/systemd_linux.go,
// Update) dials the bus on every scrape and calls it with context.TODO(),
// no deadline, so a bus that stops answering hangs the scrape; here the
// connection is kept between refreshes, every call has a deadline, and any
// error drops the connection so that the next refresh dials afresh (a bus
// restarted under us leaves a broken pipe that would otherwise fail forever).
type systemdCollector struct {
	opts   systemdOptions
	paths  Paths
	getenv func(string) string
	euid   int

	mu      sync.Mutex // serialises refreshes and guards the fields below
	conn    *sdbus.Conn
	sysconn *dbus.Conn // conn's call connection, for the calls go-systemd has no context for
	cancel  context.CancelFunc
	addr    string // address conn was dialled at
	dials   int    // connections dialled so far (tests)
	// dropped counts the failed units left out by MaxFailedUnits since start.
	dropped float64
}

func newSystemdCollector(env Env, opts any) (Collector, error) {
	o := opts.(*systemdOptions)
	if o.CallTimeout <= 0 {
		return nil, fmt.Errorf("call_timeout %s must be above 0", o.CallTimeout)
	}
	if o.MaxFailedUnits < 0 {
		return nil, fmt.Errorf("max_failed_units %d must not be negative", o.MaxFailedUnits)
	}
	if o.Address != "" {
		// D-Bus addresses are transport:key=value,... (dbus-specification).
		if t, kv, ok := strings.Cut(o.Address, ":"); !ok || t == "" || !strings.Contains(kv, "=") {
			return nil, fmt.Errorf("address %q is not a D-Bus address such as unix:path=/run/dbus/system_bus_socket", o.Address)
		}
	}
	c := &systemdCollector{
		opts:   *o,
		paths:  env.Paths,
		getenv: os.Getenv,
		euid:   os.Geteuid(),
	}
	units := make([]string, len(o.Units))
	for i, u := range o.Units {
		// One bad name would fail the whole ListUnitsByNames call at
		// every refresh: refuse it when the configuration is loaded.
		if !validUnitName.MatchString(u) {
			return nil, fmt.Errorf("units: %q is not a systemd unit name", u)
		}
		units[i] = unitName(u)
	}
	c.opts.Units = units
	return c, nil
}

// validUnitName is the character set of systemd unit names
// (systemd.unit(5): ASCII letters, digits, ":", "-", "_", ".", "\\", and
// "@" for instances), at most 255 characters.
var validUnitName = lenre.MustCompile(`^[A-Za-z0-9:_.\\@-]+$`, 1, 255)

// unitName adds .service to a unit name without a type suffix.
func unitName(u string) string {
	for _, t := range []string{".service", ".socket", ".target", ".device", ".mount", ".automount",
		".swap", ".timer", ".path", ".slice", ".scope"} {
		if strings.HasSuffix(u, t) {
			return u
		}
	}
	return u + ".service"
}

// Close drops the D-Bus connection; the agent calls it when it replaces the
// collector on reload.
func (c *systemdCollector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked()
	return nil
}

func (c *systemdCollector) closeLocked() {
	if c.conn != nil {
		c.conn.Close()
		c.cancel()
		c.conn, c.sysconn, c.cancel = nil, nil, nil
	}
}

func (c *systemdCollector) Update(ctx context.Context, m *Metrics) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.connect(ctx); err != nil {
		return err
	}
	if err := c.collect(ctx, m); err != nil {
		if errors.Is(err, ErrNoData) {
			return err
		}
		// Whatever failed (a deadline, a broken pipe, a restarted bus), the
		// connection is suspect: the next refresh dials a new one.
		c.closeLocked()
		return fmt.Errorf("systemd over D-Bus %s: %w", c.addr, err)
	}
	return nil
}

// call runs f under the per-call deadline.
func (c *systemdCollector) call(ctx context.Context, what string, f func(ctx context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, c.opts.CallTimeout)
	defer cancel()
	if err := f(cctx); err != nil {
		if cctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("%s: no answer within %s: %w", what, c.opts.CallTimeout, err)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (c *systemdCollector) collect(ctx context.Context, m *Metrics) error {
	var props map[string]dbus.Variant
	// go-systemd's GetManagerProperty has no context; GetAll through godbus
	// does, and reads every manager property in one round trip.
	// NoAutoStart: on a bus without systemd, dbus-daemon would otherwise
	// try to activate it.
	err := c.call(ctx, "read manager properties", func(ctx context.Context) error {
		return c.sysconn.Object(systemdBusName, systemdObjectPath).
			CallWithContext(ctx, "org.freedesktop.DBus.Properties.GetAll", dbus.FlagNoAutoStart, systemdManager).Store(&props)
	})
	var derr dbus.Error
	if errors.As(err, &derr) && (derr.Name == "org.freedesktop.DBus.Error.NameHasNoOwner" ||
		derr.Name == "org.freedesktop.DBus.Error.ServiceUnknown") {
		if c.noSystemdExpected() {
			// A system bus without systemd on it (a container running
			// dbus-daemon alone): no systemd facts, as without a bus.
			return ErrNoData
		}
		return fmt.Errorf("systemd is not on this bus: %w", err)
	}
	if err != nil {
		return err
	}
	emitManager(m, managerProps(props))
	if err := c.collectFailed(ctx, m); err != nil {
		return err
	}
	if len(c.opts.Units) == 0 {
		return nil
	}
	return c.collectWatched(ctx, m)
}

// emitManager emits the facts of the manager's properties: version, system
// state, failed-unit count, virtualization, taint flags and boot phases.
func emitManager(m *Metrics, mp managerProps) {
	version := mp.str("Version")
	if version != "" {
		m.Set(systemdInfoFact, 1, version)
		if v, ok := parseSystemdVersion(version); ok {
			m.Set(systemdVersionFact, v)
		}
	}
	if s := mp.str("SystemState"); s != "" {
		for _, known := range systemStates {
			m.SetBool(systemdSystemStateFact, s == known, known)
		}
		if !slices.Contains(systemStates, s) {
			m.Set(systemdSystemStateFact, 1, s)
		}
	}
	if n, ok := mp.uint("NFailedUnits"); ok {
		m.Set(systemdUnitsFailedFact, float64(n))
	}
	virt := orNone(mp.str("Virtualization"))
	m.Set(systemdVirtualizationInfoFact, 1, virt, orNone(mp.str("ConfidentialVirtualization")))
	for _, t := range strings.Split(mp.str("Tainted"), ":") {
		if t != "" {
			m.Set(systemdTaintedInfoFact, 1, t)
		}
	}
	phases := bootPhaseDurations(mp)
	for _, phase := range bootPhases {
		if d, ok := phases[phase]; ok {
			m.Set(systemdBootPhaseSecondsFact, d.Seconds(), phase)
		}
	}
}

// collectFailed emits the failed units, at most max_failed_units of them by
// name, and counts the rest.
func (c *systemdCollector) collectFailed(ctx context.Context, m *Metrics) error {
	var failed []sdbus.UnitStatus
	if err := c.call(ctx, "list failed units", func(ctx context.Context) (err error) {
		failed, err = c.conn.ListUnitsFilteredContext(ctx, []string{"failed"})
		return err
	}); err != nil {
		return err
	}
	names := make([]string, len(failed))
	for i, u := range failed {
		names[i] = u.Name
	}
	slices.Sort(names)
	if len(names) > c.opts.MaxFailedUnits {
		c.dropped += float64(len(names) - c.opts.MaxFailedUnits)
		names = names[:c.opts.MaxFailedUnits]
	}
	for _, n := range names {
		m.Set(systemdUnitFailedFact, 1, n)
	}
	m.Set(systemdUnitFailedDroppedTotalFact, c.dropped)
	return nil
}

// collectWatched emits the state of each watched unit and the restarts of
// each loaded service among them.
func (c *systemdCollector) collectWatched(ctx context.Context, m *Metrics) error {
	var errs []error
	var watched []sdbus.UnitStatus
	// ListUnitsByNames loads each unit, so one that is not installed or
	// failed to load comes back with that load state instead of vanishing.
	if err := c.call(ctx, "list watched units", func(ctx context.Context) (err error) {
		watched, err = c.conn.ListUnitsByNamesContext(ctx, c.opts.Units)
		return err
	}); err != nil {
		return err
	}
	for i, u := range watched {
		// Answers come in request order; an alias (sshd.service for
		// ssh.service) comes back under its unit's own name, but the
		// label keeps the name the user watches.
		name := u.Name
		if len(watched) == len(c.opts.Units) {
			name = c.opts.Units[i]
		}
		m.Set(systemdUnitInfoFact, 1, name, u.LoadState, u.ActiveState, u.SubState)
		if u.LoadState != "loaded" || !strings.HasSuffix(u.Name, ".service") {
			continue
		}
		var p *sdbus.Property
		err := c.call(ctx, "read NRestarts of "+u.Name, func(ctx context.Context) (err error) {
			p, err = c.conn.GetUnitTypePropertyContext(ctx, u.Name, "Service", "NRestarts")
			return err
		})
		var derr dbus.Error
		switch {
		case errors.As(err, &derr) && (derr.Name == "org.freedesktop.DBus.Error.UnknownProperty" ||
			derr.Name == "org.freedesktop.DBus.Error.InvalidArgs"):
			continue // systemd before 235 has no NRestarts
		case err != nil:
			return errors.Join(append(errs, err)...)
		}
		if n, ok := p.Value.Value().(uint32); ok {
			m.Set(systemdUnitRestartsTotalFact, float64(n), name)
		} else {
			errs = append(errs, fmt.Errorf("NRestarts of %s: want uint32, got %s", u.Name, p.Value.Signature()))
		}
	}
	return errors.Join(errs...)
}

// managerProps reads typed values out of a GetAll answer, tolerating
// properties an older systemd lacks.
type managerProps map[string]dbus.Variant

func (p managerProps) str(name string) string {
	s, _ := p[name].Value().(string)
	return s
}

func (p managerProps) uint(name string) (uint64, bool) {
	switch v := p[name].Value().(type) {
	case uint32:
		return uint64(v), true
	case uint64:
		return v, true
	}
	return 0, false
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

var systemdVersionRE = regexp.MustCompile(`^(\d+)(\.\d+)?`)

// parseSystemdVersion reads the leading number of the Version property. The
// man page warns that the string is informational (distributions append
// their tags: 252.39-1~deb12u2, 258.4-4.azl4, 262~rc3), so only the
// leading major[.minor] is taken.
func parseSystemdVersion(s string) (float64, bool) {
	m := systemdVersionRE.FindString(s)
	if m == "" {
		return 0, false
	}
	v, err := strconv.ParseFloat(m, 64)
	return v, err == nil
}

// bootPhaseDurations computes the phases the way systemd-analyze does from
// the manager's monotonic timestamps (µs): firmware and loader timestamps
// count back from the kernel's start; the kernel phase ends where the initrd
// (or, without one, userspace) begins; the initrd phase ends where
// userspace begins; userspace ends at FinishTimestamp. A container has no
// kernel boot of its own (KernelTimestamp is 0), so no kernel phase; a boot
// that has not finished has no userspace phase yet.
func bootPhaseDurations(p managerProps) map[string]time.Duration {
	get := func(n string) uint64 { v, _ := p.uint(n); return v }
	firmware, loader := get("FirmwareTimestampMonotonic"), get("LoaderTimestampMonotonic")
	initrd, userspace, finish := get("InitRDTimestampMonotonic"), get("UserspaceTimestampMonotonic"), get("FinishTimestampMonotonic")
	kernelRealtime := get("KernelTimestamp")
	us := func(v uint64) time.Duration { return time.Duration(v) * time.Microsecond }
	out := map[string]time.Duration{}
	if firmware > loader {
		out["firmware"] = us(firmware - loader)
	}
	if loader > 0 {
		out["loader"] = us(loader)
	}
	if kernelRealtime > 0 {
		if initrd > 0 {
			out["kernel"] = us(initrd)
		} else if userspace > 0 {
			out["kernel"] = us(userspace)
		}
	}
	if initrd > 0 && userspace > initrd {
		out["initrd"] = us(userspace - initrd)
	}
	if finish > userspace && userspace > 0 {
		out["userspace"] = us(finish - userspace)
	}
	return out
}
