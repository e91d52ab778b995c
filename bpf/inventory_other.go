//go:build !linux

package bpf

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"
)

// Inventory needs Linux.
type Inventory struct{}

// Kind is what an iterator walks.
type Kind string

// The kinds of objects.
const (
	Programs Kind = "programs"
	Maps     Kind = "maps"
	Links    Kind = "links"
)

// Object is one program, map or link.
type Object struct{ ID, Type uint32 }

// ErrTooMany is List's error for more objects than its limit.
var ErrTooMany = errors.New("more objects than the limit")

// ErrNoIterator is List's error for a kind whose iterator cannot load.
var ErrNoIterator = errors.New("iterator unavailable")

// OpenInventory reports that the inventory needs Linux.
func OpenInventory() (*Inventory, error) {
	return nil, fmt.Errorf("the eBPF inventory on %s: %w", runtime.GOOS, ebpf.ErrNotSupported)
}

// Close does nothing.
func (*Inventory) Close() error { return nil }

// List reports that the inventory needs Linux.
func (*Inventory) List(context.Context, Kind, int) ([]Object, error) {
	return nil, fmt.Errorf("%w: %w", ErrNoIterator, ebpf.ErrNotSupported)
}
