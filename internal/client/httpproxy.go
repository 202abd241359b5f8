package client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strings"
	"time"
)

// newHTTPProxy returns an HTTP proxy server: CONNECT tunnels and plain
// http:// requests, both dialled through the tunnel. It adds no
// Forwarded or X-Forwarded-For header: the far side learns nothing of
// this machine.
func newHTTPProxy(dial dialFunc, log *slog.Logger) *http.Server {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodConnect:
			httpConnect(w, r, dial, log)
		case r.URL.IsAbs() && r.URL.Scheme == "http":
			httpForward(w, r, dial, log)
		default:
			http.Error(w, "veil: this is a proxy; send CONNECT or an absolute http:// URL", http.StatusBadRequest)
		}
	})
	return &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, 0)}
}

// hopHeaders are the hop-by-hop headers (RFC 9110, section 7.6.1), which
// describe one connection and are not passed on. Transfer-Encoding and
// Trailer are among them for a request, whose body net/http has decoded;
// an answer's are kept, since its body is relayed as the origin framed it.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Upgrade"}

// maxAnswerHead bounds the status line and headers of an origin's answer.
const maxAnswerHead = 64 << 10

// httpForward sends a plain-HTTP request to its origin, one request per
// connection, and relays the answer as the origin sent it: its status
// line and protocol version, its headers but the hop-by-hop ones, and its
// body byte for byte. http.Transport and ReverseProxy would rewrite an
// HTTP/1.0 answer as HTTP/1.1, add a Content-Type the origin never sent
// and ask the origin for gzip.
func httpForward(w http.ResponseWriter, r *http.Request, dial dialFunc, log *slog.Logger) {
	addr := r.URL.Host
	if r.URL.Port() == "" {
		addr = net.JoinHostPort(r.URL.Hostname(), "80")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	up, err := dial(ctx, "tcp", addr)
	cancel()
	if err != nil {
		log.Debug("http proxy request failed")
		proxyError(w, err)
		return
	}
	defer up.Close()

	out := &http.Request{Method: r.Method, URL: r.URL, Host: r.Host, Header: r.Header.Clone(),
		Body: r.Body, ContentLength: r.ContentLength, Close: true}
	dropHop(out.Header)
	out.Header.Del("Trailer")
	// The server has already answered an Expect: 100-continue.
	out.Header.Del("Expect")
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""} // Request.Write adds Go's own otherwise
	}
	up.SetDeadline(time.Now().Add(60 * time.Second))
	bw := bufio.NewWriter(up)
	if err := out.Write(bw); err != nil || bw.Flush() != nil {
		log.Debug("http proxy request failed")
		proxyError(w, err)
		return
	}

	br := bufio.NewReader(io.LimitReader(up, maxAnswerHead))
	// An HTTP/1.0 client reads neither interim (1xx) answers nor chunked
	// bodies (RFC 9112, section 7.1; RFC 9110, section 15.2).
	old := !r.ProtoAtLeast(1, 1)
	var heads strings.Builder
	var a answerHead
	for !a.final {
		if a, err = readAnswerHead(textproto.NewReader(br), old); err != nil {
			log.Debug("http proxy answer unreadable")
			http.Error(w, "veil: the origin's answer was not HTTP", http.StatusBadGateway)
			return
		}
		if a.final || !old {
			heads.WriteString(a.text)
		}
	}
	up.SetDeadline(time.Time{})
	c, _, ok := takeOver(w, heads.String())
	if !ok {
		return
	}
	defer c.Close()
	// Each side's end ends the relay: the origin's close (it was asked
	// to close), or the client's.
	go func() {
		io.Copy(io.Discard, c)
		up.Close()
	}()
	body := io.MultiReader(io.LimitReader(br, int64(br.Buffered())), up)
	if a.dechunk {
		body = httputil.NewChunkedReader(body)
	}
	io.Copy(c, body)
}

// answerHead is one status line and its headers, as the proxy passes them
// on.
type answerHead struct {
	text string
	// final is false for an interim (1xx) answer.
	final bool
	// dechunk: the body is chunked, and the client gets it plain,
	// delimited by the connection's close.
	dechunk bool
}

// readAnswerHead reads one status line and its headers as the origin wrote
// them, but for the hop-by-hop headers; a final answer's head gets
// Connection: close, as the proxy closes the connection after it. For an
// old (HTTP/1.0) client a chunked body is to be decoded, and its
// Transfer-Encoding and Trailer headers go.
func readAnswerHead(tp *textproto.Reader, old bool) (answerHead, error) {
	var a answerHead
	status, err := tp.ReadLine()
	if err != nil {
		return a, err
	}
	proto, rest, _ := strings.Cut(status, " ")
	code, _, _ := strings.Cut(rest, " ")
	if _, _, ok := http.ParseHTTPVersion(proto); !ok || len(code) != 3 || code[0] < '1' || code[0] > '5' {
		return a, errors.New("bad status line")
	}
	a.final = code[0] != '1' || code == "101"
	type field struct{ name, line string }
	var fields []field
	drop := map[string]bool{}
	for _, h := range hopHeaders {
		drop[h] = true
	}
	for {
		line, err := tp.ReadContinuedLine()
		if err != nil {
			return a, err
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return a, errors.New("bad header line")
		}
		name = textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(name))
		switch {
		case name == "Connection":
			for _, f := range strings.Split(value, ",") {
				drop[textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(f))] = true
			}
		case name == "Transfer-Encoding" && old && strings.EqualFold(strings.TrimSpace(value), "chunked"):
			a.dechunk = true
		}
		fields = append(fields, field{name, line})
	}
	// The body is relayed with the origin's own framing, unless decoded.
	drop["Transfer-Encoding"], drop["Trailer"] = a.dechunk, a.dechunk
	var head strings.Builder
	head.WriteString(status + "\r\n")
	for _, f := range fields {
		if !drop[f.name] {
			head.WriteString(f.line + "\r\n")
		}
	}
	if a.final {
		head.WriteString("Connection: close\r\n")
	}
	head.WriteString("\r\n")
	a.text = head.String()
	return a, nil
}

// dropHop removes the hop-by-hop headers of a request, those its
// Connection header names included.
func dropHop(h http.Header) {
	for _, v := range h.Values("Connection") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

func httpConnect(w http.ResponseWriter, r *http.Request, dial dialFunc, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	up, err := dial(ctx, "tcp", r.Host)
	cancel()
	if err != nil {
		log.Debug("http proxy connect failed")
		proxyError(w, err)
		return
	}
	defer up.Close()
	c, brw, ok := takeOver(w, "HTTP/1.1 200 Connection established\r\n\r\n")
	if !ok {
		return
	}
	defer c.Close()
	// Bytes the client sent after its request are buffered in brw.
	var from io.Reader = c
	if n := brw.Reader.Buffered(); n > 0 {
		from = io.MultiReader(io.LimitReader(brw.Reader, int64(n)), c)
	}
	splice(c, from, up)
}

// takeOver takes the client's connection from the HTTP server and writes
// head, the answer's head, to it. If it reports false, the answer has been
// sent (or the connection is gone) and the caller is done.
func takeOver(w http.ResponseWriter, head string) (net.Conn, *bufio.ReadWriter, bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "veil: cannot relay on this connection", http.StatusInternalServerError)
		return nil, nil, false
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, false
	}
	c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, head); err != nil {
		c.Close()
		return nil, nil, false
	}
	return c, brw, true
}

// proxyError answers a request whose destination could not be reached.
func proxyError(w http.ResponseWriter, err error) {
	if errors.Is(err, errLocalDestination) {
		http.Error(w, "veil: "+errLocalDestination.Error(), http.StatusForbidden)
		return
	}
	http.Error(w, "veil: the destination could not be reached through the tunnel", http.StatusBadGateway)
}
