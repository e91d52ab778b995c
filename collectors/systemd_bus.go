package collectors

// The systemd collector's D-Bus connection: which bus to dial, dialling with
// a deadline, and calls under the per-call deadline (see systemdCollector).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// busAddresses returns the addresses to try, in order: the configured one,
// else $DBUS_SYSTEM_BUS_ADDRESS, else the system bus socket and (as root)
// systemd's private socket under the root. Neither socket there means no
// systemd to ask: no data, except on a live host booted with systemd.
func (c *systemdCollector) busAddresses() ([]string, error) {
	if c.opts.Address != "" {
		return []string{c.opts.Address}, nil
	}
	if a := c.getenv("DBUS_SYSTEM_BUS_ADDRESS"); a != "" {
		return []string{a}, nil
	}
	var out []string
	if p, err := c.paths.Root("run/dbus/system_bus_socket").Resolve(); err == nil {
		out = append(out, "unix:path="+p.Abs())
	}
	// systemd's private socket answers without dbus-daemon, but only to root.
	if p, err := c.paths.Root("run/systemd/private").Resolve(); c.euid == 0 && err == nil {
		out = append(out, "unix:path="+p.Abs())
	}
	if len(out) > 0 {
		return out, nil
	}
	// sd_booted(3): /run/systemd/system exists when systemd is PID 1. On
	// the live host a missing bus is then a failure, not an absent source;
	// a tree or image under another root has no sockets to offer.
	if c.paths.Live() && exists(c.paths.Root("run/systemd/system")) {
		return nil, fmt.Errorf("systemd is running (%s exists) but neither the system bus socket nor the private socket exists",
			c.paths.Root("run/systemd/system"))
	}
	// An image has no running systemd: its facts are not applicable
	// there (a bus named explicitly or a socket under the root is read
	// whatever the root, so this is decided here rather than by
	// Spec.Needs).
	if c.paths.Image() {
		return nil, NotApplicable(fmt.Sprintf("needs the running systemd (its D-Bus API); %s is an image (no procfs or sysfs content) with no bus socket, and no bus is configured (collectors.systemd.address)", c.paths.RootFS))
	}
	return nil, ErrNoData
}

// noSystemdExpected reports whether a missing systemd is no data rather
// than a failure: the bus address was not configured and the root was not
// booted with systemd.
func (c *systemdCollector) noSystemdExpected() bool {
	return c.opts.Address == "" && c.getenv("DBUS_SYSTEM_BUS_ADDRESS") == "" && !exists(c.paths.Root("run/systemd/system"))
}

// isPrivate reports whether addr is systemd's private socket, which is a
// direct peer (no bus daemon, no Hello).
func isPrivate(addr string) bool { return strings.HasSuffix(addr, "/systemd/private") }

// connect makes sure c.conn is a live connection, dialling when there is
// none. Set-up is bounded by the call timeout: go-systemd's constructor makes
// a call without a context (AddMatch), so the connections are dialled with a
// context that is cancelled, closing them, if set-up outlives the deadline.
func (c *systemdCollector) connect(ctx context.Context) error {
	if c.conn != nil && c.conn.Connected() {
		return nil
	}
	c.closeLocked()
	addrs, err := c.busAddresses()
	if err != nil {
		return err
	}
	var errs []error
	for _, addr := range addrs {
		if err := c.dial(ctx, addr); err != nil {
			errs = append(errs, fmt.Errorf("connect to D-Bus %s: %w", addr, err))
			continue
		}
		return nil
	}
	return fmt.Errorf("systemd: %w", errors.Join(errs...))
}

func (c *systemdCollector) dial(ctx context.Context, addr string) error {
	connCtx, cancel := context.WithCancel(context.Background())
	callCtx, callCancel := context.WithTimeout(ctx, c.opts.CallTimeout)
	defer callCancel()
	// Closing the connections (cancel) unblocks whatever set-up step hangs.
	stop := context.AfterFunc(callCtx, cancel)
	var first *dbus.Conn
	conn, err := sdbus.NewConnection(func() (*dbus.Conn, error) {
		bc, err := dbus.Dial(addr, dbus.WithContext(connCtx))
		if err != nil {
			return nil, err
		}
		if err := bc.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
			bc.Close()
			return nil, fmt.Errorf("authenticate: %w", err)
		}
		if !isPrivate(addr) {
			if err := bc.Hello(); err != nil {
				bc.Close()
				return nil, fmt.Errorf("hello: %w", err)
			}
		}
		if first == nil {
			first = bc
		}
		return bc, nil
	})
	if !stop() {
		// The deadline passed during set-up: cancel has run and closed
		// whatever was dialled.
		if conn != nil {
			conn.Close()
		}
		if ctx.Err() == nil {
			return fmt.Errorf("no answer within %s during connection set-up", c.opts.CallTimeout)
		}
		return fmt.Errorf("connection set-up: %w", context.Cause(ctx))
	}
	if err != nil {
		cancel()
		return err
	}
	c.dials++
	c.conn, c.sysconn, c.cancel, c.addr = conn, first, cancel, addr
	return nil
}
