package whois

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/openrdap/rdap"
	"github.com/openrdap/rdap/bootstrap"
)

//go:embed bootstrap/*.json
var shippedFS embed.FS

// Bootstrap says which RDAP servers answer for a question: IANA's
// bootstrap registries for domains, IPv4, IPv6 and AS numbers.
type Bootstrap struct {
	dns, ipv4, ipv6, asn bootstrap.Registry
}

// IANA is the bootstrap of the IANA files shipped with Veil
// (bootstrap/README.md), parsed once.
var IANA = sync.OnceValue(func() *Bootstrap {
	b, err := ParseBootstrap(shippedFS, "bootstrap")
	if err != nil {
		panic("whois: the shipped RDAP bootstrap files: " + err.Error()) // a build error; a test checks them
	}
	return b
})

// ParseBootstrap reads dns.json, ipv4.json, ipv6.json and asn.json from
// dir of fsys.
func ParseBootstrap(fsys fs.FS, dir string) (*Bootstrap, error) {
	var b Bootstrap
	for _, f := range []struct {
		name string
		dst  *bootstrap.Registry
		new  func([]byte) (bootstrap.Registry, error)
	}{
		{"dns.json", &b.dns, func(j []byte) (bootstrap.Registry, error) { return bootstrap.NewDNSRegistry(j) }},
		{"ipv4.json", &b.ipv4, func(j []byte) (bootstrap.Registry, error) { return bootstrap.NewNetRegistry(j, 4) }},
		{"ipv6.json", &b.ipv6, func(j []byte) (bootstrap.Registry, error) { return bootstrap.NewNetRegistry(j, 6) }},
		{"asn.json", &b.asn, func(j []byte) (bootstrap.Registry, error) { return bootstrap.NewASNRegistry(j) }},
	} {
		j, err := fs.ReadFile(fsys, dir+"/"+f.name)
		if err != nil {
			return nil, fmt.Errorf("reading RDAP bootstrap: %w", err)
		}
		if *f.dst, err = f.new(j); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", f.name, err)
		}
	}
	return &b, nil
}

// servers returns the RDAP request for a normalized question and the
// base URLs of the servers that answer it; none where the registry
// offers no RDAP.
func (b *Bootstrap) servers(query string) (rdap.Request, []*url.URL) {
	req := rdap.Request{Type: rdap.DomainRequest, Query: query}
	reg := b.dns
	if ip, err := netip.ParseAddr(query); err == nil {
		req.Type, reg = rdap.IPRequest, b.ipv4
		if ip.Is6() {
			reg = b.ipv6
		}
	} else if strings.HasPrefix(query, "AS") {
		req.Type, req.Query, reg = rdap.AutnumRequest, strings.TrimPrefix(query, "AS"), b.asn
	}
	if reg == nil {
		return req, nil
	}
	ans, err := reg.Lookup(&bootstrap.Question{Query: query})
	if err != nil {
		return req, nil
	}
	return req, ans.URLs
}

// Summary is the key fields of an answer, the parts a visitor looks for
// first: all of RDAP's (RFC 9083), or those a port-43 text labels in a
// common way.
type Summary struct {
	// Protocol is "rdap" or "whois" (port 43, read from the text).
	Protocol string `json:"protocol"`
	// Server is the RDAP base URL or the whois server that answered.
	Server string `json:"server"`
	// Kind is "domain", "ip network" or "autnum".
	Kind   string `json:"kind"`
	Handle string `json:"handle,omitempty"`
	// Name is the domain name, or the network's or AS's name.
	Name string `json:"name,omitempty"`
	// Range is an IP network's first and last address, or an AS range.
	Range     string   `json:"range,omitempty"`
	Type      string   `json:"type,omitempty"`
	Country   string   `json:"country,omitempty"`
	Registrar string   `json:"registrar,omitempty"`
	Holder    string   `json:"holder,omitempty"`
	Status    []string `json:"status,omitempty"`
	// Events are the registration, expiration and change dates.
	Events      []Event  `json:"events,omitempty"`
	NameServers []string `json:"name_servers,omitempty"`
}

// Event is one dated event of an RDAP object.
type Event struct {
	Action string `json:"action"`
	Date   string `json:"date"`
}

// errNoRDAP: the registry of a question offers no RDAP.
var errNoRDAP = errors.New("no RDAP server for this question")

// askRDAP asks the RDAP servers of query in turn and returns the first
// answer: its key fields and its JSON, indented.
func (c *Client) askRDAP(ctx context.Context, query string) (*Summary, string, error) {
	req, urls := c.RDAP.servers(query)
	if len(urls) == 0 {
		return nil, "", errNoRDAP
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	client := &rdap.Client{HTTP: c.httpClient(), Bootstrap: &bootstrap.Client{}, Verbose: func(string) {}, UserAgent: "Veil whois"}
	var firstErr error
	for _, u := range urls[:min(len(urls), 2)] {
		resp, err := client.Do(req.WithServer(u).WithContext(ctx))
		if err == nil && resp != nil && len(resp.HTTP) > 0 {
			if sum := summarize(resp.Object); sum != nil {
				sum.Protocol, sum.Server = "rdap", u.String()
				var raw bytes.Buffer
				if json.Indent(&raw, resp.HTTP[len(resp.HTTP)-1].Body, "", "  ") != nil {
					raw.Reset()
					raw.Write(resp.HTTP[len(resp.HTTP)-1].Body)
				}
				return sum, strings.ToValidUTF8(raw.String(), "?"), nil
			}
			err = &visibleError{msg: u.Host + " gave no RDAP answer", err: fmt.Errorf("decoded %T", resp.Object)}
		}
		if resp != nil && len(resp.HTTP) > 0 && resp.HTTP[len(resp.HTTP)-1].Error != nil {
			err = resp.HTTP[len(resp.HTTP)-1].Error // why the library found no working server
		}
		if firstErr == nil {
			if firstErr = err; !errors.As(err, new(*visibleError)) {
				firstErr = visible(u.Host, err)
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, "", firstErr
}

// summarize picks the key fields of a decoded RDAP object; nil for
// anything but a domain, an IP network or an AS.
func summarize(obj any) *Summary {
	switch o := obj.(type) {
	case *rdap.Domain:
		s := &Summary{Kind: "domain", Handle: o.Handle, Name: strings.ToLower(o.LDHName), Status: o.Status, Events: events(o.Events)}
		if s.Name == "" {
			s.Name = o.UnicodeName
		}
		for _, ns := range o.Nameservers {
			s.NameServers = append(s.NameServers, strings.ToLower(strings.TrimSuffix(ns.LDHName, ".")))
		}
		s.Registrar, s.Holder = role(o.Entities, "registrar"), role(o.Entities, "registrant")
		return s
	case *rdap.IPNetwork:
		s := &Summary{Kind: "ip network", Handle: o.Handle, Name: o.Name, Type: o.Type, Country: o.Country, Status: o.Status, Events: events(o.Events)}
		if o.StartAddress != "" {
			s.Range = o.StartAddress + " – " + o.EndAddress
		}
		s.Registrar, s.Holder = role(o.Entities, "registrar"), role(o.Entities, "registrant")
		return s
	case *rdap.Autnum:
		s := &Summary{Kind: "autnum", Handle: o.Handle, Name: o.Name, Type: o.Type, Country: o.Country, Status: o.Status, Events: events(o.Events)}
		if o.StartAutnum != nil && o.EndAutnum != nil {
			s.Range = fmt.Sprintf("AS%d – AS%d", *o.StartAutnum, *o.EndAutnum)
		}
		s.Registrar, s.Holder = role(o.Entities, "registrar"), role(o.Entities, "registrant")
		return s
	}
	return nil
}

func events(evs []rdap.Event) []Event {
	var out []Event
	for _, e := range evs {
		if e.Action != "" && e.Date != "" {
			out = append(out, Event{Action: e.Action, Date: e.Date})
		}
	}
	return out
}

// role is the name of the first entity with the role: its vCard's full
// name, else its handle.
func role(ents []rdap.Entity, name string) string {
	for _, e := range ents {
		for _, r := range e.Roles {
			if r != name {
				continue
			}
			if e.VCard != nil {
				if n := e.VCard.Name(); n != "" {
					return n
				}
			}
			return e.Handle
		}
	}
	return ""
}

// httpClient is the client RDAP questions go through: its connections
// are Dial's (the egress guard's), redirects included, and a body is
// read to at most MaxBytes.
func (c *Client) httpClient() *http.Client {
	c.httpOnce.Do(func() {
		max := c.maxBytes()
		c.http = &http.Client{
			Transport: limitBody{max: int64(max), rt: &http.Transport{
				DialContext:            c.dialer(),
				TLSHandshakeTimeout:    5 * time.Second,
				ResponseHeaderTimeout:  10 * time.Second,
				MaxResponseHeaderBytes: 64 << 10,
				IdleConnTimeout:        30 * time.Second,
			}},
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 3 {
					return errors.New("too many redirects")
				}
				return nil
			},
		}
	})
	return c.http
}

// limitBody cuts response bodies at max bytes (plus one, so that a cut
// answer fails to decode rather than passing for a whole one).
type limitBody struct {
	max int64
	rt  http.RoundTripper
}

func (l limitBody) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(req)
	if err == nil {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, l.max+1), resp.Body}
	}
	return resp, err
}
