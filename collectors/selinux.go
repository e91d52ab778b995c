package collectors

// selinuxModeFact is the SELinux mode (userlandCollector.updateSELinux in
// userland.go), served by the userland collector.
var selinuxModeFact = declare(Fact{
	Collector: "userland", Subsystem: "selinux", Name: "mode",
	Help: "SELinux mode: 0 disabled, 1 permissive, 2 enforcing (from selinuxfs, else the kernel command line and LSM list, else /etc/selinux/config).",
})
