package resolver

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Timeouts and limits of a DNS over TLS connection.
const (
	dotHandshakeTimeout = 10 * time.Second
	// dotServerIdle is how long a connection may wait for its next
	// query (RFC 7858 section 3.4 leaves it to the server; RFC 7766
	// suggests seconds, clients reconnect cheaply with session tickets).
	dotServerIdle   = 30 * time.Second
	dotWriteTimeout = 10 * time.Second
	// dotPipeline is how many queries of one connection are answered
	// at once (RFC 7766 section 6.2.1.1: pipelined queries are answered
	// concurrently and out of order).
	dotPipeline = 16
)

// ServeDoT answers DNS over TLS (RFC 7858) on the connections ln
// accepts until ctx is done, then closes ln and every connection and
// returns nil; it returns early only if accepting fails for good. Each
// message is a two-byte length and a DNS message; a connection sending
// anything else, a query longer than 4096 bytes, or nothing for 30
// seconds is closed.
func (e *Encrypted) ServeDoT(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of descriptors and the like: wait rather than spin.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		_, release, ok := e.admit(c.RemoteAddr())
		if !ok {
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer release()
			e.serveDoTConn(ctx, c)
		}()
	}
}

// serveDoTConn answers the queries of one connection.
func (e *Encrypted) serveDoTConn(ctx context.Context, c net.Conn) {
	tc := tls.Server(c, e.tlsDoT)
	defer tc.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	hctx, cancel := context.WithTimeout(ctx, dotHandshakeTimeout)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		return
	}
	client, _ := clientAddr(c.RemoteAddr())
	var mask uint64
	if e.public {
		if mask, err = e.hostMask(tc.ConnectionState().ServerName); err != nil {
			return
		}
	}
	var (
		mu      sync.Mutex // one answer written at a time
		queries sync.WaitGroup
		inUse   = make(chan struct{}, dotPipeline)
	)
	defer queries.Wait()
	send := func(b []byte) error {
		if len(b) > 0xffff {
			return errors.New("answer too long for a stream")
		}
		frame := make([]byte, 2+len(b))
		binary.BigEndian.PutUint16(frame, uint16(len(b)))
		copy(frame[2:], b)
		mu.Lock()
		defer mu.Unlock()
		tc.SetWriteDeadline(time.Now().Add(dotWriteTimeout))
		_, err := tc.Write(frame)
		return err
	}
	var size [2]byte
	for {
		tc.SetReadDeadline(time.Now().Add(dotServerIdle))
		if _, err := io.ReadFull(tc, size[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(size[:]))
		if n > maxQuery {
			return
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(tc, buf); err != nil {
			return
		}
		req, err := e.r.parseQuery(buf)
		if err != nil {
			return
		}
		inUse <- struct{}{}
		queries.Add(1)
		go func() {
			defer queries.Done()
			defer func() { <-inUse }()
			w := newClientWriter(c.LocalAddr(), client, send)
			w.chosen, w.mask = e.public, mask
			e.r.ServeDNS(w, req)
			if !w.sent {
				// ServeDNS keeps silent over the client's rate limit, as
				// UDP needs; on a stream that would only leave the client
				// waiting for its timeout.
				m := new(dns.Msg)
				m.SetRcode(req, dns.RcodeRefused)
				w.WriteMsg(m)
			}
		}()
	}
}
