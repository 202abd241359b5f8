package client

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"veil/internal/apitypes"
	"veil/internal/relay"
	"veil/internal/wg"
)

func TestPickHops(t *testing.T) {
	srv := func(name, loc string, load int) apitypes.Server {
		return apitypes.Server{Name: name, Location: loc, Country: loc[:2], Online: true, PublicKey: "k", Load: load}
	}
	servers := []apitypes.Server{srv("se1", "se-sto", 10), srv("se2", "se-sto", 50), srv("ch1", "ch-zrh", 0)}
	for _, tc := range []struct {
		via, location, entry, exit string
		err                        error
	}{
		{"ch1", "se", "ch1", "se1", nil},
		{"se", "se", "se1", "se2", nil}, // the exit is another of the country
		{"se", "", "se1", "ch1", nil},
		{"ch1", "ch", "", "", ErrSameHop},
		{"de", "se", "", "", ErrNoServer},
		{"ch1", "de", "", "", ErrNoServer},
	} {
		t.Run(tc.via+"->"+tc.location, func(t *testing.T) {
			entry, exit, err := PickHops(servers, tc.via, tc.location)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || entry.Name != tc.entry || exit.Name != tc.exit {
				t.Fatalf("PickHops = %s, %s, %v; want %s, %s", entry.Name, exit.Name, err, tc.entry, tc.exit)
			}
		})
	}
}

// fakeEntry answers relay opens for one exit on loopback and forwards as
// an entry gateway does, counting what it carries.
type fakeEntry struct {
	priv    wg.Key
	sock    *net.UDPConn
	server  apitypes.Server
	carried atomic.Int64
}

func newFakeEntry(t *testing.T, exit netip.AddrPort) *fakeEntry {
	t.Helper()
	priv, _ := wg.GenerateKey()
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	e := &fakeEntry{priv: priv, sock: sock}
	e.server = apitypes.Server{Name: "entry", Location: "ch-zrh", Country: "ch", Online: true,
		Endpoint: sock.LocalAddr().String(), PublicKey: priv.Public().Base64()}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := sock.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			o, err := relay.ParseOpen(buf[:n])
			if err != nil {
				continue
			}
			key, _ := relay.Key(priv, o.Client, o.Client)
			if !relay.CheckOpen(buf[:n], key) || o.Exit != exit {
				continue
			}
			fwd, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				continue
			}
			t.Cleanup(func() { fwd.Close() })
			go func() {
				b := make([]byte, 65535)
				for {
					n, src, err := fwd.ReadFromUDPAddrPort(b)
					if err != nil {
						return
					}
					e.carried.Add(1)
					if src == exit {
						fwd.WriteToUDPAddrPort(b[:n], from)
					} else if src == from {
						fwd.WriteToUDPAddrPort(b[:n], exit)
					}
				}
			}()
			port := uint16(fwd.LocalAddr().(*net.UDPAddr).Port)
			sock.WriteToUDPAddrPort(relay.Reply{Time: o.Time, Port: port}.Marshal(key), from)
		}
	}()
	return e
}

// TestMultihopProxy carries the tunnel to an exit through an entry's
// relay: the exit answers, the entry carried the packets, and status
// names the entry.
func TestMultihopProxy(t *testing.T) {
	g := newFakeGateway(t)
	st := testState(t)
	g.allow(t, st)
	exitEP := netip.MustParseAddrPort(g.server.Endpoint)
	entry := newFakeEntry(t, exitEP)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tun, err := Up(ctx, TunnelConfig{State: st, Server: g.server, Via: &entry.server, Mode: ModeProxy,
		SOCKS: "127.0.0.1:0", HTTPProxy: "off", Transport: "auto"})
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Cleanup(func() { tun.Close() })
	s := tun.Status()
	ep := netip.MustParseAddrPort(s.Endpoint)
	if s.Via != "entry" || s.Gateway != "test-1" || s.Transport != "udp" || s.HandshakeAge < 0 ||
		ep.String() == entry.server.Endpoint || ep == exitEP {
		t.Fatalf("status = %+v; want the entry's relay port as endpoint", s)
	}
	body, err := get(socksClient(t, tun.SOCKSAddr()), "http://"+gw4+"/")
	if err != nil || body != "10.64.0.2" {
		t.Fatalf("GET through the relay = %q, %v", body, err)
	}
	if entry.carried.Load() == 0 {
		t.Fatal("the entry carried nothing: the tunnel went around it")
	}
}

func TestMultihopRefusals(t *testing.T) {
	g := newFakeGateway(t)
	st := testState(t)
	for _, tc := range []struct {
		name string
		cfg  TunnelConfig
	}{
		{"same gateway", TunnelConfig{Via: &g.server}},
		{"tls", TunnelConfig{Via: &apitypes.Server{Name: "other", PublicKey: g.server.PublicKey, Endpoint: "127.0.0.1:" + strconv.Itoa(g.port)}, Transport: "tls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.State, cfg.Server, cfg.Mode, cfg.SOCKS, cfg.HTTPProxy = st, g.server, ModeProxy, "off", "off"
			if _, err := Up(context.Background(), cfg); err == nil {
				t.Fatal("Up succeeded")
			}
		})
	}
	// An entry that never answers: Up fails with a reason, in time.
	silent, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer silent.Close()
	k, _ := wg.GenerateKey()
	via := apitypes.Server{Name: "silent", Endpoint: silent.LocalAddr().String(), PublicKey: k.Public().Base64()}
	g.allow(t, st)
	_, err := Up(context.Background(), TunnelConfig{State: st, Server: g.server, Via: &via, Mode: ModeProxy,
		SOCKS: "off", HTTPProxy: "off", HandshakeTimeout: 2 * time.Second})
	if err == nil {
		t.Fatal("Up through a silent entry succeeded")
	}
}
