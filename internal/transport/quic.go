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

	mu     sync.Mutex // guards the stream and its buffer
	stream *quic.SendStream
	wbuf   []byte
}

func (c *quicConn) send(msgs [][]byte) error {
	for _, m := range msgs {
		if len(m) < minMessage || len(m) > MaxMessage {
			continue
		}
		err := c.qc.SendDatagram(m)
		var tooLarge *quic.DatagramTooLargeError
		if errors.As(err, &tooLarge) {
			err = c.sendStream(m)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *quicConn) sendStream(m []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream == nil {
		s, err := c.qc.OpenUniStream()
		if err != nil {
			return err
		}
		c.stream = s
	}
	c.wbuf = appendFrame(c.wbuf[:0], m)
	c.stream.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.stream.Write(c.wbuf)
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
