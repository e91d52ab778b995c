package collectors

import "testing"

// TestSerialSet checks the audit serial ring: a serial seen is not new
// again while it is among the latest size, and the oldest is forgotten
// first once the ring is full.
func TestSerialSet(t *testing.T) {
	s := newSerialSet(3)
	steps := []struct {
		serial uint64
		isNew  bool
	}{
		{1, true}, {1, false}, {2, true}, {3, true}, {2, false},
		{4, true},  // ring full: 1 is forgotten
		{1, true},  // so it is new again, and 2 is forgotten
		{3, false}, // 3 is still among the latest three
		{2, true},
	}
	for i, st := range steps {
		if got := s.add(st.serial); got != st.isNew {
			t.Fatalf("step %d: add(%d) = %v, want %v", i, st.serial, got, st.isNew)
		}
	}
	if len(s.ring) != 3 || len(s.set) != 3 {
		t.Errorf("ring %d and set %d entries, want 3 each", len(s.ring), len(s.set))
	}
}
