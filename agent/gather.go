package agent

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// A cached body goes out in one write(2). net/http writes a response
// through a 4 KiB buffer per connection (net/http/server.go,
// newBufioWriterSize): the status line, the headers and the first 4 KiB of
// the body in one write, the rest of the body in a second. With TCP_NODELAY
// each write is a segment of its own, a wake-up of the scraper and an ACK
// back, and on loopback that per-segment work is most of what a scrape
// costs. While a body is written, its connection gathers what net/http
// hands it instead: a copy, up to gatherMax bytes, and a larger write goes
// out with what was gathered before it in one writev(2). The rest leaves
// in one write when the body is done. A body of a few tens of kilobytes
// thus costs one system call and, on loopback, one segment.

// gatherMax bounds the copy a connection holds: a gzip body of a
// thousand-series host and its headers. The buffers come from a pool and go
// back when the body is written, so an idle connection holds none; a
// client that never reads keeps one until its write deadline or until the
// limiter sheds it, at most --web.max-connections of them (4 MiB at the
// default 256).
const gatherMax = 16 << 10

var gatherBufs = sync.Pool{New: func() any { b := make([]byte, 0, gatherMax); return &b }}

// gathering is a connection's state while it gathers. Only the connection's
// own goroutine gathers (HTTP/1 serves one request at a time), but a
// *tls.Conn closed by Server.Close writes its alert from another, so the
// state is behind a lock.
type gathering struct {
	mu   sync.Mutex
	buf  *[]byte // nil when not gathering
	vec  [2][]byte
	bufs net.Buffers // over vec, here so that a writev allocates nothing
}

// Write writes p to the connection, or gathers it.
func (c *limitedConn) Write(p []byte) (int, error) {
	g := &c.gather
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.buf == nil {
		return c.Conn.Write(p)
	}
	b := *g.buf
	if len(b)+len(p) <= cap(b) {
		*g.buf = append(b, p...)
		return len(p), nil
	}
	*g.buf = b[:0]
	if len(b) == 0 {
		return c.Conn.Write(p)
	}
	g.vec = [2][]byte{b, p}
	g.bufs = g.vec[:]
	n, err := g.bufs.WriteTo(c.Conn)
	g.vec, g.bufs = [2][]byte{}, nil
	return int(max(n-int64(len(b)), 0)), err
}

// startGather makes the connection gather its writes.
func (c *limitedConn) startGather() {
	c.gather.mu.Lock()
	defer c.gather.mu.Unlock()
	if c.gather.buf == nil {
		c.gather.buf = gatherBufs.Get().(*[]byte)
	}
}

// endGather writes what was gathered and stops gathering.
func (c *limitedConn) endGather() error {
	g := &c.gather
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.buf == nil {
		return nil
	}
	var err error
	if b := *g.buf; len(b) > 0 {
		_, err = c.Conn.Write(b)
	}
	*g.buf = (*g.buf)[:0]
	gatherBufs.Put(g.buf)
	g.buf = nil
	return err
}

// connKey is the request context's key for the *limitedConn a request
// arrived on.
type connKey struct{}

// withConn is the server's ConnContext hook: it puts the *limitedConn
// under c (c itself, or the connection under a *tls.Conn) in the
// connection's context.
func withConn(ctx context.Context, c net.Conn) context.Context {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	if lc, ok := c.(*limitedConn); ok {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

// writeWhole writes body to w, and flushes it, with the connection
// gathering. On HTTP/2, whose frames another goroutine writes, it is a
// plain write.
func writeWhole(w http.ResponseWriter, r *http.Request, body []byte) {
	lc, _ := r.Context().Value(connKey{}).(*limitedConn)
	if lc == nil || r.ProtoMajor != 1 {
		w.Write(body)
		return
	}
	lc.startGather()
	defer lc.endGather()
	if _, err := w.Write(body); err == nil {
		http.NewResponseController(w).Flush()
	}
}
