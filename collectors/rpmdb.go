package collectors

// rpmdbInfoFact is the rpm database the userland collector found
// (userlandCollector.updateRPMDB in userland_packages.go); the userland
// collector serves it because it reads the same root's tools in the same
// refresh.
var rpmdbInfoFact = declare(Fact{
	Collector: "userland", Subsystem: "rpmdb", Name: "info",
	Help:   "The rpm database and its backend (sqlite, ndb, bdb); constant 1.",
	Labels: []string{"path", "backend"},
})
