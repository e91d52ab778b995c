//go:build linux

package bpf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Inventory lists the eBPF programs, maps and links loaded on the host with
// the BPF iterators of inventory.c. It needs CAP_BPF and CAP_PERFMON (an
// iterator is a tracing program: kernel/bpf/syscall.c, bpf_prog_load) and
// kernel BTF; unlike BPF_*_GET_NEXT_ID it needs no CAP_SYS_ADMIN, and it
// never holds a descriptor of another process's object. The inventory's own
// programs and its iterator link are left out of what it lists.
type Inventory struct {
	progs  map[Kind]*ebpf.Program
	errs   map[Kind]error
	ownIDs map[uint32]bool // the inventory's own program IDs
}

// Kind is what an iterator walks.
type Kind string

// The kinds of objects, with the kernel release whose BTF first has their
// iterator (kernel/bpf/map_iter.c 5.8, prog_iter.c 5.9, link_iter.c 5.19).
const (
	Programs Kind = "programs"
	Maps     Kind = "maps"
	Links    Kind = "links"
)

// Object is one program, map or link: its ID and its type (enum
// bpf_prog_type, bpf_map_type or bpf_link_type of include/uapi/linux/bpf.h).
type Object struct {
	ID, Type uint32
}

// recordSize is the size of struct inventory_record in inventory.c.
const recordSize = 8

// ErrTooMany is List's error for more objects than its limit.
var ErrTooMany = errors.New("more objects than the limit")

// ErrNoIterator is List's error for a kind whose iterator program the kernel
// would not load: a kernel before the iterator, without BTF, or a probe
// without CAP_BPF and CAP_PERFMON.
var ErrNoIterator = errors.New("iterator unavailable")

// OpenInventory loads the three iterator programs. One the kernel cannot
// load (an older kernel without its iterator, no BTF) does not fail the
// others: List reports its error.
func OpenInventory() (*Inventory, error) {
	spec, err := loadInventory()
	if err != nil {
		return nil, err
	}
	inv := &Inventory{progs: map[Kind]*ebpf.Program{}, errs: map[Kind]error{}, ownIDs: map[uint32]bool{}}
	for kind, name := range map[Kind]string{
		Programs: inventoryProgInventoryProgs,
		Maps:     inventoryProgInventoryMaps,
		Links:    inventoryProgInventoryLinks,
	} {
		p, err := ebpf.NewProgram(spec.Programs[name])
		if err != nil {
			inv.errs[kind] = fmt.Errorf("%w: load the %s iterator: %w", ErrNoIterator, name, withVerifierLog(err))
			continue
		}
		inv.progs[kind] = p
		if info, err := p.Info(); err == nil {
			if id, ok := info.ID(); ok {
				inv.ownIDs[uint32(id)] = true
			}
		}
	}
	return inv, nil
}

// Close unloads the iterator programs.
func (inv *Inventory) Close() error {
	var errs []error
	for _, p := range inv.progs {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// List walks the objects of a kind and returns them in ID order. More than
// limit objects is ErrTooMany, never a truncated list; ctx is checked
// between reads.
func (inv *Inventory) List(ctx context.Context, kind Kind, limit int) ([]Object, error) {
	if err := inv.errs[kind]; err != nil {
		return nil, err
	}
	p := inv.progs[kind]
	if p == nil {
		return nil, fmt.Errorf("no iterator for %s", kind)
	}
	it, err := link.AttachIter(link.IterOptions{Program: p})
	if err != nil {
		return nil, fmt.Errorf("attach the %s iterator: %w", kind, err)
	}
	defer it.Close()
	own := inv.ownIDs
	if kind == Links {
		// The iterator's own link is one of the links it walks.
		own = map[uint32]bool{}
		if info, err := it.Info(); err == nil {
			own[uint32(info.ID)] = true
		}
	} else if kind != Programs {
		own = nil
	}
	rd, err := it.Open()
	if err != nil {
		return nil, fmt.Errorf("open the %s iterator: %w", kind, err)
	}
	defer rd.Close()
	return readRecords(ctx, rd, own, limit)
}

// readRecords decodes the iterator's records, skipping the IDs in own.
// It reads at most limit+len(own)+1 records.
func readRecords(ctx context.Context, rd io.Reader, own map[uint32]bool, limit int) ([]Object, error) {
	var out []Object
	buf := make([]byte, 256*recordSize)
	maxRecords := int64(limit) + int64(len(own)) + 1
	lr := io.LimitReader(rd, maxRecords*recordSize)
	var pending []byte
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, err := lr.Read(buf)
		pending = append(pending, buf[:n]...)
		for len(pending) >= recordSize {
			o := Object{ID: binary.NativeEndian.Uint32(pending), Type: binary.NativeEndian.Uint32(pending[4:])}
			pending = pending[recordSize:]
			if own[o.ID] {
				continue
			}
			if len(out) >= limit {
				return nil, fmt.Errorf("%w (%d)", ErrTooMany, limit)
			}
			out = append(out, o)
		}
		if errors.Is(err, io.EOF) {
			if len(pending) != 0 {
				return nil, fmt.Errorf("iterator output ends in a partial record (%d bytes)", len(pending))
			}
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read the iterator: %w", err)
		}
	}
}
