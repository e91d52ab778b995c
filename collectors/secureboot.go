package collectors

// bootSecureBoot is the boot collector's: Secure Boot decides whether the
// next kernel's modules must be signed.
var bootSecureBoot = declare(Fact{
	Collector: "boot", Subsystem: "secureboot", Name: "enabled",
	Help: "1 when UEFI Secure Boot is on (efivarfs SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c); no series on BIOS (Hyper-V Gen1) or without efivarfs.",
})
