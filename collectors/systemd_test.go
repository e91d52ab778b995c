package collectors

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
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
	if _, err := c.busAddresses(); !errors.Is(err, ErrNoData) {
		t.Errorf("no bus, no systemd: got %v, want ErrNoData", err)
	}
	var m Metrics
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
	c.paths.ProcFS = "/proc" // this process's procfs: the live host
	if _, err := c.busAddresses(); err == nil || errors.Is(err, ErrNoData) || !strings.Contains(err.Error(), "neither") {
		t.Errorf("live host booted with systemd without a bus: got %v", err)
	}
	c.paths.ProcFS = filepath.Join(root, "proc")
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
	} {
		if _, err := newSystemdCollector(Env{Paths: DefaultPaths("/")}, &o); err == nil {
			t.Errorf("%+v: accepted", o)
		}
	}
}

func newTestSystemd(t *testing.T, paths Paths, o *systemdOptions) *systemdCollector {
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

// testBus is a private dbus-daemon listening on a socket in a temporary
// directory.
type testBus struct {
	t         *testing.T
	dir, name string
	addr      string
	cmd       *exec.Cmd
	stderr    strings.Builder
}

const testBusConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`

// startBus starts a dbus-daemon; in CI a missing dbus-daemon fails the test.
func startBus(t *testing.T, dir string) *testBus {
	t.Helper()
	return startBusAt(t, dir, "bus")
}

// startBusAt starts a dbus-daemon listening on dir/name.
func startBusAt(t *testing.T, dir, name string) *testBus {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("dbus-daemon is not installed (make test installs it)")
		}
		t.Skip("dbus-daemon is not installed (make test installs it)")
	}
	b := &testBus{t: t, dir: dir, name: name}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *testBus) start() {
	b.t.Helper()
	sock := filepath.Join(b.dir, b.name)
	os.Remove(sock)
	conf := filepath.Join(b.t.TempDir(), "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, testBusConfig, sock), 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.cmd = exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--nopidfile", "--print-address=1")
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		b.t.Fatal(err)
	}
	// dbus-daemon complains when it cannot raise its fd limit; show
	// what it says only when a test fails.
	b.cmd.Stderr = &b.stderr
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	// The daemon prints its address once it listens.
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.t.Fatalf("dbus-daemon did not print its address: %v", err)
	}
	b.addr = "unix:path=" + sock
	_ = line
}

func (b *testBus) stop() {
	if b.cmd != nil && b.cmd.ProcessState == nil {
		b.cmd.Process.Kill()
		b.cmd.Wait()
	}
	if b.t.Failed() && b.stderr.Len() > 0 {
		b.t.Logf("dbus-daemon stderr:\n%s", b.stderr.String())
	}
}

// connect opens a client connection to the bus.
func (b *testBus) connect() *dbus.Conn {
	b.t.Helper()
	conn, err := dbus.Connect(b.addr)
	if err != nil {
		b.t.Fatalf("connect to test bus: %v", err)
	}
	b.t.Cleanup(func() { conn.Close() })
	return conn
}

// peers returns how many connections the bus has, waiting (up to 10s) for
// the count to reach want: the daemon notices a closed peer asynchronously.
func (b *testBus) peers(want int) int {
	b.t.Helper()
	obs := b.connect()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var names []string
		if err := obs.BusObject().Call("org.freedesktop.DBus.ListNames", 0).Store(&names); err != nil {
			b.t.Fatal(err)
		}
		n := 0
		for _, name := range names {
			if strings.HasPrefix(name, ":") && name != obs.Names()[0] {
				n++
			}
		}
		if n == want || time.Now().After(deadline) {
			obs.Close()
			return n
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond) // polling the daemon for a condition, bounded by the deadline
	}
}

// unitTuple is one entry of ListUnits* answers, signature (ssssssouso).
type unitTuple struct {
	Name, Description, LoadState, ActiveState, SubState, Followed string
	Path                                                          dbus.ObjectPath
	JobID                                                         uint32
	JobType                                                       string
	JobPath                                                       dbus.ObjectPath
}

// fakeSystemd exports the parts of org.freedesktop.systemd1 the collector
// uses, with state a test can change, and can stop answering.
type fakeSystemd struct {
	mu       sync.Mutex
	props    map[string]dbus.Variant
	units    map[string]unitTuple
	restarts map[string]uint32
	hang     chan struct{} // non-nil: calls block until it is closed
	calls    int
	// noNRestarts plays a systemd older than 235, whose services have no
	// NRestarts property.
	noNRestarts bool
}

func newFakeSystemd() *fakeSystemd {
	u := func(v uint64) dbus.Variant { return dbus.MakeVariant(v) }
	f := &fakeSystemd{
		props: map[string]dbus.Variant{
			"Version":                     dbus.MakeVariant("258.4-4.azl4"),
			"SystemState":                 dbus.MakeVariant("degraded"),
			"NFailedUnits":                dbus.MakeVariant(uint32(1)),
			"Virtualization":              dbus.MakeVariant("microsoft"),
			"ConfidentialVirtualization":  dbus.MakeVariant("sev-snp"),
			"Tainted":                     dbus.MakeVariant("unmerged-usr:support-ended"),
			"FirmwareTimestampMonotonic":  u(3_000_000),
			"LoaderTimestampMonotonic":    u(1_000_000),
			"KernelTimestamp":             u(1_780_000_000_000_000),
			"KernelTimestampMonotonic":    u(0),
			"InitRDTimestampMonotonic":    u(2_000_000),
			"UserspaceTimestampMonotonic": u(5_000_000),
			"FinishTimestampMonotonic":    u(12_500_000),
			"Architecture":                dbus.MakeVariant("x86-64"),
		},
		units:    map[string]unitTuple{},
		restarts: map[string]uint32{"waagent.service": 2},
	}
	f.addUnit("waagent.service", "loaded", "active", "running")
	f.addUnit("cloud-init.service", "loaded", "failed", "failed")
	f.addUnit("sshd.service", "loaded", "active", "running")
	return f
}

func (f *fakeSystemd) addUnit(name, load, active, sub string) {
	f.units[name] = unitTuple{Name: name, LoadState: load, ActiveState: active, SubState: sub,
		Path: dbus.ObjectPath("/org/freedesktop/systemd1/unit/" + pathEscape(name)), JobPath: "/"}
}

func pathEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	return b.String()
}

// enter counts a call and blocks while the fake hangs.
func (f *fakeSystemd) enter() {
	f.mu.Lock()
	f.calls++
	h := f.hang
	f.mu.Unlock()
	if h != nil {
		<-h
	}
}

func (f *fakeSystemd) setHang(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if on && f.hang == nil {
		f.hang = make(chan struct{})
	} else if !on && f.hang != nil {
		close(f.hang)
		f.hang = nil
	}
}

type fakeManager struct{ f *fakeSystemd }

func (m fakeManager) ListUnitsFiltered(states []string) ([]unitTuple, *dbus.Error) {
	m.f.enter()
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	var out []unitTuple
	for _, u := range m.f.units {
		if slices.Contains(states, u.ActiveState) || slices.Contains(states, u.LoadState) || slices.Contains(states, u.SubState) {
			out = append(out, u)
		}
	}
	return out, nil
}

func (m fakeManager) ListUnitsByNames(names []string) ([]unitTuple, *dbus.Error) {
	m.f.enter()
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	var out []unitTuple
	for _, n := range names {
		u, ok := m.f.units[n]
		if !ok {
			u = unitTuple{Name: n, LoadState: "not-found", ActiveState: "inactive", SubState: "dead",
				Path: dbus.ObjectPath("/org/freedesktop/systemd1/unit/" + pathEscape(n)), JobPath: "/"}
		}
		out = append(out, u)
	}
	return out, nil
}

type fakeProperties struct{ f *fakeSystemd }

func (p fakeProperties) GetAll(msg dbus.Message, iface string) (map[string]dbus.Variant, *dbus.Error) {
	p.f.enter()
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	path, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	if path != systemdObjectPath || iface != systemdManager {
		return nil, dbus.MakeFailedError(fmt.Errorf("no interface %s at %s", iface, path))
	}
	out := map[string]dbus.Variant{}
	for k, v := range p.f.props {
		out[k] = v
	}
	return out, nil
}

func (p fakeProperties) Get(msg dbus.Message, iface, prop string) (dbus.Variant, *dbus.Error) {
	p.f.enter()
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	path, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	if iface == "org.freedesktop.systemd1.Service" && prop == "NRestarts" && !p.f.noNRestarts {
		for name, u := range p.f.units {
			if u.Path == path {
				return dbus.MakeVariant(p.f.restarts[name]), nil
			}
		}
	}
	return dbus.Variant{}, &dbus.Error{Name: "org.freedesktop.DBus.Error.UnknownProperty",
		Body: []any{fmt.Sprintf("no property %s.%s at %s", iface, prop, path)}}
}

// serve exports f on bus under systemd's well-known name.
func (f *fakeSystemd) serve(t *testing.T, b *testBus) *dbus.Conn {
	t.Helper()
	conn := b.connect()
	if err := conn.Export(fakeManager{f}, systemdObjectPath, systemdManager); err != nil {
		t.Fatal(err)
	}
	if err := conn.ExportSubtree(fakeProperties{f}, systemdObjectPath, "org.freedesktop.DBus.Properties"); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(systemdBusName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("request %s: %v %v", systemdBusName, reply, err)
	}
	t.Cleanup(func() { f.setHang(false) })
	return conn
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
	b := startBus(t, t.TempDir())
	f := newFakeSystemd()
	f.serve(t, b)
	c := newTestSystemd(t, DefaultPaths(t.TempDir()), &systemdOptions{Address: b.addr,
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
		`azurelinux_systemd_tainted_info{taint="unmerged-usr"} 1`,
		`azurelinux_systemd_tainted_info{taint="support-ended"} 1`,
	)
	if r := withPrefix(got, `azurelinux_systemd_unit_restarts_total{name="kubelet`); len(r) > 0 {
		t.Errorf("a unit that is not found has no restart count: %v", r)
	}
	if n := len(withPrefix(got, "azurelinux_systemd_system_state{")); n != len(systemStates) {
		t.Errorf("%d system_state series, want %d", n, len(systemStates))
	}

	// A systemd without NRestarts: no restart counts, no failure.
	f.mu.Lock()
	f.noNRestarts = true
	f.props["Version"] = dbus.MakeVariant("234")
	f.mu.Unlock()
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
	b := startBus(t, t.TempDir())
	f := newFakeSystemd()
	for i := range 2000 {
		f.addUnit(fmt.Sprintf("app-%04d.service", i), "loaded", "failed", "failed")
	}
	f.props["NFailedUnits"] = dbus.MakeVariant(uint32(2001))
	f.serve(t, b)
	c := newTestSystemd(t, DefaultPaths(t.TempDir()), &systemdOptions{Address: b.addr, MaxFailedUnits: 50})
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
	b := startBus(t, t.TempDir())
	f := newFakeSystemd()
	f.serve(t, b)
	base := b.peers(1) // the fake
	c := newTestSystemd(t, DefaultPaths(t.TempDir()), &systemdOptions{Address: b.addr, CallTimeout: 300 * time.Millisecond})

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
	if n := b.peers(base + 2); n != base+2 {
		t.Errorf("bus has %d collector peers, want 2 (one go-systemd connection)", n-base)
	}

	f.setHang(true)
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
	f.setHang(false)
	got, err := update(t, c, 5*time.Second)
	if err != nil {
		t.Fatalf("after the bus answers again: %v", err)
	}
	wantSamples(t, got, `azurelinux_systemd_system_state{state="degraded"} 1`)
	if n := b.peers(base + 2); n != base+2 {
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
	if n := b.peers(base); n != base {
		t.Errorf("after Close the bus has %d collector peers, want 0", n-base)
	}
}

// TestSystemdBusRestart: the bus goes away (refreshes fail with a clear
// error naming the address) and comes back (the next refresh recovers).
func TestSystemdBusRestart(t *testing.T) {
	dir := t.TempDir()
	b := startBus(t, dir)
	f := newFakeSystemd()
	fc := f.serve(t, b)
	c := newTestSystemd(t, DefaultPaths(t.TempDir()), &systemdOptions{Address: b.addr})
	if _, err := update(t, c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	b.stop()
	fc.Close()
	for range 2 {
		_, err := update(t, c, 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), b.addr) {
			t.Fatalf("bus gone: got %v, want an error naming %s", err, b.addr)
		}
		if errors.Is(err, ErrNoData) {
			t.Fatalf("a configured bus that is gone is a failure, not no data: %v", err)
		}
		t.Logf("bus gone: %v", err)
	}
	b.start()
	f.serve(t, b)
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
	b := startBusAt(t, filepath.Join(root, "run/dbus"), "system_bus_socket")
	c := newTestSystemd(t, DefaultPaths(root), &systemdOptions{})
	c.getenv = func(string) string { return "" }
	if _, err := update(t, c, 5*time.Second); !errors.Is(err, ErrNoData) {
		t.Errorf("found bus without systemd: got %v, want ErrNoData", err)
	}
	if c.dials != 1 {
		t.Errorf("the bus under the root was not used (%d dials)", c.dials)
	}

	configured := newTestSystemd(t, DefaultPaths(root), &systemdOptions{Address: b.addr})
	if _, err := update(t, configured, 5*time.Second); err == nil || errors.Is(err, ErrNoData) ||
		!strings.Contains(err.Error(), "systemd is not on this bus") {
		t.Errorf("configured bus without systemd: got %v, want a failure", err)
	}

	os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755)
	if _, err := update(t, c, 5*time.Second); err == nil || errors.Is(err, ErrNoData) {
		t.Errorf("booted with systemd, systemd not on the bus: got %v, want a failure", err)
	}
}
