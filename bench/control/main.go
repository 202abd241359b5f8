// Command control is a load generator for Veil's control plane: it fills a
// fresh database with accounts and devices by raw SQL, starts real `veil
// serve` child processes over it (child processes, not in-process, so the
// generator's own CPU and memory never mix with the server's), and drives
// login, device registration and the gateways' full peer-map fetch open-loop
// at fixed rates, reporting p50/p99 and the highest rate that holds
// p99 < 50 ms with no errors, with the serve's CPU time per request and,
// for the full map, both ends' heap growth. With -serves N over PostgreSQL
// it also runs a real gateway on every serve process and measures how long
// a registration takes to reach all of them while logins load every serve.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"veil/internal/account"
	"veil/internal/apitypes"
	"veil/internal/gateway"
	"veil/internal/service"
	"veil/internal/store"
)

const target = 50 * time.Millisecond

type options struct {
	db       string
	accounts int
	rate     int
	duration time.Duration
	serves   int
	workers  int
	propLoad int
}

func main() {
	var o options
	flag.StringVar(&o.db, "db", "sqlite", "sqlite, or a postgres://… URL of an empty database")
	flag.IntVar(&o.accounts, "accounts", 100_000, "accounts to prefill, one device each")
	flag.IntVar(&o.rate, "rate", 1000, "highest rate to step up to, requests/s")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each rate step")
	flag.IntVar(&o.serves, "serves", 1, "veil serve processes (more than one needs PostgreSQL)")
	flag.IntVar(&o.workers, "workers", 256, "concurrent requests at most")
	flag.IntVar(&o.propLoad, "prop-load", 500, "with -serves: logins/s spread over the serve processes while propagation is measured")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "control:", err)
		os.Exit(1)
	}
}

// code is the access code of prefilled account i (1-based): 16 digits, as
// account.NewCode draws them.
func code(i int) string { return fmt.Sprintf("%016d", 1_000_000_000_000_000+i) }

type result struct {
	Op       string  `json:"op"`
	Rate     int     `json:"rate"`
	Count    int     `json:"count"`
	Errors   int     `json:"errors"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	Achieved float64 `json:"achieved_per_s"`
	CPUms    float64 `json:"serve_cpu_ms_per_req"`
}

// perReq is CPU time (in clock ticks of 10 ms) per request, in ms.
func perReq(ticks int64, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(ticks*10) / float64(n)
}

func run(ctx context.Context, o options) error {
	if o.serves > 1 && !strings.HasPrefix(o.db, "postgres") {
		return errors.New("-serves above 1 needs -db postgres://…")
	}
	dir, err := os.MkdirTemp("", "veil-control-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "veil")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/veil").CombinedOutput(); err != nil {
		return fmt.Errorf("building veil: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	secret, err := account.LoadOrCreateSecret(filepath.Join(data, service.SecretFile))
	if err != nil {
		return err
	}
	hasher, err := account.NewHasher(secret)
	if err != nil {
		return err
	}
	dsn := o.db
	if o.db == "sqlite" {
		dsn = ""
	}
	t0 := time.Now()
	if err := prefill(ctx, data, dsn, hasher, o.accounts); err != nil {
		return fmt.Errorf("prefill: %w", err)
	}
	fmt.Printf("prefill: %d accounts, %d devices in %s (%s)\n", o.accounts, o.accounts, time.Since(t0).Round(time.Millisecond), dbName(o.db))

	var urls []string
	var serves []*serve
	for i := range o.serves {
		sv, err := startServe(ctx, bin, data, dsn, i)
		if err != nil {
			return err
		}
		defer sv.stop()
		urls = append(urls, sv.url)
		serves = append(serves, sv)
	}
	c := &client{http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.workers, DisableCompression: true}, Timeout: 120 * time.Second}}
	admin, err := os.ReadFile(filepath.Join(data, service.AdminTokenFile))
	if err != nil {
		return err
	}
	var gw apitypes.GatewayCreated
	if err := c.post(urls[0]+"/api/v1/admin/gateways", strings.TrimSpace(string(admin)),
		apitypes.GatewayCreateRequest{Name: "bench-gw", Location: "nl-ams", Endpoint: "192.0.2.1:51820"}, &gw); err != nil {
		return fmt.Errorf("adding gateway: %w", err)
	}

	var results []result
	next := o.accounts / 2 // accounts from here on log in to register devices
	fmt.Println(stepHeader)
	for _, rate := range steps(o.rate) {
		n := rate * int(o.duration/time.Second)
		cpu0 := serves[0].cpu()
		r := c.open(rate, o.duration, o.workers, func() error {
			tok, err := c.login(urls[0], code(1+randN(o.accounts/2)))
			_ = tok
			return err
		})
		r.Op = "login"
		r.CPUms = perReq(serves[0].cpu()-cpu0, r.Count)
		results = append(results, r)
		printStep(r)
		tokens, err := c.sessions(urls[0], next, n/4+1)
		if err != nil {
			return err
		}
		next += n/4 + 1
		var k atomic.Int64
		cpu0 = serves[0].cpu()
		r = c.open(rate, o.duration, o.workers, func() error {
			i := int(k.Add(1)-1) / 4
			_, err := c.register(urls[0], tokens[i%len(tokens)])
			return err
		})
		r.Op = "register"
		r.CPUms = perReq(serves[0].cpu()-cpu0, r.Count)
		results = append(results, r)
		printStep(r)
	}
	// A full map of a million peers on a loaded machine takes minutes:
	// no client timeout, the bench's own bound instead.
	long := &client{http: &http.Client{Transport: c.http.Transport}}
	fetch, err := long.peerMap(ctx, serves[0], gw.Token)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer map:", err)
		fetch.Err = err.Error()
	}
	var prop *propagation
	if o.serves > 1 {
		prop, err = c.propagate(ctx, urls, strings.TrimSpace(string(admin)), tokensFor(c, urls[0], next, 50), o.duration, o.propLoad, o.accounts/2, o.workers)
		if err != nil {
			return err
		}
	}
	report(o, results, fetch, prop)
	return nil
}

func dbName(db string) string {
	if db == "sqlite" {
		return "SQLite"
	}
	return "PostgreSQL"
}

func steps(max int) []int {
	var s []int
	for _, r := range []int{250, 500, 1000, 2000, 4000} {
		if r <= max {
			s = append(s, r)
		}
	}
	if len(s) == 0 || s[len(s)-1] != max {
		s = append(s, max)
	}
	return s
}

func randN(n int) int {
	v, _ := rand.Int(rand.Reader, big.NewInt(int64(n)))
	return int(v.Int64())
}

// prefill creates the schema through the store itself, then writes
// accounts (with codes whose hashes it knows) and one device each straight
// into the tables.
func prefill(ctx context.Context, data, dsn string, h *account.Hasher, n int) error {
	driver, src := "pgx", dsn
	if dsn == "" {
		driver, src = "sqlite", filepath.Join(data, "veil.db")
	}
	st, err := store.Open(ctx, dsnFor(data, dsn), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	st.Close()
	db, err := sql.Open(driver, src)
	if err != nil {
		return err
	}
	defer db.Close()
	if dsn == "" {
		// The fill is not the server's: no fsync, and a page cache that
		// holds the code_hash index, which random hashes insert all over.
		db.SetMaxOpenConns(1)
		for _, p := range []string{"PRAGMA synchronous = OFF", "PRAGMA cache_size = -524288"} {
			if _, err := db.ExecContext(ctx, p); err != nil {
				return err
			}
		}
	}
	now := time.Now().UnixMicro()
	paid := time.Now().Add(365 * 24 * time.Hour).UnixMicro()
	const batch = 1000
	for lo := 1; lo <= n; lo += batch {
		hi := min(lo+batch-1, n)
		var q strings.Builder
		q.WriteString("INSERT INTO accounts (id, code_hash, plan, paid_until, created_at) ")
		if dsn != "" {
			q.WriteString("OVERRIDING SYSTEM VALUE ") // the ids are known: the codes are made from them
		}
		q.WriteString("VALUES ")
		args := make([]any, 0, 2*(hi-lo+1))
		for i := lo; i <= hi; i++ {
			if i > lo {
				q.WriteByte(',')
			}
			fmt.Fprintf(&q, "(%d, $%d, 'premium', %s, %s)", i, len(args)+1, tsLit(dsn, paid), tsLit(dsn, now))
			args = append(args, h.Code(code(i)))
		}
		if _, err := db.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("accounts: %w", err)
		}
	}
	// One device per account at tunnel address index id+10, all in the
	// map at version 1.
	if _, err := db.ExecContext(ctx, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $1)
		INSERT INTO devices (account_id, name, public_key, addr_index, in_map, peer_version, created_at, key_created_at)
		SELECT x, 'held', 'held-' || x, x + 10, `+boolTrue(dsn)+`, 1, `+tsLit(dsn, now)+`, `+tsLit(dsn, now)+` FROM c`, n); err != nil {
		return fmt.Errorf("devices: %w", err)
	}
	if _, err := db.ExecContext(ctx, "UPDATE peer_version SET version = 1"); err != nil {
		return err
	}
	if dsn != "" {
		for _, t := range []string{"accounts", "devices"} {
			if _, err := db.ExecContext(ctx, fmt.Sprintf("SELECT setval(pg_get_serial_sequence('%s', 'id'), %d)", t, n+1)); err != nil {
				return err
			}
		}
		// VACUUM too: autovacuum would otherwise take on the fresh
		// million rows during the measured steps.
		if _, err := db.ExecContext(ctx, "VACUUM ANALYZE"); err != nil {
			return err
		}
		// The fill's pages go to disk now, not in the first checkpoint
		// under load.
		_, err := db.ExecContext(ctx, "CHECKPOINT")
		return err
	}
	// The fill ran without fsync: put its pages on disk now, or the serve's
	// first checkpoint under load writes out the whole fill (a 100 ms stall
	// at 1,000,000 accounts) and the kernel's writeback of the rest lands
	// in the later steps.
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// tsLit is the SQL literal of a time in unix microseconds: the number on
// SQLite, a timestamptz on PostgreSQL.
func tsLit(dsn string, micros int64) string {
	if dsn == "" {
		return strconv.FormatInt(micros, 10)
	}
	return fmt.Sprintf("to_timestamp(%d.%06d)", micros/1e6, micros%1e6)
}

func boolTrue(dsn string) string {
	if dsn == "" {
		return "1"
	}
	return "TRUE"
}

func dsnFor(data, dsn string) string {
	if dsn == "" {
		return filepath.Join(data, "veil.db")
	}
	return dsn
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// serve is one `veil serve` child process.
type serve struct {
	url   string // public listener
	admin string // operator listener (/metrics)
	cmd   *exec.Cmd
	stop  func()
}

func startServe(ctx context.Context, bin, data, dsn string, i int) (*serve, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	admin, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--data", data, "--http", addr, "--admin-http", admin, "--builtin-gateway=false"}
	if dsn != "" {
		args = append(args, "--db", dsn)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	logf, _ := os.Create(filepath.Join(filepath.Dir(data), fmt.Sprintf("serve-%d.log", i)))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sv := &serve{url: "http://" + addr, admin: "http://" + admin, cmd: cmd,
		stop: func() { cmd.Process.Signal(os.Interrupt); cmd.Wait(); logf.Close() }}
	for deadline := time.Now().Add(120 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if r, err := http.Get(sv.url + "/healthz"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return sv, nil
			}
		}
	}
	sv.stop()
	log, _ := os.ReadFile(logf.Name())
	return nil, fmt.Errorf("serve %d did not answer /healthz:\n%s", i, log)
}

// cpu returns the process's user and system time so far, in clock ticks
// (10 ms on Linux).
func (sv *serve) cpu() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", sv.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: utime is
	// the 14th field of the line, stime the 15th.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

// heap returns the serve process's heap in use, from its /metrics.
func (sv *serve) heap() (uint64, error) {
	r, err := http.Get(sv.admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return uint64(f), err
		}
	}
	return 0, errors.New("no go_memstats_heap_inuse_bytes in /metrics")
}

type client struct{ http *http.Client }

func (c *client) post(url, token string, body, out any) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s %s", url, resp.Status, msg)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *client) login(u, code string) (string, error) {
	var s apitypes.Session
	err := c.post(u+"/api/v1/sessions", "", apitypes.SessionRequest{AccessCode: code}, &s)
	return s.Token, err
}

func (c *client) sessions(u string, from, n int) ([]string, error) {
	toks := make([]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			t, err := c.login(u, code(from+i+1))
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			toks[i] = t
		}()
	}
	wg.Wait()
	return toks, first
}

func tokensFor(c *client, u string, from, n int) []string {
	t, _ := c.sessions(u, from, n)
	return t
}

func newKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func (c *client) register(u, token string) (string, error) {
	k := newKey()
	return k, c.post(u+"/api/v1/devices", token, apitypes.DeviceRequest{PublicKey: k, Name: "bench"}, nil)
}

// open sends rate requests a second for d whatever the answers' pace
// (open loop), each timed from when it was due, so a slow server shows in
// the latency instead of lowering the rate sent.
func (c *client) open(rate int, d time.Duration, workers int, do func() error) result {
	n := int(float64(rate) * d.Seconds())
	due := make(chan time.Time, n)
	lat := make([]time.Duration, n)
	var errs atomic.Int64
	var done atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range due {
				err := do()
				i := done.Add(1) - 1
				lat[i] = time.Since(t)
				if err != nil {
					if errs.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, "first error:", err)
					}
				}
			}
		}()
	}
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	for i := range n {
		t := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(t))
		due <- t
	}
	close(due)
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	return result{Rate: rate, Count: n, Errors: int(errs.Load()), P50ms: ms(pct(lat, 50)), P99ms: ms(pct(lat, 99)),
		Achieved: float64(n) / el.Seconds()}
}

func pct(s []time.Duration, p int) time.Duration {
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type fetchResult struct {
	Peers      int     `json:"peers"`
	GzipBytes  int64   `json:"gzip_bytes"`
	Ms         float64 `json:"ms"`
	HeapGrowMB float64 `json:"client_heap_growth_mb"`
	ServeHeap  float64 `json:"serve_heap_growth_mb"` // peak heap in use during the fetch over the heap before
	ServeBase  float64 `json:"serve_heap_before_mb"`
	Err        string  `json:"error,omitempty"`
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// peerMap fetches the full map gzipped, as a gateway does, and decodes it
// peer by peer, so the client's memory stays flat whatever the map's size.
// peerMap fetches the full map gzipped, as a gateway does, and decodes it
// peer by peer, so the client's memory stays flat whatever the map's size;
// meanwhile it samples the serve process's heap in use.
func (c *client) peerMap(ctx context.Context, sv *serve, token string) (fetchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak uint64
	var res fetchResult
	base, err := sv.heap()
	if err != nil {
		return res, err
	}
	stop := make(chan struct{})
	var serveMax atomic.Uint64
	var sampled sync.WaitGroup
	sampled.Go(func() {
		for {
			if h, err := sv.heap(); err == nil && h > serveMax.Load() {
				serveMax.Store(h)
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	start := time.Now()
	err = c.peers(ctx, sv.url, token, 0, 0, func(apitypes.Peer) {
		res.Peers++
		if res.Peers%50_000 == 0 {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
		}
	}, &res.GzipBytes)
	res.Ms = ms(time.Since(start))
	close(stop)
	sampled.Wait()
	if peak > before.HeapInuse {
		res.HeapGrowMB = float64(peak-before.HeapInuse) / (1 << 20)
	}
	res.ServeBase = float64(base) / (1 << 20)
	if m := serveMax.Load(); m > base {
		res.ServeHeap = float64(m-base) / (1 << 20)
	}
	return res, err
}

// peers reads one answer of GET /api/v1/gateway/peers, calling each for
// every peer, and returns the map's version.
func (c *client) peers(ctx context.Context, u, token string, since int64, wait time.Duration, each func(apitypes.Peer), gz *int64) error {
	q := u + "/api/v1/gateway/peers?since=" + strconv.FormatInt(since, 10)
	if wait > 0 {
		q += "&wait=" + wait.String()
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, q, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("peer map: %s", resp.Status)
	}
	cr := &countingReader{r: resp.Body}
	var body io.Reader = cr
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(cr)
		if err != nil {
			return err
		}
		body = zr
	}
	_, err = decodePeerMap(body, each)
	if gz != nil {
		*gz = cr.n
	}
	return err
}

// decodePeerMap walks a PeerMap object, decoding its peers one at a time.
func decodePeerMap(r io.Reader, each func(apitypes.Peer)) (int64, error) {
	dec := json.NewDecoder(r)
	if _, err := dec.Token(); err != nil {
		return 0, err
	}
	var version int64
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return 0, err
		}
		switch t {
		case "version":
			if err := dec.Decode(&version); err != nil {
				return 0, err
			}
		case "peers":
			if _, err := dec.Token(); err != nil {
				return 0, err
			}
			for dec.More() {
				var p apitypes.Peer
				if err := dec.Decode(&p); err != nil {
					return 0, err
				}
				each(p)
			}
			if _, err := dec.Token(); err != nil {
				return 0, err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return 0, err
			}
		}
	}
	return version, nil
}

type propagation struct {
	Registrations int     `json:"registrations"`
	Gateways      int     `json:"gateways"`
	Seen          int     `json:"seen"`
	P50ms         float64 `json:"p50_ms"`
	P99ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
	LoadPerS      int     `json:"login_load_per_s"`
}

// propagate starts one real gateway (internal/gateway, netstack mode, in
// this process) on each serve process, each following the peer map as it
// does in production: a full map first, then long-polled deltas. It then
// registers devices through the first serve at 20/s for d while logins go
// to every serve at load/s, and times each device from the registration's
// answer to the moment each gateway has it in its authorised set.
func (c *client) propagate(ctx context.Context, urls []string, admin string, tokens []string, d time.Duration, load, accounts, workers int) (*propagation, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var gws []*gateway.Gateway
	var running sync.WaitGroup
	defer running.Wait()
	for i, u := range urls {
		var created apitypes.GatewayCreated
		if err := c.post(u+"/api/v1/admin/gateways", admin, apitypes.GatewayCreateRequest{
			Name: fmt.Sprintf("prop-%d", i), Location: "nl-ams", Endpoint: "192.0.2.1:51820"}, &created); err != nil {
			return nil, fmt.Errorf("adding gateway: %w", err)
		}
		g, err := gateway.New(gateway.Config{ControlURL: u, Token: created.Token, Mode: gateway.ModeNetstack, RetryMax: time.Second})
		if err != nil {
			return nil, err
		}
		running.Go(func() { g.Run(ctx) })
		gws = append(gws, g)
	}
	// Every gateway holds the full map before the clock starts.
	for _, g := range gws {
		for g.Stats().PeerMapVersion == 0 {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var bg sync.WaitGroup
	bg.Go(func() {
		var k atomic.Int64
		c.open(load, d+2*time.Second, workers, func() error {
			_, err := c.login(urls[int(k.Add(1))%len(urls)], code(1+randN(accounts)))
			return err
		})
	})
	// The authorised set is the gateway's own (on-demand peers: only
	// devices that handshake reach its address index), and only these
	// registrations change the map meanwhile: the j-th is known to a
	// gateway once its authorised count has grown by j+1.
	var mu sync.Mutex
	var answered []time.Time
	var lat []time.Duration
	n := int(d.Seconds() * 20)
	var watch sync.WaitGroup
	for _, g := range gws {
		base := g.Stats().Authorized
		watch.Go(func() {
			seen := 0
			for deadline := time.Now().Add(d + 15*time.Second); seen < n && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				c := g.Stats().Authorized - base
				if c <= seen {
					continue
				}
				now := time.Now()
				mu.Lock()
				for ; seen < c && seen < len(answered); seen++ {
					lat = append(lat, max(0, now.Sub(answered[seen])))
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		err := c.post(urls[0]+"/api/v1/devices", tokens[(i/4)%len(tokens)],
			apitypes.DeviceRequest{PublicKey: newKey(), Name: "prop"}, nil)
		t0 := time.Now()
		if err != nil {
			return nil, err
		}
		mu.Lock()
		answered = append(answered, t0)
		mu.Unlock()
		time.Sleep(time.Until(t0.Add(50 * time.Millisecond)))
	}
	watch.Wait()
	bg.Wait()
	cancel()
	slices.Sort(lat)
	r := &propagation{Registrations: n, Gateways: len(gws), Seen: len(lat), P50ms: ms(pct(lat, 50)), P99ms: ms(pct(lat, 99)), LoadPerS: load}
	if len(lat) > 0 {
		r.MaxMs = ms(lat[len(lat)-1])
	}
	return r, nil
}

const stepHeader = "op          rate   count errors    p50 ms    p99 ms    sent/s  cpu ms/r"

func printStep(r result) {
	fmt.Printf("%-9s %6d %7d %6d %9.1f %9.1f %9.0f %9.2f\n", r.Op, r.Rate, r.Count, r.Errors, r.P50ms, r.P99ms, r.Achieved, r.CPUms)
}

func report(o options, rs []result, f fetchResult, p *propagation) {
	fmt.Printf("\n%s, %d accounts/devices, %d serve process(es), %s per step, %d CPUs (shared)\n", dbName(o.db), o.accounts, o.serves, o.duration, runtime.NumCPU())
	fmt.Println(stepHeader)
	best := map[string]int{}
	for _, r := range rs {
		printStep(r)
		if r.Errors == 0 && r.P99ms < ms(target) {
			best[r.Op] = max(best[r.Op], r.Rate)
		}
	}
	fmt.Printf("highest rate with p99 < 50 ms and no errors: login %d/s, register %d/s\n", best["login"], best["register"])
	fmt.Printf("full peer map: %d peers, %d bytes gzipped, %.0f ms, heap growth: client %.1f MB, serve %.1f MB (from %.1f MB)\n",
		f.Peers, f.GzipBytes, f.Ms, f.HeapGrowMB, f.ServeHeap, f.ServeBase)
	if p != nil {
		fmt.Printf("propagation to %d gateways on %d serve processes, %d logins/s meanwhile: %d of %d seen, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
			p.Gateways, o.serves, p.LoadPerS, p.Seen, p.Registrations*p.Gateways, p.P50ms, p.P99ms, p.MaxMs)
	}
	line, _ := json.Marshal(map[string]any{"db": dbName(o.db), "accounts": o.accounts, "serves": o.serves,
		"steps": rs, "best_rate": best, "peer_map": f, "propagation": p})
	fmt.Println(string(line))
}
