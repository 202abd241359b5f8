package resolver

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Upstream UDP sockets are pooled: opening, connecting and closing a socket
// per query cost more than the query itself. What a fresh socket per query
// gave against spoofing is kept as far as a pool allows:
//
//   - every socket is bound to its own random port, and each query goes
//     out of a socket picked at random from poolSockets;
//   - a socket is retired after socketUses queries (and when idle), so a
//     port learnt by watching one query is soon useless;
//   - every query has a random ID and 0x20 case; a datagram is delivered
//     only to the query whose server address and port it came from and
//     whose ID it carries, and the question must then match exactly.
//
// Anything else a socket receives is dropped without affecting any query.
const (
	poolSockets = 32
	socketUses  = 100
	socketIdle  = 10 * time.Second
)

var errPoolClosed = errors.New("upstream socket closed")

// udpPool is a set of upstream UDP sockets of one address family.
type udpPool struct {
	network string // "udp4" or "udp6"
	mu      sync.Mutex
	slots   [poolSockets]*poolSocket
	maxUses int // socketUses; a field so tests can retire sooner
	// listen opens a socket on a random port; a field so tests can count.
	listen func() (*net.UDPConn, error)
}

func newUDPPool(network string) *udpPool {
	p := &udpPool{network: network, maxUses: socketUses}
	p.listen = p.listenRandomPort
	return p
}

// poolSocket is one upstream socket and the queries waiting on it.
type poolSocket struct {
	pool    *udpPool
	conn    *net.UDPConn
	mu      sync.Mutex
	pending map[pendingKey]*pendingQuery
	uses    int  // queries given this socket, ever
	active  int  // queries given this socket and not yet released
	retired bool // no new queries; closed when the last one ends
	idle    *time.Timer
}

type pendingKey struct {
	id     uint16
	server netip.AddrPort
}

type pendingQuery struct {
	q    *dns.Msg
	done chan pendingResult // buffered: the reader never blocks
}

type pendingResult struct {
	resp *dns.Msg
	err  error
}

// listenRandomPort binds an unconnected socket to a random port above
// 1023, falling back to a kernel-chosen (also random) port.
func (p *udpPool) listenRandomPort() (*net.UDPConn, error) {
	for range 8 {
		port := 1024 + rand.IntN(65536-1024)
		c, err := net.ListenUDP(p.network, &net.UDPAddr{Port: port})
		if err == nil {
			return c, nil
		}
	}
	return net.ListenUDP(p.network, &net.UDPAddr{})
}

// acquire returns a socket for one more query, opening one if needed.
func (p *udpPool) acquire() (*poolSocket, error) {
	i := rand.IntN(poolSockets)
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.slots[i]
	if s != nil {
		s.mu.Lock()
		s.uses++
		s.active++
		if s.uses >= p.maxUses {
			s.retired = true
			p.slots[i] = nil // the next query here opens a new socket
		}
		if s.idle != nil {
			s.idle.Stop()
		}
		s.mu.Unlock()
		return s, nil
	}
	c, err := p.listen()
	if err != nil {
		return nil, err
	}
	s = &poolSocket{pool: p, conn: c, pending: make(map[pendingKey]*pendingQuery), uses: 1, active: 1}
	if p.maxUses > 1 {
		p.slots[i] = s
	} else {
		s.retired = true
	}
	go s.read()
	return s, nil
}

// exchange sends q to server from s and waits for its response.
func (s *poolSocket) exchange(ctx context.Context, server netip.AddrPort, q *dns.Msg) (*dns.Msg, error) {
	pq := &pendingQuery{q: q, done: make(chan pendingResult, 1)}
	s.mu.Lock()
	for {
		if _, taken := s.pending[pendingKey{q.Id, server}]; !taken {
			break
		}
		q.Id = uint16(rand.Uint32())
	}
	key := pendingKey{q.Id, server}
	s.pending[key] = pq
	s.mu.Unlock()
	defer s.release(key)
	b, err := q.Pack()
	if err != nil {
		return nil, err
	}
	if _, err := s.conn.WriteToUDPAddrPort(b, server); err != nil {
		return nil, err
	}
	select {
	case res := <-pq.done:
		return res.resp, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// release forgets a finished query, and closes a retired socket once its
// last query is done, or an idle one after socketIdle.
func (s *poolSocket) release(key pendingKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, key)
	s.active--
	if s.active > 0 {
		return
	}
	if s.retired {
		s.conn.Close()
		return
	}
	if s.idle == nil {
		s.idle = time.AfterFunc(socketIdle, s.closeIfIdle)
	} else {
		s.idle.Reset(socketIdle)
	}
}

// closeIfIdle retires and closes s if no query has used it since its timer
// was set.
func (s *poolSocket) closeIfIdle() {
	p := s.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active > 0 || s.retired {
		return
	}
	s.retired = true
	for i := range p.slots {
		if p.slots[i] == s {
			p.slots[i] = nil
		}
	}
	s.conn.Close()
}

// read delivers each datagram to the query it answers, until the socket
// is closed. Datagrams from an address no query was sent to, with an ID no
// query to that address has, or that do not parse, are dropped. A response
// from the right address with the right ID but another question (a case
// pattern not echoed, say) fails that query, as a connected socket's
// exchange did.
func (s *poolSocket) read() {
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n < 12 {
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		key := pendingKey{uint16(buf[0])<<8 | uint16(buf[1]), from}
		s.mu.Lock()
		pq := s.pending[key]
		s.mu.Unlock()
		if pq == nil {
			continue
		}
		resp := new(dns.Msg)
		if err := resp.Unpack(buf[:n]); err != nil {
			continue
		}
		res := pendingResult{resp: resp}
		if !matches(pq.q, resp) {
			res = pendingResult{err: errMismatch}
		}
		select {
		case pq.done <- res:
		default: // already answered: a duplicate or a spoof after the fact
		}
	}
}
