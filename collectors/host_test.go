package collectors

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHostTrees(t *testing.T) {
	type want struct {
		info                string
		cpus, mem, bootTime float64
		err                 string
	}
	for _, tc := range []struct {
		tree string
		want want
	}{
		{"azl4-azure-gen2", want{info: `cpu_model="AMD EPYC 9V84 96-Core Processor"`,
			cpus: 80, mem: 659714244 * 1024, bootTime: 1789457121}},
		{"azl4-azure-boost", want{info: `cpu_model="Intel(R) Xeon(R) Platinum 8573C"`,
			cpus: 4, mem: 16365112 * 1024, bootTime: 1789460022}},
		{"azl4-baremetal", want{info: `cpu_model="Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"`,
			cpus: 8, mem: 263749304 * 1024, bootTime: 1788001200}},
		{"hyperv-gen1-onprem", want{info: `cpu_model="Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz"`,
			cpus: 4, mem: 8141564 * 1024, bootTime: 1787000400}},
		{"kvm-guest", want{info: `cpu_model="QEMU Virtual CPU version 2.5+"`,
			cpus: 4, mem: 8131300 * 1024, bootTime: 1789990111}},
		{"empty", want{err: ErrNoData.Error()}},
		{"broken", want{err: `cpu model: <rootfs>/proc/cpuinfo: processor number (invalid value, 4 bytes): invalid syntax
memory: <rootfs>/proc/meminfo: MemTotal is not a size (invalid value, 4 bytes)
boot time: <rootfs>/proc/stat: btime is not a Unix timestamp (invalid value, 9 bytes)`}},
	} {
		t.Run(tc.tree, func(t *testing.T) {
			root := filepath.Join("testdata/trees", tc.tree)
			m, err := run(t, "host", root)
			gotErr := ""
			if err != nil {
				gotErr = strings.ReplaceAll(err.Error(), root, "<rootfs>")
			}
			if gotErr != tc.want.err {
				t.Errorf("error:\n%s\nwant:\n%s", gotErr, tc.want.err)
			}
			if tc.want.err != "" {
				if got := samples(t, m, "azurelinux_host_info"); len(got) != 0 {
					t.Errorf("info from a garbled or missing cpuinfo: %v", got)
				}
				return
			}
			if got := samples(t, m, "azurelinux_host_info"); len(got) != 1 || got[tc.want.info] != 1 {
				t.Errorf("info = %v, want {%s}", got, tc.want.info)
			}
			for name, v := range map[string]float64{"cpus": tc.want.cpus, "memory_bytes": tc.want.mem, "boot_time_seconds": tc.want.bootTime} {
				if got := samples(t, m, "azurelinux_host_"+name)[""]; got != v {
					t.Errorf("%s = %v, want %v", name, got, v)
				}
			}
		})
	}
}

func TestParseBtime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		err  string
	}{
		{"cpu  1 2 3\nbtime 1789457121\nprocesses 3\n", 1789457121, ""},
		{"btime 1789457121", 1789457121, ""},
		{"cpu 1\n", 0, "no btime line"},
		{"btime 0\n", 0, `btime is not a Unix timestamp (invalid value, 1 byte)`},
		{"btime -5\n", 0, "is not a Unix timestamp"},
	} {
		got, err := parseBtime(tc.in)
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseBtime(%q) = %d, %v; want %d, %q", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func FuzzParseBtime(f *testing.F) {
	f.Add("cpu  1 2 3\nbtime 1789457121\n")
	f.Add("btime \n")
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := parseBtime(s); err == nil && (v == 0 || !strings.Contains(s, "btime ")) {
			t.Errorf("parseBtime(%q) = %d without an error", s, v)
		}
	})
}

// TestLiveHost compares the host facts with this machine's own answers.
func TestLiveHost(t *testing.T) {
	m := liveRun(t, "host")

	online, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		t.Fatal(err)
	}
	n, err := countCPUList(strings.TrimSpace(string(online)))
	if err != nil {
		t.Fatal(err)
	}
	cpus := samples(t, m, "azurelinux_host_cpus")[""]
	if int(cpus) != n {
		t.Errorf("cpus = %v, /sys/devices/system/cpu/online lists %d", cpus, n)
	}
	// nproc (runtime.NumCPU) counts the CPUs this process may run on,
	// which equals the online count unless an affinity mask narrows it.
	if runtime.NumCPU() == n && int(cpus) != runtime.NumCPU() {
		t.Errorf("cpus = %v, nproc = %d", cpus, runtime.NumCPU())
	}

	meminfo, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	var totalKB float64
	for _, line := range strings.Split(string(meminfo), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "MemTotal:" {
			totalKB, _ = strconv.ParseFloat(f[1], 64)
		}
	}
	if got := samples(t, m, "azurelinux_host_memory_bytes")[""]; totalKB == 0 || got != totalKB*1024 {
		t.Errorf("memory_bytes = %v, MemTotal is %v kB", got, totalKB)
	}

	// Boot time against the kernel's uptime, an independent source.
	uptime, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	up, _ := strconv.ParseFloat(strings.Fields(string(uptime))[0], 64)
	boot := samples(t, m, "azurelinux_host_boot_time_seconds")[""]
	if fromUptime := float64(time.Now().Unix()) - up; boot < fromUptime-2 || boot > fromUptime+2 {
		t.Errorf("boot_time_seconds = %v, now - uptime = %v", boot, fromUptime)
	}

	if info := samples(t, m, "azurelinux_host_info"); len(info) != 1 {
		t.Errorf("info: %v", info)
	}
	t.Logf("this host: %v cpus, %v bytes, booted %v", cpus, totalKB*1024, boot)
}

// countCPUList counts the CPUs of a kernel CPU list such as "0-3,8".
func countCPUList(s string) (int, error) {
	n := 0
	for _, part := range strings.Split(s, ",") {
		lo, hi, ok := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0, err
		}
		b := a
		if ok {
			if b, err = strconv.Atoi(hi); err != nil {
				return 0, err
			}
		}
		n += b - a + 1
	}
	return n, nil
}
