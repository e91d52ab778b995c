package collectors

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

// The live tests run every default collector against this host and compare
// what they report with what the kernel says through other means.

func liveRun(t *testing.T, name string) *Metrics {
	t.Helper()
	m, err := run(t, name, "/")
	if err != nil {
		t.Fatalf("%s collector on this host: %v", name, err)
	}
	return m
}

func TestLiveKernel(t *testing.T) {
	m := liveRun(t, "kernel")
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(uts.Release[:])
	info := samples(t, m, "azurelinux_kernel_info")
	if len(info) != 1 {
		t.Fatalf("kernel_info series: %v", info)
	}
	for labels := range info {
		if !strings.HasPrefix(labels, `release="`+release+`",`) {
			t.Errorf("kernel_info %s, uname -r says %s", labels, release)
		}
		parts := strings.SplitN(release, ".", 3)
		if !strings.Contains(labels, `series="`+parts[0]+"."+parts[1]+`"`) {
			t.Errorf("kernel_info %s: series is not major.minor of %s", labels, release)
		}
		version := unix.ByteSliceToString(uts.Version[:])
		if !strings.Contains(labels, `version="`+version+`"`) {
			t.Errorf("kernel_info %s, uname -v says %s", labels, version)
		}
	}

	raw, err := os.ReadFile("/proc/sys/kernel/tainted")
	if err != nil {
		t.Fatal(err)
	}
	mask, _ := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
	if got := samples(t, m, "azurelinux_kernel_tainted")[""]; got != mask {
		t.Errorf("tainted = %v, /proc says %v", got, mask)
	}

	lsms := samples(t, m, "azurelinux_kernel_lsm_enabled")
	b, err := os.ReadFile("/sys/kernel/security/lsm")
	switch {
	case os.IsNotExist(err):
		t.Log("securityfs is not mounted: no LSM facts to compare (make test mounts it)")
		if len(lsms) != 0 {
			t.Errorf("LSM series without securityfs: %v", lsms)
		}
	case err != nil:
		t.Fatal(err)
	default:
		active := strings.Split(string(b), ",")
		for _, l := range active {
			if lsms[`lsm="`+l+`"`] != 1 {
				t.Errorf("LSM %s is active per /sys/kernel/security/lsm but reported %v", l, lsms[`lsm="`+l+`"`])
			}
		}
		ones := 0
		for _, v := range lsms {
			ones += int(v)
		}
		if ones != len(active) {
			t.Errorf("%d LSMs reported active, the file lists %d: %v", ones, len(active), lsms)
		}
		lock, err := os.ReadFile("/sys/kernel/security/lockdown")
		if err == nil {
			mode, _ := bracketed(string(lock))
			if samples(t, m, "azurelinux_kernel_lockdown_info")[`mode="`+mode+`"`] != 1 {
				t.Errorf("lockdown mode %s not reported", mode)
			}
		}
	}

	cs, err := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	if err == nil {
		if samples(t, m, "azurelinux_kernel_clocksource_info")[`current="`+strings.TrimSpace(string(cs))+`"`] != 1 {
			t.Errorf("clocksource %s not reported", cs)
		}
	}
	if _, err := os.Stat("/proc/config.gz"); err == nil {
		cfg := samples(t, m, "azurelinux_kernel_config_info")
		if len(cfg) != len(defaultKernelOptions().ConfigOptions) {
			t.Errorf("%d config options reported from /proc/config.gz, want %d", len(cfg), len(defaultKernelOptions().ConfigOptions))
		}
	}
}

func TestLiveOS(t *testing.T) {
	m := liveRun(t, "os")
	raw, err := os.ReadFile("/etc/os-release")
	if err != nil {
		t.Skipf("no /etc/os-release on this host: %v", err)
	}
	vars, err := host.ParseOSRelease(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	info := samples(t, m, "azurelinux_os_info")
	if len(info) != 1 {
		t.Fatalf("os_info: %v", info)
	}
	for labels := range info {
		if !strings.Contains(labels, `id="`+vars["ID"]+`"`) || !strings.Contains(labels, `pretty_name="`+vars["PRETTY_NAME"]+`"`) {
			t.Errorf("os_info %s does not match /etc/os-release (ID=%s PRETTY_NAME=%s)", labels, vars["ID"], vars["PRETTY_NAME"])
		}
	}
}
