package agent

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestConnLimiter: at the per-source cap the longest idle connection of
// that source is closed for a new one, and a new one is refused when all
// are busy; at the server cap the biggest holder gives up a connection to
// a source with fewer, even a busy one.
func TestConnLimiter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lim := newConnLimiter(4, 2)
	ll := lim.listener(ln, nil)
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ll.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(ip string) (client net.Conn, server *limitedConn) {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		select {
		case s := <-accepted:
			return c, s.(*limitedConn)
		case <-time.After(200 * time.Millisecond):
			return c, nil // refused: the limiter closed it
		}
	}
	closed := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF || err != nil && !isTimeout(err)
	}
	shed := func(limit, victim string) float64 {
		return testutil.ToFloat64(lim.shed.WithLabelValues(limit, victim))
	}

	a1, _ := dial("127.0.0.2")
	_, s2 := dial("127.0.0.2")
	lim.connState(s2, http.StateActive)
	_, s3 := dial("127.0.0.2") // evicts a1, idle (never used) and oldest
	if s3 == nil || !closed(a1) || shed("source", "idle") != 1 {
		t.Fatalf("per-source cap did not close the idle connection: %v %v", s3, shed("source", "idle"))
	}
	lim.connState(s3, http.StateActive)
	a4, s4 := dial("127.0.0.2") // both busy and recent: refused
	if s4 != nil || !closed(a4) || shed("source", "new") != 1 {
		t.Fatalf("a new connection was admitted past the per-source cap with all busy")
	}
	_, t1 := dial("127.0.0.3")
	lim.connState(t1, http.StateActive)
	// 127.0.0.2 holds 2 busy, 127.0.0.3 1: one more from .3 fills the
	// server cap of 4.
	_, t2 := dial("127.0.0.3")
	lim.connState(t2, http.StateActive)
	if n := testutil.ToFloat64(lim.open); n != 4 {
		t.Fatalf("%v open connections, want 4", n)
	}
	// A fifth source with none: the biggest holder (a tie of 2 and 2,
	// more than 0+1) gives up its oldest busy connection.
	_, u1 := dial("127.0.0.4")
	if u1 == nil || shed("server", "stuck") != 1 {
		t.Fatalf("server cap locked out a new source: %v, shed %v", u1, shed("server", "stuck"))
	}
	// A second from .4 (1, and the others 2 or 1): 2 is not more than
	// 1+1, so all busy means refused.
	lim.connState(u1, http.StateActive)
	if _, u2 := dial("127.0.0.4"); u2 != nil || shed("server", "new") != 1 {
		t.Fatalf("a new connection was admitted past the server cap with all busy and balanced")
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestAuthGuard: a source answered 401 fails authBurst times and is then
// answered 429 without reaching the authenticator; a source with the
// right password goes straight through even when every slot for unknown
// sources is taken; a new source then gets 429.
func TestAuthGuard(t *testing.T) {
	calls := 0
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if _, pw, _ := r.BasicAuth(); pw != "right" {
			w.Header().Set("WWW-Authenticate", "Basic")
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		w.Write([]byte("ok"))
	})
	throttled := prometheus.NewCounter(prometheus.CounterOpts{Name: "t"})
	g := newAuthGuard(next, throttled, discard())
	do := func(src, pw string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.RemoteAddr = src + ":1234"
		req.SetBasicAuth("prometheus", pw)
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		return rec
	}
	for i := range authBurst {
		rec := do("10.0.0.1", "wrong")
		if rec.Code != 401 || rec.Header().Get("Connection") != "close" {
			t.Fatalf("failure %d: %d, Connection %q", i, rec.Code, rec.Header().Get("Connection"))
		}
	}
	if rec := do("10.0.0.1", "wrong"); rec.Code != 429 || calls != authBurst {
		t.Fatalf("past the burst: %d after %d calls", rec.Code, calls)
	}
	if rec := do("10.0.0.2", "right"); rec.Code != 200 {
		t.Fatalf("right password: %d", rec.Code)
	}
	for range authSlots {
		g.slots <- struct{}{}
	}
	if rec := do("10.0.0.2", "right"); rec.Code != 200 {
		t.Errorf("right password with the slots taken: %d", rec.Code)
	}
	if rec := do("10.0.0.3", "right"); rec.Code != 429 {
		t.Errorf("unknown source with the slots taken: %d", rec.Code)
	}
	if v := testutil.ToFloat64(throttled); v != 2 {
		t.Errorf("throttled %v, want 2", v)
	}
}
