package collectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/azurelinux-probe/azurelinux-probe/internal/systemdtest"
)

func TestParseSystemdVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"258.4-4.azl4", 258.4, true},
		{"258", 258, true},
		{"252.39-1~deb12u2", 252.39, true},
		{"255.4-1ubuntu8", 255.4, true},
		{"262~rc3", 262, true},
		{"258.10-1.fcrawhide", 258.10, true},
		{"", 0, false},
		{"v258", 0, false},
	} {
		got, ok := parseSystemdVersion(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseSystemdVersion(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBootPhaseDurations(t *testing.T) {
	u := func(v uint64) dbus.Variant { return dbus.MakeVariant(v) }
	for _, tc := range []struct {
		name  string
		props managerProps
		want  map[string]time.Duration
	}{
		{"uefi vm with initrd", managerProps{
			"FirmwareTimestampMonotonic": u(5_000_000), "LoaderTimestampMonotonic": u(2_000_000),
			"KernelTimestamp": u(1_700_000_000_000_000), "InitRDTimestampMonotonic": u(1_500_000),
			"UserspaceTimestampMonotonic": u(4_000_000), "FinishTimestampMonotonic": u(10_000_000),
		}, map[string]time.Duration{"firmware": 3 * time.Second, "loader": 2 * time.Second,
			"kernel": 1500 * time.Millisecond, "initrd": 2500 * time.Millisecond, "userspace": 6 * time.Second}},
		{"no boot loader, no initrd", managerProps{
			"KernelTimestamp": u(1_700_000_000_000_000), "UserspaceTimestampMonotonic": u(900_000),
			"FinishTimestampMonotonic": u(3_000_000),
		}, map[string]time.Duration{"kernel": 900 * time.Millisecond, "userspace": 2100 * time.Millisecond}},
		{"container", managerProps{
			"UserspaceTimestampMonotonic": u(86_400_000_000), "FinishTimestampMonotonic": u(86_400_300_000),
		}, map[string]time.Duration{"userspace": 300 * time.Millisecond}},
		{"still booting", managerProps{
			"KernelTimestamp": u(1), "UserspaceTimestampMonotonic": u(900_000),
		}, map[string]time.Duration{"kernel": 900 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := bootPhaseDurations(tc.props)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSystemdBusAddresses(t *testing.T) {
	root := t.TempDir()
	c := newTestSystemd(t, DefaultPaths(root), &systemdOptions{})
	c.getenv = func(string) string { return "" }
	// An image (no procfs or sysfs content) has no running systemd.
	if _, err := c.busAddresses(); !errors.Is(err, ErrNotApplicable) {
		t.Errorf("image, no bus: got %v, want ErrNotApplicable", err)
	}
	var m Metrics
	if err := c.Update(context.Background(), &m); !errors.Is(err, ErrNotApplicable) {
		t.Errorf("Update on an image without a bus: got %v, want ErrNotApplicable", err)
	}
	// A captured tree (procfs content) without a bus: no data.
	if err := os.MkdirAll(filepath.Join(root, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "proc/cpuinfo"), []byte("processor : 0\n"), 0o644)
	if _, err := c.busAddresses(); !errors.Is(err, ErrNoData) {
		t.Errorf("no bus, no systemd: got %v, want ErrNoData", err)
	}
	if err := c.Update(context.Background(), &m); !errors.Is(err, ErrNoData) {
		t.Errorf("Update without a bus: got %v, want ErrNoData", err)
	}
	// Booted with systemd but no socket: a tree has no sockets (no data),
	// but on the live host that is a failure to report.
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := c.busAddresses(); !errors.Is(err, ErrNoData) {
		t.Errorf("tree booted with systemd, no sockets: got %v, want ErrNoData", err)
	}
	c.paths = NewPaths(root, "/proc", "") // this process's procfs: the live host
	if _, err := c.busAddresses(); err == nil || errors.Is(err, ErrNoData) || !strings.Contains(err.Error(), "neither") {
		t.Errorf("live host booted with systemd without a bus: got %v", err)
	}
	c.paths = DefaultPaths(root)
	sock := filepath.Join(root, "run/dbus/system_bus_socket")
	os.MkdirAll(filepath.Dir(sock), 0o755)
	os.WriteFile(sock, nil, 0o644)
	os.WriteFile(filepath.Join(root, "run/systemd/private"), nil, 0o644)
	c.euid = 0
	got, err := c.busAddresses()
	want := []string{"unix:path=" + sock, "unix:path=" + filepath.Join(root, "run/systemd/private")}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("root: got %v %v, want %v", got, err, want)
	}
	c.euid = 1000
	if got, _ := c.busAddresses(); len(got) != 1 {
		t.Errorf("non-root must not try the private socket: %v", got)
	}
	c.getenv = func(k string) string {
		if k == "DBUS_SYSTEM_BUS_ADDRESS" {
			return "unix:path=/elsewhere"
		}
		return ""
	}
	if got, _ := c.busAddresses(); !slices.Equal(got, []string{"unix:path=/elsewhere"}) {
		t.Errorf("DBUS_SYSTEM_BUS_ADDRESS ignored: %v", got)
	}
	c.opts.Address = "unix:path=/configured"
	if got, _ := c.busAddresses(); !slices.Equal(got, []string{"unix:path=/configured"}) {
		t.Errorf("address option ignored: %v", got)
	}
}

func TestSystemdOptionsValidated(t *testing.T) {
	for _, o := range []systemdOptions{
		{CallTimeout: 0},
		{CallTimeout: time.Second, MaxFailedUnits: -1},
		{CallTimeout: time.Second, Address: "/run/dbus/system_bus_socket"},
		{CallTimeout: time.Second, Units: []string{"sshd", "my unit"}},
		{CallTimeout: time.Second, Units: []string{""}},
	} {
		if _, err := newSystemdCollector(Env{Paths: DefaultPaths("/")}, &o); err == nil {
			t.Errorf("%+v: accepted", o)
		}
	}
}

func newTestSystemd(t testing.TB, paths Paths, o *systemdOptions) *systemdCollector {
	t.Helper()
	def := defaultSystemdOptions()
	if o.CallTimeout == 0 {
		o.CallTimeout = def.CallTimeout
	}
	if o.Units == nil {
		o.Units = def.Units
	}
	if o.MaxFailedUnits == 0 {
		o.MaxFailedUnits = def.MaxFailedUnits
	}
	c, err := newSystemdCollector(Env{Paths: paths, Logger: slog.New(slog.DiscardHandler)}, o)
	if err != nil {
		t.Fatal(err)
	}
	sc := c.(*systemdCollector)
	t.Cleanup(func() { sc.Close() })
	return sc
}

func update(t *testing.T, c Collector, timeout time.Duration) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var m Metrics
	err := c.Update(ctx, &m)
	return sampleLines(t, &m), err
}

// TestSystemdFake reads every metric from the test double over a real bus.
func TestSystemdFake(t *testing.T) {
	b := systemdtest.StartBus(t, t.TempDir())
	f := systemdtest.NewFake()
	f.Serve(t, b)
	c := newTestSystemd(t, DefaultPaths(t.TempDir()), &systemdOptions{Address: b.Addr,
		Units: []string{"waagent", "sshd.service", "kubelet", "cloud-init"}})
	got, err := update(t, c, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wantSamples(t, got,
		`azurelinux_systemd_info{version="258.4-4.azl4"} 1`,
		`azurelinux_systemd_version 258.4`,
		`azurelinux_systemd_system_state{state="degraded"} 1`,
		`azurelinux_systemd_system_state{state="running"} 0`,
		`azurelinux_systemd_system_state{state="initializing"} 0`,
		`azurelinux_systemd_units_failed 1`,
		`azurelinux_systemd_unit_failed{name="cloud-init.service"} 1`,
		`azurelinux_systemd_unit_failed_dropped_total 0`,
		`azurelinux_systemd_unit_info{active_state="active",load_state="loaded",name="waagent.service",sub_state="running"} 1`,
		`azurelinux_systemd_unit_info{active_state="inactive",load_state="not-found",name="kubelet.service",sub_state="dead"} 1`,
		`azurelinux_systemd_unit_info{active_state="failed",load_state="loaded",name="cloud-init.service",sub_state="failed"} 1`,
		`azurelinux_systemd_unit_restarts_total{name="waagent.service"} 2`,
		`azurelinux_systemd_unit_restarts_total{name="sshd.service"} 0`,
		`azurelinux_systemd_boot_phase_seconds{phase="firmware"} 2`,
		`azurelinux_systemd_boot_phase_seconds{phase="loader"} 1`,
		`azurelinux_systemd_boot_phase_seconds{phase="kernel"} 2`,
		`azurelinux_systemd_boot_phase_seconds{phase="initrd"} 3`,
		`azurelinux_systemd_boot_phase_seconds{phase="userspace"} 7.5`,
		`azurelinux_systemd_virtualization_info{confidential="sev-snp",virtualization="microsoft"} 1`,
		`azurelinux_systemd_tainted_info{taint="support-ended"} 1`,
		`azurelinux_systemd_tainted_info{taint="local-hwclock"} 1`,
	)
	if r := withPrefix(got, `azurelinux_systemd_unit_restarts_total{name="kubelet`); len(r) > 0 {
		t.Errorf("a unit that is not found has no restart count: %v", r)
	}
	if n := len(withPrefix(got, "azurelinux_systemd_system_state{")); n != len(systemStates) {
		t.Errorf("%d system_state series, want %d", n, len(systemStates))
	}

	// A systemd without NRestarts: no restart counts, no failure.
	f.Mu.Lock()
	f.NoNRestarts = true
	f.Props["Version"] = dbus.MakeVariant("234")
	f.Mu.Unlock()
	got, err = update(t, c, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r := withPrefix(got, "azurelinux_systemd_unit_restarts_total"); len(r) != 0 {
		t.Errorf("restart counts without NRestarts: %v", r)
	}
	wantSamples(t, got, `azurelinux_systemd_version 234`,
		`azurelinux_systemd_unit_info{active_state="active",load_state="loaded",name="waagent.service",sub_state="running"} 1`)
}

// TestSystemdFailedUnitsCapped: 2,000 failed units make at most
// max_failed_units series, and the counter says how many were left out.
func TestSystemdFailedUnitsCapped(t *testing.T) {
	b := systemdtest.StartBus(t, t.TempDir())
	f := systemdtest.NewFake()
	for i := range 2000 {
		f.AddUnit(fmt.Sprintf("app-%04d.service", i), "loaded", "failed", "failed")
	}
	f.Props["NFailedUnits"] = dbus.MakeVariant(uint32(2001))
	f.Serve(t, b)
	c := newTestSystemd(t, DefaultPaths(t.TempDir()), &systemdOptions{Address: b.Addr, MaxFailedUnits: 50})
	for round := 1; round <= 2; round++ {
		got, err := update(t, c, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(withPrefix(got, "azurelinux_systemd_unit_failed{")); n != 50 {
			t.Errorf("%d unit_failed series, want 50", n)
		}
		wantSamples(t, got,
			`azurelinux_systemd_units_failed 2001`,
			`azurelinux_systemd_unit_failed{name="app-0000.service"} 1`,
			`azurelinux_systemd_unit_failed{name="app-0049.service"} 1`,
			fmt.Sprintf(`azurelinux_systemd_unit_failed_dropped_total %d`, round*1951),
		)
	}
}

// TestSystemdHungBus: a bus that stops answering makes the refresh fail
// within the call timeout (never later), and once it answers again the next
// refresh reconnects; however many refreshes, the collector holds one
// go-systemd connection (two bus peers) and leaks no goroutines.
func TestSystemdHungBus(t *testing.T) {
	b := systemdtest.StartBus(t, t.TempDir())
	f := systemdtest.NewFake()
	f.Serve(t, b)
	base := b.Peers(1) // the fake
	c := newTestSystemd(t, DefaultPaths(t.TempDir()), &systemdOptions{Address: b.Addr, CallTimeout: 300 * time.Millisecond})

	if _, err := update(t, c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	goroutines := runtime.NumGoroutine()
	for range 20 {
		if _, err := update(t, c, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if c.dials != 1 {
		t.Errorf("20 healthy refreshes dialled %d times, want 1", c.dials)
	}
	if n := b.Peers(base + 2); n != base+2 {
		t.Errorf("bus has %d collector peers, want 2 (one go-systemd connection)", n-base)
	}

	f.SetHang(true)
	for i := range 3 {
		start := time.Now()
		got, err := update(t, c, 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), "no answer within 300ms") {
			t.Fatalf("hung bus, refresh %d: got error %v", i, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("hung refresh took %s", d)
		}
		if len(got) != 0 {
			t.Errorf("hung refresh emitted %v", got)
		}
	}
	f.SetHang(false)
	got, err := update(t, c, 5*time.Second)
	if err != nil {
		t.Fatalf("after the bus answers again: %v", err)
	}
	wantSamples(t, got, `azurelinux_systemd_system_state{state="degraded"} 1`)
	if n := b.Peers(base + 2); n != base+2 {
		t.Errorf("after reconnecting the bus has %d collector peers, want 2", n-base)
	}
	for range 20 {
		if _, err := update(t, c, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if g := runtime.NumGoroutine(); g > goroutines+2 {
		t.Errorf("goroutines grew from %d to %d", goroutines, g)
	}
	c.Close()
	if n := b.Peers(base); n != base {
		t.Errorf("after Close the bus has %d collector peers, want 0", n-base)
	}
}

// TestSystemdBusRestart: the bus goes away (refreshes fail with a clear
// error naming the address) and comes back (the next refresh recovers).
func TestSystemdBusRestart(t *testing.T) {
	dir := t.TempDir()
	b := systemdtest.StartBus(t, dir)
	f := systemdtest.NewFake()
	fc := f.Serve(t, b)
	c := newTestSystemd(t, DefaultPaths(t.TempDir()), &systemdOptions{Address: b.Addr})
	if _, err := update(t, c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	b.Stop()
	fc.Close()
	for range 2 {
		_, err := update(t, c, 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), b.Addr) {
			t.Fatalf("bus gone: got %v, want an error naming %s", err, b.Addr)
		}
		if errors.Is(err, ErrNoData) {
			t.Fatalf("a configured bus that is gone is a failure, not no data: %v", err)
		}
		t.Logf("bus gone: %v", err)
	}
	b.Start()
	f.Serve(t, b)
	got, err := update(t, c, 5*time.Second)
	if err != nil {
		t.Fatalf("bus back: %v", err)
	}
	wantSamples(t, got, `azurelinux_systemd_units_failed 1`)
}

// TestSystemdDeadlineDuringSetup: a socket that accepts but never speaks
// D-Bus (auth hangs) fails within the call timeout.
func TestSystemdDeadlineDuringSetup(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "mute")
	l, err := listenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := newTestSystemd(t, DefaultPaths(t.TempDir()), &systemdOptions{Address: "unix:path=" + sock, CallTimeout: 200 * time.Millisecond})
	start := time.Now()
	_, err = update(t, c, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "no answer within 200ms during connection set-up") {
		t.Errorf("mute socket: got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
}

// listenUnix listens on a unix socket and never accepts: connecting
// succeeds (the backlog holds it) but nothing ever answers.
func listenUnix(path string) (net.Listener, error) { return net.Listen("unix", path) }

// TestSystemdBusWithoutSystemd: a system bus with no systemd on it (a
// container running dbus-daemon alone) is no data when the bus was found
// under the root of a host not booted with systemd, and a failure when the
// bus was configured or the root was booted with systemd.
func TestSystemdBusWithoutSystemd(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "run/dbus"), 0o755)
	b := systemdtest.StartBusAt(t, filepath.Join(root, "run/dbus"), "system_bus_socket")
	c := newTestSystemd(t, DefaultPaths(root), &systemdOptions{})
	c.getenv = func(string) string { return "" }
	if _, err := update(t, c, 5*time.Second); !errors.Is(err, ErrNoData) {
		t.Errorf("found bus without systemd: got %v, want ErrNoData", err)
	}
	if c.dials != 1 {
		t.Errorf("the bus under the root was not used (%d dials)", c.dials)
	}

	configured := newTestSystemd(t, DefaultPaths(root), &systemdOptions{Address: b.Addr})
	if _, err := update(t, configured, 5*time.Second); err == nil || errors.Is(err, ErrNoData) ||
		!strings.Contains(err.Error(), "systemd is not on this bus") {
		t.Errorf("configured bus without systemd: got %v, want a failure", err)
	}

	os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755)
	if _, err := update(t, c, 5*time.Second); err == nil || errors.Is(err, ErrNoData) {
		t.Errorf("booted with systemd, systemd not on the bus: got %v, want a failure", err)
	}
}
