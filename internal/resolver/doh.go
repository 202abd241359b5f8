package resolver

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DoHPath is where DNS over HTTPS answers; a public service also
// answers DoHPath + "/" + categories ("/dns-query/ads+malware").
const DoHPath = "/dns-query"

// dohContentType is the media type of RFC 8484 section 6.
const dohContentType = "application/dns-message"

// ServeDoH answers DNS over HTTPS (RFC 8484) over TLS (HTTP/2 or
// HTTP/1.1) on the connections ln accepts until ctx is done, then closes
// them and returns nil.
func (e *Encrypted) ServeDoH(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           e,
		TLSConfig:         e.tlsDoH,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		// net/http logs failed handshakes with the client's address.
		ErrorLog:    log.New(io.Discard, "", 0),
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	err := srv.ServeTLS(&admitListener{Listener: ln, e: e}, "", "")
	if ctx.Err() != nil || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// admitListener applies the front end's connection limits before the
// TLS handshake.
type admitListener struct {
	net.Listener
	e *Encrypted
}

// Accept returns the next connection the front end admits.
func (l *admitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return c, err
		}
		if _, release, ok := l.e.admit(c.RemoteAddr()); ok {
			return &releaseConn{Conn: c, release: release}, nil
		}
		c.Close()
	}
}

// releaseConn gives its slot back when closed.
type releaseConn struct {
	net.Conn
	release func()
}

// Close closes the connection and frees its slot.
func (c *releaseConn) Close() error {
	c.release()
	return c.Conn.Close()
}

// ServeHTTP answers one DNS over HTTPS request: GET with the query in
// the dns parameter (base64url), or POST with it as the body, typed
// application/dns-message. The answer is application/dns-message with a
// Cache-Control max-age of its smallest TTL (RFC 8484 section 5.1). Bad
// requests get a 4xx status and a one-line reason; a client over its
// rate limit gets 429.
func (e *Encrypted) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	mask, status, why := e.pathMask(hr)
	if status != 0 {
		http.Error(w, why, status)
		return
	}
	client, ok := e.r.allowed(remoteAddr(hr.RemoteAddr))
	if !ok {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	var msg []byte
	switch hr.Method {
	case http.MethodGet, http.MethodHead:
		q, ok := hr.URL.Query()["dns"]
		if !ok || len(q) != 1 || q[0] == "" {
			http.Error(w, "missing dns parameter", http.StatusBadRequest)
			return
		}
		var err error
		// RFC 8484 section 4.1: base64url without padding; padding is
		// tolerated.
		if msg, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(q[0], "=")); err != nil {
			http.Error(w, "dns parameter is not base64url", http.StatusBadRequest)
			return
		}
	case http.MethodPost:
		if mt, _, err := mime.ParseMediaType(hr.Header.Get("Content-Type")); err != nil || mt != dohContentType {
			http.Error(w, "want Content-Type "+dohContentType, http.StatusUnsupportedMediaType)
			return
		}
		var err error
		if msg, err = io.ReadAll(http.MaxBytesReader(w, hr.Body, maxQuery)); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "query too large", http.StatusRequestEntityTooLarge)
			} else {
				http.Error(w, "reading query failed", http.StatusBadRequest)
			}
			return
		}
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
		return
	}
	if len(msg) > maxQuery {
		http.Error(w, "query too large", http.StatusRequestEntityTooLarge)
		return
	}
	req, err := e.r.parseQuery(msg)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var answer []byte
	cw := newClientWriter(nil, client, func(b []byte) error { answer = append([]byte(nil), b...); return nil })
	cw.chosen, cw.mask = e.public, mask
	e.r.ServeDNS(cw, req)
	if !cw.sent {
		// ServeDNS drops what it does not answer; the checks above
		// leave only the client's rate limit.
		w.Header().Set("Retry-After", "1")
		http.Error(w, "rate limit exceeded", http.StatusTooManyRequests)
		return
	}
	h := w.Header()
	h.Set("Content-Type", dohContentType)
	h.Set("Content-Length", strconv.Itoa(len(answer)))
	h.Set("Cache-Control", "max-age="+strconv.Itoa(int(minTTL(answer))))
	if hr.Method != http.MethodHead {
		_, _ = w.Write(answer)
	}
}

// pathMask checks the request's path and returns the blocking
// categories it and the host name choose, or an HTTP status and reason
// to refuse it with.
func (e *Encrypted) pathMask(hr *http.Request) (uint64, int, string) {
	rest, ok := strings.CutPrefix(hr.URL.Path, DoHPath)
	switch {
	case !ok || (rest != "" && !e.public):
		return 0, http.StatusNotFound, "not found; DNS over HTTPS is at " + DoHPath
	case !e.public:
		return 0, 0, ""
	case rest == "" || rest == "/":
		m, err := e.hostMask(hr.Host)
		if err != nil {
			return 0, http.StatusNotFound, err.Error()
		}
		return m, 0, ""
	case rest[0] != '/' || strings.Contains(rest[1:], "/"):
		return 0, http.StatusNotFound, "not found; DNS over HTTPS is at " + DoHPath
	}
	m, err := e.categoryMask(rest[1:])
	if err != nil {
		return 0, http.StatusNotFound, err.Error()
	}
	return m, 0, ""
}

// remoteAddr turns http.Request.RemoteAddr back into an address.
func remoteAddr(s string) net.Addr {
	ap, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		return nil
	}
	return ap
}

// minTTL returns the smallest TTL of a packed answer's answer and
// authority records (the SOA's, for a negative answer), 0 if it has none
// or cannot be read.
func minTTL(b []byte) uint32 {
	var m dns.Msg
	if m.Unpack(b) != nil {
		return 0
	}
	var ttl uint32
	first := true
	for _, rrs := range [][]dns.RR{m.Answer, m.Ns} {
		for _, rr := range rrs {
			if t := rr.Header().Ttl; first || t < ttl {
				ttl, first = t, false
			}
		}
	}
	if m.Rcode == dns.RcodeServerFailure {
		return 0
	}
	return ttl
}
