package wg

import (
	"crypto/hmac"
	"crypto/subtle"
	"encoding/binary"
	"hash"
	"time"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"
)

// The constants and message layout of WireGuard's handshake (the
// whitepaper, section 5.4), the same wireguard-go uses.
const (
	noiseConstruction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
	wgIdentifier      = "WireGuard v1 zx2c4 Jason@zx2c4.com"
	labelMAC1         = "mac1----"
	labelCookie       = "cookie--"

	// InitiationSize is the length of a handshake initiation message.
	InitiationSize = 148

	initiationType = 1
	offEphemeral   = 8
	offStatic      = 40
	offMAC1        = 116
	offMAC2        = 132
	sizeStatic     = KeyLen + chacha20poly1305.Overhead
)

// Responder opens the initiator's static key of handshake initiations
// addressed to one device, so that the device's owner can decide whether
// to admit that peer before wireguard-go sees the packet. It checks what a
// responder checks first in the Noise IK pattern: mac1, then the static
// key's AEAD. It does not check the timestamp or mac2: wireguard-go still
// does, with its replay and cookie defences, once the packet is handed on.
// A Responder is safe for concurrent use.
type Responder struct {
	priv    [KeyLen]byte
	mac1Key [blake2s.Size]byte
	// chain and hash are the handshake's state after the responder's
	// static key is mixed in: the same for every initiation.
	chain, hash [blake2s.Size]byte
}

// NewResponder returns a Responder for the device with private key priv.
func NewResponder(priv Key) *Responder {
	pub := priv.Public()
	r := &Responder{priv: priv}
	r.mac1Key = blake2s.Sum256(append([]byte(labelMAC1), pub[:]...))
	r.chain = blake2s.Sum256([]byte(noiseConstruction))
	r.hash = mixHash(mixHash(r.chain, []byte(wgIdentifier)), pub[:])
	return r
}

// IsInitiation reports whether msg has the type and size of a handshake
// initiation; it says nothing of its validity.
func IsInitiation(msg []byte) bool {
	return len(msg) == InitiationSize && binary.LittleEndian.Uint32(msg) == initiationType
}

// CheckMAC1 reports whether msg is an initiation whose mac1 is keyed to
// the Responder's public key: proof that the sender knows which device it
// addresses. It costs one BLAKE2s over 116 bytes, no public-key operation.
func (r *Responder) CheckMAC1(msg []byte) bool {
	if !IsInitiation(msg) {
		return false
	}
	want := mac(r.mac1Key[:], msg[:offMAC1])
	return subtle.ConstantTimeCompare(want[:], msg[offMAC1:offMAC1+16]) == 1
}

// Initiator returns the static public key of the peer that sent the
// initiation msg, after checking mac1 and opening the key's AEAD, as
// wireguard-go's ConsumeMessageInitiation does before it looks the peer up.
// It costs one X25519 when mac1 holds.
func (r *Responder) Initiator(msg []byte) (Key, bool) {
	if !r.CheckMAC1(msg) {
		return Key{}, false
	}
	eph := msg[offEphemeral : offEphemeral+KeyLen]
	h := mixHash(r.hash, eph)
	c := kdf1(r.chain[:], eph)
	ss, err := curve25519.X25519(r.priv[:], eph)
	if err != nil {
		return Key{}, false // a low-order point: no peer sends one
	}
	c, k := kdf2(c[:], ss)
	aead, err := chacha20poly1305.New(k[:])
	if err != nil {
		return Key{}, false
	}
	var nonce [chacha20poly1305.NonceSize]byte
	var peer Key
	if _, err := aead.Open(peer[:0], nonce[:], msg[offStatic:offStatic+sizeStatic], h[:]); err != nil {
		return Key{}, false
	}
	return peer, true
}

func mixHash(h [blake2s.Size]byte, data []byte) [blake2s.Size]byte {
	d, _ := blake2s.New256(nil)
	d.Write(h[:])
	d.Write(data)
	var out [blake2s.Size]byte
	d.Sum(out[:0])
	return out
}

// mac is WireGuard's keyed BLAKE2s-128.
func mac(key, data []byte) [16]byte {
	d, _ := blake2s.New128(key)
	d.Write(data)
	var out [16]byte
	d.Sum(out[:0])
	return out
}

func newHash() hash.Hash {
	h, _ := blake2s.New256(nil)
	return h
}

func hmacSum(key []byte, parts ...[]byte) [blake2s.Size]byte {
	m := hmac.New(newHash, key)
	for _, p := range parts {
		m.Write(p)
	}
	var out [blake2s.Size]byte
	m.Sum(out[:0])
	return out
}

// kdf1 and kdf2 are the whitepaper's HKDF over HMAC-BLAKE2s.
func kdf1(key, input []byte) [blake2s.Size]byte {
	t0 := hmacSum(key, input)
	return hmacSum(t0[:], []byte{1})
}

func kdf2(key, input []byte) (t1, t2 [blake2s.Size]byte) {
	t0 := hmacSum(key, input)
	t1 = hmacSum(t0[:], []byte{1})
	t2 = hmacSum(t0[:], t1[:], []byte{2})
	return t1, t2
}

// Initiation builds the handshake initiation that a device with private
// key priv sends to the peer peerPub, with sender index sender and the
// current time as its timestamp, as wireguard-go would. Benchmarks and
// tests use it to act as many clients at once without a device each; the
// answer, if the peer accepts, is a 92-byte response carrying sender as
// its receiver index.
func Initiation(priv, peerPub Key, sender uint32, now time.Time) ([]byte, error) {
	eph, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	msg := make([]byte, InitiationSize)
	binary.LittleEndian.PutUint32(msg, initiationType)
	binary.LittleEndian.PutUint32(msg[4:], sender)

	c := blake2s.Sum256([]byte(noiseConstruction))
	h := mixHash(mixHash(c, []byte(wgIdentifier)), peerPub[:])
	ephPub := eph.Public()
	copy(msg[offEphemeral:], ephPub[:])
	c = kdf1(c[:], ephPub[:])
	h = mixHash(h, ephPub[:])

	seal := func(key [blake2s.Size]byte, dst, plain []byte) error {
		aead, err := chacha20poly1305.New(key[:])
		if err != nil {
			return err
		}
		var nonce [chacha20poly1305.NonceSize]byte
		aead.Seal(dst[:0], nonce[:], plain, h[:])
		h = mixHash(h, dst[:len(plain)+chacha20poly1305.Overhead])
		return nil
	}
	ss, err := curve25519.X25519(eph[:], peerPub[:])
	if err != nil {
		return nil, err
	}
	c, k := kdf2(c[:], ss)
	pub := priv.Public()
	if err := seal(k, msg[offStatic:], pub[:]); err != nil {
		return nil, err
	}
	ss, err = curve25519.X25519(priv[:], peerPub[:])
	if err != nil {
		return nil, err
	}
	_, k = kdf2(c[:], ss)
	if err := seal(k, msg[offStatic+sizeStatic:], tai64n(now)); err != nil {
		return nil, err
	}
	mac1Key := blake2s.Sum256(append([]byte(labelMAC1), peerPub[:]...))
	m := mac(mac1Key[:], msg[:offMAC1])
	copy(msg[offMAC1:], m[:])
	return msg, nil
}

// tai64n is the handshake's timestamp, its low nanosecond bits cleared as
// wireguard-go's are.
func tai64n(t time.Time) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint64(b, 0x400000000000000a+uint64(t.Unix()))
	binary.BigEndian.PutUint32(b[8:], uint32(t.Nanosecond())&^(0x1000000-1))
	return b
}

// ResponseReceiver returns the receiver index of a handshake response
// (message type 2, 92 bytes), the initiator's sender index, and whether
// msg is one.
func ResponseReceiver(msg []byte) (uint32, bool) {
	if len(msg) != 92 || binary.LittleEndian.Uint32(msg) != 2 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(msg[8:]), true
}

// WithCookie answers a cookie reply (message type 3, what a device under
// load sends instead of a response) to the initiation msg from a device
// whose public key is peerPub: it returns msg with mac2 set from the
// cookie, to be sent again, as a client does.
func WithCookie(msg, reply []byte, peerPub Key) ([]byte, bool) {
	if len(reply) != 64 || binary.LittleEndian.Uint32(reply) != 3 || !IsInitiation(msg) {
		return nil, false
	}
	key := blake2s.Sum256(append([]byte(labelCookie), peerPub[:]...))
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		return nil, false
	}
	cookie, err := aead.Open(nil, reply[8:32], reply[32:64], msg[offMAC1:offMAC1+16])
	if err != nil {
		return nil, false
	}
	out := append([]byte(nil), msg...)
	m := mac(cookie, out[:offMAC2])
	copy(out[offMAC2:], m[:])
	return out, true
}

// CookieReceiver returns the receiver index of a cookie reply.
func CookieReceiver(msg []byte) (uint32, bool) {
	if len(msg) != 64 || binary.LittleEndian.Uint32(msg) != 3 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(msg[4:]), true
}
