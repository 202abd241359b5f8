package transport

import (
	"bufio"
	"net"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

// Timeouts of a stream connection.
const (
	// writeTimeout bounds one write: a peer that stops reading loses its
	// connection instead of holding wireguard-go's sender.
	writeTimeout = 10 * time.Second
	// idleTimeout is how long a stream may stay silent; the client's
	// WireGuard keepalive (25 s) keeps a live one well inside it.
	idleTimeout = 3 * time.Minute
)

// streamConn carries length-prefixed WireGuard messages on a reliable
// byte stream (TLS over TCP).
type streamConn struct {
	c net.Conn
	r *bufio.Reader

	mu   sync.Mutex // one writer at a time
	wbuf []byte
}

func newStreamConn(c net.Conn, r *bufio.Reader) *streamConn {
	if r == nil {
		r = bufio.NewReaderSize(c, 64<<10)
	}
	return &streamConn{c: c, r: r}
}

// send writes msgs as one write, so that a batch costs one TLS record
// where it fits.
func (s *streamConn) send(msgs [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.wbuf[:0]
	for _, m := range msgs {
		if len(m) < minMessage || len(m) > MaxMessage {
			continue // not WireGuard's; never sent
		}
		b = appendFrame(b, m)
	}
	s.wbuf = b
	if len(b) == 0 {
		return nil
	}
	s.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := s.c.Write(b); err != nil {
		s.c.Close()
		return err
	}
	return nil
}

func (s *streamConn) close() { s.c.Close() }

// readLoop delivers the stream's messages with ep until the stream ends,
// sends a bad frame, stays silent past idleTimeout, or q closes.
func (s *streamConn) readLoop(q *queue, ep conn.Endpoint) {
	last := time.Time{}
	for {
		// Renewing the deadline every frame would cost a timer update per
		// packet; once a second is as good.
		if now := time.Now(); now.Sub(last) > time.Second {
			s.c.SetReadDeadline(now.Add(idleTimeout))
			last = now
		}
		bp := bufPool.Get().(*[]byte)
		n, err := readFrame(s.r, *bp)
		if err != nil {
			bufPool.Put(bp)
			return
		}
		if !q.deliver(packet{data: (*bp)[:n], pooled: bp, ep: ep}) {
			return
		}
	}
}
