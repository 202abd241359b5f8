package service

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"veil/internal/geo"
	"veil/internal/i18n"
	"veil/internal/netguard"
	"veil/internal/site"
	"veil/internal/tools/dnsleak"
	"veil/internal/tools/myip"
	"veil/internal/tools/outbound"
	"veil/internal/tools/ping"
	"veil/internal/tools/speedtest"
	"veil/internal/tools/webproxy"
	"veil/internal/tools/whois"
	"veil/internal/web"
)

// mountWeb adds the website (package site's pages, the static files,
// the downloads) and the privacy tools to mux. The geolocation
// databases come from the data directory (`make geoip`); without them the
// tools say "unknown".
func (s *Service) mountWeb(ctx context.Context, mux *http.ServeMux) error {
	db, err := geo.OpenDir(s.Config.DataDir)
	if err != nil {
		return fmt.Errorf("opening geolocation databases: %w", err)
	}
	s.closers = append(s.closers, db.Close)
	gws := &gatewayAddrs{list: s.API.GatewayAddrs}
	web.Register(mux)
	pages, err := site.New(site.Config{
		Operator: site.Operator{
			Name:    s.Config.OperatorName,
			Address: strings.ReplaceAll(s.Config.OperatorAddress, `\n`, "\n"),
			Email:   s.Config.OperatorEmail,
		},
		SessionTTL:   time.Duration(s.Config.SessionTTL),
		ProseDir:     s.Config.ProseDir,
		PublicURL:    s.Config.PublicBase(),
		DownloadsDir: filepath.Join(s.Config.DataDir, "downloads"),
		API:          s.API,
		Visitors:     s.visitors,
		Logger:       s.log.With("component", "site"),
	})
	if err != nil {
		return err
	}
	pages.Register(mux)

	var leak *dnsleak.Server
	if s.Config.DNSLeakZone != "" {
		var nsAddrs []netip.Addr
		for _, a := range s.Config.DNSLeakNSAddrs {
			nsAddrs = append(nsAddrs, netip.MustParseAddr(a))
		}
		leak, err = dnsleak.New(dnsleak.Config{
			Zone: s.Config.DNSLeakZone, Addr: s.Config.DNSLeakAddr, NSAddrs: nsAddrs,
			Geo: db, IsOurResolver: gws.resolver, Visitors: s.visitors, Logger: s.log.With("component", "dnsleak"),
		})
		if err != nil {
			return err
		}
		addr, err := leak.Start(ctx)
		if err != nil {
			return fmt.Errorf("starting the DNS leak test server: %w", err)
		}
		s.DNSLeakAddr = addr
		leak.Register(mux)
	} else {
		mux.HandleFunc("GET /dnsleak", func(w http.ResponseWriter, r *http.Request) {
			web.Render(w, r, "notice.html", web.Page{Title: "title.dnsleak",
				Data: i18n.NewError("dnsleak.not_configured")})
		})
	}
	// The tools that reach out for the visitor go through the egress
	// guard, which, as the gateways' does, never lets them into the tunnel
	// pools; each visitor has a quota of them (and of the speed test and
	// the proxy, a share of the slots).
	guard := netguard.Guard{Allow: s.Config.EgressPrefixes(), Deny: []netip.Prefix{s.pools.V4, s.pools.V6}}
	ip := &myip.Handler{
		Ports: &myip.PortCheck{Guard: guard},
		Geo:   db, Gateway: gws.lookup, Carried: s.carried, DNSBL: s.Config.DNSBL,
		Visitors: s.visitors,
		IPv4URL:  s.Config.IPv4URL, IPv6URL: s.Config.IPv6URL, STUNURL: s.Config.STUNURL,
		DNSLeak: leak, Logger: s.log.With("component", "myip"),
	}
	ip.Register(mux)
	(&speedtest.Handler{Visitor: ip.Describe, Lookup: ip.Lookup, Visitors: s.visitors}).Register(mux)

	(&ping.Handler{Pinger: &ping.Pinger{Guard: guard},
		Quota: outbound.NewQuota(20, 10*time.Minute, s.visitors)}).Register(mux)
	whoisHost, whoisPort, _ := s.Config.WhoisAddr() // Validate has checked it
	(&whois.Handler{Client: &whois.Client{Root: whoisHost, Port: whoisPort, Dial: guard.DialContext, RDAP: whois.IANA()},
		Quota: outbound.NewQuota(30, 10*time.Minute, s.visitors)}).Register(mux)
	(&webproxy.Handler{Guard: guard, Visitors: s.visitors}).Register(mux)
	return nil
}

// carried reports whether a connection from remote was opened by the
// built-in gateway for one of its peers.
func (s *Service) carried(remote netip.AddrPort) (string, bool) {
	if g := s.builtin.Load(); g != nil && g.Carries(remote) {
		return s.Config.GatewayName, true
	}
	return "", false
}

// gatewayAddrs answers "is this address one of our gateways?" for the
// privacy tools: the gateways' endpoint and egress addresses, where their
// traffic and their resolvers' queries leave (controlplane's
// GatewayAddrs, which may wait on DNS for gateways named by host name).
// Only the first answer waits for the list; after that a list older than
// gatewayAddrsEvery is replaced in the background, one fetch at a time,
// and requests meanwhile answer from the old one.
type gatewayAddrs struct {
	list func(context.Context) (map[netip.Addr]string, error)

	mu         sync.Mutex
	fetched    time.Time // the last attempt, failed or not
	refreshing bool
	byAddr     map[netip.Addr]string
}

const gatewayAddrsEvery = 30 * time.Second

// lookup is for visitors of My IP. Loopback endpoints (a built-in gateway
// on one machine) are left out: every local visitor has that address, and
// Service.carried knows the built-in gateway's connections exactly.
func (g *gatewayAddrs) lookup(a netip.Addr) (string, bool) {
	if a.Unmap().IsLoopback() {
		return "", false
	}
	return g.resolver(a)
}

// resolver is for the DNS leak test: a resolver asking from loopback is
// on this machine, the built-in gateway's.
func (g *gatewayAddrs) resolver(a netip.Addr) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.fetched) > gatewayAddrsEvery {
		if g.byAddr == nil {
			// Nothing to answer from yet: fetch holding the lock, so
			// that concurrent first callers wait for the same list.
			g.store(g.fetch())
		} else if !g.refreshing {
			g.refreshing = true
			go func() {
				m, err := g.fetch()
				g.mu.Lock()
				defer g.mu.Unlock()
				g.refreshing = false
				g.store(m, err)
			}()
		}
	}
	name, ok := g.byAddr[a.Unmap()]
	return name, ok
}

func (g *gatewayAddrs) fetch() (map[netip.Addr]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return g.list(ctx)
}

// store keeps a fetched list; a failed fetch keeps the old one until the
// next attempt. g.mu must be held.
func (g *gatewayAddrs) store(m map[netip.Addr]string, err error) {
	g.fetched = time.Now()
	if err == nil {
		g.byAddr = m
	}
}
