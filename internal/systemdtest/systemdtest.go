// Package systemdtest runs a private dbus-daemon and a test double of
// systemd's org.freedesktop.systemd1 manager on it, for the systemd
// collector's fault tests and golden output. It is imported by tests only.
package systemdtest

import (
	"bufio"
	"fmt"
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

const (
	busName      = "org.freedesktop.systemd1"
	objectPath   = dbus.ObjectPath("/org/freedesktop/systemd1")
	managerIface = "org.freedesktop.systemd1.Manager"
)

// Bus is a private dbus-daemon listening on a socket in a temporary
// directory.
type Bus struct {
	t         testing.TB
	dir, name string
	Addr      string
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

// StartBus starts a dbus-daemon; in CI a missing dbus-daemon fails the test.
func StartBus(t testing.TB, dir string) *Bus {
	t.Helper()
	return StartBusAt(t, dir, "bus")
}

// StartBusAt starts a dbus-daemon listening on dir/name.
func StartBusAt(t testing.TB, dir, name string) *Bus {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("dbus-daemon is not installed (make test installs it)")
		}
		t.Skip("dbus-daemon is not installed (make test installs it)")
	}
	b := &Bus{t: t, dir: dir, name: name}
	b.Start()
	t.Cleanup(b.Stop)
	return b
}

// Start starts the daemon (again, after Stop) at the same socket.
func (b *Bus) Start() {
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
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		b.t.Fatalf("dbus-daemon did not print its address: %v", err)
	}
	b.Addr = "unix:path=" + sock
}

// Stop kills the daemon: every connection to it breaks.
func (b *Bus) Stop() {
	if b.cmd != nil && b.cmd.ProcessState == nil {
		b.cmd.Process.Kill()
		b.cmd.Wait()
	}
	if b.t.Failed() && b.stderr.Len() > 0 {
		b.t.Logf("dbus-daemon stderr:\n%s", b.stderr.String())
	}
}

// Connect opens a client connection to the bus.
func (b *Bus) Connect() *dbus.Conn {
	b.t.Helper()
	conn, err := dbus.Connect(b.Addr)
	if err != nil {
		b.t.Fatalf("connect to test bus: %v", err)
	}
	b.t.Cleanup(func() { conn.Close() })
	return conn
}

// Peers returns how many connections the bus has, waiting (up to 10s) for
// the count to reach want: the daemon notices a closed peer asynchronously.
func (b *Bus) Peers(want int) int {
	b.t.Helper()
	obs := b.Connect()
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

// Unit is one entry of ListUnits* answers, signature (ssssssouso).
type Unit struct {
	Name, Description, LoadState, ActiveState, SubState, Followed string
	Path                                                          dbus.ObjectPath
	JobID                                                         uint32
	JobType                                                       string
	JobPath                                                       dbus.ObjectPath
}

// Fake exports the parts of org.freedesktop.systemd1 the collector
// uses, with state a test can change, and can stop answering.
type Fake struct {
	Mu       sync.Mutex
	Props    map[string]dbus.Variant
	Units    map[string]Unit
	Restarts map[string]uint32
	hang     chan struct{} // non-nil: calls block until it is closed
	calls    int
	// NoNRestarts plays a systemd older than 235, whose services have no
	// NRestarts property.
	NoNRestarts bool
}

// NewFake returns a degraded Azure Linux 4.0 systemd 258 in a confidential
// Hyper-V VM, with a failed cloud-init and a waagent restarted twice.
func NewFake() *Fake {
	u := func(v uint64) dbus.Variant { return dbus.MakeVariant(v) }
	f := &Fake{
		Props: map[string]dbus.Variant{
			"Version":                     dbus.MakeVariant("258.4-4.azl4"),
			"SystemState":                 dbus.MakeVariant("degraded"),
			"NFailedUnits":                dbus.MakeVariant(uint32(1)),
			"Virtualization":              dbus.MakeVariant("microsoft"),
			"ConfidentialVirtualization":  dbus.MakeVariant("sev-snp"),
			"Tainted":                     dbus.MakeVariant("support-ended:local-hwclock"),
			"FirmwareTimestampMonotonic":  u(3_000_000),
			"LoaderTimestampMonotonic":    u(1_000_000),
			"KernelTimestamp":             u(1_780_000_000_000_000),
			"KernelTimestampMonotonic":    u(0),
			"InitRDTimestampMonotonic":    u(2_000_000),
			"UserspaceTimestampMonotonic": u(5_000_000),
			"FinishTimestampMonotonic":    u(12_500_000),
			"Architecture":                dbus.MakeVariant("x86-64"),
		},
		Units:    map[string]Unit{},
		Restarts: map[string]uint32{"waagent.service": 2},
	}
	f.AddUnit("waagent.service", "loaded", "active", "running")
	f.AddUnit("cloud-init.service", "loaded", "failed", "failed")
	f.AddUnit("sshd.service", "loaded", "active", "running")
	// What an Azure Linux 4.0 VM image runs (hyperv-daemons, chrony,
	// systemd-networkd).
	f.AddUnit("hypervkvpd.service", "loaded", "active", "running")
	f.AddUnit("hypervvssd.service", "loaded", "active", "running")
	f.AddUnit("chronyd.service", "loaded", "active", "running")
	f.AddUnit("systemd-networkd.service", "loaded", "active", "running")
	return f
}

// AddUnit adds a unit with the given states.
func (f *Fake) AddUnit(name, load, active, sub string) {
	f.Units[name] = Unit{Name: name, LoadState: load, ActiveState: active, SubState: sub,
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
func (f *Fake) enter() {
	f.Mu.Lock()
	f.calls++
	h := f.hang
	f.Mu.Unlock()
	if h != nil {
		<-h
	}
}

func (f *Fake) SetHang(on bool) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if on && f.hang == nil {
		f.hang = make(chan struct{})
	} else if !on && f.hang != nil {
		close(f.hang)
		f.hang = nil
	}
}

type fakeManager struct{ f *Fake }

func (m fakeManager) ListUnitsFiltered(states []string) ([]Unit, *dbus.Error) {
	m.f.enter()
	m.f.Mu.Lock()
	defer m.f.Mu.Unlock()
	var out []Unit
	for _, u := range m.f.Units {
		if slices.Contains(states, u.ActiveState) || slices.Contains(states, u.LoadState) || slices.Contains(states, u.SubState) {
			out = append(out, u)
		}
	}
	return out, nil
}

func (m fakeManager) ListUnitsByNames(names []string) ([]Unit, *dbus.Error) {
	m.f.enter()
	m.f.Mu.Lock()
	defer m.f.Mu.Unlock()
	var out []Unit
	for _, n := range names {
		u, ok := m.f.Units[n]
		if !ok {
			u = Unit{Name: n, LoadState: "not-found", ActiveState: "inactive", SubState: "dead",
				Path: dbus.ObjectPath("/org/freedesktop/systemd1/unit/" + pathEscape(n)), JobPath: "/"}
		}
		out = append(out, u)
	}
	return out, nil
}

type fakeProperties struct{ f *Fake }

func (p fakeProperties) GetAll(msg dbus.Message, iface string) (map[string]dbus.Variant, *dbus.Error) {
	p.f.enter()
	p.f.Mu.Lock()
	defer p.f.Mu.Unlock()
	path, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	if path != objectPath || iface != managerIface {
		return nil, dbus.MakeFailedError(fmt.Errorf("no interface %s at %s", iface, path))
	}
	out := map[string]dbus.Variant{}
	for k, v := range p.f.Props {
		out[k] = v
	}
	return out, nil
}

func (p fakeProperties) Get(msg dbus.Message, iface, prop string) (dbus.Variant, *dbus.Error) {
	p.f.enter()
	p.f.Mu.Lock()
	defer p.f.Mu.Unlock()
	path, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	if iface == "org.freedesktop.systemd1.Service" && prop == "NRestarts" && !p.f.NoNRestarts {
		for name, u := range p.f.Units {
			if u.Path == path {
				return dbus.MakeVariant(p.f.Restarts[name]), nil
			}
		}
	}
	return dbus.Variant{}, &dbus.Error{Name: "org.freedesktop.DBus.Error.UnknownProperty",
		Body: []any{fmt.Sprintf("no property %s.%s at %s", iface, prop, path)}}
}

// serve exports f on bus under systemd's well-known name.
func (f *Fake) Serve(t testing.TB, b *Bus) *dbus.Conn {
	t.Helper()
	conn := b.Connect()
	if err := conn.Export(fakeManager{f}, objectPath, managerIface); err != nil {
		t.Fatal(err)
	}
	if err := conn.ExportSubtree(fakeProperties{f}, objectPath, "org.freedesktop.DBus.Properties"); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(busName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("request %s: %v %v", busName, reply, err)
	}
	t.Cleanup(func() { f.SetHang(false) })
	return conn
}
