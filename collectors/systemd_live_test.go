package collectors

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// systemdPIDEnv names the host PID of a booted systemd container's init
// (scripts/systemd-container.sh start); make test sets it.
const systemdPIDEnv = "AZURELINUX_PROBE_TEST_SYSTEMD_PID"

// inContainer runs argv inside the container (all namespaces of its init).
func inContainer(t *testing.T, pid string, argv ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"-t", pid, "-a"}, argv...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func mustInContainer(t *testing.T, pid string, argv ...string) string {
	t.Helper()
	out, err := inContainer(t, pid, argv...)
	if err != nil {
		t.Fatalf("%v in the container: %v\n%s", argv, err, out)
	}
	return out
}

// TestSystemdLive reads a real systemd (Debian 12's 252, booted in a
// container) through its system bus, and compares what the collector
// reports with what systemctl says inside the container.
func TestSystemdLive(t *testing.T) {
	pid := os.Getenv(systemdPIDEnv)
	if pid == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: make test boots the systemd container and sets it", systemdPIDEnv)
		}
		t.Skipf("%s is not set (make test boots a systemd container for this test)", systemdPIDEnv)
	}
	addr := "unix:path=/proc/" + pid + "/root/run/dbus/system_bus_socket"
	unit := "azlprobe-fail-" + strconv.Itoa(os.Getpid()) + ".service"
	// A unit that fails on purpose makes the system degraded. It is
	// transient: the cached root stays clean.
	inContainer(t, pid, "systemd-run", "--wait", "--quiet", "--unit="+unit, "/bin/false")
	t.Cleanup(func() { inContainer(t, pid, "systemctl", "reset-failed", unit) })

	c := newTestSystemd(t, DefaultPaths("/"), &systemdOptions{Address: addr,
		Units: []string{"kubelet", "systemd-journald", "dbus", "sshd"}})
	got, err := update(t, c, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	show := map[string]string{}
	for _, l := range strings.Split(mustInContainer(t, pid, "systemctl", "show",
		"-p", "Version,SystemState,NFailedUnits,Virtualization,Tainted"), "\n") {
		k, v, _ := strings.Cut(l, "=")
		show[k] = v
	}
	if !strings.HasPrefix(show["Version"], "252") {
		t.Errorf("the container runs systemd %q, want Debian 12's 252", show["Version"])
	}
	if show["SystemState"] != "degraded" {
		t.Errorf("the failed unit should make the container degraded, systemctl says %q", show["SystemState"])
	}
	version, _ := parseSystemdVersion(show["Version"])
	want := []string{
		fmt.Sprintf(`azurelinux_systemd_info{version="%s"} 1`, show["Version"]),
		fmt.Sprintf(`azurelinux_systemd_version %g`, version),
		`azurelinux_systemd_system_state{state="degraded"} 1`,
		`azurelinux_systemd_system_state{state="running"} 0`,
		fmt.Sprintf(`azurelinux_systemd_units_failed %s`, show["NFailedUnits"]),
		fmt.Sprintf(`azurelinux_systemd_unit_failed{name="%s"} 1`, unit),
		`azurelinux_systemd_unit_info{active_state="inactive",load_state="not-found",name="kubelet.service",sub_state="dead"} 1`,
		`azurelinux_systemd_unit_info{active_state="active",load_state="loaded",name="systemd-journald.service",sub_state="running"} 1`,
		`azurelinux_systemd_unit_restarts_total{name="systemd-journald.service"} 0`,
		`azurelinux_systemd_virtualization_info{confidential="none",virtualization="systemd-nspawn"} 1`,
	}
	if show["Virtualization"] != "systemd-nspawn" {
		t.Errorf("systemctl says Virtualization=%q", show["Virtualization"])
	}
	for _, taint := range strings.Split(show["Tainted"], ":") {
		if taint != "" {
			want = append(want, fmt.Sprintf(`azurelinux_systemd_tainted_info{taint="%s"} 1`, taint))
		}
	}
	wantSamples(t, got, want...)
	if v := withPrefix(got, "azurelinux_systemd_version "); len(v) != 1 || !strings.HasPrefix(v[0], "azurelinux_systemd_version 252") {
		t.Errorf("version: %v", v)
	}
	// systemd-analyze in a container reports only the userspace phase.
	phases := withPrefix(got, "azurelinux_systemd_boot_phase_seconds")
	if len(phases) != 1 || !strings.HasPrefix(phases[0], `azurelinux_systemd_boot_phase_seconds{phase="userspace"} `) {
		t.Errorf("boot phases %v; systemd-analyze says %q", phases, mustInContainer(t, pid, "systemd-analyze", "time"))
	}

	for range 10 {
		if _, err := update(t, c, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if c.dials != 1 {
		t.Errorf("11 refreshes dialled %d connections, want 1", c.dials)
	}

	// D-Bus goes away: a clear error naming the bus, then recovery once it
	// is back.
	mustInContainer(t, pid, "systemctl", "stop", "dbus.socket", "dbus.service")
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			inContainer(t, pid, "systemctl", "start", "dbus.socket", "dbus.service")
		}
	})
	_, err = update(t, c, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("D-Bus stopped: got %v, want an error naming %s", err, addr)
	}
	t.Logf("D-Bus stopped: %v", err)
	mustInContainer(t, pid, "systemctl", "start", "dbus.socket", "dbus.service")
	restarted = true
	// systemd re-registers on the new bus by itself; wait for that.
	mustInContainer(t, pid, "timeout", "20", "sh", "-c",
		"until busctl status org.freedesktop.systemd1 >/dev/null 2>&1; do sleep 0.1; done")
	got, err = update(t, c, 10*time.Second)
	if err != nil {
		t.Fatalf("D-Bus back: %v", err)
	}
	wantSamples(t, got, fmt.Sprintf(`azurelinux_systemd_unit_failed{name="%s"} 1`, unit))
	if c.dials != 2 {
		t.Errorf("after the bus restart %d dials, want 2", c.dials)
	}
}
