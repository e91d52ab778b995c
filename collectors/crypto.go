package collectors

// cryptoPolicyInfoFact is the system-wide crypto policy, update-crypto-
// policies(8) (userlandCollector.updateCryptoPolicy in userland.go), served
// by the userland collector.
var cryptoPolicyInfoFact = declare(Fact{
	Collector: "userland", Subsystem: "crypto", Name: "policy_info",
	Help:   "The system-wide crypto policy applied (/etc/crypto-policies/state/current, else the configured one); constant 1.",
	Labels: []string{"policy"},
})
