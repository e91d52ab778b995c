package collectors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// bootWallClock returns the wall-clock time of kernel timestamp 0. printk
// stamps records with local_clock() (kernel/printk/printk.c
// vprintk_store()), which like CLOCK_MONOTONIC stops during suspend.
func bootWallClock() time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return time.Time{}
	}
	return time.Now().Add(-time.Duration(ts.Nano()))
}

// maxBackoff bounds the wait between reopens of a source that keeps
// failing.
const maxBackoff = time.Minute

// runKmsg reads /dev/kmsg until stop, reopening it after a failure with a
// rate limit: NPD's reader hot-looped 37k restarts in 200 ms and, before
// that, stopped for good after a flood (node-problem-detector #1168).
func (r *kmsgReader) runKmsg() {
	r.reopenLoop(readSource{
		readOnce: r.readKmsgOnce,
		failed: func(err error) {
			r.setKmsgState(false, err)
			r.markReady()
		},
		warn:  "kernel log reader cannot read; reopening",
		again: "kernel log reader still cannot read",
		attrs: []any{"path", r.path},
	})
}

// readSource is one input of the reader, as reopenLoop runs it.
type readSource struct {
	readOnce func() error    // opens the source and reads until an error
	failed   func(err error) // records a failure (the source's state)
	// warn is logged for a failure, at warning level; the same failure
	// again (an open refused every minute) is logged as again at debug
	// level, or not at all when again is empty.
	warn, again string
	attrs       []any
}

// reopenLoop runs s until stop: after each failure it waits, from
// minBackoff doubling to maxBackoff, and back to minBackoff once a read
// lasted longer than maxBackoff.
func (r *kmsgReader) reopenLoop(s readSource) {
	backoff := r.minBackoff
	logged := ""
	for first := true; ; first = false {
		if !first {
			r.restarted()
		}
		started := time.Now()
		err := s.readOnce()
		if r.stopped() {
			return
		}
		s.failed(err)
		if time.Since(started) > maxBackoff {
			backoff, logged = r.minBackoff, ""
		}
		attrs := append(slices.Clip(s.attrs), "err", err, "retry_in", backoff)
		if msg := err.Error(); msg != logged {
			r.logger.Warn(s.warn, attrs...)
			logged = msg
		} else if s.again != "" {
			r.logger.Debug(s.again, attrs...)
		}
		select {
		case <-r.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (r *kmsgReader) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// readKmsgOnce opens /dev/kmsg and reads records until an error. A fresh
// descriptor starts at the oldest record the ring buffer still holds
// (kernel/printk/printk.c devkmsg_open(): prb_first_valid_seq()); records
// read before a reopen are skipped by sequence number.
func (r *kmsgReader) readKmsgOnce() error {
	f, err := openStream(r.path)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			err = fmt.Errorf("%w (reading the kernel log needs CAP_SYSLOG when kernel.dmesg_restrict=1)", err)
		}
		return err
	}
	release, ok := r.hold(&r.cur, f)
	if !ok {
		return nil
	}
	defer release()
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("%s: %w", r.path, err)
	}
	r.setKmsgState(true, nil)
	buf := make([]byte, kmsgMaxRecord)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), buf)
			if rerr == unix.EAGAIN {
				// Caught up with the ring buffer: wait for the poller.
				r.markReady()
				return false
			}
			return true
		})
		switch {
		case err != nil:
			return fmt.Errorf("%s: %w", r.path, err)
		case rerr == unix.EPIPE:
			// devkmsg_read(): the ring buffer overwrote the next record;
			// the descriptor moved on to the oldest one left, and the
			// gap in sequence numbers counts what was lost.
			continue
		case rerr == unix.EINTR:
			continue
		case rerr != nil:
			return fmt.Errorf("%s: read: %w", r.path, rerr)
		case n == 0:
			return fmt.Errorf("%s: %w", r.path, io.EOF)
		}
		rec, err := parseKmsgRecord(buf[:n])
		if err != nil {
			r.logger.Debug("kernel log record skipped", "path", r.path, "err", err)
			continue
		}
		r.handle(rec)
		r.notify()
	}
}

// closeCurrent closes the open /dev/kmsg descriptor, as a failure would
// (tests).
func (r *kmsgReader) closeCurrent() { r.closeHeld(&r.cur) }

// hold publishes f in *slot, so that stopping (or a test) can close it to
// end a blocked read. When the reader is already stopping it closes f and
// reports false. release empties the slot and closes f.
func (r *kmsgReader) hold(slot **os.File, f *os.File) (release func(), ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped() {
		f.Close()
		return nil, false
	}
	*slot = f
	return func() {
		r.mu.Lock()
		*slot = nil
		r.mu.Unlock()
		f.Close()
	}, true
}

// closeHeld closes the descriptor held in *slot, if any.
func (r *kmsgReader) closeHeld(slot **os.File) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if *slot != nil {
		(*slot).Close()
	}
}

// Audit netlink constants of include/uapi/linux/audit.h.
const (
	auditNlgrpReadlog = 1 // AUDIT_NLGRP_READLOG
)

// runAudit reads the audit multicast group until stop. Binding to it needs
// CAP_AUDIT_READ (kernel/audit.c audit_multicast_bind()); it receives a
// copy of every record (kauditd_send_multicast_skb()) whether auditd runs
// or not, and does not take auditd's place.
func (r *kmsgReader) runAudit() {
	r.reopenLoop(readSource{
		readOnce: r.readAuditOnce,
		failed:   func(err error) { r.setAuditState(false, err) },
		warn:     "audit multicast reader cannot read; SELinux denials come from the kernel log only",
	})
}

func (r *kmsgReader) readAuditOnce() error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_AUDIT)
	if err != nil {
		return fmt.Errorf("audit netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (auditNlgrpReadlog - 1)}); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("audit multicast group: %w (needs CAP_AUDIT_READ)", err)
		}
		return fmt.Errorf("audit multicast group: %w", err)
	}
	f := os.NewFile(uintptr(fd), "audit-netlink")
	release, ok := r.hold(&r.auditFile, f)
	if !ok {
		return nil
	}
	defer release()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	r.setAuditState(true, nil)
	buf := make([]byte, 64<<10)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN
		})
		switch {
		case err != nil:
			return fmt.Errorf("audit multicast group: %w", err)
		case rerr == unix.EINTR:
			continue
		case rerr == unix.ENOBUFS:
			// The socket's buffer overflowed in a burst: records were
			// lost, the socket goes on.
			continue
		case rerr != nil:
			return fmt.Errorf("audit multicast group: recv: %w", rerr)
		}
		typ, text, ok := parseAuditNetlink(buf[:n])
		if !ok {
			continue
		}
		r.handleAudit(typ, text)
		r.notify()
	}
}

// parseAuditNetlink returns the type and text of an audit record: one
// netlink message per datagram, whose nlmsg_len is the unpadded length
// (kernel/audit.c kauditd_send_multicast_skb() sets it to skb->len), so
// syscall.ParseNetlinkMessage, which wants it aligned, refuses most.
func parseAuditNetlink(b []byte) (uint16, string, bool) {
	if len(b) < unix.NLMSG_HDRLEN {
		return 0, "", false
	}
	l := int(binary.NativeEndian.Uint32(b[0:4]))
	typ := binary.NativeEndian.Uint16(b[4:6])
	if l < unix.NLMSG_HDRLEN || l > len(b) {
		l = len(b)
	}
	text := b[unix.NLMSG_HDRLEN:l]
	for len(text) > 0 && text[len(text)-1] == 0 {
		text = text[:len(text)-1]
	}
	return typ, string(text), true
}

func (r *kmsgReader) closeAudit() { r.closeHeld(&r.auditFile) }
