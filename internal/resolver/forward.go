package resolver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// upstream is one forwarder: DNS over TLS or DNS over HTTPS.
type upstream interface {
	exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error)
}

// parseUpstreams parses Config.Forward.
func parseUpstreams(specs []string, roots *x509.CertPool, timeout time.Duration, egress func(netip.Addr) error) ([]upstream, error) {
	dialer := &net.Dialer{Timeout: timeout, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("parsing dial address: %w", err)
		}
		return egress(ap.Addr())
	}}
	var ups []upstream
	for _, s := range specs {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("parsing forward upstream: %w", err)
		}
		switch u.Scheme {
		case "tls":
			host, port := u.Hostname(), u.Port()
			if host == "" {
				return nil, fmt.Errorf("parsing forward upstream %q: no host", s)
			}
			if port == "" {
				port = "853"
			}
			name := u.Fragment
			if name == "" {
				name = host
			}
			ups = append(ups, &dotUpstream{
				addr: net.JoinHostPort(host, port),
				dialer: &tls.Dialer{
					NetDialer: dialer,
					Config: &tls.Config{
						ServerName: name,
						RootCAs:    roots,
						MinVersion: tls.VersionTLS12,
					},
				},
			})
		case "https":
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.Proxy = nil // queries go to the operator's upstream and nowhere else
			tr.DialContext = dialer.DialContext
			tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
			tr.ForceAttemptHTTP2 = true
			ups = append(ups, &dohUpstream{
				url:    u.String(),
				client: &http.Client{Transport: tr, Timeout: timeout},
			})
		default:
			return nil, fmt.Errorf("parsing forward upstream %q: scheme must be tls or https", s)
		}
	}
	return ups, nil
}

// dotUpstream is a DNS-over-TLS forwarder. It keeps up to maxIdleDoT
// connections open between queries (RFC 7858 section 3.4), one query at
// a time on each, so that a busy resolver does not pay a TCP and TLS
// handshake per query.
type dotUpstream struct {
	addr   string
	dialer *tls.Dialer

	mu   sync.Mutex
	idle []idleConn // most recently used last
}

type idleConn struct {
	c     *dns.Conn
	since time.Time
}

const (
	maxIdleDoT = 8
	// dotIdleTimeout is how long an unused connection is kept: servers
	// close idle ones too (Unbound after 30 s by default), and a query
	// sent on a connection the server has dropped costs a retry.
	dotIdleTimeout = 20 * time.Second
)

// exchange sends m on an idle connection, or a new one. A reused
// connection may have been closed by the server meanwhile; then the query
// goes again on the next, and at the latest on a fresh connection.
func (d *dotUpstream) exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	for {
		c, reused := d.get()
		if c == nil {
			tc, err := d.dialer.DialContext(ctx, "tcp", d.addr)
			if err != nil {
				return nil, fmt.Errorf("dns over tls: %w", err)
			}
			c = &dns.Conn{Conn: tc}
		}
		resp, err := roundTrip(ctx, c, m)
		if err == nil {
			d.put(c)
			return resp, nil
		}
		c.Close()
		if !reused || ctx.Err() != nil {
			return nil, fmt.Errorf("dns over tls: %w", err)
		}
	}
}

// roundTrip sends m on c and reads its answer, within ctx's deadline.
func roundTrip(ctx context.Context, c *dns.Conn, m *dns.Msg) (*dns.Msg, error) {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Time{})
	}
	if err := c.WriteMsg(m); err != nil {
		return nil, err
	}
	resp, err := c.ReadMsg()
	if err != nil {
		return nil, err
	}
	if resp.Id != m.Id {
		// Not the answer to this query: the stream is out of step.
		return nil, errMismatch
	}
	return resp, nil
}

// get takes the most recently used idle connection, closing those that
// have been idle too long; reused is false when there is none.
func (d *dotUpstream) get() (c *dns.Conn, reused bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	for len(d.idle) > 0 {
		ic := d.idle[len(d.idle)-1]
		d.idle = d.idle[:len(d.idle)-1]
		if now.Sub(ic.since) < dotIdleTimeout {
			return ic.c, true
		}
		ic.c.Close()
	}
	return nil, false
}

// put keeps c for the next query, or closes it when enough are kept.
func (d *dotUpstream) put(c *dns.Conn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.idle) >= maxIdleDoT {
		c.Close()
		return
	}
	d.idle = append(d.idle, idleConn{c: c, since: time.Now()})
}

type dohUpstream struct {
	url    string
	client *http.Client
}

// exchange sends m as an RFC 8484 POST. The ID is set to 0 on the wire as
// the RFC recommends, and restored for the caller.
func (d *dohUpstream) exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	id := m.Id
	q := m.Copy()
	q.Id = 0
	wire, err := q.Pack()
	if err != nil {
		return nil, fmt.Errorf("packing query: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(wire))
	if err != nil {
		return nil, fmt.Errorf("dns over https: %w", err)
	}
	req.Header.Set("Content-Type", "application/dns-message")
	req.Header.Set("Accept", "application/dns-message")
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("dns over https: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("dns over https: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, dns.MaxMsgSize))
	if err != nil {
		return nil, fmt.Errorf("dns over https: %w", err)
	}
	out := new(dns.Msg)
	if err := out.Unpack(body); err != nil {
		return nil, fmt.Errorf("dns over https: %w", err)
	}
	if out.Id != 0 {
		return nil, fmt.Errorf("dns over https: unexpected id")
	}
	out.Id = id
	return out, nil
}

// forwardQuery asks the forward upstreams in turn.
func (r *Resolver) forwardQuery(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	var lastErr error = ErrServFail
	for _, up := range r.forward {
		q := newQuery(name, qtype, true)
		ctx, cancel := context.WithTimeout(ctx, r.timeout)
		resp, err := up.exchange(ctx, q)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		if !matches(q, resp) {
			lastErr = errMismatch
			continue
		}
		if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
			lastErr = fmt.Errorf("upstream rcode %s", dns.RcodeToString[resp.Rcode])
			continue
		}
		return clean(resp, name, qtype), nil
	}
	return nil, lastErr
}
