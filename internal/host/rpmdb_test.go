package host

import "testing"

func TestRPMDBMagic(t *testing.T) {
	for _, tc := range []struct {
		head    []byte
		backend string
		ok      bool
	}{
		{[]byte("RpmP\x00\x00\x00\x00"), "ndb", true},
		{append(make([]byte, 12), 0x00, 0x06, 0x15, 0x61), "bdb", true},
		{append(make([]byte, 12), 0x61, 0x15, 0x06, 0x00), "bdb", true},
		{[]byte("SQLite format 3\x00"), "bdb", false},
		{[]byte("SQLite format 2\x00"), "sqlite", false},
		{nil, "sqlite", true},
		{nil, "bdb", true},
	} {
		if got := rpmdbMagic(tc.head, tc.backend); got != tc.ok {
			t.Errorf("rpmdbMagic(%q, %s) = %v", tc.head, tc.backend, got)
		}
	}
}
