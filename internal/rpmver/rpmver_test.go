package rpmver

import "testing"

// TestCompare runs the cases of rpm's own test suite (tests/rpmvercmp.at)
// and the kernel releases the boot collector orders.
func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0", "2.0", -1},
		{"2.0.1", "2.0", 1},
		{"2.0.1a", "2.0.1", 1},
		{"5.5p1", "5.5p2", -1},
		{"5.5p10", "5.5p1", 1},
		{"10xyz", "10.1xyz", -1},
		{"xyz10", "xyz10.1", -1},
		{"1.0aa", "1.0a", 1},
		{"10.0001", "10.1", 0},
		{"10.0001", "10.0039", -1},
		{"4.999.9", "5.0", -1},
		{"20101121", "20101120", 1},
		{"1.0~rc1", "1.0", -1},
		{"1.0~rc1", "1.0~rc2", -1},
		{"1.0~rc1~git123", "1.0~rc1", -1},
		{"1.0^", "1.0", 1},
		{"1.0^git1", "1.0", 1},
		{"1.0^git1", "1.01", -1},
		{"1.0^20160101", "1.0.1", -1},
		{"1.0~rc1^git1", "1.0~rc1", 1},
		{"1.0^git1~pre", "1.0^git1", -1},
		// Kernel releases (uname -r), as installed side by side.
		{"6.18.40-1.1.azl4.x86_64", "6.18.31-1.3.azl4.x86_64", 1},
		{"6.18.31-1.10.azl4.x86_64", "6.18.31-1.9.azl4.x86_64", 1},
		{"6.6.104.2-4.azl3", "6.18.31-1.3.azl4.x86_64", -1},
		{"6.18.0", "6.18", 1},
		{"6.19.0~rc3-0.1.azl4.x86_64", "6.19.0-1.1.azl4.x86_64", -1},
	} {
		if got := Compare(tc.a, tc.b); got != tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := Compare(tc.b, tc.a); got != -tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}
