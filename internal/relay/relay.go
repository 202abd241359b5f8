// Package relay is the wire format of multihop: how a client asks an
// entry gateway to forward its WireGuard UDP to an exit gateway, and the
// entry's answer. Both travel on the entry's WireGuard port beside
// WireGuard's own messages, whose first byte is 1 to 4; these start with
// 'V', which wireguard-go drops.
//
// An open is authenticated with a key only the client's device key and
// the entry's gateway key can make (X25519 of one's private key and the
// other's public key), so the entry learns that the device is one the
// peer map authorises without the control plane or the client sending
// anything else. The WireGuard session itself is with the exit: the entry
// carries its ciphertext and never holds its keys.
package relay

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.zx2c4.com/wireguard/conn"

	"veil/internal/wg"
)

// Message layouts. An open: magic, the client's public key, the time
// (Unix nanoseconds), the exit's WireGuard address (16 bytes, IPv4
// mapped) and port, then the MAC of all that. A reply: magic, the open's
// time, a status, the forwarding port, then the MAC.
const (
	OpenLen  = 4 + wg.KeyLen + 8 + 18 + macLen
	ReplyLen = 4 + 8 + 1 + 2 + macLen
	macLen   = sha256.Size
)

var (
	openMagic  = []byte{'V', 'R', 'O', 1}
	replyMagic = []byte{'V', 'R', 'A', 1}
)

// Status is the entry's answer to an open.
type Status uint8

// Values of Status.
const (
	// OK: the forwarding port is allocated.
	OK Status = iota
	// UnknownExit: the exit named is not an online gateway's WireGuard
	// endpoint, and the entry forwards to nothing else.
	UnknownExit
	// NotAllowed: the device's plan does not include multihop.
	NotAllowed
	// Busy: the entry holds as many relays as it may.
	Busy
)

// Err is the error a client shows for a status other than OK.
func (s Status) Err() error {
	switch s {
	case OK:
		return nil
	case UnknownExit:
		return errors.New("the entry gateway does not know the exit gateway (is it online?)")
	case NotAllowed:
		return errors.New("multihop needs a paid subscription")
	case Busy:
		return errors.New("the entry gateway is at its relay limit: try another entry")
	}
	return errors.New("the entry gateway refused the relay")
}

// Key is the MAC key of the messages between the holder of priv and the
// holder of peer's private key; both sides compute the same. client is
// the client's public key, which binds the key to the direction.
func Key(priv, peer, client wg.Key) ([sha256.Size]byte, error) {
	shared, err := curve25519.X25519(priv[:], peer[:])
	if err != nil {
		return [sha256.Size]byte{}, errors.New("relay: invalid public key")
	}
	h := sha256.New()
	h.Write([]byte("veil relay 1"))
	h.Write(shared)
	h.Write(client[:])
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k, nil
}

// Open asks the entry to forward to Exit.
type Open struct {
	Client wg.Key
	Time   time.Time
	Exit   netip.AddrPort
}

// IsOpen reports whether msg is shaped as an open.
func IsOpen(msg []byte) bool {
	return len(msg) == OpenLen && bytes.Equal(msg[:4], openMagic)
}

// IsReply reports whether msg is shaped as a reply.
func IsReply(msg []byte) bool {
	return len(msg) == ReplyLen && bytes.Equal(msg[:4], replyMagic)
}

// Marshal encodes o with its MAC under key.
func (o Open) Marshal(key [sha256.Size]byte) []byte {
	b := make([]byte, 0, OpenLen)
	b = append(b, openMagic...)
	b = append(b, o.Client[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(o.Time.UnixNano()))
	a := o.Exit.Addr().As16()
	b = append(b, a[:]...)
	b = binary.BigEndian.AppendUint16(b, o.Exit.Port())
	return append(b, sum(key, b)...)
}

// ParseOpen decodes an open's fields, not yet authenticated: the client's
// key says which MAC key to check it with (CheckOpen).
func ParseOpen(msg []byte) (Open, error) {
	if !IsOpen(msg) {
		return Open{}, errors.New("relay: not an open")
	}
	var o Open
	copy(o.Client[:], msg[4:36])
	o.Time = time.Unix(0, int64(binary.BigEndian.Uint64(msg[36:44])))
	a := netip.AddrFrom16([16]byte(msg[44:60])).Unmap()
	o.Exit = netip.AddrPortFrom(a, binary.BigEndian.Uint16(msg[60:62]))
	return o, nil
}

// CheckOpen reports whether the open's MAC holds under key.
func CheckOpen(msg []byte, key [sha256.Size]byte) bool {
	if !IsOpen(msg) {
		return false
	}
	n := OpenLen - macLen
	return hmac.Equal(msg[n:], sum(key, msg[:n]))
}

// Reply is the entry's answer to the open made at Time.
type Reply struct {
	Time   time.Time
	Status Status
	// Port is the entry's forwarding port for the client, when OK.
	Port uint16
}

// Marshal encodes r with its MAC under key.
func (r Reply) Marshal(key [sha256.Size]byte) []byte {
	b := make([]byte, 0, ReplyLen)
	b = append(b, replyMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixNano()))
	b = append(b, byte(r.Status))
	b = binary.BigEndian.AppendUint16(b, r.Port)
	return append(b, sum(key, b)...)
}

// ParseReply decodes a reply whose MAC holds under key.
func ParseReply(msg []byte, key [sha256.Size]byte) (Reply, error) {
	if !IsReply(msg) {
		return Reply{}, errors.New("relay: not a reply")
	}
	n := ReplyLen - macLen
	if !hmac.Equal(msg[n:], sum(key, msg[:n])) {
		return Reply{}, errors.New("relay: reply fails its MAC")
	}
	return Reply{
		Time:   time.Unix(0, int64(binary.BigEndian.Uint64(msg[4:12]))),
		Status: Status(msg[12]),
		Port:   binary.BigEndian.Uint16(msg[13:15]),
	}, nil
}

func sum(key [sha256.Size]byte, b []byte) []byte {
	m := hmac.New(sha256.New, key[:])
	m.Write(b)
	return m.Sum(nil)
}

// Filter wraps a bind's receive functions so that the datagrams match
// reports go to take, as a copy with their endpoint, and not on to
// WireGuard (their size becomes 0, which wireguard-go skips).
func Filter(fns []conn.ReceiveFunc, match func([]byte) bool, take func(msg []byte, ep conn.Endpoint)) []conn.ReceiveFunc {
	out := make([]conn.ReceiveFunc, len(fns))
	for i, fn := range fns {
		out[i] = func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
			n, err := fn(bufs, sizes, eps)
			for j := range n {
				if msg := bufs[j][:sizes[j]]; match(msg) {
					sizes[j] = 0
					take(bytes.Clone(msg), eps[j])
				}
			}
			return n, err
		}
	}
	return out
}
