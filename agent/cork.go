package agent

import (
	"context"
	"net"
	"net/http"
	"syscall"
)

// A response written corked goes out as full segments. net/http writes a
// response through a 4 KiB buffer (net/http/server.go, newBufioWriterSize
// for each connection): the status line, the headers and the first 4 KiB
// of the body in one write(2), the rest of the body in another. Each write
// on its own is a segment sent, a wake-up of the scraper and an ACK back.
// With TCP_CORK set (tcp(7)) the kernel queues them and sends full segments
// only, and the rest when the cork is taken out: a body that fits one
// segment (64 KiB on loopback) goes out as one. On Ethernet, where a
// segment is 1448 bytes, it saves the short segment at the end of each
// write. The cost is two setsockopt(2) calls per response.

// corker sets and clears TCP_CORK on one connection's socket. Its two
// functions are made once per connection, so that a response allocates
// nothing for them; a connection serves one HTTP/1 request at a time, so
// err needs no lock.
type corker struct {
	raw     syscall.RawConn
	on, off func(fd uintptr)
	err     error
}

func newCorker(c *net.TCPConn) *corker {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	k := &corker{raw: raw}
	k.on = func(fd uintptr) { k.err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, 1) }
	k.off = func(fd uintptr) { k.err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, 0) }
	return k
}

// set runs f on the socket (Control holds the descriptor open meanwhile, so
// a close by the limiter cannot hand the number to another socket) and
// reports whether the setsockopt succeeded.
func (k *corker) set(f func(fd uintptr)) bool {
	k.err = nil
	return k.raw.Control(f) == nil && k.err == nil
}

// connKey is the request context's key for the *corker of the connection a
// request arrived on.
type connKey struct{}

// withConn is the server's ConnContext hook: it puts the corker of the TCP
// connection under c (c itself, or the connection under a *tls.Conn) in
// the connection's context.
func withConn(ctx context.Context, c net.Conn) context.Context {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	if lc, ok := c.(*limitedConn); ok && lc.corker != nil {
		return context.WithValue(ctx, connKey{}, lc.corker)
	}
	return ctx
}

// writeCorked writes body to w and flushes it to the connection with the
// socket corked. On HTTP/2 (whose frames another goroutine writes), on a
// connection that is not TCP, or where the socket refuses the option, it
// is a plain write.
func writeCorked(w http.ResponseWriter, r *http.Request, body []byte) {
	k, _ := r.Context().Value(connKey{}).(*corker)
	if k == nil || r.ProtoMajor != 1 || !k.set(k.on) {
		w.Write(body)
		return
	}
	// The cork comes out whatever happens: a corked socket holds a
	// partial segment for up to 200 ms.
	defer k.set(k.off)
	if _, err := w.Write(body); err == nil {
		http.NewResponseController(w).Flush()
	}
}
