//go:build linux

package bpf

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// idsByNextID lists the host's objects the privileged way (BPF_*_GET_NEXT_ID
// and GET_FD_BY_ID, CAP_SYS_ADMIN), as bpftool does, for comparison.
func idsByNextID(t *testing.T, kind Kind) map[uint32]uint32 {
	t.Helper()
	out := map[uint32]uint32{}
	switch kind {
	case Programs:
		var id ebpf.ProgramID
		for {
			next, err := ebpf.ProgramGetNextID(id)
			if errors.Is(err, os.ErrNotExist) {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			id = next
			if p, err := ebpf.NewProgramFromID(id); err == nil {
				out[uint32(id)] = uint32(p.Type())
				p.Close()
			}
		}
	case Maps:
		var id ebpf.MapID
		for {
			next, err := ebpf.MapGetNextID(id)
			if errors.Is(err, os.ErrNotExist) {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			id = next
			if m, err := ebpf.NewMapFromID(id); err == nil {
				out[uint32(id)] = uint32(m.Type())
				m.Close()
			}
		}
	}
	it := new(link.Iterator)
	defer it.Close()
	for it.Next() {
		if info, err := it.Link.Info(); err == nil {
			out[uint32(info.ID)] = uint32(info.Type)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestInventory loads a known set of objects (4 socket_filter programs, 2
// queue maps, 1 raw tracepoint link) and checks that the iterators list
// exactly what GET_NEXT_ID lists, types included, with the test's objects in
// it and the inventory's own programs and link left out.
func TestInventory(t *testing.T) {
	requireBPF(t)
	var mine []Object
	for range 4 {
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SocketFilter, License: "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		info, _ := p.Info()
		id, _ := info.ID()
		mine = append(mine, Object{uint32(id), uint32(ebpf.SocketFilter)})
	}
	for range 2 {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 4, MaxEntries: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		info, _ := m.Info()
		id, _ := info.ID()
		mine = append(mine, Object{uint32(id), uint32(ebpf.Queue)})
	}
	rt, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.RawTracepoint, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sched_process_free", Program: rt})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	linfo, err := l.Info()
	if err != nil {
		t.Fatal(err)
	}

	inv, err := OpenInventory()
	if err != nil {
		t.Fatal(err)
	}
	defer inv.Close()
	for _, kind := range []Kind{Programs, Maps, Links} {
		got, err := inv.List(context.Background(), kind, 65536)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		gotMap := map[uint32]uint32{}
		for _, o := range got {
			gotMap[o.ID] = o.Type
		}
		want := idsByNextID(t, kind)
		for id := range inv.ownIDs {
			delete(want, id) // the privileged walk sees the inventory's programs
		}
		// Another agent may load or unload an object between the two
		// walks; this machine's test objects are stable, so demand equality.
		if len(gotMap) != len(want) {
			t.Errorf("%s: iterator lists %d, GET_NEXT_ID %d", kind, len(gotMap), len(want))
		}
		for id, typ := range want {
			if g, ok := gotMap[id]; !ok || g != typ {
				t.Errorf("%s: ID %d type %d, iterator says %d (listed %v)", kind, id, typ, g, ok)
			}
		}
		t.Logf("%s: %d", kind, len(got))
	}
	progs, _ := inv.List(context.Background(), Programs, 65536)
	maps, _ := inv.List(context.Background(), Maps, 65536)
	links, _ := inv.List(context.Background(), Links, 65536)
	has := func(list []Object, o Object) bool {
		for _, x := range list {
			if x == o {
				return true
			}
		}
		return false
	}
	for _, o := range mine {
		if !has(progs, o) && !has(maps, o) {
			t.Errorf("test object %+v not listed", o)
		}
	}
	if !has(links, Object{uint32(linfo.ID), uint32(linfo.Type)}) {
		t.Errorf("test link %d not listed", linfo.ID)
	}
	// Limits: one below the count is an error, never a short list.
	if _, err := inv.List(context.Background(), Programs, len(progs)-1); !errors.Is(err, ErrTooMany) {
		t.Errorf("List(programs, %d) = %v, want ErrTooMany", len(progs)-1, err)
	}
	if got, err := inv.List(context.Background(), Programs, len(progs)); err != nil || len(got) != len(progs) {
		t.Errorf("List(programs, %d) = %d, %v", len(progs), len(got), err)
	}
}

func TestReadRecords(t *testing.T) {
	rec := func(ids ...uint32) []byte {
		var b bytes.Buffer
		for _, id := range ids {
			binary.Write(&b, binary.NativeEndian, [2]uint32{id, id % 7})
		}
		return b.Bytes()
	}
	for _, tc := range []struct {
		name  string
		in    []byte
		own   map[uint32]bool
		limit int
		want  int
		err   string
	}{
		{"empty", nil, nil, 10, 0, ""},
		{"three", rec(1, 2, 3), nil, 10, 3, ""},
		{"own skipped", rec(1, 2, 3), map[uint32]bool{2: true}, 2, 2, ""},
		{"at limit", rec(1, 2, 3), nil, 3, 3, ""},
		{"over limit", rec(1, 2, 3), nil, 2, 0, "more objects than the limit (2)"},
		{"partial", append(rec(1), 1, 2, 3), nil, 10, 0, "partial record (3 bytes)"},
	} {
		got, err := readRecords(context.Background(), bytes.NewReader(tc.in), tc.own, tc.limit)
		if tc.err != "" {
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.err)) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != tc.want {
			t.Errorf("%s: %d objects, %v; want %d", tc.name, len(got), err, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := readRecords(ctx, bytes.NewReader(rec(1)), nil, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func FuzzReadRecords(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 2, 0, 0, 0}, 1)
	f.Fuzz(func(t *testing.T, in []byte, limit int) {
		if limit < 0 || limit > 1<<16 {
			return
		}
		got, err := readRecords(context.Background(), bytes.NewReader(in), nil, limit)
		if err == nil && len(got) > limit {
			t.Fatalf("%d objects over limit %d", len(got), limit)
		}
	})
}
