package collectors

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
)

func init() {
	register(Spec{
		Name:           "host",
		Needs:          "a running kernel (CPUs, memory and boot time from procfs)",
		DefaultEnabled: true,
		Interval:       time.Minute,
		Timeout:        5 * time.Second,
		New:            newHostCollector,
	})
}

// hostCollector reports what the machine is: CPU model and count, memory
// and boot time, parsed from procfs through the host layer (the formats are
// fs/proc/meminfo.c's meminfo_proc_show, arch/x86/kernel/cpu/proc.c's
// show_cpuinfo and fs/proc/stat.c's show_stat).
type hostCollector struct {
	paths Paths
}

var (
	hostInfo = declare(Fact{Collector: "host", Name: "info",
		Help:   "CPU model of the first processor in /proc/cpuinfo (\"model name\", or \"CPU part\" on arm64); constant 1. The hyperv and systemd collectors say what virtualization this is.",
		Labels: []string{"cpu_model"}})
	hostCPUs = declare(Fact{Collector: "host", Name: "cpus",
		Help: "Logical CPUs the kernel lists in /proc/cpuinfo (its \"processor\" lines)."})
	hostMemory = declare(Fact{Collector: "host", Name: "memory_bytes",
		Help: "Total usable memory, MemTotal of /proc/meminfo, in bytes."})
	hostBootTime = declare(Fact{Collector: "host", Name: "boot_time_seconds",
		Help:     "When the kernel booted (btime of /proc/stat), as a Unix timestamp; in a container this is still the host kernel's boot.",
		Volatile: true})
)

func newHostCollector(env Env, _ any) (Collector, error) {
	return &hostCollector{paths: env.Paths}, nil
}

func (c *hostCollector) Update(ctx context.Context, m *Metrics) error {
	var errs []error
	found := false

	cpuinfo := c.paths.Proc("cpuinfo")
	switch text, err := readText(cpuinfo, maxFileSize); {
	case err == nil:
		found = true
		model, n, err := parseCPUInfo(text)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("cpu model: %s: %w", cpuinfo, err))
		case n == 0:
			errs = append(errs, fmt.Errorf("cpu count: %s lists no processor", cpuinfo))
		default:
			m.Set(hostCPUs, float64(n))
			m.Set(hostInfo, 1, model)
		}
	case !isNotExist(err):
		errs = append(errs, fmt.Errorf("cpu: %w", err))
	}

	meminfo := c.paths.Proc("meminfo")
	switch text, err := readText(meminfo, maxFileSize); {
	case err == nil:
		found = true
		total, err := parseMemTotal(text)
		if err != nil {
			errs = append(errs, fmt.Errorf("memory: %s: %w", meminfo, err))
		} else {
			m.Set(hostMemory, float64(total))
		}
	case !isNotExist(err):
		errs = append(errs, fmt.Errorf("memory: %w", err))
	}

	switch btime, err := c.readBootTime(); {
	case err == nil:
		found = true
		m.Set(hostBootTime, float64(btime))
	case !isNotExist(err):
		errs = append(errs, fmt.Errorf("boot time: %w", err))
	}
	if !found && len(errs) == 0 {
		return ErrNoData
	}
	return errors.Join(errs...)
}

// parseCPUInfo returns the model of the first processor and the number of
// processors in /proc/cpuinfo. x86 names the model in "model name"; arm64
// has none, and gives the implementer and part, reported as "CPU part 0xd4f".
func parseCPUInfo(text string) (model string, n int, err error) {
	armPart := ""
	for _, line := range strings.Split(text, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "processor":
			if _, err := strconv.ParseInt(val, 10, 32); err != nil {
				return "", 0, fmt.Errorf("processor number (%s): %w", host.Invalid(val), strconv.ErrSyntax)
			}
			n++
		case "model name":
			if model == "" {
				model = val
			}
		case "CPU part":
			if armPart == "" {
				armPart = val
			}
		}
	}
	if model == "" && armPart != "" {
		model = "CPU part " + armPart
	}
	return model, n, nil
}

// parseMemTotal returns MemTotal of /proc/meminfo in bytes.
func parseMemTotal(text string) (uint64, error) {
	for _, line := range strings.Split(text, "\n") {
		v, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("MemTotal is not \"N kB\" (%s)", host.Invalid(strings.TrimSpace(v)))
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil || kb == 0 {
			return 0, fmt.Errorf("MemTotal is not a size (%s)", host.Invalid(f[0]))
		}
		return kb * 1024, nil
	}
	return 0, errors.New("no MemTotal")
}

// readBootTime returns btime from <procfs>/stat: the host kernel's boot,
// also in a container.
func (c *hostCollector) readBootTime() (uint64, error) {
	path := c.paths.Proc("stat")
	text, err := readText(path, maxFileSize)
	if err != nil {
		return 0, err
	}
	t, err := parseBtime(text)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// parseBtime returns the btime field of /proc/stat.
func parseBtime(text string) (uint64, error) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			t, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil || t == 0 {
				return 0, fmt.Errorf("btime is not a Unix timestamp (%s)", host.Invalid(strings.TrimSpace(v)))
			}
			return t, nil
		}
	}
	return 0, errors.New("no btime line")
}
