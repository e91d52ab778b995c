package collectors

import (
	"errors"
	"fmt"
	"slices"

	"github.com/azurelinux-probe/azurelinux-probe/internal/host"
	"github.com/azurelinux-probe/azurelinux-probe/internal/lenre"
)

// The watched packages of the rpm database under the root, which give
// versions in every exec mode: nothing is run.

// watchedPackages are the packages whose versions the rpm database gives in
// every mode, without running anything: what the userland tools' versions
// come from on Azure Linux 4.0. Each inner list is one fact: the first
// name installed counts (kernel-core is Fedora-style split kernels', kernel
// the unsplit package's).
var watchedPackages = [][]string{
	{"dnf5"}, {"rpm"}, {"openssl-libs"}, {"systemd"}, {"glibc"}, {"python3"}, {"kernel-core", "kernel"},
}

// Bounds on the package facts.
const (
	maxExtraPackages   = 32
	maxPackageVersions = 8 // installed kernels are kept 3 by default (dnf's installonly_limit)
)

var rpmNameRE = lenre.MustCompile(`^[a-zA-Z0-9._+-]+$`, 1, 255)

var userlandPackageInfoFact = declare(Fact{
	Collector: "userland", Subsystem: "userland", Name: "package_info",
	Help:     "An installed package of the watched list (dnf5, rpm, openssl-libs, systemd, glibc, python3, kernel-core or kernel, and collectors.userland.packages), from the rpm database under the root, in every exec mode: nothing is run; constant 1.",
	Labels:   []string{"name", "version", "release", "arch"},
	Identity: []string{"name", "version", "release", "arch"},
	Bound:    "the watched packages (7 and at most 32 configured), at most 8 installed versions each",
})

// updateRPMDB reports the first rpm database found, and the watched
// packages in it. /var/lib/rpm is often a link to /usr/lib/sysimage/rpm:
// the database is reported once, at its real place.
func (c *userlandCollector) updateRPMDB(m *Metrics) error {
	db, err := host.FindRPMDB(c.paths.Root())
	switch {
	case errors.Is(err, host.ErrNoRPMDB):
		return nil
	case err != nil:
		return fmt.Errorf("rpmdb: %w", err)
	}
	m.Set(rpmdbInfoFact, 1, db.Real.InRoot(), db.Backend)
	pkgs, err := host.ReadRPMPackages(db)
	if err != nil {
		return fmt.Errorf("rpmdb: %w", err)
	}
	for _, p := range watchedInstalled(pkgs, c.opts.Packages) {
		m.Set(userlandPackageInfoFact, 1, p.Name, p.Version, p.Release, p.Arch)
	}
	return nil
}

// watchedInstalled returns the installed packages of the watched list and
// the extras, at most maxPackageVersions per name, in list order.
func watchedInstalled(pkgs []host.RPMPackage, extras []string) []host.RPMPackage {
	byName := map[string][]host.RPMPackage{}
	for _, p := range pkgs {
		if len(byName[p.Name]) < maxPackageVersions {
			byName[p.Name] = append(byName[p.Name], p)
		}
	}
	watch := slices.Clone(watchedPackages)
	for _, e := range extras {
		watch = append(watch, []string{e})
	}
	var out []host.RPMPackage
	seen := map[string]bool{}
	for _, alts := range watch {
		for _, name := range alts {
			if got := byName[name]; len(got) > 0 {
				if !seen[name] {
					out = append(out, got...)
					seen[name] = true
				}
				break
			}
		}
	}
	return out
}
