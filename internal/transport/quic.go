package transport

import (
	"bufio"
	"errors"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"golang.zx2c4.com/wireguard/conn"
)

// ALPNQUIC is the protocol a QUIC transport connection negotiates:
// HTTP/3's, so that the connection looks like a browser's.
const ALPNQUIC = "h3"

// quicConfig is both sides' QUIC configuration: datagrams on, no
// bidirectional streams, one unidirectional stream each way for the
// messages too large for a datagram.
func quicConfig(client bool) *quic.Config {
	c := &quic.Config{
		EnableDatagrams:       true,
		MaxIdleTimeout:        idleTimeout,
		MaxIncomingStreams:    -1,
		MaxIncomingUniStreams: 1,
		HandshakeIdleTimeout:  handshakeTimeout,
	}
	if client {
		c.KeepAlivePeriod = 15 * time.Second
	}
	return c
}

// quicConn carries WireGuard messages on a QUIC connection: each in a
// DATAGRAM frame (RFC 9221) when it fits one packet, else framed on a
// unidirectional stream opened the first time one does not fit (a full-
// size tunnel packet on a path with a 1500-byte MTU does not).
type quicConn struct {
	qc *quic.Conn

	// maxDatagram is the largest datagram payload QUIC last said it
	// takes, zero before it said; larger messages go straight to the
	// stream. It is forgotten every datagramRecheck, since path MTU
	// discovery may raise it.
	dmu         sync.Mutex
	maxDatagram int
	checkedAt   time.Time

	mu     sync.Mutex // guards the stream and its buffer
	stream *quic.SendStream
	wbuf   []byte
}

// datagramRecheck is how often a message too large for the last known
// datagram size tries a datagram again.
const datagramRecheck = 10 * time.Second

func (c *quicConn) send(msgs [][]byte) error {
	c.dmu.Lock()
	limit := c.maxDatagram
	if limit > 0 && time.Since(c.checkedAt) > datagramRecheck {
		limit, c.maxDatagram = 0, 0
	}
	c.dmu.Unlock()
	var big [][]byte
	for _, m := range msgs {
		if len(m) < minMessage || len(m) > MaxMessage {
			continue
		}
		if limit > 0 && len(m) > limit {
			big = append(big, m)
			continue
		}
		err := c.qc.SendDatagram(m)
		var tooLarge *quic.DatagramTooLargeError
		if errors.As(err, &tooLarge) {
			limit = int(tooLarge.MaxDatagramPayloadSize)
			c.dmu.Lock()
			c.maxDatagram, c.checkedAt = limit, time.Now()
			c.dmu.Unlock()
			big = append(big, m)
			continue
		}
		if err != nil {
			return err
		}
	}
	if len(big) == 0 {
		return nil
	}
	return c.sendStream(big)
}

// sendStream writes msgs on the stream, framed, in one write.
func (c *quicConn) sendStream(msgs [][]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream == nil {
		s, err := c.qc.OpenUniStream()
		if err != nil {
			return err
		}
		c.stream = s
	}
	b := c.wbuf[:0]
	for _, m := range msgs {
		b = appendFrame(b, m)
	}
	c.wbuf = b
	c.stream.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.stream.Write(b)
	return err
}

func (c *quicConn) close() { c.qc.CloseWithError(0, "") }

// readLoop delivers the connection's datagrams and the messages of the
// peer's stream with ep until the connection ends or q closes.
func (c *quicConn) readLoop(q *queue, ep conn.Endpoint) {
	ctx := c.qc.Context()
	go func() {
		// At most one stream (MaxIncomingUniStreams).
		s, err := c.qc.AcceptUniStream(ctx)
		if err != nil {
			return
		}
		r := bufio.NewReaderSize(s, 64<<10)
		for {
			bp := bufPool.Get().(*[]byte)
			n, err := readFrame(r, *bp)
			if err != nil {
				bufPool.Put(bp)
				c.close() // a bad frame ends the connection
				return
			}
			if !q.deliver(packet{data: (*bp)[:n], pooled: bp, ep: ep}) {
				return
			}
		}
	}()
	for {
		d, err := c.qc.ReceiveDatagram(ctx)
		if err != nil {
			return
		}
		if len(d) < minMessage || len(d) > MaxMessage {
			continue
		}
		if !q.deliver(packet{data: d, ep: ep}) {
			c.close()
			return
		}
	}
}

// quicCloser closes a client's QUIC connection and its socket.
type quicCloser struct {
	*quicConn
	tr *quic.Transport
}

func (c quicCloser) close() {
	c.quicConn.close()
	c.tr.Close()
	c.tr.Conn.Close()
}
