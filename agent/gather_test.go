package agent

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestGatherWrites: while gathering, a connection copies writes up to
// gatherMax and sends a larger one with what it holds in one writev; the
// bytes arrive whole and in order, and the buffer goes back to the pool at
// the end.
func TestGatherWrites(t *testing.T) {
	chunk := func(c byte, n int) []byte { return bytes.Repeat([]byte{c}, n) }
	for _, tc := range []struct {
		name   string
		writes [][]byte
		calls  int // writes the connection below saw
	}{
		{"small", [][]byte{chunk('a', 4096), chunk('b', 9000)}, 1},
		{"large", [][]byte{chunk('a', 4096), chunk('b', 60000)}, 2}, // writev, one call each below net.Pipe
		{"large first", [][]byte{chunk('a', gatherMax+1), chunk('b', 10)}, 2},
		{"past the bound twice", [][]byte{chunk('a', 4096), chunk('b', gatherMax), chunk('c', 4096), chunk('d', gatherMax)}, 4},
		{"nothing", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordingConn{}
			lc := &limitedConn{Conn: rec}
			lc.startGather()
			var want []byte
			for _, w := range tc.writes {
				n, err := lc.Write(w)
				if n != len(w) || err != nil {
					t.Fatalf("Write(%d bytes) = %d, %v", len(w), n, err)
				}
				want = append(want, w...)
			}
			if err := lc.endGather(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rec.got.Bytes(), want) {
				t.Errorf("the connection got %d bytes, not the %d written in order", rec.got.Len(), len(want))
			}
			if rec.calls != tc.calls {
				t.Errorf("%d writes to the connection, want %d", rec.calls, tc.calls)
			}
			if lc.gather.buf != nil {
				t.Error("still gathering after endGather")
			}
			if n, _ := lc.Write([]byte("x")); n != 1 || rec.calls != tc.calls+1 {
				t.Error("a write after endGather was not passed through")
			}
		})
	}
}

// recordingConn is a net.Conn that records what is written to it.
type recordingConn struct {
	net.Conn
	got   bytes.Buffer
	calls int
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.calls++
	return c.got.Write(p)
}

// TestWholeResponseIsOneSegment serves a cached body on a real loopback
// connection and reads the server socket's TCP_INFO (tcp(7)): an answer of
// headers and a body, which net/http writes in two write(2) calls (its
// 4 KiB connection buffer, then the rest), must leave as one data segment,
// over TCP and TLS for a 13 kB body (gathered whole) and over TCP for a
// 60 kB one (one writev; under TLS its 16 kB records go out as they come).
// HEAD answers have no body and one segment too.
func TestWholeResponseIsOneSegment(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int
		useTLS bool
	}{
		{"tcp 13 kB", 13000, false},
		{"tls 13 kB", 13000, true},
		{"tcp 60 kB", 60000, false},
	} {
		body := bytes.Repeat([]byte("azurelinux_probe_test_metric 1\n"), tc.size/31)
		b := &renderedBody{
			body:        body,
			contentType: []string{"text/plain; version=0.0.4; charset=utf-8"},
			length:      []string{strconv.Itoa(len(body))},
		}
		useTLS := tc.useTLS
		t.Run(tc.name, func(t *testing.T) {
			lim := newConnLimiter(0, 0)
			srv := newHTTPServer(http.HandlerFunc(b.write), lim, discard())
			idle := make(chan struct{}, 4)
			hook := srv.ConnState
			srv.ConnState = func(c net.Conn, s http.ConnState) {
				hook(c, s)
				if s == http.StateIdle {
					idle <- struct{}{}
				}
			}
			ts := httptest.NewUnstartedServer(nil)
			ts.Config = srv
			ts.Listener = lim.listener(ts.Listener, nil)
			if useTLS {
				ts.StartTLS()
			} else {
				ts.Start()
			}
			defer ts.Close()

			var conn net.Conn
			var err error
			if useTLS {
				conn, err = tls.DialWithDialer(bigWindow, "tcp", ts.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true})
			} else {
				conn, err = bigWindow.Dial("tcp", ts.Listener.Addr().String())
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			rd := bufio.NewReader(conn)
			get := func(method string) int {
				t.Helper()
				if _, err := io.WriteString(conn, method+" /metrics HTTP/1.1\r\nHost: probe\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(rd, &http.Request{Method: method})
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				<-idle // the handler has returned and its response is done
				return len(got)
			}
			if n := get(http.MethodGet); n != len(body) {
				t.Fatalf("GET body: %d bytes, want %d", n, len(body))
			}
			server := serverSocket(t, lim) // accepted, since it answered
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				before := tcpInfo(t, server)
				n := get(method)
				after := tcpInfo(t, server)
				if want := map[string]int{http.MethodGet: len(body)}[method]; n != want {
					t.Errorf("%s body: %d bytes, want %d", method, n, want)
				}
				if segs := after.Data_segs_out - before.Data_segs_out; segs != 1 {
					t.Errorf("%s: %d data segments for one response of %d bytes, want 1", method, segs, after.Bytes_sent-before.Bytes_sent)
				}
			}
		})
	}
}

// bigWindow dials with a 1 MiB receive buffer set before the handshake, so
// that the window the client advertises at once exceeds twice the largest
// answer: the kernel bounds a segment to half the largest window the peer
// has advertised (net/ipv4/tcp_output.c, tcp_bound_to_half_wnd), and a
// default buffer's first windows would split a 60 kB answer in two.
var bigWindow = &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20) })
	if err != nil {
		return err
	}
	return serr
}}

// serverSocket is the server's side of the limiter's one connection.
func serverSocket(t *testing.T, lim *connLimiter) *net.TCPConn {
	t.Helper()
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if len(lim.conns) != 1 {
		t.Fatalf("%d connections, want 1", len(lim.conns))
	}
	for c := range lim.conns {
		return c.Conn.(*net.TCPConn)
	}
	return nil
}

func tcpInfo(t *testing.T, c *net.TCPConn) *unix.TCPInfo {
	t.Helper()
	var info *unix.TCPInfo
	control(t, c, func(fd int) (err error) {
		info, err = unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		return err
	})
	return info
}

func control(t *testing.T, c *net.TCPConn, f func(fd int) error) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ferr error
	if err := raw.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		t.Fatal(err)
	}
	if ferr != nil {
		t.Fatal(ferr)
	}
}
