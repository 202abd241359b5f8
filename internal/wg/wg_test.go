package wg

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestKey(t *testing.T) {
	priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if priv.IsZero() || priv.Public().IsZero() || priv.Public() == priv {
		t.Fatal("generated key or its public key is degenerate")
	}
	// RFC 7748 section 6.1 test vector (Alice).
	alice := mustKey(t, "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=")
	if got, want := alice.Public().Base64(), "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="; got != want {
		t.Fatalf("Public() = %s, want %s", got, want)
	}
	tests := []struct {
		in string
		ok bool
	}{
		{alice.Base64(), true},
		{"", false},
		{"not base64!", false},
		{"AAAA", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			k, err := ParseKey(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("ParseKey(%q) error %v, want ok=%v", tt.in, err, tt.ok)
			}
			if tt.ok && k.Base64() != tt.in {
				t.Fatalf("round trip gave %s", k.Base64())
			}
		})
	}
}

func TestKeyRedacted(t *testing.T) {
	k := mustKey(t, "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=")
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "key", k)
	out := b.String() + fmt.Sprint(k) + fmt.Sprintf("%v %s", k, k)
	if strings.Contains(out, k.Base64()) || strings.Contains(out, k.hex()) {
		t.Fatalf("key disclosed: %s", out)
	}
}

func mustKey(t testing.TB, s string) Key {
	t.Helper()
	k, err := ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// node is one end of a test tunnel.
type node struct {
	dev  *Device
	ns   *Netstack
	priv Key
	addr netip.Addr
}

func newNode(t testing.TB, addr string) *node {
	t.Helper()
	return newNodeAdmit(t, addr, nil)
}

// newNodeAdmit is newNode whose device admits peers through a, if set.
func newNodeAdmit(t testing.TB, addr string, a Admitter) *node {
	t.Helper()
	priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr(addr)
	ns, err := NewNetstack(NetstackConfig{Addresses: []netip.Addr{ip}})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := NewDevice(DeviceConfig{TUN: ns, PrivateKey: priv, Admit: a})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	return &node{dev: dev, ns: ns, priv: priv, addr: ip}
}

func TestDeviceNetstack(t *testing.T) {
	a := newNode(t, "10.9.0.1")
	b := newNode(t, "10.9.0.2")
	portA, err := a.dev.Port()
	if err != nil || portA == 0 {
		t.Fatalf("Port() = %d, %v", portA, err)
	}
	if err := a.dev.SetPeer(Peer{PublicKey: b.priv.Public(), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.9.0.2/32")}}); err != nil {
		t.Fatal(err)
	}
	if err := b.dev.SetPeer(Peer{
		PublicKey:  a.priv.Public(),
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.9.0.1/32")},
		Endpoint:   netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(portA)),
	}); err != nil {
		t.Fatal(err)
	}

	echoThrough(t, a, b)

	st, err := a.dev.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Peers != 1 || st.RxBytes == 0 || st.TxBytes == 0 {
		t.Fatalf("stats = %+v, want one peer with traffic", st)
	}
	peers, err := b.dev.Peers()
	if err != nil || len(peers) != 1 || peers[0].PublicKey != a.priv.Public() || peers[0].LastHandshake.IsZero() {
		t.Fatalf("Peers() = %+v, %v", peers, err)
	}

	if err := a.dev.RemovePeer(b.priv.Public()); err != nil {
		t.Fatal(err)
	}
	if err := a.dev.RemovePeer(b.priv.Public()); err != nil {
		t.Fatalf("removing an absent peer: %v", err)
	}
	if st, _ := a.dev.Stats(); st.Peers != 0 {
		t.Fatalf("after removal, %d peers", st.Peers)
	}
}

// echoThrough sends "hello" from b to an echo server on a's tunnel
// address, through the tunnel, and checks it comes back.
func echoThrough(t testing.TB, a, b *node) {
	t.Helper()
	ln, err := a.ns.ListenTCP(netip.AddrPortFrom(a.addr, 7))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := b.ns.DialContext(ctx, "tcp", netip.AddrPortFrom(a.addr, 7).String())
	if err != nil {
		t.Fatalf("dial through tunnel: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo = %q, %v", buf, err)
	}
}
