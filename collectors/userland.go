package collectors

import (
	"context"
	"errors"
	"fmt"
	"time"
)

func init() {
	register(Spec{
		Name:           "userland",
		DefaultEnabled: true,
		// These facts change with a package update, not by the second;
		// SIGHUP refreshes at once after one.
		Interval: 5 * time.Minute,
		Timeout:  20 * time.Second,
		Options:  func() any { return defaultUserlandOptions() },
		New:      newUserlandCollector,
	})
}

// Values of userlandOptions.Exec.
const (
	execLive    = "live"
	execSandbox = "sandbox"
	execAlways  = "always"
	execNever   = "never"
)

type userlandOptions struct {
	// Exec says when the tools' version commands run. "live" (the
	// default) runs them only when the root is "/": nothing from an image
	// or tree runs on the host. "sandbox" runs an image's tools inside the
	// image (host.RunSandboxed: chrooted, in their own namespaces without
	// network, as nobody with no capabilities), so that they load the
	// image's libraries and report the image's versions. "always" runs the
	// tools found under --path.rootfs on the host as they are, which only
	// a tree you built yourself deserves (the fixture trees' scripts).
	// "never" runs nothing. Without running them, versions come from files
	// where a file tells (glibc, OpenSSL and systemd libraries).
	Exec string `yaml:"exec"`
	// CommandTimeout bounds each version command.
	CommandTimeout time.Duration `yaml:"command_timeout"`
	// Packages are package names watched in the rpm database besides
	// watchedPackages (azurelinux_userland_package_info).
	Packages []string `yaml:"packages"`
}

func defaultUserlandOptions() *userlandOptions {
	return &userlandOptions{Exec: execLive, CommandTimeout: 3 * time.Second, Packages: []string{}}
}

type userlandCollector struct {
	opts  userlandOptions
	paths Paths
}

func newUserlandCollector(env Env, opts any) (Collector, error) {
	o := opts.(*userlandOptions)
	switch o.Exec {
	case execLive, execSandbox, execAlways, execNever:
	default:
		return nil, fmt.Errorf("exec %q: want %s, %s, %s or %s", o.Exec, execLive, execSandbox, execAlways, execNever)
	}
	if o.CommandTimeout <= 0 {
		return nil, fmt.Errorf("command_timeout %s must be above 0", o.CommandTimeout)
	}
	if len(o.Packages) > maxExtraPackages {
		return nil, fmt.Errorf("packages: %d names, at most %d", len(o.Packages), maxExtraPackages)
	}
	for _, n := range o.Packages {
		if !rpmNameRE.MatchString(n) {
			return nil, fmt.Errorf("packages: %q is not a package name", n)
		}
	}
	return &userlandCollector{
		opts:  *o,
		paths: env.Paths,
	}, nil
}

// execAllowed reports whether version commands may run under this root.
func (c *userlandCollector) execAllowed() bool {
	switch c.opts.Exec {
	case execAlways, execSandbox:
		return true
	case execLive:
		return c.paths.RootFS == "/" || c.paths.RootFS == ""
	}
	return false
}

// Update reports the tools (userland_tools.go), the watched packages of the
// rpm database (userland_packages.go), the crypto policy (crypto.go) and the
// SELinux mode (selinux.go).
func (c *userlandCollector) Update(ctx context.Context, m *Metrics) error {
	return errors.Join(c.updateTools(ctx, m), c.updateRPMDB(m), c.updateCryptoPolicy(m), c.updateSELinux(m))
}
