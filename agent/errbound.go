package agent

import (
	"errors"
	"fmt"
	"strings"

	"github.com/azurelinux-probe/azurelinux-probe/collectors"
)

// Bounds on the errors one refresh keeps. A hostile tree with thousands of
// broken entries under /sys/bus/pci/devices makes a collector fail once per
// entry; all of them joined made one log line of 105 MB
// (cmd/azurelinux-probe/hostile_dir_test.go, TestFactsHugePCIDirectory,
// reproduces it).
// The first maxRefreshErrors are kept, each at most maxErrorBytes long, and
// the rest are counted.
const (
	maxRefreshErrors = 20
	maxErrorBytes    = 1024
)

// boundErrors flattens the errors.Join tree of err and keeps at most
// maxRefreshErrors of its leaves, each cut to maxErrorBytes, with
// "and K more errors" for the rest. What it keeps still unwraps to the
// original errors (errors.Is(err, collectors.ErrNoData) is unchanged, for
// the dropped errors too).
func boundErrors(err error) error {
	if err == nil {
		return nil
	}
	var kept []error
	dropped, noData := 0, false
	var walk func(e error, depth int)
	walk = func(e error, depth int) {
		if j, ok := e.(interface{ Unwrap() []error }); ok && depth < 16 {
			for _, c := range j.Unwrap() {
				if c != nil {
					walk(c, depth+1)
				}
			}
			return
		}
		if len(kept) < maxRefreshErrors {
			kept = append(kept, capError(e))
			return
		}
		dropped++
		noData = noData || errors.Is(e, collectors.ErrNoData)
	}
	walk(err, 0)
	if dropped == 0 && len(kept) == 1 {
		return kept[0]
	}
	if dropped > 0 {
		kept = append(kept, &moreErrors{n: dropped, noData: noData})
	}
	return errors.Join(kept...)
}

// cappedError is an error whose message is cut to maxErrorBytes.
type cappedError struct {
	err error
	msg string
}

func (e *cappedError) Error() string { return e.msg }
func (e *cappedError) Unwrap() error { return e.err }

func capError(e error) error {
	msg := e.Error()
	if len(msg) <= maxErrorBytes {
		return e
	}
	cut := maxErrorBytes
	for cut > 0 && !isRuneStart(msg[cut]) {
		cut--
	}
	return &cappedError{err: e, msg: fmt.Sprintf("%s… (%d bytes)", strings.ToValidUTF8(msg[:cut], "�"), len(msg))}
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// moreErrors stands for the errors boundErrors dropped.
type moreErrors struct {
	n      int
	noData bool
}

func (e *moreErrors) Error() string {
	if e.n == 1 {
		return "and 1 more error"
	}
	return fmt.Sprintf("and %d more errors", e.n)
}

func (e *moreErrors) Is(target error) bool { return e.noData && target == collectors.ErrNoData }
