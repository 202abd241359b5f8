package ping

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/icmp"

	"veil/internal/netguard"
	"veil/internal/tools/outbound"
	"veil/internal/web"
)

var loopback = netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}

// icmpOrSkip skips the test where this process may open no ICMP socket.
func icmpOrSkip(t *testing.T) {
	t.Helper()
	c, _, err := listen(false)
	if err != nil {
		t.Skip("no ICMP socket for this user (run as root, as make test does in CI, or widen net.ipv4.ping_group_range)")
	}
	c.Close()
}

func TestPingLoopback(t *testing.T) {
	icmpOrSkip(t)
	p := &Pinger{Guard: loopback, Interval: 10 * time.Millisecond,
		Resolve: func(ctx context.Context, host string) ([]netip.Addr, error) {
			if host == "here.test" {
				return []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("127.0.0.2")}, nil
			}
			return nil, errors.New("no such host")
		}}
	res, err := p.Ping(context.Background(), "127.0.0.1", 3)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 3 || res.Received != 3 || len(res.RTTs) != 3 || res.Min < 0 || res.Max < res.Min || res.Avg < res.Min || res.Avg > res.Max {
		t.Fatalf("ping 127.0.0.1: %+v", res)
	}
	// A name: its first address the guard permits is pinged (192.0.2.1,
	// a documentation range, is not).
	res, err = p.Ping(context.Background(), "Here.Test.", 1)
	if err != nil || res.Address != "127.0.0.2" || res.Received != 1 || res.Host != "here.test" {
		t.Fatalf("ping here.test: %+v, %v", res, err)
	}
	if _, err := p.Ping(context.Background(), "nowhere.test", 1); err == nil || !strings.Contains(err.Error(), "does not resolve") {
		t.Fatalf("a name that does not resolve: %v", err)
	}
	// Counts are bounded.
	res, err = p.Ping(context.Background(), "127.0.0.1", 50)
	if err != nil || res.Sent != MaxCount {
		t.Fatalf("count 50 sent %d, want %d: %v", res.Sent, MaxCount, err)
	}
}

func TestPingIPv6Loopback(t *testing.T) {
	icmpOrSkip(t)
	if c, _, err := listen(true); err != nil {
		t.Skip("no ICMPv6 socket here")
	} else {
		c.Close()
	}
	p := &Pinger{Guard: loopback, Interval: 10 * time.Millisecond}
	res, err := p.Ping(context.Background(), "::1", 2)
	if err != nil || res.Received != 2 {
		t.Fatalf("ping ::1: %+v, %v", res, err)
	}
}

// TestGuard: what the guard refuses is never pinged, whatever the name.
func TestGuard(t *testing.T) {
	p := &Pinger{Resolve: func(ctx context.Context, host string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("::1")}, nil
	}}
	for _, host := range []string{"127.0.0.1", "10.1.2.3", "::ffff:127.0.0.1", "metadata.test"} {
		if res, err := p.Ping(context.Background(), host, 1); !errors.Is(err, netguard.ErrDenied) || res.Sent != 0 {
			t.Errorf("ping %s: %+v, %v; want ErrDenied and nothing sent", host, res, err)
		}
	}
}

func TestCheckHost(t *testing.T) {
	for in, want := range map[string]string{"Example.ORG": "example.org", "bücher.example": "xn--bcher-kva.example", " 192.0.2.1 ": "192.0.2.1", "fe80::1%eth0": "fe80::1"} {
		if got, err := CheckHost(in); err != nil || got != want {
			t.Errorf("CheckHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a b", "x\ny.example", strings.Repeat("a.", 130) + "org"} {
		if got, err := CheckHost(bad); err == nil {
			t.Errorf("CheckHost(%q) = %q, want an error", bad, got)
		}
	}
}

func TestHandler(t *testing.T) {
	icmpOrSkip(t)
	h := &Handler{Pinger: &Pinger{Guard: loopback, Interval: 10 * time.Millisecond}, Quota: outbound.NewQuota(2, time.Minute, nil)}
	mux := http.NewServeMux()
	h.Register(mux)
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "198.51.100.7:4000"
		mux.ServeHTTP(rec, req)
		return rec
	}
	rec := get("/ping?host=127.0.0.1")
	if body := rec.Body.String(); rec.Code != 200 || !strings.Contains(body, "4 sent, 4 received") {
		t.Fatalf("page: %d\n%s", rec.Code, body)
	}
	rec = get("/api/v1/ping?host=127.0.0.1&count=2")
	var res Result
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || res.Received != 2 {
		t.Fatalf("API: %d %s", rec.Code, rec.Body)
	}
	for path, code := range map[string]int{
		"/api/v1/ping?host=127.0.0.1&count=9": 400,
		"/api/v1/ping?host=a+b":               400,
		"/api/v1/ping?host=127.0.0.1":         429, // the quota of 2 is used up
	} {
		if rec := get(path); rec.Code != code {
			t.Errorf("%s: %d %s, want %d", path, rec.Code, rec.Body, code)
		}
	}
	h2 := &Handler{Pinger: &Pinger{}}
	mux2 := http.NewServeMux()
	h2.Register(mux2)
	rec = httptest.NewRecorder()
	mux2.ServeHTTP(rec, httptest.NewRequest("GET", "/ping?host=10.0.0.1", nil))
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "not pinged from here") {
		t.Fatalf("a private address: %d", rec.Code)
	}
}

// tcpListener accepts connections on loopback until the test ends and
// returns its port.
func tcpListener(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestTCPPing(t *testing.T) {
	p := &Pinger{Guard: loopback, Interval: time.Millisecond}
	port := tcpListener(t)
	var replies []Reply
	res, err := p.Run(context.Background(), Request{Host: "127.0.0.1", Count: 3, Proto: TCP, Port: port}, func(res *Result, r Reply) {
		if res.Address != "127.0.0.1" || res.Proto != TCP {
			t.Errorf("result not set up before the first reply: %+v", res)
		}
		replies = append(replies, r)
	})
	if err != nil || res.Proto != TCP || res.Port != port || res.Sent != 3 || res.Received != 3 || res.Note != "" {
		t.Fatalf("TCP ping of an open port: %+v, %v", res, err)
	}
	if len(replies) != 3 || replies[0].Seq != 1 || replies[2].Seq != 3 || replies[1].RTT < 0 {
		t.Errorf("replies %+v", replies)
	}
	res, err = p.Run(context.Background(), Request{Host: "127.0.0.1", Count: 2, Proto: TCP, Port: closedPort(t)}, func(_ *Result, r Reply) {
		if r.RTT != -1 || r.Status != "refused" {
			t.Errorf("a closed port: reply %+v, want refused", r)
		}
	})
	if err != nil || res.Sent != 2 || res.Received != 0 {
		t.Fatalf("TCP ping of a closed port: %+v, %v", res, err)
	}
	// IPv6, where loopback has it.
	if l6, err := net.Listen("tcp", "[::1]:0"); err == nil {
		defer l6.Close()
		go func() {
			if c, err := l6.Accept(); err == nil {
				c.Close()
			}
		}()
		res, err := p.Run(context.Background(), Request{Host: "::1", Count: 1, Proto: TCP, Port: l6.Addr().(*net.TCPAddr).Port}, nil)
		if err != nil || res.Address != "::1" || res.Received != 1 {
			t.Errorf("TCP ping of ::1: %+v, %v", res, err)
		}
	}
	// The guard holds for TCP as for ICMP.
	if res, err := (&Pinger{}).Run(context.Background(), Request{Host: "127.0.0.1", Proto: TCP, Port: port}, nil); !errors.Is(err, netguard.ErrDenied) || res.Sent != 0 {
		t.Errorf("TCP ping of loopback without an allowance: %+v, %v", res, err)
	}
}

// TestNoICMPFallsBackToTCP: where no ICMP socket may be opened, an ICMP
// ping runs over TCP and says so.
func TestNoICMPFallsBackToTCP(t *testing.T) {
	p := &Pinger{Guard: loopback, Interval: time.Millisecond,
		listen: func(bool) (*icmp.PacketConn, bool, error) { return nil, false, ErrUnavailable }}
	res, err := p.Run(context.Background(), Request{Host: "127.0.0.1", Count: 1, Port: tcpListener(t)}, nil)
	if err != nil || res.Proto != TCP || res.Note != NoICMP || res.Received != 1 {
		t.Fatalf("%+v, %v; want a TCP ping with the note", res, err)
	}
}

// event is one server-sent event.
type event struct{ name, id, data string }

// readEvent reads the next event of a stream.
func readEvent(t *testing.T, r *bufio.Reader) event {
	t.Helper()
	var ev event
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v (so far %+v)", err, ev)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			return ev
		case strings.HasPrefix(line, "event: "):
			ev.name = line[7:]
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "data: "):
			ev.data += line[6:]
		}
	}
}

func TestStream(t *testing.T) {
	port := strconv.Itoa(tcpListener(t))
	pinger := &Pinger{Guard: loopback, Interval: time.Hour}
	mux := http.NewServeMux()
	(&Handler{Pinger: pinger, Quota: outbound.NewQuota(3, time.Minute, nil)}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	stream := srv.URL + "/api/v1/ping/stream?host=127.0.0.1&proto=tcp&port=" + port

	// With an hour between requests, the first reply can only have come
	// as an event of its own, before the ping ends.
	resp, err := http.Get(stream + "&count=2")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() // before srv.Close, which waits for the handler
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("%d %s", resp.StatusCode, ct)
	}
	r := bufio.NewReader(resp.Body)
	var start Result
	if ev := readEvent(t, r); ev.name != "start" || json.Unmarshal([]byte(ev.data), &start) != nil || start.Proto != TCP || start.Sent != 0 {
		t.Fatalf("first event %+v", ev)
	}
	var rep Reply
	if ev := readEvent(t, r); ev.name != "reply" || ev.id != "1" || json.Unmarshal([]byte(ev.data), &rep) != nil || rep.Seq != 1 || rep.RTT < 0 {
		t.Fatalf("second event %+v", ev)
	}
	resp.Body.Close() // ends the ping that waits for its next request

	pinger.Interval = time.Millisecond
	resp, err = http.Get(stream)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r = bufio.NewReader(resp.Body)
	var names []string
	var done Result
	for {
		ev := readEvent(t, r)
		names = append(names, ev.name)
		if ev.name == "done" {
			json.Unmarshal([]byte(ev.data), &done)
			break
		}
	}
	if strings.Join(names, ",") != "start,reply,reply,reply,reply,done" || done.Received != 4 || done.Port == 0 {
		t.Errorf("events %v, result %+v", names, done)
	}

	for _, tt := range []struct {
		path   string
		header string
		code   int
	}{
		{"?host=127.0.0.1&proto=udp", "", 400},
		{"?host=127.0.0.1&port=80", "", 400}, // a port without proto=tcp
		{"?host=127.0.0.1&proto=tcp&port=0", "", 400},
		{"?host=127.0.0.1&proto=tcp", "Last-Event-ID: 4", 204},
		{"?host=10.0.0.1&proto=tcp", "", 403},               // the third use of the quota
		{"?host=127.0.0.1&proto=tcp&port=" + port, "", 429}, // over it
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/ping/stream"+tt.path, nil)
		if k, v, ok := strings.Cut(tt.header, ": "); ok {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tt.code || (tt.code >= 400 && body["error"] == "") {
			t.Errorf("%s: %d %v, want %d and an error", tt.path, resp.StatusCode, body, tt.code)
		}
	}
}

func TestTCPParameters(t *testing.T) {
	port := strconv.Itoa(tcpListener(t))
	h := &Handler{Pinger: &Pinger{Guard: loopback, Interval: time.Millisecond}}
	mux := http.NewServeMux()
	h.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/ping?host=127.0.0.1&count=2&proto=tcp&port="+port, nil))
	var res Result
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || res.Proto != TCP || res.Received != 2 {
		t.Fatalf("API: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/ping?host=127.0.0.1&proto=tcp&port="+port, nil))
	if body := rec.Body.String(); rec.Code != 200 || !strings.Contains(body, "TCP port "+port) || !strings.Contains(body, "4 sent, 4 received") {
		t.Fatalf("page: %d\n%s", rec.Code, body)
	}
}

// TestErrorsInTheVisitorsLanguage: a refused question shows on the page
// in the page's language, while the API keeps its English error.
func TestErrorsInTheVisitorsLanguage(t *testing.T) {
	mux := http.NewServeMux()
	(&Handler{Pinger: &Pinger{Guard: loopback}, Quota: outbound.NewQuota(10, time.Minute, nil)}).Register(mux)
	h := web.Localize(mux)
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec
	}
	for _, tt := range []struct{ path, want string }{
		{"/de/ping?host=127.0.0.1&proto=udp", "das Protokoll muss icmp oder tcp sein"},
		{"/ru/ping?host=10.0.0.1", "этот адрес отсюда не пингуется"},
		{"/zh/ping?host=127.0.0.1&port=99999&proto=tcp", "端口是 1 到 65535 之间的数字"},
		{"/ping?host=127.0.0.1&proto=udp", "proto must be icmp or tcp"},
	} {
		rec := get(tt.path)
		if body := rec.Body.String(); rec.Code/100 != 4 || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d, lacks %q", tt.path, rec.Code, tt.want)
		}
	}
	rec := get("/de/api/v1/ping?host=127.0.0.1&proto=udp")
	var e struct{ Error string }
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error != "proto must be icmp or tcp" {
		t.Errorf("API error: %d %s", rec.Code, rec.Body)
	}
	// The page's script asks the stream for its errors in its language.
	for lang, want := range map[string]string{"": "proto must be icmp or tcp", "de": "das Protokoll muss icmp oder tcp sein", "zh-Hans": "协议必须是 icmp 或 tcp"} {
		rec := get("/api/v1/ping/stream?host=127.0.0.1&proto=udp&lang=" + lang)
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != 400 || e.Error != want {
			t.Errorf("stream error (lang %q): %d %s", lang, rec.Code, rec.Body)
		}
	}
}
