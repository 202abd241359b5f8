package client

import (
	"bufio"
	"bytes"
	"net/netip"
	"testing"
)

func TestParseUDPHeader(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::1")
	for _, tc := range []struct {
		name    string
		d       []byte
		host    string
		port    uint16
		payload string
		bad     bool
	}{
		{name: "ipv4", d: []byte{0, 0, 0, 1, 192, 0, 2, 7, 0, 53, 'h', 'i'}, host: "192.0.2.7", port: 53, payload: "hi"},
		{name: "ipv6", d: append(append([]byte{0, 0, 0, 4}, v6.AsSlice()...), 1, 0, 'x'), host: "2001:db8::1", port: 256, payload: "x"},
		{name: "name", d: []byte{0, 0, 0, 3, 3, 'a', '.', 'b', 0x1f, 0x90}, host: "a.b", port: 8080, payload: ""},
		{name: "fragment", d: []byte{0, 0, 1, 1, 192, 0, 2, 7, 0, 53, 'h'}, bad: true},
		{name: "reserved bytes set", d: []byte{0, 1, 0, 1, 192, 0, 2, 7, 0, 53}, bad: true},
		{name: "unknown address type", d: []byte{0, 0, 0, 9, 1, 2, 3, 4, 0, 53}, bad: true},
		{name: "short ipv4", d: []byte{0, 0, 0, 1, 192, 0, 2}, bad: true},
		{name: "name longer than the datagram", d: []byte{0, 0, 0, 3, 200, 'a'}, bad: true},
		{name: "empty", d: nil, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, port, payload, err := parseUDPHeader(tc.d)
			if tc.bad {
				if err == nil {
					t.Fatalf("parsed % x as %s:%d", tc.d, host, port)
				}
				return
			}
			if err != nil || host != tc.host || port != tc.port || string(payload) != tc.payload {
				t.Fatalf("got %q %d %q %v, want %q %d %q", host, port, payload, err, tc.host, tc.port, tc.payload)
			}
		})
	}
}

// TestSocksHandshake: the commands served are CONNECT and UDP ASSOCIATE;
// BIND and unknown address types get the RFC's refusals.
func TestSocksHandshake(t *testing.T) {
	greet := []byte{5, 1, 0}
	for _, tc := range []struct {
		name   string
		req    []byte
		cmd    byte
		target string
		reply  byte // the refusal code sent, if any
	}{
		{name: "connect by name", req: []byte{5, 1, 0, 3, 7, 'e', 'x', '.', 't', 'e', 's', 't', 0, 80}, cmd: socksConnect, target: "ex.test:80"},
		{name: "udp associate", req: []byte{5, 3, 0, 1, 0, 0, 0, 0, 0, 0}, cmd: socksAssociate, target: "0.0.0.0:0"},
		{name: "bind", req: []byte{5, 2, 0, 1, 192, 0, 2, 1, 0, 80}, reply: socksCmdUnsupported},
		{name: "bad address type", req: []byte{5, 1, 0, 7, 0, 0}, reply: socksAtypUnsupport},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			cmd, target, err := socksHandshake(bufio.NewReader(bytes.NewReader(append(greet, tc.req...))), &out)
			if tc.reply != 0 {
				if err == nil {
					t.Fatalf("accepted: %d %q", cmd, target)
				}
				if b := out.Bytes(); len(b) < 4 || b[3] != tc.reply {
					t.Fatalf("answered % x, want refusal code %d", b, tc.reply)
				}
				return
			}
			if err != nil || cmd != tc.cmd || target != tc.target {
				t.Fatalf("got %d %q %v, want %d %q", cmd, target, err, tc.cmd, tc.target)
			}
		})
	}
}
