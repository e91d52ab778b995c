package collectors

// bootSigEnforced is the boot collector's: with it, an unsigned module of
// the next kernel is rejected.
var bootSigEnforced = declare(Fact{
	Collector: "boot", Subsystem: "kernel", Name: "module_sig_enforced",
	Help: "1 when the running kernel rejects unsigned modules (/sys/module/module/parameters/sig_enforce); Azure Linux 4.0 turns it on under Secure Boot (CONFIG_IMA_ARCH_POLICY).",
})
