package collectors

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/azurelinux-probe/azurelinux-probe/bpf"
)

// The ebpf collector's host-wide inventory: the programs, maps and links
// loaded on the host, counted by type.

var ebpfProgramsLoadedFact = declare(Fact{
	Collector: "ebpf", Name: "programs_loaded",
	Help:     "eBPF programs loaded on the host by type, all processes; 0 for watched types with none. Counted through BPF iterators (iter/bpf_prog), which need CAP_BPF and CAP_PERFMON; live only.",
	Labels:   []string{"type"},
	Identity: []string{"type"}, Volatile: true, Bound: "the program types cilium/ebpf names, and one per unknown type number",
})

var ebpfMapsLoadedFact = declare(Fact{
	Collector: "ebpf", Name: "maps_loaded",
	Help:     "eBPF maps loaded on the host by type, all processes; 0 for watched types with none. Counted through BPF iterators (iter/bpf_map), which need CAP_BPF and CAP_PERFMON; live only.",
	Labels:   []string{"type"},
	Identity: []string{"type"}, Volatile: true, Bound: "the map types cilium/ebpf names, and one per unknown type number",
})

var ebpfLinksFact = declare(Fact{
	Collector: "ebpf", Name: "links",
	Help:     "eBPF links (program attachments) on the host by type, 0 for known types with none; absent before Linux 5.8, which cannot iterate links. Counted through BPF iterators (iter/bpf_link, Linux 5.19), which need CAP_BPF and CAP_PERFMON; live only.",
	Labels:   []string{"type"},
	Identity: []string{"type"}, Volatile: true, Bound: "the link types cilium/ebpf names, and one per unknown type number",
})

// ebpfIterate lists one kind of object through the inventory's iterator;
// tests replace it to exercise the GET_NEXT_ID fallback of an older kernel.
var ebpfIterate = func(ctx context.Context, inv *bpf.Inventory, kind bpf.Kind, limit int) ([]bpf.Object, error) {
	return inv.List(ctx, kind, limit)
}

// updateInventory counts the programs, maps and links loaded on the host by
// type, with the BPF iterators of bpf/inventory.c: one pass in the kernel
// per kind, two numbers per object, no descriptor of any object opened.
// bpftool prog show (tools/bpf/bpftool/prog.c, do_show) and the
// GET_NEXT_ID walk below open every program to read its type, which is
// what makes an inventory expensive on a host with thousands. A kind whose
// iterator the kernel cannot load (bpf_map 5.8, bpf_prog 5.9, bpf_link 5.19)
// falls back, when the probe holds CAP_SYS_ADMIN, to the BPF_*_GET_NEXT_ID
// walk, which opens each object to read its type; without it that kind is
// an error (links before 5.19: logged, no series).
func (c *ebpfCollector) updateInventory(ctx context.Context, m *Metrics, sysAdmin bool) error {
	inv, err := bpf.OpenInventory()
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	defer inv.Close()
	list := func(kind bpf.Kind) (map[uint32]uint32, error) {
		objs, err := ebpfIterate(ctx, inv, kind, c.opts.InventoryLimit)
		if errors.Is(err, bpf.ErrTooMany) {
			return nil, fmt.Errorf("inventory of %s: more than inventory_limit (%d)", kind, c.opts.InventoryLimit)
		}
		if err != nil {
			return nil, fmt.Errorf("inventory of %s: %w", kind, err)
		}
		out := make(map[uint32]uint32, len(objs))
		for _, o := range objs {
			out[o.ID] = o.Type
		}
		return out, nil
	}
	// fallback is the GET_NEXT_ID walk when the iterator did not load; an
	// iterator that loaded and failed is the answer.
	fallback := func(iterErr error) bool {
		return sysAdmin && ctx.Err() == nil && errors.Is(iterErr, bpf.ErrNoIterator)
	}

	var errs []error
	progs, err := list(bpf.Programs)
	if err != nil && fallback(err) {
		progs, err = c.walk(ctx, "programs",
			func(id uint32) (uint32, error) {
				next, err := ebpf.ProgramGetNextID(ebpf.ProgramID(id))
				return uint32(next), err
			},
			func(id uint32) (uint32, error) {
				p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
				if err != nil {
					return 0, err
				}
				defer p.Close()
				return uint32(p.Type()), nil
			})
	}
	if err == nil {
		emitCounts(m, ebpfProgramsLoadedFact, progTypeNames, progs, c.progTypes)
	} else {
		errs = append(errs, err)
	}

	maps, err := list(bpf.Maps)
	if err != nil && fallback(err) {
		maps, err = c.walk(ctx, "maps",
			func(id uint32) (uint32, error) {
				next, err := ebpf.MapGetNextID(ebpf.MapID(id))
				return uint32(next), err
			},
			func(id uint32) (uint32, error) {
				mp, err := ebpf.NewMapFromID(ebpf.MapID(id))
				if err != nil {
					return 0, err
				}
				defer mp.Close()
				return uint32(mp.Type()), nil
			})
	}
	if err == nil {
		emitCounts(m, ebpfMapsLoadedFact, mapTypeNames, maps, c.mapTypes)
	} else {
		errs = append(errs, err)
	}

	links, err := list(bpf.Links)
	if err != nil && fallback(err) {
		links, err = c.walk(ctx, "links", linkGetNextID, linkType)
	} else if errors.Is(err, bpf.ErrNoIterator) {
		// A kernel before 5.19 without CAP_SYS_ADMIN: no link iterator.
		err = errNoLinkIteration
	}
	switch {
	case errors.Is(err, errNoLinkIteration):
		c.logger.Info("eBPF link inventory unavailable: the kernel has neither the bpf_link iterator (Linux 5.19) nor, for a probe with CAP_SYS_ADMIN, BPF_LINK_GET_NEXT_ID (5.8)")
	case err != nil:
		errs = append(errs, err)
	default:
		all := make([]uint32, 0, len(linkTypeNames)-1)
		for i := 1; i < len(linkTypeNames); i++ {
			all = append(all, uint32(i))
		}
		emitCounts(m, ebpfLinksFact, linkTypeNames, links, all)
	}
	return errors.Join(errs...)
}

// walk lists the IDs of one kind of object with next, looks up the type of
// each with typeOf, and returns the objects that exist now, ID to type. An
// object that disappears between the two calls is skipped. More
// than inventory_limit objects is an error.
func (c *ebpfCollector) walk(ctx context.Context, kind string,
	next func(uint32) (uint32, error), typeOf func(uint32) (uint32, error)) (map[uint32]uint32, error) {
	seen := map[uint32]uint32{}
	var id uint32
	for n := 0; ; n++ {
		if n%256 == 255 && ctx.Err() != nil {
			return nil, fmt.Errorf("inventory of %s: %w", kind, ctx.Err())
		}
		nid, err := next(id)
		if errors.Is(err, os.ErrNotExist) {
			return seen, nil
		}
		if err != nil {
			return nil, fmt.Errorf("inventory of %s: next ID after %d: %w", kind, id, err)
		}
		if n >= c.opts.InventoryLimit {
			return nil, fmt.Errorf("inventory of %s: more than inventory_limit (%d)", kind, c.opts.InventoryLimit)
		}
		id = nid
		t, err := typeOf(id)
		if errors.Is(err, os.ErrNotExist) {
			continue // unloaded meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("inventory of %s: ID %d: %w", kind, id, err)
		}
		seen[id] = t
	}
}

// emitCounts emits the number of objects per type: every type present, and
// 0 for the watched types that are not.
func emitCounts(m *Metrics, fact *Fact, names []string, objs map[uint32]uint32, watched []uint32) {
	counts := map[uint32]int{}
	for _, t := range watched {
		counts[t] = 0
	}
	for _, t := range objs {
		counts[t]++
	}
	for t, n := range counts {
		m.Set(fact, float64(n), typeName(names, t))
	}
}

// errNoLinkIteration is linkGetNextID's answer on a kernel without
// BPF_LINK_GET_NEXT_ID.
var errNoLinkIteration = errors.New("link iteration not supported")

func linkType(id uint32) (uint32, error) {
	l, err := link.NewFromID(link.ID(id))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		return 0, err
	}
	return uint32(info.Type), nil
}
