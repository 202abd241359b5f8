package wg

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// SetPresharedKey sets the pre-shared key of a peer the device holds; the
// zero key removes it. Sessions in progress keep their keys: the next
// handshake mixes the new one in, and fails unless the peer has the same.
// A peer the device does not hold is not added.
func (d *Device) SetPresharedKey(peer, psk Key) error {
	conf := "public_key=" + peer.hex() + "\nupdate_only=true\npreshared_key=" + psk.hex() + "\n"
	if err := d.dev.IpcSet(conf); err != nil {
		return errors.New("setting a pre-shared key: configuration error")
	}
	return nil
}

// PresharedKey returns the pre-shared key the device holds for peer: the
// zero key if it has none, ok false if it does not hold the peer.
func (d *Device) PresharedKey(peer Key) (psk Key, ok bool, err error) {
	s, err := d.dev.IpcGet()
	if err != nil {
		return Key{}, false, fmt.Errorf("reading wireguard state: %w", err)
	}
	sc := bufio.NewScanner(strings.NewReader(s))
	in := false
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch {
		case k == "public_key":
			in = v == peer.hex()
			ok = ok || in
		case k == "preshared_key" && in:
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != KeyLen {
				return Key{}, false, errors.New("reading wireguard state: bad pre-shared key")
			}
			return Key(b), true, nil
		}
	}
	return Key{}, ok, nil
}
