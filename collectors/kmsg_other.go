//go:build !linux

package collectors

import (
	"errors"
	"time"
)

var errKmsgUnsupported = errors.New("the kernel log is read on Linux only")

func bootWallClock() time.Time { return time.Time{} }

func (r *kmsgReader) runKmsg() {
	r.setKmsgState(false, errKmsgUnsupported)
	r.markReady()
}

func (r *kmsgReader) runAudit() { r.setAuditState(false, errKmsgUnsupported) }

func (r *kmsgReader) closeCurrent() {}

func (r *kmsgReader) closeAudit() {}
