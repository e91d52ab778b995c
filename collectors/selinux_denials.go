package collectors

// SELinux denials, from the kernel log and the audit multicast group (the
// kmsg collector, collectors/kmsg.go).
var (
	kmsgAVC = declare(Fact{Collector: "kmsg", Subsystem: "selinux", Name: "denials_total", Counter: true,
		Help:   "SELinux AVC denials from the kernel log and the audit multicast group (deduplicated by audit serial), one per denied permission, by source and target type (never full contexts or paths), class and permission.",
		Labels: []string{"scontext_type", "tcontext_type", "tclass", "permission"}, Volatile: true,
		Bound: "at most 500 label sets; further ones are counted with every label \"other\""})
)
