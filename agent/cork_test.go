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
	"testing"

	"golang.org/x/sys/unix"
)

// TestCorkedResponseIsOneSegment serves a cached body on a real loopback
// connection, plain TCP and TLS, and reads the server socket's TCP_INFO
// (tcp(7)): a response of headers and a 13 kB body, which net/http writes
// in two write(2) calls (its 4 KiB connection buffer, then the rest), must
// leave as one data segment, and the socket must be uncorked once the
// response is done, so that nothing is held back for the 200 ms a cork
// lasts. HEAD answers go the same way with no body.
func TestCorkedResponseIsOneSegment(t *testing.T) {
	body := bytes.Repeat([]byte("azurelinux_probe_test_metric 1\n"), 13000/31)
	b := &renderedBody{
		body:        body,
		contentType: []string{"text/plain; version=0.0.4; charset=utf-8"},
		length:      []string{strconv.Itoa(len(body))},
	}
	for _, useTLS := range []bool{false, true} {
		name := "tcp"
		if useTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
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
				conn, err = tls.Dial("tcp", ts.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true})
			} else {
				conn, err = net.Dial("tcp", ts.Listener.Addr().String())
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
				if cork := corkOf(t, server); cork != 0 {
					t.Errorf("%s: TCP_CORK is %d after the response, want 0", method, cork)
				}
			}
		})
	}
}

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

func corkOf(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	var v int
	control(t, c, func(fd int) (err error) {
		v, err = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_CORK)
		return err
	})
	return v
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
