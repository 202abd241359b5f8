// Command gateway benchmarks a real netstack gateway (internal/gateway)
// following a peer map of N peers: its resident memory after applying
// the whole map, and how long a one-peer delta and a full map take to
// apply, measured from the control plane's side as a gateway sees it in
// production (long poll, JSON over HTTP on loopback, diff, device update).
//
// The parent process is a fake control plane serving random peers (keys
// from wg.GenerateKey, addresses from the 10.64.0.0/10 and
// fd7a:7665:696c::/64 pools); each size runs in a child process of its own
// holding nothing but the gateway, so that its memory is the gateway's.
// An apply is timed from the moment the control plane answers a long poll
// to the moment the gateway polls again with the new version, which it
// does right after the device has taken the change.
//
// Usage: go run ./bench/gateway [-peers 1000,10000,60000] [-deltas 50] [-fulls 3]
package main

import (
	"bufio"
	"context"
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
	"syscall"
	"time"

	"veil/internal/apitypes"
	"veil/internal/gateway"
	"veil/internal/wg"
)

const token = "bench-token"

func main() {
	peers := flag.String("peers", "1000,10000,60000", "peer-map sizes, comma-separated (wireguard-go holds at most 65536 peers per device)")
	deltas := flag.Int("deltas", 50, "one-peer deltas timed per size (half additions, half removals)")
	fulls := flag.Int("fulls", 3, "full maps timed per size, each replacing 1% of the peers")
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
	var rows []result
	for _, s := range strings.Split(*peers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bad -peers entry %q\n", s)
			os.Exit(2)
		}
		r, err := runSize(n, *deltas, *fulls)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%d peers: %v\n", n, err)
			os.Exit(1)
		}
		rows = append(rows, r)
	}
	printTable(rows)
}

// memStats is what the child reports after a forced GC.
type memStats struct {
	RSS        uint64 `json:"rss"` // VmRSS, bytes
	HeapInuse  uint64 `json:"heap_inuse"`
	HeapAlloc  uint64 `json:"heap_alloc"`
	StackInuse uint64 `json:"stack_inuse"`
	Sys        uint64 `json:"sys"`
	Gorout     int    `json:"goroutines"`
	Peers      int    `json:"peers"`
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
		st := memStats{RSS: vmRSS(), HeapInuse: ms.HeapInuse, HeapAlloc: ms.HeapAlloc,
			StackInuse: ms.StackInuse, Sys: ms.Sys, Gorout: runtime.NumGoroutine()}
		if in.Text() == "peers" { // reading the count walks every peer: only when asked
			st.Peers = g.Stats().Peers
		}
		b, _ := json.Marshal(st)
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

// peer makes the i-th peer: a fresh key and the i-th addresses of the pools.
func peer(i int) apitypes.Peer {
	k, err := wg.GenerateKey()
	if err != nil {
		panic(err)
	}
	n := uint32(i + 2) // .0 is the network, .1 the gateway
	a4 := netip.AddrFrom4([4]byte{10, 64 | byte(n>>16&0x3f), byte(n >> 8), byte(n)})
	a6 := netip.MustParseAddr("fd7a:7665:696c::").As16()
	a6[12], a6[13], a6[14], a6[15] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return apitypes.Peer{PublicKey: k.Public().Base64(), Plan: "standard",
		AllowedIPs: []string{a4.String() + "/32", netip.AddrFrom16(a6).String() + "/128"}}
}

type result struct {
	n                   int
	base, full          memStats
	firstFull           time.Duration
	fullSame            time.Duration
	fullChurn           []time.Duration
	deltaAdd, deltaDrop []time.Duration
	mapBytes            int
	genTime             time.Duration
}

func runSize(n, deltas, fulls int) (result, error) {
	r := result{n: n}
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
	mem := func(withPeers bool) (memStats, error) {
		q := "mem\n"
		if withPeers {
			q = "peers\n"
		}
		io.WriteString(stdin, q)
		if !out.Scan() {
			return memStats{}, fmt.Errorf("the gateway child ended")
		}
		var m memStats
		return m, json.Unmarshal(out.Bytes(), &m)
	}

	// Empty map first: the gateway is up and polling with no peers.
	if _, err := c.waitApplied(1, 30*time.Second); err != nil {
		return r, err
	}
	if r.base, err = mem(false); err != nil {
		return r, err
	}

	t0 := time.Now()
	all := make([]apitypes.Peer, n+deltas+fulls*(n/100+1))
	for i := range all {
		all[i] = peer(i)
	}
	r.genTime = time.Since(t0)
	next := n
	v := c.change(false, func(v int64) {
		for _, p := range all[:n] {
			c.add(v, p)
		}
	})
	if r.firstFull, err = c.waitApplied(v, 10*time.Minute); err != nil {
		return r, err
	}
	if b, err := json.Marshal(apitypes.PeerMap{Version: v, Full: true, Peers: all[:n]}); err == nil {
		r.mapBytes = len(b)
	}
	if r.full, err = mem(true); err != nil {
		return r, err
	}
	if r.full.Peers != n {
		return r, fmt.Errorf("device has %d peers, want %d", r.full.Peers, n)
	}

	// The whole map again, unchanged: what a gateway does after losing
	// its place (version 0) costs a transfer, a decode and a diff.
	v = c.change(true, func(int64) {})
	if r.fullSame, err = c.waitApplied(v, 10*time.Minute); err != nil {
		return r, err
	}
	// Full maps in which 1% of the peers left and as many arrived.
	live := slices.Clone(all[:n])
	for range fulls {
		k := n/100 + 1
		v = c.change(true, func(v int64) {
			for j := range k {
				c.remove(v, live[j].PublicKey)
				live[j] = all[next]
				c.add(v, all[next])
				next++
			}
		})
		d, err := c.waitApplied(v, 10*time.Minute)
		if err != nil {
			return r, err
		}
		r.fullChurn = append(r.fullChurn, d)
	}
	// One-peer deltas: a device added, then removed.
	for i := range deltas {
		p := all[next]
		next++
		v = c.change(false, func(v int64) { c.add(v, p) })
		d, err := c.waitApplied(v, time.Minute)
		if err != nil {
			return r, err
		}
		r.deltaAdd = append(r.deltaAdd, d)
		v = c.change(false, func(v int64) { c.remove(v, p.PublicKey) })
		if d, err = c.waitApplied(v, time.Minute); err != nil {
			return r, err
		}
		r.deltaDrop = append(r.deltaDrop, d)
		_ = i
	}
	fmt.Fprintf(os.Stderr, "%d peers: full %v, delta add %v drop %v, RSS %d MiB\n",
		n, r.firstFull.Round(time.Millisecond), median(r.deltaAdd), median(r.deltaDrop), r.full.RSS>>20)
	return r, nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func mib(b uint64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

func dur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}

func printTable(rows []result) {
	fmt.Printf("%d CPUs, %s, GOMAXPROCS %d; load average %s\n\n", runtime.NumCPU(), runtime.Version(), runtime.GOMAXPROCS(0), loadavg())
	fmt.Println("| Peers | RSS (MiB) | Go heap in use (MiB) | goroutine stacks (MiB) | goroutines | per peer (KiB RSS) | full map, empty gateway | full map, unchanged | full map, 1% churn | one-peer delta: add | one-peer delta: remove | map JSON (MiB) |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		per := float64(r.full.RSS-min(r.base.RSS, r.full.RSS)) / float64(r.n) / 1024
		fmt.Printf("| %d | %s (empty: %s) | %s (empty: %s) | %s | %d | %.1f | %s | %s | %s | %s | %s | %s |\n",
			r.n, mib(r.full.RSS), mib(r.base.RSS), mib(r.full.HeapInuse), mib(r.base.HeapInuse), mib(r.full.StackInuse), r.full.Gorout, per,
			dur(r.firstFull), dur(r.fullSame), dur(median(r.fullChurn)), dur(median(r.deltaAdd)), dur(median(r.deltaDrop)),
			mib(uint64(r.mapBytes)))
	}
	fmt.Println()
	fmt.Println("Times are medians (full map with churn: of -fulls runs; deltas: of -deltas runs), from the control plane answering a long poll to the gateway's next poll. RSS and heap after runtime/debug.FreeOSMemory in the gateway's own process.")
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
