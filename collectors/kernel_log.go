package collectors

// The kernel log's facts and the kernel's own counters of the same events,
// served by the kmsg collector (collectors/kmsg.go).
var (
	kmsgEvents = declare(Fact{Collector: "kmsg", Subsystem: "kernel", Name: "log_events_total", Counter: true,
		Help:   "Kernel log records (/dev/kmsg, every facility) of each category of the classification table since boot, as far as the ring buffer held them when the probe started; 0 for a category with none.",
		Labels: []string{"category"}, Identity: []string{"category"}, Volatile: true,
		Bound: "the categories of the classification table: 19 built in, at most 64 with the config's"})
	kmsgLastEvent = declare(Fact{Collector: "kmsg", Subsystem: "kernel", Name: "log_last_event_timestamp_seconds",
		Help:   "When the latest record of the category was logged, as a Unix timestamp (boot time plus the record's kernel timestamp); absent for a category with none.",
		Labels: []string{"category"}, Identity: []string{"category"}, Volatile: true,
		Bound: "as azurelinux_kernel_log_events_total"})
	kmsgHardware = declare(Fact{Collector: "kmsg", Subsystem: "kernel", Name: "log_hardware_errors_total", Counter: true,
		Help:   "Records of the hardware_error category by severity: the CPER event severity (corrected, recoverable, fatal, info), EDAC corrected/uncorrected, unknown for machine-check lines.",
		Labels: []string{"severity"}, Identity: []string{"severity"}, Volatile: true,
		Bound: "6 severities"})
	kmsgHungTasks = declare(Fact{Collector: "kmsg", Subsystem: "kernel", Name: "hung_tasks_detected_total", Counter: true, Volatile: true,
		Help: "Tasks the kernel's hung task detector reported since boot (/proc/sys/kernel/hung_task_detect_count, 6.x), to compare with the hung_task log category."})
	kmsgOOMKills = declare(Fact{Collector: "kmsg", Subsystem: "kernel", Name: "oom_kills_total", Counter: true, Volatile: true,
		Help: "Processes the kernel's OOM killer killed since boot (/proc/vmstat oom_kill), to compare with the oom_kill log category."})
)
