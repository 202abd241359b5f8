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
	"net/url"
	"time"

	"github.com/miekg/dns"
)

// upstream is one forwarder: DNS over TLS or DNS over HTTPS.
type upstream interface {
	exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error)
}

// parseUpstreams parses Config.Forward.
func parseUpstreams(specs []string, roots *x509.CertPool, timeout time.Duration) ([]upstream, error) {
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
			ups = append(ups, &dotUpstream{client: &dns.Client{
				Net:     "tcp-tls",
				Timeout: timeout,
				TLSConfig: &tls.Config{
					ServerName: name,
					RootCAs:    roots,
					MinVersion: tls.VersionTLS12,
				},
			}, addr: net.JoinHostPort(host, port)})
		case "https":
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.Proxy = nil // queries go to the operator's upstream and nowhere else
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

type dotUpstream struct {
	client *dns.Client
	addr   string
}

func (d *dotUpstream) exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	resp, _, err := d.client.ExchangeContext(ctx, m, d.addr)
	if err != nil {
		return nil, fmt.Errorf("dns over tls: %w", err)
	}
	return resp, nil
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
