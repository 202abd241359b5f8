package wg

import (
	"bytes"
	"net"
	"sync"

	"golang.org/x/time/rate"
	"golang.zx2c4.com/wireguard/conn"
)

// Admitter decides which initiators become peers of a device whose peers
// are installed on demand (DeviceConfig.Admit).
type Admitter interface {
	// Admit is called with the static key of an initiator whose handshake
	// initiation opened (mac1 and the static key's AEAD hold) and whom
	// the device does not hold. It adds the peer with Device.SetPeer if
	// it may, before it returns; the initiation is then handed to
	// wireguard-go, so the first handshake succeeds without a retry. It
	// runs apart from wireguard-go's receive path and may block on the
	// device's configuration lock.
	Admit(Key)
}

// The check's cost is bounded, since anyone who knows the device's public
// key can send initiations that pass mac1: one checker goroutine (at most
// one core), at most checkRate checks a second, and admitQueue waiting.
// Beyond that, initiations go to wireguard-go unchecked (see receive):
// a held peer's rekey still succeeds there, under wireguard-go's own
// cookie defence; a new device's waits for its client to retry.
const (
	admitQueue = 1024
	checkRate  = 10000
	checkBurst = 1000
)

// admitBind wraps a bind so that every handshake initiation is checked
// before wireguard-go sees it: one whose initiator the device does not
// hold is held back until the Admitter has decided, then handed on
// through an extra receive function. Other packets pass untouched.
type admitBind struct {
	conn.Bind
	resp  *Responder
	admit Admitter
	// held reports whether the device holds a peer; set before the
	// device comes up.
	held func(Key) bool

	limit *rate.Limiter

	mu     sync.Mutex
	closed chan struct{} // closed by Close; a new one per Open
}

// pending is an initiation held back for the check.
type pending struct {
	msg []byte
	ep  conn.Endpoint
}

func newAdmitBind(b conn.Bind, priv Key, a Admitter) *admitBind {
	return &admitBind{Bind: b, resp: NewResponder(priv), admit: a, limit: rate.NewLimiter(checkRate, checkBurst)}
}

// Open opens the wrapped bind and starts the checkers.
func (b *admitBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, port, err := b.Bind.Open(port)
	if err != nil {
		return nil, 0, err
	}
	closed := make(chan struct{})
	queue := make(chan pending, admitQueue)
	ready := make(chan pending, admitQueue)
	b.mu.Lock()
	b.closed = closed
	b.mu.Unlock()
	go b.check(closed, queue, ready)
	out := make([]conn.ReceiveFunc, 0, len(fns)+1)
	for _, fn := range fns {
		out = append(out, b.receive(fn, queue))
	}
	return append(out, handOn(closed, ready)), port, nil
}

// Close stops the checkers, dropping what they hold, and closes the bind.
func (b *admitBind) Close() error {
	b.mu.Lock()
	if b.closed != nil {
		close(b.closed)
		b.closed = nil
	}
	b.mu.Unlock()
	return b.Bind.Close()
}

// receive wraps fn: initiations leave the batch for the check queue.
func (b *admitBind) receive(fn conn.ReceiveFunc, queue chan<- pending) conn.ReceiveFunc {
	return func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		n, err := fn(bufs, sizes, eps)
		for i := range n {
			msg := bufs[i][:sizes[i]]
			if !IsInitiation(msg) {
				continue
			}
			if !b.resp.CheckMAC1(msg) {
				sizes[i] = 0 // wireguard-go would drop it as well
				continue
			}
			if !b.limit.Allow() {
				continue // over budget: to wireguard-go unchecked
			}
			select {
			case queue <- pending{msg: bytes.Clone(msg), ep: eps[i]}:
				sizes[i] = 0 // wireguard-go skips it; handOn brings it back
			default: // the check is saturated: to wireguard-go unchecked
			}
		}
		return n, err
	}
}

// check opens each queued initiation, lets the Admitter decide on an
// initiator the device does not hold, and hands on the initiations of
// held peers. An unknown key costs this check and nothing else.
func (b *admitBind) check(closed <-chan struct{}, queue <-chan pending, ready chan<- pending) {
	for {
		var p pending
		select {
		case <-closed:
			return
		case p = <-queue:
		}
		key, ok := b.resp.Initiator(p.msg)
		if !ok {
			continue
		}
		if !b.held(key) {
			b.admit.Admit(key)
			if !b.held(key) {
				continue
			}
		}
		select {
		case ready <- p:
		case <-closed:
			return
		}
	}
}

// handOn is the extra receive function through which checked initiations
// reach wireguard-go.
func handOn(closed <-chan struct{}, ready <-chan pending) conn.ReceiveFunc {
	return func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		select {
		case <-closed:
			return 0, net.ErrClosed
		case p := <-ready:
			sizes[0] = copy(bufs[0], p.msg)
			eps[0] = p.ep
			return 1, nil
		}
	}
}
