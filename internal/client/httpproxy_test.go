package client

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rawOrigin is a TCP server on loopback that records the head of each
// request it gets and answers every one with answer, then closes.
type rawOrigin struct {
	addr     string
	requests chan string
}

func startRawOrigin(t testing.TB, answer string) *rawOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	o := &rawOrigin{addr: ln.Addr().String(), requests: make(chan string, 8)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			var head strings.Builder
			for {
				line, err := br.ReadString('\n')
				head.WriteString(line)
				if err != nil || line == "\r\n" {
					break
				}
			}
			o.requests <- head.String()
			io.WriteString(c, answer)
			c.Close()
		}
	}()
	return o
}

// startTestProxy serves the HTTP proxy on loopback, dialling directly
// instead of through a tunnel.
func startTestProxy(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPProxy((&net.Dialer{Timeout: 5 * time.Second}).DialContext, slog.New(slog.DiscardHandler))
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// proxyRaw sends request to the proxy as written and returns all it
// answers.
func proxyRaw(t testing.TB, proxy, request string) string {
	t.Helper()
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the proxy's answer: %v", err)
	}
	return string(b)
}

// TestHTTPProxyRelaysAnswerAsSent: a plain-HTTP answer reaches the client
// as the origin sent it (its HTTP/1.0 status line, no Content-Type it did
// not send, its body), minus hop-by-hop headers; the request reaches the
// origin without anything the proxy made up (Accept-Encoding, a
// User-Agent) and without the client's hop-by-hop headers.
func TestHTTPProxyRelaysAnswerAsSent(t *testing.T) {
	origin := startRawOrigin(t, "HTTP/1.0 200 Fine Thanks\r\nX-Origin: kept\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive, X-Private\r\nX-Private: hop\r\n\r\n<b>hello</b>")
	proxy := startTestProxy(t)
	answer := proxyRaw(t, proxy, "GET http://"+origin.addr+"/path?q=1 HTTP/1.1\r\nHost: "+origin.addr+
		"\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eDp5\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nX-Client: yes\r\n\r\n")

	head, body, _ := strings.Cut(answer, "\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.0 200 Fine Thanks\r\n") {
		t.Errorf("status line rewritten: %q", head)
	}
	if !strings.Contains(head, "\r\nX-Origin: kept") {
		t.Errorf("the origin's header is missing: %q", head)
	}
	for _, bad := range []string{"Content-Type", "Keep-Alive", "X-Private", "keep-alive"} {
		if strings.Contains(head, bad) {
			t.Errorf("answer head has %q: %q", bad, head)
		}
	}
	if body != "<b>hello</b>" {
		t.Errorf("body = %q", body)
	}

	req := <-origin.requests
	if !strings.HasPrefix(req, "GET /path?q=1 HTTP/1.1\r\n") {
		t.Errorf("request line: %q", req)
	}
	if !strings.Contains(req, "\r\nX-Client: yes\r\n") || !strings.Contains(req, "\r\nHost: "+origin.addr+"\r\n") {
		t.Errorf("the client's headers did not arrive: %q", req)
	}
	for _, bad := range []string{"Accept-Encoding", "User-Agent", "Proxy-", "X-Hop", "Forwarded"} {
		if strings.Contains(req, bad) {
			t.Errorf("request to the origin has %q: %q", bad, req)
		}
	}
}

// TestHTTPProxyChunked: a chunked HTTP/1.1 answer is relayed with its own
// framing, which an ordinary client through the proxy decodes.
func TestHTTPProxyChunked(t *testing.T) {
	origin := startRawOrigin(t, "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nContent-Type: text/x-odd\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
	proxy := startTestProxy(t)
	raw := proxyRaw(t, proxy, "GET http://"+origin.addr+"/ HTTP/1.1\r\nHost: "+origin.addr+"\r\nUser-Agent: mine/1\r\nConnection: close\r\n\r\n")
	if !strings.Contains(raw, "\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n") || !strings.Contains(raw, "Content-Type: text/x-odd") {
		t.Errorf("chunked answer not relayed as sent: %q", raw)
	}
	if req := <-origin.requests; !strings.Contains(req, "\r\nUser-Agent: mine/1\r\n") {
		t.Errorf("the client's User-Agent did not arrive: %q", req)
	}

	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxy})}}
	resp, err := c.Get("http://" + origin.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || string(b) != "hello world" {
		t.Errorf("through the proxy: %s %q", resp.Status, b)
	}
}

// TestHTTPProxyBadOrigin: an origin that answers with something other
// than HTTP gets the client a 502, not its bytes.
func TestHTTPProxyBadOrigin(t *testing.T) {
	origin := startRawOrigin(t, "SSH-2.0-OpenSSH_9.6\r\n")
	answer := proxyRaw(t, startTestProxy(t), "GET http://"+origin.addr+"/ HTTP/1.1\r\nHost: "+origin.addr+"\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(answer, "HTTP/1.1 502") || strings.Contains(answer, "SSH-2.0") {
		t.Errorf("answer = %q", answer)
	}
}

// TestHTTPProxyOldClient: an HTTP/1.0 client gets neither an interim
// answer nor a chunked body, which it could not read; an HTTP/1.1 client
// gets both as sent.
func TestHTTPProxyOldClient(t *testing.T) {
	origin := startRawOrigin(t, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n")
	proxy := startTestProxy(t)
	old := proxyRaw(t, proxy, "GET http://"+origin.addr+"/ HTTP/1.0\r\nHost: "+origin.addr+"\r\n\r\n")
	if old != "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello" {
		t.Errorf("HTTP/1.0 client got %q", old)
	}
	<-origin.requests
	cur := proxyRaw(t, proxy, "GET http://"+origin.addr+"/ HTTP/1.1\r\nHost: "+origin.addr+"\r\n\r\n")
	want := "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n"
	if cur != want {
		t.Errorf("HTTP/1.1 client got %q, want %q", cur, want)
	}
}
