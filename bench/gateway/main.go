// Command gateway benchmarks a real netstack gateway (internal/gateway)
// holding a large authorised set with on-demand peers: its resident
// memory with N devices authorised and M of them active, how long a cold
// device's first handshake takes against a warm one's, how long a
// one-device change of the peer map takes to apply at N, and whether a
// flood of initiations from unknown keys stops the active devices.
//
// The parent process is a fake control plane serving the peer map (long
// poll, JSON over HTTP on loopback, as the real one) and M clients: real
// WireGuard keys (wg.GenerateKey) sending real handshake initiations
// (wg.Initiation) over loopback UDP to the gateway, which answers with
// wireguard-go's own handshake response. The N-M devices that never
// connect have random 32-byte public keys. The gateway runs alone in a
// child process, so its memory is its own.
//
// A handshake is timed from the initiation's send to the response's
// arrival; the first one of a device is cold (the gateway puts the peer on
// its WireGuard device on the way), a later one warm. A peer-map change is
// timed from the control plane answering the gateway's long poll to the
// gateway's next poll, which it makes once the change is applied.
//
// Usage: go run ./bench/gateway [-authorized 1000000] [-active 10000] [-deltas 50] [-flood 20000]
//
// It ends with one JSON line of the figures.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"veil/internal/apitypes"
	"veil/internal/gateway"
	"veil/internal/wg"
)

const token = "bench-token"

func main() {
	authorized := flag.Int("authorized", 1_000_000, "devices in the peer map")
	active := flag.Int("active", 10_000, "devices that handshake (at most -authorized)")
	deltas := flag.Int("deltas", 50, "one-device peer-map changes timed (half additions, half removals)")
	flood := flag.Int("flood", 100_000, "handshake initiations from unknown keys sent as a flood")
	floodRate := flag.Int("flood-rate", 50_000, "initiations a second the flood sends (0: as fast as loopback takes them)")
	role := flag.String("role", "", "internal: \"gateway\" runs the gateway child")
	control := flag.String("control", "", "internal: the control plane URL for the child")
	flag.Parse()
	if *role == "gateway" {
		if err := runChild(*control); err != nil {
			fmt.Fprintln(os.Stderr, "gateway child:", err)
			os.Exit(1)
		}
		return
	}
	if *authorized < 1 || *active < 1 || *active > *authorized {
		fmt.Fprintln(os.Stderr, "want 1 <= -active <= -authorized")
		os.Exit(2)
	}
	r, err := run(*authorized, *active, *deltas, *flood, *floodRate)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}

// memStats is what the child reports after a forced GC.
type memStats struct {
	RSS        uint64 `json:"rss"` // VmRSS, bytes
	HeapInuse  uint64 `json:"heap_inuse"`
	Gorout     int    `json:"goroutines"`
	Active     int    `json:"active"`
	Authorized int    `json:"authorized"`
	Port       int    `json:"port"`
	PublicKey  string `json:"public_key"`
}

// runChild runs a netstack gateway against control and answers every
// line on stdin with its memory, measured after a GC that returns freed
// memory to the system.
func runChild(control string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	g, err := gateway.New(gateway.Config{
		ControlURL:  control,
		Token:       token,
		Mode:        gateway.ModeNetstack,
		ReportEvery: time.Hour,
		PollWait:    time.Minute,
		IdleTimeout: time.Hour,
		EgressAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, // the traffic probe's echo server
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		st := g.Stats()
		b, _ := json.Marshal(memStats{RSS: vmRSS(), HeapInuse: ms.HeapInuse, Gorout: runtime.NumGoroutine(),
			Active: st.Peers, Authorized: st.Authorized, Port: g.Port(), PublicKey: g.PublicKey().Base64()})
		fmt.Println(string(b))
	}
	stop()
	return <-done
}

func vmRSS() uint64 {
	b, _ := os.ReadFile("/proc/self/status")
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// control is the fake control plane: a peer map with versions, answering
// long polls with a full map (since 0, or when full is set) or a delta.
type control struct {
	mu      sync.Mutex
	version int64
	peers   map[string]apitypes.Peer
	setAt   map[string]int64
	removed map[string]int64
	full    bool          // answer the next poll with the full map
	changed chan struct{} // closed and replaced on every change
	sent    time.Time     // when the last change was written out
	polled  chan int64    // the since of each poll, at its arrival
}

func newControl() *control {
	return &control{version: 1, peers: map[string]apitypes.Peer{}, setAt: map[string]int64{},
		removed: map[string]int64{}, changed: make(chan struct{}), polled: make(chan int64, 16)}
}

func (c *control) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+token {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	switch r.URL.Path {
	case "/api/v1/gateway/report":
		io.Copy(io.Discard, r.Body)
		json.NewEncoder(w).Encode(apitypes.GatewayConfig{Name: "bench-1",
			TunnelIPv4: "10.64.0.1/10", TunnelIPv6: "fd7a:7665:696c::1/64"})
	case "/api/v1/gateway/peers":
		since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
		c.polled <- since
		c.mu.Lock()
		if since == c.version && !c.full {
			ch := c.changed
			c.mu.Unlock()
			select {
			case <-ch:
			case <-r.Context().Done():
				return
			}
			c.mu.Lock()
		}
		m := apitypes.PeerMap{Version: c.version, Full: since == 0 || c.full}
		c.full = false
		for k, p := range c.peers {
			if m.Full || c.setAt[k] > since {
				m.Peers = append(m.Peers, p)
			}
		}
		if !m.Full {
			for k, v := range c.removed {
				if v > since {
					m.Removed = append(m.Removed, k)
				}
			}
		}
		c.mu.Unlock()
		b, _ := json.Marshal(m)
		w.Header().Set("Content-Type", "application/json")
		c.mu.Lock()
		c.sent = time.Now()
		c.mu.Unlock()
		w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

// change applies f to the map under the lock, bumps the version and wakes
// the waiting poll; full makes that poll's answer the whole map.
func (c *control) change(full bool, f func(v int64)) int64 {
	c.mu.Lock()
	c.version++
	f(c.version)
	c.full = full
	close(c.changed)
	c.changed = make(chan struct{})
	v := c.version
	c.mu.Unlock()
	return v
}

func (c *control) add(v int64, p apitypes.Peer) {
	c.peers[p.PublicKey] = p
	c.setAt[p.PublicKey] = v
	delete(c.removed, p.PublicKey)
}

func (c *control) remove(v int64, key string) {
	delete(c.peers, key)
	delete(c.setAt, key)
	c.removed[key] = v
}

// waitApplied waits for the poll that asks for changes after v, and
// returns how long after the answer it came.
func (c *control) waitApplied(v int64, limit time.Duration) (time.Duration, error) {
	deadline := time.After(limit)
	for {
		select {
		case since := <-c.polled:
			if since >= v {
				c.mu.Lock()
				d := time.Since(c.sent)
				c.mu.Unlock()
				return d, nil
			}
			if since == 0 && v > 1 {
				return 0, fmt.Errorf("the gateway asked for the whole map again (apply failed)")
			}
		case <-deadline:
			return 0, fmt.Errorf("version %d not applied within %s", v, limit)
		}
	}
}

// device is one authorised device; priv is set for those that connect.
type device struct {
	priv wg.Key
	peer apitypes.Peer
}

// newDevice makes the i-th device: the i-th addresses of the pools, and a
// real key pair when it will connect, else random public-key bytes.
func newDevice(i int, real bool) device {
	var d device
	var pub wg.Key
	if real {
		k, err := wg.GenerateKey()
		if err != nil {
			panic(err)
		}
		d.priv, pub = k, k.Public()
	} else {
		rand.Read(pub[:])
	}
	n := uint32(i + 2) // .0 is the network, .1 the gateway
	a4 := netip.AddrFrom4([4]byte{10, 64 | byte(n>>16&0x3f), byte(n >> 8), byte(n)})
	a6 := netip.MustParseAddr("fd7a:7665:696c::").As16()
	a6[12], a6[13], a6[14], a6[15] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	d.peer = apitypes.Peer{PublicKey: base64.StdEncoding.EncodeToString(pub[:]), Plan: "standard",
		AllowedIPs: []string{a4.String() + "/32", netip.AddrFrom16(a6).String() + "/128"}}
	return d
}

// result is the benchmark's JSON line.
type result struct {
	Authorized       int     `json:"authorized"`
	Active           int     `json:"active"`
	RSSBytes         uint64  `json:"rss_bytes"`
	RSSAuthorized    uint64  `json:"rss_bytes_authorized_only"`
	RSSEmpty         uint64  `json:"rss_bytes_empty"`
	HeapBytes        uint64  `json:"heap_inuse_bytes"`
	Goroutines       int     `json:"goroutines"`
	FullMapMS        float64 `json:"full_map_apply_ms"`
	MapBytes         int     `json:"full_map_json_bytes"`
	ColdP50          float64 `json:"cold_handshake_ms_p50"`
	ColdP99          float64 `json:"cold_handshake_ms_p99"`
	WarmP50          float64 `json:"warm_handshake_ms_p50"`
	WarmP99          float64 `json:"warm_handshake_ms_p99"`
	ColdMinusWarm    float64 `json:"cold_minus_warm_ms_p50"`
	DeltaP50         float64 `json:"delta_ms_p50"`
	DeltaP99         float64 `json:"delta_ms_p99"`
	Flood            int     `json:"flood_initiations"`
	FloodSeconds     float64 `json:"flood_seconds"`
	EchoBefore       int     `json:"echo_round_trips_1s_before_flood"`
	EchoBeforeP50    float64 `json:"echo_rtt_ms_p50_before_flood"`
	EchoDuring       int     `json:"echo_round_trips_during_flood"`
	EchoDuringPerS   float64 `json:"echo_round_trips_per_s_during_flood"`
	EchoDuringP50    float64 `json:"echo_rtt_ms_p50_during_flood"`
	FloodRate        float64 `json:"flood_initiations_per_s"`
	FloodRateAsked   int     `json:"flood_rate_asked"`
	FloodWarmAsked   int     `json:"flood_warm_handshakes"`
	FloodWarmOK      int     `json:"flood_warm_answered"`
	FloodWarmP50     float64 `json:"flood_warm_handshake_ms_p50"`
	FloodCookies     int     `json:"flood_cookie_replies_answered"`
	ActiveAfterFlood int     `json:"active_after_flood"`
	CPUs             int     `json:"cpus"`
	LoadAvg          string  `json:"loadavg"`
}

func run(n, m, deltas, flood, floodRate int) (result, error) {
	r := result{Authorized: n, Active: m, CPUs: runtime.NumCPU()}
	c := newControl()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return r, err
	}
	srv := &http.Server{Handler: c}
	go srv.Serve(ln)
	defer srv.Close()

	exe, err := os.Executable()
	if err != nil {
		return r, err
	}
	cmd := exec.Command(exe, "-role", "gateway", "-control", "http://"+ln.Addr().String())
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return r, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		stdin.Close()
		cmd.Wait()
	}()
	out := bufio.NewScanner(stdout)
	mem := func() (memStats, error) {
		io.WriteString(stdin, "mem\n")
		if !out.Scan() {
			return memStats{}, fmt.Errorf("the gateway child ended")
		}
		var ms memStats
		return ms, json.Unmarshal(out.Bytes(), &ms)
	}

	if _, err := c.waitApplied(1, 30*time.Second); err != nil {
		return r, err
	}
	base, err := mem()
	if err != nil {
		return r, err
	}
	r.RSSEmpty = base.RSS
	gwPub, err := wg.ParseKey(base.PublicKey)
	if err != nil {
		return r, fmt.Errorf("gateway key: %w", err)
	}
	gwAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(base.Port))

	fmt.Fprintf(os.Stderr, "making %d devices (%d with real keys)...\n", n, m)
	devs := make([]device, n+deltas)
	for i := range devs {
		devs[i] = newDevice(i, i < m)
	}
	v := c.change(false, func(v int64) {
		for _, d := range devs[:n] {
			c.add(v, d.peer)
		}
	})
	d, err := c.waitApplied(v, 10*time.Minute)
	if err != nil {
		return r, err
	}
	r.FullMapMS = ms(d)
	if b, err := json.Marshal(apitypes.PeerMap{Version: v, Full: true, Peers: peersOf(devs[:n])}); err == nil {
		r.MapBytes = len(b)
	}
	st, err := mem()
	if err != nil {
		return r, err
	}
	if st.Authorized != n || st.Active != 0 {
		return r, fmt.Errorf("after the full map: %d authorised, %d active; want %d, 0", st.Authorized, st.Active, n)
	}
	r.RSSAuthorized = st.RSS
	fmt.Fprintf(os.Stderr, "full map of %d applied in %v, RSS %d MiB\n", n, d.Round(time.Millisecond), st.RSS>>20)

	hs, err := newShaker(gwAddr, gwPub)
	if err != nil {
		return r, err
	}
	defer hs.close()
	// Cold handshakes of every active device, one at a time; between
	// them, warm ones of devices that connected a while ago (wireguard-go
	// takes at most one initiation per peer per 20 ms).
	const warmLag = 64
	var cold, warm []time.Duration
	for i := range m {
		d, err := hs.handshake(devs[i].priv, uint32(i))
		if err != nil {
			return r, fmt.Errorf("cold handshake %d: %w", i, err)
		}
		cold = append(cold, d)
		if i >= warmLag && i%4 == 0 {
			d, err := hs.handshake(devs[i-warmLag].priv, uint32(i-warmLag))
			if err != nil {
				return r, fmt.Errorf("warm handshake: %w", err)
			}
			warm = append(warm, d)
		}
	}
	if len(warm) == 0 { // too few devices to interleave: warm them now
		for i := range m {
			time.Sleep(25 * time.Millisecond)
			d, err := hs.handshake(devs[i].priv, uint32(i))
			if err != nil {
				return r, fmt.Errorf("warm handshake: %w", err)
			}
			warm = append(warm, d)
		}
	}
	r.ColdP50, r.ColdP99 = ms(pct(cold, 50)), ms(pct(cold, 99))
	r.WarmP50, r.WarmP99 = ms(pct(warm, 50)), ms(pct(warm, 99))
	r.ColdMinusWarm = r.ColdP50 - r.WarmP50
	if st, err = mem(); err != nil {
		return r, err
	}
	if st.Active != m {
		return r, fmt.Errorf("after %d handshakes the device holds %d peers", m, st.Active)
	}
	r.RSSBytes, r.HeapBytes, r.Goroutines = st.RSS, st.HeapInuse, st.Gorout
	fmt.Fprintf(os.Stderr, "%d active: cold p50 %.2f ms, warm p50 %.2f ms, RSS %d MiB\n", m, r.ColdP50, r.WarmP50, st.RSS>>20)

	// One-device changes at n: a device added, then removed.
	var changes []time.Duration
	for i := range deltas {
		p := devs[n+i].peer
		v = c.change(false, func(v int64) { c.add(v, p) })
		d, err := c.waitApplied(v, time.Minute)
		if err != nil {
			return r, err
		}
		v = c.change(false, func(v int64) { c.remove(v, p.PublicKey) })
		d2, err := c.waitApplied(v, time.Minute)
		if err != nil {
			return r, err
		}
		changes = append(changes, d, d2)
	}
	r.DeltaP50, r.DeltaP99 = ms(pct(changes, 50)), ms(pct(changes, 99))

	// A flood of initiations from unknown keys, valid mac1 and all, while
	// a real tunnel of an active device carries traffic and active
	// devices keep handshaking.
	if flood > 0 {
		probe, err := newProbe(devs[0], gwAddr, gwPub)
		if err != nil {
			return r, fmt.Errorf("traffic probe: %w", err)
		}
		defer probe.close()
		before := probe.run(time.Second, nil)
		r.EchoBefore, r.EchoBeforeP50 = len(before), ms(pct(before, 50))
		msgs, err := floodMessages(gwPub, flood)
		if err != nil {
			return r, err
		}
		stop := make(chan struct{})
		during := make(chan []time.Duration, 1)
		go func() { during <- probe.run(time.Minute, stop) }()
		runFlood(&r, hs, gwAddr, devs[:m], msgs, floodRate)
		close(stop)
		rtts := <-during
		r.EchoDuring, r.EchoDuringP50 = len(rtts), ms(pct(rtts, 50))
		r.EchoDuringPerS = float64(len(rtts)) / r.FloodSeconds
		if st, err = mem(); err != nil {
			return r, err
		}
		r.ActiveAfterFlood = st.Active
	}
	r.LoadAvg = loadavg()
	return r, nil
}

// probe is a real WireGuard tunnel (wireguard-go on a netstack) of one
// active device, through which TCP round trips reach an echo server on
// loopback by way of the gateway.
type probe struct {
	dev  *wg.Device
	ln   net.Listener
	conn net.Conn
}

func newProbe(d device, gw netip.AddrPort, gwPub wg.Key) (*probe, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	addr := netip.MustParsePrefix(d.peer.AllowedIPs[0]).Addr()
	ns, err := wg.NewNetstack(wg.NetstackConfig{Addresses: []netip.Addr{addr}, AllowLoopback: true})
	if err != nil {
		ln.Close()
		return nil, err
	}
	dev, err := wg.NewDevice(wg.DeviceConfig{TUN: ns, PrivateKey: d.priv})
	if err != nil {
		ln.Close()
		return nil, err
	}
	p := &probe{dev: dev, ln: ln}
	if err := dev.SetPeer(wg.Peer{PublicKey: gwPub, Endpoint: gw, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}); err != nil {
		p.close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if p.conn, err = ns.DialContext(ctx, "tcp", ln.Addr().String()); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// run makes 64-byte round trips for at most d or until stop closes, and
// returns their times.
func (p *probe) run(d time.Duration, stop <-chan struct{}) []time.Duration {
	var out []time.Duration
	buf := make([]byte, 64)
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		select {
		case <-stop:
			return out
		default:
		}
		p.conn.SetDeadline(time.Now().Add(5 * time.Second))
		t0 := time.Now()
		if _, err := p.conn.Write(buf); err != nil {
			return out
		}
		if _, err := io.ReadFull(p.conn, buf); err != nil {
			return out
		}
		out = append(out, time.Since(t0))
	}
	return out
}

func (p *probe) close() {
	if p.conn != nil {
		p.conn.Close()
	}
	p.dev.Close()
	p.ln.Close()
}

func peersOf(ds []device) []apitypes.Peer {
	out := make([]apitypes.Peer, len(ds))
	for i, d := range ds {
		out[i] = d.peer
	}
	return out
}

// shaker sends initiations from one UDP socket and matches responses by
// the sender index.
type shaker struct {
	conn *net.UDPConn
	to   netip.AddrPort
	gw   wg.Key
	mu   sync.Mutex
	wait map[uint32]*pendingHandshake
	// cookies counts the cookie replies answered (the gateway under load).
	cookies atomic.Int64
}

type pendingHandshake struct {
	msg  []byte
	done chan time.Time
}

func newShaker(to netip.AddrPort, gw wg.Key) (*shaker, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	s := &shaker{conn: c, to: to, gw: gw, wait: map[uint32]*pendingHandshake{}}
	go s.read()
	return s, nil
}

func (s *shaker) read() {
	buf := make([]byte, 2048)
	for {
		n, _, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		at := time.Now()
		if idx, ok := wg.CookieReceiver(buf[:n]); ok {
			// Under load the gateway asks for proof of the address first,
			// as wireguard-go's cookie defence does; a client answers it.
			s.mu.Lock()
			p := s.wait[idx]
			s.mu.Unlock()
			if p == nil {
				continue
			}
			if again, ok := wg.WithCookie(p.msg, buf[:n], s.gw); ok {
				s.cookies.Add(1)
				s.conn.WriteToUDPAddrPort(again, s.to)
			}
			continue
		}
		idx, ok := wg.ResponseReceiver(buf[:n])
		if !ok {
			continue
		}
		s.mu.Lock()
		p := s.wait[idx]
		delete(s.wait, idx)
		s.mu.Unlock()
		if p != nil {
			p.done <- at
		}
	}
}

// handshake sends one initiation for priv and waits for its response.
func (s *shaker) handshake(priv wg.Key, idx uint32) (time.Duration, error) {
	msg, err := wg.Initiation(priv, s.gw, idx, time.Now())
	if err != nil {
		return 0, err
	}
	p := &pendingHandshake{msg: msg, done: make(chan time.Time, 1)}
	s.mu.Lock()
	s.wait[idx] = p
	s.mu.Unlock()
	t0 := time.Now()
	if _, err := s.conn.WriteToUDPAddrPort(msg, s.to); err != nil {
		return 0, err
	}
	// Resend as a client does when no answer comes (wireguard-go waits
	// 5 s; here 250 ms, to see when the gateway would answer).
	resend := time.NewTicker(250 * time.Millisecond)
	defer resend.Stop()
	give := time.After(5 * time.Second)
	for {
		select {
		case at := <-p.done:
			return at.Sub(t0), nil
		case <-resend.C:
			s.conn.WriteToUDPAddrPort(msg, s.to)
		case <-give:
			s.mu.Lock()
			delete(s.wait, idx)
			s.mu.Unlock()
			return 0, fmt.Errorf("no response within 5 s")
		}
	}
}

func (s *shaker) close() { s.conn.Close() }

// floodMessages makes n initiations from fresh keys the gateway does not
// know, valid in every other way.
func floodMessages(gw wg.Key, n int) ([][]byte, error) {
	msgs := make([][]byte, n)
	for i := range msgs {
		k, err := wg.GenerateKey()
		if err != nil {
			return nil, err
		}
		if msgs[i], err = wg.Initiation(k, gw, uint32(1<<31+i), time.Now()); err != nil {
			return nil, err
		}
	}
	return msgs, nil
}

// runFlood sends msgs from four sockets at once, at perSec in all (0: no
// pacing), while the active devices handshake again one after another.
func runFlood(r *result, hs *shaker, to netip.AddrPort, active []device, msgs [][]byte, perSec int) {
	var sent atomic.Int64
	var wgr sync.WaitGroup
	stop := make(chan struct{})
	t0 := time.Now()
	for w := range 4 {
		wgr.Add(1)
		go func() {
			defer wgr.Done()
			c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
			if err != nil {
				return
			}
			defer c.Close()
			for i := w; i < len(msgs); i += 4 {
				if perSec > 0 && i%400 == w { // pace in steps of 100 per socket
					due := t0.Add(time.Duration(i) * time.Second / time.Duration(perSec))
					time.Sleep(time.Until(due))
				}
				c.Write(msgs[i])
				sent.Add(1)
			}
		}()
	}
	var sendTime time.Duration
	go func() { wgr.Wait(); sendTime = time.Since(t0); close(stop) }()
	var warm []time.Duration
	asked := 0
loop:
	for i := 0; ; i = (i + 1) % len(active) {
		select {
		case <-stop:
			break loop
		default:
		}
		asked++
		if d, err := hs.handshake(active[i].priv, uint32(i)); err == nil {
			warm = append(warm, d)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(t0)
	r.FloodSeconds = elapsed.Seconds()
	r.Flood = int(sent.Load())
	r.FloodRate = float64(r.Flood) / sendTime.Seconds()
	r.FloodRateAsked = perSec
	r.FloodWarmAsked, r.FloodWarmOK = asked, len(warm)
	r.FloodWarmP50 = ms(pct(warm, 50))
	r.FloodCookies = int(hs.cookies.Load())
	fmt.Fprintf(os.Stderr, "flood: %d initiations in %v; %d of %d warm handshakes answered\n", r.Flood, elapsed.Round(time.Millisecond), len(warm), asked)
}

// pct is the p-th percentile of ds.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
