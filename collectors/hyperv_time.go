package collectors

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Time on a Hyper-V guest, as LISA's timesync suite checks it
// (microsoft/testsuites/core/timesync.py): the clocksource and the
// clockevent device the kernel chose, and the Hyper-V PTP clock that
// chrony should discipline the system clock from.

var (
	hypervClocksourceAvailable = declare(Fact{Collector: "hyperv", Name: "clocksource_available",
		Help:   "1 for each clocksource the kernel offers (/sys/devices/system/clocksource/clocksource0/available_clocksource).",
		Labels: []string{"clocksource"}, Identity: []string{"clocksource"},
		Bound: "the clocksources the kernel registered: a handful"})
	hypervClocksourceExpected = declare(Fact{Collector: "hyperv", Name: "clocksource_expected",
		Help: "1 when the current clocksource is one LISA accepts on Hyper-V (x86_64: hyperv_clocksource_tsc_page, hyperv_clocksource, tsc; arm64: arch_sys_counter), 0 when not " +
			"(LISA core/timesync.py verify_timesync_unbind_clocksource)."})
	hypervClockevent = declare(Fact{Collector: "hyperv", Name: "clockevent_info",
		Help:   "The clockevent device of CPU 0 (/sys/devices/system/clockevents/clockevent0/current_device); constant 1.",
		Labels: []string{"device"}})
	hypervClockeventExpected = declare(Fact{Collector: "hyperv", Name: "clockevent_expected",
		Help: "1 when the clockevent device is the one LISA expects on Hyper-V (x86_64: \"Hyper-V clockevent\"; arm64: arch_sys_timer), 0 when not " +
			"(LISA core/timesync.py verify_timesync_unbind_clockevent)."})
	hypervPTPClock = declare(Fact{Collector: "hyperv", Name: "ptp_clock_present",
		Help: "1 when a PTP clock named hyperv is registered (/sys/class/ptp/*/clock_name, drivers/hv/hv_util.c), 0 when not (LISA core/timesync.py verify_timesync_ptp)."})
	hypervPTPLink = declare(Fact{Collector: "hyperv", Name: "ptp_device_link_present",
		Help: "1 when /dev/ptp_hyperv, the stable name udev gives the Hyper-V PTP clock, exists; 0 when not."})
	hypervChronyPTP = declare(Fact{Collector: "hyperv", Name: "chrony_ptp_refclock",
		Help: "1 when chrony's configuration (/etc/chrony.conf and /etc/chrony.d/*.conf) has a refclock PHC /dev/ptp_hyperv line, as Azure Linux 4.0 ships; 0 when not; absent without chrony."})
)

var chronyPTPRE = regexp.MustCompile(`(?m)^\s*refclock\s+PHC\s+/dev/ptp_hyperv(\s|$)`)

// updateTime reports the clocks.
func (c *hypervCollector) updateTime(m *Metrics) error {
	var errs []error
	arm := arm64(c.paths)
	dir := c.paths.Sys("devices/system/clocksource/clocksource0")
	switch v, err := readValue(dir.Join("available_clocksource")); {
	case err == nil:
		for i, cs := range strings.Fields(v) {
			if i < 16 {
				m.Set(hypervClocksourceAvailable, 1, cs)
			}
		}
	case !isNotExist(err):
		errs = append(errs, fmt.Errorf("clocksource: %w", err))
	}
	switch cur, err := readValue(dir.Join("current_clocksource")); {
	case err == nil:
		ok := cur == "hyperv_clocksource_tsc_page" || cur == "lis_hyperv_clocksource_tsc_page" || cur == "hyperv_clocksource" || cur == "tsc"
		if arm {
			ok = cur == "arch_sys_counter"
		}
		m.SetBool(hypervClocksourceExpected, ok)
	case !isNotExist(err):
		errs = append(errs, fmt.Errorf("clocksource: %w", err))
	}
	switch dev, err := readValue(c.paths.Sys("devices/system/clockevents/clockevent0/current_device")); {
	case err == nil:
		m.Set(hypervClockevent, 1, dev)
		want := "Hyper-V clockevent"
		if arm {
			want = "arch_sys_timer"
		}
		m.SetBool(hypervClockeventExpected, dev == want)
	case !isNotExist(err):
		errs = append(errs, fmt.Errorf("clockevent: %w", err))
	}

	ptp := false
	clocks, err := c.paths.Sys("class/ptp").Glob("ptp*")
	if err != nil {
		errs = append(errs, fmt.Errorf("ptp: %w", err))
	}
	for _, p := range clocks {
		if name, err := readValue(p.Join("clock_name")); err == nil && name == "hyperv" {
			ptp = true
		}
	}
	m.SetBool(hypervPTPClock, ptp)
	if exists(c.paths.Root("dev")) {
		_, lerr := lstat(c.paths.Root("dev/ptp_hyperv"))
		m.SetBool(hypervPTPLink, lerr == nil)
	}

	confs := []string{"etc/chrony.conf"}
	if more, err := c.paths.Root("etc/chrony.d").Glob("*.conf"); err == nil {
		for _, p := range more {
			confs = append(confs, strings.TrimPrefix(p.InRoot(), "/"))
		}
	}
	found, any := false, false
	for _, f := range confs {
		text, err := readText(c.paths.Root(f), 1<<20)
		if isNotExist(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("chrony: %w", err))
			continue
		}
		any = true
		found = found || chronyPTPRE.MatchString(text)
	}
	if any {
		m.SetBool(hypervChronyPTP, found)
	}
	return errors.Join(errs...)
}
