package lenre

import (
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestSameAsCountedRepetition: each bounded pattern the probe uses matches
// exactly what its counted-repetition form matches, on the edges of the
// bound and on characters in and out of the class.
func TestSameAsCountedRepetition(t *testing.T) {
	for _, tc := range []struct {
		counted, expr string
		min, max      int
	}{
		{`^[A-Za-z0-9:_.\\@-]{1,255}$`, `^[A-Za-z0-9:_.\\@-]+$`, 1, 255},
		{`^\d[0-9A-Za-z.+~_:-]{0,63}$`, `^\d[0-9A-Za-z.+~_:-]*$`, 1, 64},
		{`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,99}$`, `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`, 1, 100},
		{`^[a-z][a-z0-9_]{0,49}$`, `^[a-z][a-z0-9_]*$`, 1, 50},
		{`^[a-zA-Z0-9_-]{1,64}$`, `^[a-zA-Z0-9_-]+$`, 1, 64},
		{`^[a-zA-Z0-9:_.@\\-]{1,255}$`, `^[a-zA-Z0-9:_.@\\-]+$`, 1, 255},
		{`^[a-zA-Z0-9._+-]{1,255}$`, `^[a-zA-Z0-9._+-]+$`, 1, 255},
	} {
		want := regexp.MustCompile(tc.counted)
		got := MustCompile(tc.expr, tc.min, tc.max)
		var inputs []string
		for _, c := range []string{"a", "7", "_", "-", ".", ":", "@", "\\", "+", "~", "^", " ", "/", "é", "\n", "A"} {
			for _, n := range []int{0, 1, 2, 49, 50, 51, 63, 64, 65, 99, 100, 101, 254, 255, 256} {
				inputs = append(inputs, strings.Repeat(c, n), "7"+strings.Repeat(c, n), "a"+strings.Repeat(c, n), strings.Repeat(c, n)+"x")
			}
		}
		inputs = append(inputs, "", "sshd.service", "dbus-org.freedesktop.hostname1.service", "258.4-4.azl4", "5.2.18.0", "systemd@x\n")
		for _, s := range inputs {
			if got.MatchString(s) != want.MatchString(s) {
				t.Errorf("%s on %.20q (%d bytes): %v, %s gives %v", tc.counted, s, len(s), got.MatchString(s), tc.expr, want.MatchString(s))
			}
		}
	}
}

// TestHeap: the point of the package, measured: the bounded form holds a
// small fraction of the counted form's heap.
func TestHeap(t *testing.T) {
	live := func(f func() any) uint64 {
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		v := f()
		runtime.GC()
		runtime.ReadMemStats(&b)
		runtime.KeepAlive(v)
		return b.HeapAlloc - a.HeapAlloc
	}
	counted := live(func() any { return regexp.MustCompile(`^[a-zA-Z0-9._+-]{1,255}$`) })
	bounded := live(func() any { return MustCompile(`^[a-zA-Z0-9._+-]+$`, 1, 255) })
	t.Logf("live heap: counted repetition %d bytes, bounded %d bytes", counted, bounded)
	if bounded*10 > counted {
		t.Errorf("bounded form holds %d bytes, counted %d: not a tenth", bounded, counted)
	}
}
