//go:build linux

package netns

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"veil/internal/apitypes"
	"veil/internal/client"
	"veil/internal/wg"
)

func init() {
	roles["pingstream"] = rolePingStream
}

// Ping stream bounds: a 50 ms interval, as `ping -i 0.05`, for 8 s.
const (
	pingInterval = 50 * time.Millisecond
	pingCount    = 160
	// rekeyTimeout is WireGuard's Rekey-Timeout: a handshake that gets no
	// answer is retried after it. Losing at most one handshake is losing
	// at most this long a stretch of the stream.
	rekeyTimeout = 5 * time.Second
)

// rolePingStream sends pingCount echo requests to the address in
// VEIL_PING_TARGET, one every pingInterval, and prints how many were sent
// and how many answered.
func rolePingStream() {
	target := net.ParseIP(os.Getenv("VEIL_PING_TARGET"))
	c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		fmt.Println("error", err)
		return
	}
	defer c.Close()
	var mu sync.Mutex
	got := map[int]bool{}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			m, err := icmp.ParseMessage(1, buf[:n])
			if e, ok := m.Body.(*icmp.Echo); err == nil && ok && m.Type == ipv4.ICMPTypeEchoReply && e.ID == 0x7e11 {
				mu.Lock()
				got[e.Seq] = true
				mu.Unlock()
			}
		}
	}()
	for seq := range pingCount {
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: 0x7e11, Seq: seq, Data: bytes.Repeat([]byte("r"), 16)}}
		b, _ := msg.Marshal(nil)
		c.WriteTo(b, &net.IPAddr{IP: target})
		time.Sleep(pingInterval)
	}
	time.Sleep(time.Second) // the last answers
	mu.Lock()
	defer mu.Unlock()
	fmt.Println("sent", pingCount, "received", len(got))
}

// TestKeyRotation: a connected client replaces its device key on its
// schedule (here every 3 s) while a ping stream runs through the tunnel;
// the stream goes on across the rotations, losing at most one
// handshake's worth of packets (Rekey-Timeout over the interval), the
// control plane holds the new key, and the tunnel still exits from the
// gateway's address.
func TestKeyRotation(t *testing.T) {
	requireNetns(t)
	tp := newTopo(t)
	gw := tp.startGateway(t, tunGateway)
	state := tp.login(t, gw)
	before := loadState(t, state)
	// In the foreground, so that the client's log is kept for a failure.
	tp.start(t, tp.c, nil, tp.bin, "connect", "--foreground", "--log-level", "info", "--mode", "tun",
		"--location", gw.location, "--state", state, "--timeout", "15s", "--key-rotation", "3s")
	waitNetns(t, 30*time.Second, "the tunnel", func() bool {
		out, err := tp.in(tp.c, tp.bin, "status", "--json", "--state", state).Output()
		var st client.Status
		return err == nil && json.Unmarshal(out, &st) == nil && st.HandshakeAge >= 0
	})

	cmd := tp.in(tp.c, tp.self)
	cmd.Env = append(os.Environ(), "VEIL_NETNS_ROLE=pingstream", "VEIL_PING_TARGET="+inet4)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ping stream: %v\n%s", err, out)
	}
	var sent, received int
	if _, err := fmt.Sscanf(string(out), "sent %d received %d", &sent, &received); err != nil {
		t.Fatalf("ping stream said %q", out)
	}
	after := loadState(t, state)
	if after.PrivateKey == before.PrivateKey {
		t.Fatalf("the key was not rotated during the stream (key created %v)", after.KeyCreated)
	}
	lost, bound := sent-received, int(rekeyTimeout/pingInterval)
	t.Logf("ping stream across the rotations: %d sent, %d lost (bound %d)", sent, lost, bound)
	if received == 0 || lost > bound {
		t.Errorf("ping stream: %d of %d lost, more than one handshake's worth (%d)", lost, sent, bound)
	}

	// The control plane holds the key the client now uses.
	priv, err := wg.ParseKey(after.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	body, err := tp.httpIn(tp.g, "GET", control+"/api/v1/devices", after.Token, "")
	if err != nil {
		t.Fatal(err)
	}
	var devs []apitypes.Device
	if err := json.Unmarshal([]byte(body), &devs); err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 || devs[0].ID != before.DeviceID || devs[0].PublicKey != priv.Public().Base64() || devs[0].IPv4 != before.IPv4 {
		t.Errorf("devices after rotation = %+v; want device %d with the client's new key and its old address %s", devs, before.DeviceID, before.IPv4)
	}
	tp.checkExit(t)
	var st client.Status
	if err := json.Unmarshal([]byte(tp.veil(t, tp.c, "status", "--json", "--state", state)), &st); err != nil || st.State != client.StateConnected {
		t.Errorf("status after the rotations: %+v, %v", st, err)
	}
}

func loadState(t *testing.T, dir string) *client.State {
	t.Helper()
	st, err := client.LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
