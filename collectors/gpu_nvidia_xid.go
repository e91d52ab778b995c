package collectors

// NVIDIA Xid errors, from the kernel log (the kmsg collector,
// collectors/kmsg.go) and the shipped Xid table (collectors/nvidia_xid.yml).
var (
	kmsgXid = declare(Fact{Collector: "kmsg", Subsystem: "gpu", Name: "nvidia_xid_errors_total", Counter: true,
		Help:   "NVIDIA Xid errors from the kernel log (\"NVRM: Xid (PCI:dddd:bb:dd): N, ...\") by GPU and code.",
		Labels: []string{"pci_address", "xid"}, Identity: []string{"pci_address", "xid"}, Volatile: true,
		Bound: "at most 256 (pci_address, xid) pairs; further pairs are counted in pci_address=\"other\", xid=\"other\""})
	kmsgXidInfo = declare(Fact{Collector: "kmsg", Subsystem: "gpu", Name: "nvidia_xid_info",
		Help:   "The shipped table of NVIDIA Xid codes (collectors/nvidia_xid.yml): severity fatal (the GPU or node needs a reset or service), application (a workload bug) or warning; constant 1.",
		Labels: []string{"xid", "severity", "name"}, Identity: []string{"xid"},
		Bound: "the entries of the shipped table (57)"})
)
