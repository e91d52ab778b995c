package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKmsgLatencyAndCPU is the kernel log benchmark of docs/benchmarks.md
// (make bench runs it as root with AZURELINUX_PROBE_KMSG_BENCH set to the
// file to write the section to): a probe serving only the kmsg collector
// on this machine's /dev/kmsg;
//
//   - latency: 1,000 records written one at a time, at random gaps of 0 to
//     200 ms, each timed from the write(2) to the first /metrics that
//     counts it (polled every millisecond);
//   - CPU: the probe's user+system time (/proc/<pid>/stat) while records
//     arrive at 10, 1,000 and 10,000 a second, and idle.
func TestKmsgLatencyAndCPU(t *testing.T) {
	out := os.Getenv("AZURELINUX_PROBE_KMSG_BENCH")
	if out == "" {
		t.Skip("benchmark: set AZURELINUX_PROBE_KMSG_BENCH to the markdown file to write (make bench does)")
	}
	if os.Geteuid() != 0 {
		t.Skip("writing to /dev/kmsg needs root")
	}
	marker := fmt.Sprintf("kmsgbench%d", time.Now().UnixNano())
	cfg := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, cfg, "collectors:\n  kmsg:\n    categories:\n      - name: bench\n        rules:\n          - name: marker\n            regex: '"+marker+"'\n")
	p := startProbe(t, "--web.listen-address=127.0.0.1:0", "--collector.disable-defaults", "--collector.kmsg", "--config.file="+cfg)
	sample := regexp.MustCompile(`(?m)^azurelinux_kernel_log_events_total\{category="bench"\} (\S+)$`)
	count := func() float64 {
		_, body := p.get("/metrics")
		m := sample.FindStringSubmatch(body)
		if m == nil {
			return -1
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	deadline := time.Now().Add(10 * time.Second)
	for count() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the bench category is not served")
		}
		time.Sleep(10 * time.Millisecond)
	}

	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	written := 0
	write := func() {
		// devkmsg_write() allows 10 records per open file every 5 s.
		if written%10 == 0 {
			f.Close()
			if f, err = os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err != nil {
				t.Fatal(err)
			}
		}
		written++
		if _, err := fmt.Fprintf(f, "<6>kmsg benchmark line %d %s\n", written, marker); err != nil {
			t.Fatal(err)
		}
	}
	defer func() { f.Close() }()

	const n = 1000
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		time.Sleep(time.Duration(rand.Int64N(int64(200 * time.Millisecond))))
		start := time.Now()
		write()
		for count() < float64(written) {
			if time.Since(start) > 5*time.Second {
				t.Fatalf("line %d not served within 5s", written)
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	within := 0
	for _, l := range lat {
		if l <= time.Second {
			within++
		}
	}

	pid := p.cmd.Process.Pid
	type cpuRow struct {
		rate           int
		secs, cpu      float64
		written, count float64
	}
	var rows []cpuRow
	for _, tc := range []struct {
		rate int
		dur  time.Duration
	}{{0, 10 * time.Second}, {10, 10 * time.Second}, {1000, 5 * time.Second}, {10000, 5 * time.Second}} {
		before, c0 := cpuSeconds(t, pid), count()
		w0 := written
		start := time.Now()
		tick := time.NewTicker(10 * time.Millisecond)
		for time.Since(start) < tc.dur {
			<-tick.C
			// Pace to the rate over the whole run, 10 ms at a time.
			due := int(float64(tc.rate) * time.Since(start).Seconds())
			for written-w0 < due {
				write()
			}
		}
		tick.Stop()
		secs := time.Since(start).Seconds()
		// Let the reader finish before reading its CPU time.
		settle := time.Now().Add(5 * time.Second)
		for count() < c0+float64(written-w0) && time.Now().Before(settle) {
			time.Sleep(20 * time.Millisecond)
		}
		cpu := cpuSeconds(t, pid) - before
		rows = append(rows, cpuRow{tc.rate, secs, cpu, float64(written - w0), count() - c0})
	}

	var b strings.Builder
	fmt.Fprintf(&b, "## Kernel log: latency and reader CPU\n\n")
	fmt.Fprintf(&b, "Measured by `TestKmsgLatencyAndCPU` (cmd/azurelinux-probe/kmsg_test.go, run by `make bench`\n")
	fmt.Fprintf(&b, "as root) on %s: %d cores, Linux %s, %s. A probe serving only the `kmsg` collector\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), kernelRelease(), runtime.Version())
	fmt.Fprintf(&b, "reads this machine's /dev/kmsg; the test writes records with write(2) and polls /metrics every\n")
	fmt.Fprintf(&b, "millisecond. The scheduler refreshes a streaming collector at most every 50 ms, so a record that\n")
	fmt.Fprintf(&b, "arrives just after a refresh waits for the next one. The machine is shared and noisy.\n\n")
	fmt.Fprintf(&b, "| latency, write(2) to /metrics (%d records, random gaps 0-200 ms) | |\n|---|---:|\n", n)
	fmt.Fprintf(&b, "| p50 | %.1f ms |\n| p90 | %.1f ms |\n| p99 | %.1f ms |\n| max | %.1f ms |\n| within 1 s | %d of %d |\n\n",
		ms(pct(0.5)), ms(pct(0.9)), ms(pct(0.99)), ms(lat[len(lat)-1]), within, n)
	fmt.Fprintf(&b, "| records/s | seconds | records written | counted | probe CPU (user+system) | of one core |\n|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %d | %.1f | %.0f | %.0f | %.2f s | %.2f %% |\n", r.rate, r.secs, r.written, r.count, r.cpu, 100*r.cpu/r.secs)
	}
	t.Log("\n" + b.String())
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// cpuSeconds returns the user+system time of pid (fields 14 and 15 of
// /proc/<pid>/stat, proc(5)) in seconds; clock ticks are 100 a second on
// Linux (sysconf(_SC_CLK_TCK)).
func cpuSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100
}

func kernelRelease() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

// TestKmsgWithoutCapSyslog: where kernel.dmesg_restrict=1 (Azure Linux's
// default, and this machine's), a probe without CAP_SYSLOG fails the kmsg
// collector with the reason, and facts exits 1.
func TestKmsgWithoutCapSyslog(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("dropping CAP_SYSLOG from a root process needs root")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/dmesg_restrict"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Skip("kernel.dmesg_restrict is not 1: /dev/kmsg needs no CAP_SYSLOG here")
	}
	setpriv := needTool(t, "setpriv")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(setpriv, "--bounding-set", "-syslog", "--inh-caps", "-syslog",
		exe, "facts", "--format=prometheus", "--collector.disable-defaults", "--collector.kmsg")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("facts without CAP_SYSLOG: %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{
		"open /dev/kmsg: operation not permitted (reading the kernel log needs CAP_SYSLOG when kernel.dmesg_restrict=1)",
		`azurelinux_probe_collector_success{collector="kmsg"} 0`,
		`azurelinux_kmsg_source_up{source="kmsg"} 0`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
