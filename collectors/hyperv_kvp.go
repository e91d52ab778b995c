package collectors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/azurelinux-probe/azurelinux-probe/internal/lenre"
)

// The KVP (Data Exchange) daemon and what the host tells through it. LISA
// (microsoft/testsuites/core/kvp.py verify_kvp) wants exactly one
// hv_kvp_daemon (hypervkvpd before Azure Linux 4.0) holding /dev/vmbus/hv_kvp
// open, five pools, and pool 3 (KVP_POOL_AUTO_EXTERNAL, the host's
// intrinsics) holding at least 11 records.

var (
	hypervKVPDaemon = declare(Fact{Collector: "hyperv", Name: "kvp_daemon_running",
		Help: "Number of KVP daemon processes (comm hv_kvp_daemon, or hypervkvpd before Azure Linux 4.0) in procfs; LISA core/kvp.py verify_kvp wants exactly 1."})
	hypervKVPDevice = declare(Fact{Collector: "hyperv", Name: "kvp_daemon_device_open",
		Help: "1 when a KVP daemon process holds /dev/vmbus/hv_kvp open (one of its /proc/<pid>/fd links names it), 0 when none does; absent without a daemon."})
	hypervHostInfo = declare(Fact{Collector: "hyperv", Name: "host_info",
		Help: "The physical Hyper-V host the VM runs on (PhysicalHostName of KVP pool 3), so that a fleet can tell a bad physical host from a bad image; constant 1. " +
			"A value that is not a host name is not reported.",
		Labels: []string{"host_name"}})
)

// kvpDaemonNames are the process names of the KVP daemon: hv_kvp_daemon
// from the kernel's tools/hv (Azure Linux 4.0, Fedora), hypervkvpd as
// older distributions named the package's binary.
var kvpDaemonNames = map[string]bool{"hv_kvp_daemon": true, "hypervkvpd": true}

// maxProcs bounds the /proc entries scanned for the daemon.
const maxProcs = 1 << 16

// hostNameRE is what a host name label may hold (RFC 1123 labels, dots).
var hostNameRE = lenre.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*$`, 1, 253)

// updateKVPDaemon reports the KVP daemon processes, whether one holds the
// hv_kvp device, and the physical host name from pool 3.
func (c *hypervCollector) updateKVPDaemon(ctx context.Context, m *Metrics) error {
	var errs []error
	entries, err := c.paths.Proc().ReadDirLimit(maxProcs)
	switch {
	case isNotExist(err):
	case err != nil:
		errs = append(errs, fmt.Errorf("kvp daemon: %w", err))
	default:
		n, open := 0, false
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err // a tree with 65,536 /proc entries ends at the deadline
			}
			if _, err := strconv.ParseUint(e.Name(), 10, 32); err != nil {
				continue
			}
			comm, err := readValue(c.paths.Proc(e.Name(), "comm"))
			if err != nil || !kvpDaemonNames[comm] {
				continue
			}
			n++
			fds, _ := c.paths.Proc(e.Name(), "fd").ReadDir()
			for _, fd := range fds {
				if t, err := c.paths.Proc(e.Name(), "fd", fd.Name()).Readlink(); err == nil && t == "/dev/vmbus/hv_kvp" {
					open = true
				}
			}
		}
		m.Set(hypervKVPDaemon, float64(n))
		if n > 0 {
			m.SetBool(hypervKVPDevice, open)
		}
	}
	path := c.paths.Root("var/lib/hyperv/.kvp_pool_3")
	raw, err := readFile(path, kvpRecordSize*1024)
	switch {
	case isNotExist(err):
	case err != nil:
		errs = append(errs, fmt.Errorf("kvp pool 3: %w", err))
	default:
		records := parseKVPPool(raw)
		if h, ok := records["PhysicalHostName"]; ok {
			if hostNameRE.MatchString(h) {
				m.Set(hypervHostInfo, 1, h)
			} else {
				errs = append(errs, fmt.Errorf("kvp pool 3: %s: PhysicalHostName is not a host name (%d bytes)", path, len(h)))
			}
		}
	}
	return errors.Join(errs...)
}

// parseKVPPool returns the records of a KVP pool file: whole struct
// kvp_record entries (include/uapi/linux/hyperv.h: a 512-byte key and a
// 2048-byte value, each NUL-terminated and padded). A trailing partial
// record is ignored; the caller reports the size.
func parseKVPPool(raw []byte) map[string]string {
	out := map[string]string{}
	for off := 0; off+kvpRecordSize <= len(raw); off += kvpRecordSize {
		key := cString(raw[off : off+512])
		val := cString(raw[off+512 : off+kvpRecordSize])
		if key != "" {
			out[key] = val
		}
	}
	return out
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.ToValidUTF8(string(b), "?")
}
