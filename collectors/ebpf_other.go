//go:build !linux

package collectors

import "errors"

var errNotLinux = errors.New("eBPF needs Linux")

func linkGetNextID(uint32) (uint32, error) { return 0, errNotLinux }
