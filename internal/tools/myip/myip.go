// Package myip is the "My IP" tool: the visitor's address, where it is
// and who holds it, whether it is one of Veil's gateways, and the
// server-side half of the anonymity check (proxy headers, DNS blocklists,
// reverse DNS). The browser-side half runs in the page's own script
// (internal/web/static/myip.js). Nothing about a visitor is stored or
// logged (promise P12): every answer is computed from the request and
// forgotten.
package myip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"veil/internal/geo"
	"veil/internal/redact"
	"veil/internal/tools/dnsleak"
	"veil/internal/tools/outbound"
	"veil/internal/visitor"
	"veil/internal/web"
)

// Handler serves the My IP page and its API. Fields are its dependencies;
// a zero field has the default its comment gives. Set fields before the
// first request and do not change them after.
type Handler struct {
	// Geo answers lookups. If nil, everything is "unknown".
	Geo *geo.DB
	// Gateway says whether an address is the egress address of one of
	// Veil's gateways, and which. If nil, no address is.
	Gateway func(netip.Addr) (name string, ok bool)
	// Carried says whether a connection from remote (the TCP peer) was
	// opened by a gateway in this process on a peer's behalf, and which:
	// exact where Gateway can only compare addresses. If nil, no
	// connection is.
	Carried func(remote netip.AddrPort) (name string, ok bool)
	// LookupAddr does reverse DNS. If nil, net.DefaultResolver is used;
	// every lookup is bounded by ReverseTimeout.
	LookupAddr func(ctx context.Context, addr string) ([]string, error)
	// DisableReverseDNS turns reverse lookups off.
	DisableReverseDNS bool
	// ReverseTimeout bounds a reverse lookup; default 500ms.
	ReverseTimeout time.Duration
	// DNSBL are the blocklist zones checked, such as "zen.spamhaus.org".
	// Empty: none.
	DNSBL []string
	// LookupHost resolves DNSBL names. If nil, net.DefaultResolver.
	LookupHost func(ctx context.Context, host string) ([]string, error)
	// DNSBLTimeout bounds all blocklist queries of one request together;
	// default 1.5s.
	DNSBLTimeout time.Duration
	// Visitors tells who the visitor is (the trusted proxies in front of
	// Veil). If nil, the TCP peer is the visitor.
	Visitors *visitor.Resolver
	// IPv4URL and IPv6URL are base URLs of this service on hostnames that
	// resolve only over IPv4 and only over IPv6 (such as
	// "https://ipv4.veil.example"); the page asks both to see which
	// families the visitor reaches the internet with. Empty: not checked.
	IPv4URL, IPv6URL string
	// STUNURL is the STUN server the page's WebRTC check asks for
	// server-reflexive candidates ("stun:stun.veil.example:3478"). Empty:
	// only host candidates are gathered and no packet leaves for STUN.
	STUNURL string
	// DNSLeak runs the page's DNS leak check. If nil, that check is
	// skipped.
	DNSLeak *dnsleak.Server
	// Ports answers /port/N: whether the visitor's own address accepts
	// TCP connections on port N, as echoip's port lookup does. If nil,
	// /port/ answers 404, as echoip does with port lookups off.
	Ports *PortCheck
	// Logger gets errors only, never an address. If nil, nothing is
	// logged.
	Logger *slog.Logger
}

// Report is the answer of /json and /api/v1/ip. The names of the
// ifconfig.co/echoip fields are kept so that their clients work.
type Report struct {
	IP string `json:"ip"`
	// IPDecimal is the address as one (up to 128-bit) number.
	IPDecimal  json.Number `json:"ip_decimal"`
	IPVersion  int         `json:"ip_version"`
	Country    string      `json:"country"`
	CountryISO string      `json:"country_iso"`
	CountryEU  bool        `json:"country_eu"`
	Region     string      `json:"region_name,omitempty"`
	RegionCode string      `json:"region_code,omitempty"`
	ZipCode    string      `json:"zip_code,omitempty"`
	City       string      `json:"city"`
	Latitude   *float64    `json:"latitude,omitempty"`
	Longitude  *float64    `json:"longitude,omitempty"`
	TimeZone   string      `json:"time_zone"`
	ASN        string      `json:"asn"`
	ASNOrg     string      `json:"asn_org"`
	Hostname   string      `json:"hostname,omitempty"`
	// UserAgent is the request's own User-Agent, split as echoip does.
	UserAgent *UserAgent `json:"user_agent,omitempty"`
	// CountryLanguage is the country's most likely language ("sv"), for
	// the browser's language check.
	CountryLanguage string `json:"country_language,omitempty"`
	// Protected is true when the address is one of Veil's gateways.
	Protected bool   `json:"protected"`
	Gateway   string `json:"gateway,omitempty"`
	// ProxyHeaders are headers of the request that proxies add; only for
	// the visitor's own address, not for ?ip= lookups.
	ProxyHeaders []Header `json:"proxy_headers"`
	// Blocklists are the DNSBL answers for the address.
	Blocklists []Listing `json:"blocklists"`
	// Lookup is true for ?ip= answers: the address is not the visitor's.
	Lookup bool `json:"lookup,omitempty"`
}

// Header is one request header that reveals a proxy.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Listing is one DNSBL answer.
type Listing struct {
	Zone   string `json:"zone"`
	Listed bool   `json:"listed"`
	// Error is set when the zone did not answer in time.
	Error string `json:"error,omitempty"`
}

// Register mounts the tool's routes on mux.
//
// Beside the page and /api/v1/ip these are echoip's (ifconfig.co's)
// routes, answered as echoip answers them: "/" in JSON for
// "Accept: application/json" and in plain text for command-line clients,
// the one-field paths, /json, /port/N, /health, HEAD / and, for any other
// one-segment path, echoip's 404.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", h.serveRoot)
	mux.HandleFunc("HEAD /{$}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for path, field := range map[string]func(Report) string{
		"/ip":          func(r Report) string { return r.IP },
		"/country":     func(r Report) string { return r.Country },
		"/country-iso": func(r Report) string { return orUnknown(r.CountryISO) },
		"/city":        func(r Report) string { return r.City },
		"/coordinates": coordinates,
		"/asn":         func(r Report) string { return r.ASN },
		"/asn-org":     func(r Report) string { return r.ASNOrg },
	} {
		mux.HandleFunc("GET "+path, h.plain(field))
	}
	mux.HandleFunc("GET /json", h.serveJSON)
	mux.HandleFunc("GET /api/v1/ip", h.serveJSON)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		apiHeaders(w.Header(), hdrJSON)
		w.Write([]byte(`{"status":"OK"}`))
	})
	mux.HandleFunc("GET /port/{port...}", h.servePort)
	// An unknown one-segment path is a field echoip lacks for scripts,
	// and the site's page-not-found for browsers.
	mux.HandleFunc("GET /{unknown}", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api" || (!wantsJSON(r) && strings.Contains(r.Header.Get("Accept"), "text/html")) {
			web.NotFound(w, r)
			return
		}
		writeError(w, r, http.StatusNotFound, "404 page not found")
	})
	if h.Ports != nil && h.Ports.Quota == nil {
		h.Ports.Quota = outbound.NewQuota(20, 10*time.Minute, h.Visitors)
	}
}

// coordinates is echoip's "latitude,longitude", six decimals each.
func coordinates(r Report) string {
	if r.Latitude == nil || r.Longitude == nil {
		return geo.Unknown
	}
	return strconv.FormatFloat(*r.Latitude, 'f', 6, 64) + "," + strconv.FormatFloat(*r.Longitude, 'f', 6, 64)
}

func orUnknown(s string) string {
	if s == "" {
		return geo.Unknown
	}
	return s
}

// target is the address a request asks about: ?ip= or the visitor's.
func (h *Handler) target(r *http.Request) (ip netip.Addr, lookup bool, err error) {
	if q := queryValue(r.URL.RawQuery, "ip"); q != "" {
		ip, err := netip.ParseAddr(q)
		if err != nil {
			return netip.Addr{}, true, fmt.Errorf("not an IP address")
		}
		return ip.Unmap(), true, nil
	}
	ip, err = h.Visitors.Addr(r)
	return ip, false, err
}

// queryValue is r.URL.Query().Get(key) without building the whole map
// (this is the hot path of /json?ip=): the first well-formed value of key.
func queryValue(raw, key string) string {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if strings.Contains(pair, ";") {
			continue // url.ParseQuery refuses these too
		}
		k, v, _ := strings.Cut(pair, "=")
		if k, err := url.QueryUnescape(k); err != nil || k != key {
			continue
		}
		if v, err := url.QueryUnescape(v); err == nil {
			return v
		}
	}
	return ""
}

// Describe names the visitor's address and its network ("AS64500 Example
// AB, Sweden", with the gateway first when it is one of Veil's), as the
// other tools show it: the quick answer, without reverse DNS or
// blocklists.
func (h *Handler) Describe(r *http.Request) (ip, network string, err error) {
	addr, err := h.Visitors.Addr(r)
	if err != nil {
		return "", "", err
	}
	rep := h.report(r.Context(), r, addr, false, false)
	var parts []string
	if rep.Protected {
		parts = append(parts, "Veil gateway "+rep.Gateway)
	}
	var as []string
	for _, v := range []string{rep.ASN, rep.ASNOrg} {
		if v != "" && v != geo.Unknown {
			as = append(as, v)
		}
	}
	if len(as) > 0 {
		parts = append(parts, strings.Join(as, " "))
	}
	if rep.Country != "" && rep.Country != geo.Unknown {
		parts = append(parts, rep.Country)
	}
	return rep.IP, strings.Join(parts, ", "), nil
}

// Lookup is the report on the visitor's own address for other tools
// (the speed test's ISP line): the quick answer plus reverse DNS, without
// blocklists.
func (h *Handler) Lookup(r *http.Request) (Report, error) {
	addr, err := h.Visitors.Addr(r)
	if err != nil {
		return Report{}, err
	}
	rep := h.report(r.Context(), r, addr, false, false)
	if !h.DisableReverseDNS {
		rep.Hostname = h.reverse(r.Context(), addr)
	}
	return rep, nil
}

// proxyHeaderNames are headers that proxies add to requests they pass on.
var proxyHeaderNames = []string{
	"Via", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
	"X-Real-Ip", "Client-Ip", "X-Client-Ip", "X-Cluster-Client-Ip", "Forwarded-For",
	"X-Originating-Ip", "True-Client-Ip", "Cf-Connecting-Ip", "X-Proxyuser-Ip",
	"X-Bluecoat-Via", "Proxy-Connection", "X-Proxy-Id",
}

// proxyHeaders lists the proxy headers of r. When the peer is a trusted
// proxy, what that proxy itself adds is not counted: the last
// X-Forwarded-For hop and its X-Real-IP and X-Forwarded-Proto/Host.
func (h *Handler) proxyHeaders(r *http.Request) []Header {
	_, peerTrusted, _ := h.Visitors.Peer(r)
	out := []Header{}
	for _, name := range proxyHeaderNames {
		vals := r.Header.Values(name)
		if len(vals) == 0 {
			continue
		}
		v := strings.Join(vals, ", ")
		if peerTrusted {
			switch name {
			case "X-Real-Ip", "X-Forwarded-Proto", "X-Forwarded-Host":
				continue
			case "X-Forwarded-For":
				hops := strings.Split(v, ",")
				if len(hops) <= 1 {
					continue
				}
				v = strings.TrimSpace(strings.Join(hops[:len(hops)-1], ","))
			}
		}
		if len(v) > 200 {
			v = v[:200] + "…"
		}
		out = append(out, Header{Name: name, Value: v})
	}
	return out
}

// report computes the full answer for ip. full adds the slow checks
// (reverse DNS, blocklists), which run concurrently.
func (h *Handler) report(ctx context.Context, r *http.Request, ip netip.Addr, lookup, full bool) Report {
	if h.Logger != nil {
		h.Logger.Debug("my ip request", "path", r.URL.Path, "ip", redact.Addr(ip), "lookup", lookup)
	}
	info := h.Geo.Lookup(ip)
	rep := Report{
		IP: ip.String(), IPDecimal: decimal(ip), IPVersion: 4,
		Country: info.Country, CountryISO: info.CountryISO, CountryEU: info.EU,
		Region: info.Region, RegionCode: info.RegionCode, ZipCode: info.PostalCode, City: info.City,
		Latitude: info.Latitude, Longitude: info.Longitude, TimeZone: info.TimeZone,
		ASN: info.ASNString, ASNOrg: info.ASOrg,
		CountryLanguage: info.Language,
		Lookup:          lookup,
		ProxyHeaders:    []Header{},
		Blocklists:      []Listing{},
	}
	if ip.Is6() {
		rep.IPVersion = 6
	}
	if ua := r.UserAgent(); ua != "" {
		rep.UserAgent = parseUserAgent(ua)
	}
	if h.Gateway != nil {
		rep.Gateway, rep.Protected = h.Gateway(ip)
	}
	if !lookup && !rep.Protected && h.Carried != nil {
		if ap, proxy, err := h.Visitors.Peer(r); err == nil && !proxy {
			rep.Gateway, rep.Protected = h.Carried(ap)
		}
	}
	if !lookup {
		rep.ProxyHeaders = h.proxyHeaders(r)
	}
	if !full {
		return rep
	}
	// The reverse lookup answers on a channel, so that rep itself does not
	// escape to the heap on every request.
	var hostname chan string
	if !h.DisableReverseDNS {
		hostname = make(chan string, 1)
		go func() { hostname <- h.reverse(ctx, ip) }()
	}
	rep.Blocklists = h.blocklists(ctx, ip)
	if hostname != nil {
		rep.Hostname = <-hostname
	}
	return rep
}

func (h *Handler) reverse(ctx context.Context, ip netip.Addr) string {
	timeout := h.ReverseTimeout
	if timeout <= 0 {
		timeout = 500 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lookup := h.LookupAddr
	if lookup == nil {
		lookup = net.DefaultResolver.LookupAddr
	}
	names, err := lookup(ctx, ip.String())
	if err != nil || len(names) == 0 {
		return ""
	}
	return strings.TrimSuffix(names[0], ".")
}

// blocklists asks every DNSBL zone at once and waits at most
// DNSBLTimeout; a zone that has not answered by then is reported so.
func (h *Handler) blocklists(ctx context.Context, ip netip.Addr) []Listing {
	out := make([]Listing, len(h.DNSBL))
	if len(h.DNSBL) == 0 {
		return out
	}
	timeout := h.DNSBLTimeout
	if timeout <= 0 {
		timeout = 1500 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lookup := h.LookupHost
	if lookup == nil {
		lookup = net.DefaultResolver.LookupHost
	}
	rev := reverseName(ip)
	var wg sync.WaitGroup
	for i, zone := range h.DNSBL {
		out[i].Zone = zone
		wg.Add(1)
		go func() {
			defer wg.Done()
			addrs, err := lookup(ctx, rev+"."+strings.TrimSuffix(zone, "."))
			var dnsErr *net.DNSError
			switch {
			case err == nil:
				for _, a := range addrs {
					if ip, err := netip.ParseAddr(a); err == nil && ip.Is4() && ip.As4()[0] == 127 {
						out[i].Listed = true
					}
				}
			case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
				// Not listed.
			case ctx.Err() != nil:
				out[i].Error = "no answer in time"
			default:
				out[i].Error = "lookup failed"
			}
		}()
	}
	wg.Wait()
	return out
}

// reverseName is ip in the reversed form DNSBLs use: "4.3.2.1" for
// 1.2.3.4, nibbles for IPv6.
func reverseName(ip netip.Addr) string {
	if ip.Is4() {
		b := ip.As4()
		return fmt.Sprintf("%d.%d.%d.%d", b[3], b[2], b[1], b[0])
	}
	b := ip.As16()
	var sb strings.Builder
	for i := len(b) - 1; i >= 0; i-- {
		sb.WriteString(strconv.FormatUint(uint64(b[i]&0xf), 16))
		sb.WriteByte('.')
		sb.WriteString(strconv.FormatUint(uint64(b[i]>>4), 16))
		if i > 0 {
			sb.WriteByte('.')
		}
	}
	return sb.String()
}

func (h *Handler) plain(field func(Report) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ip, lookup, err := h.target(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rep := h.report(r.Context(), r, ip, lookup, false)
		writePlain(w, field(rep))
	}
}

func writePlain(w http.ResponseWriter, s string) {
	apiHeaders(w.Header(), hdrText)
	w.Write([]byte(s + "\n"))
}

func (h *Handler) serveJSON(w http.ResponseWriter, r *http.Request) {
	ip, lookup, err := h.target(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "That is not an IP address."})
		return
	}
	rep := h.report(r.Context(), r, ip, lookup, true)
	writeReport(w, &rep)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	apiHeaders(w.Header(), hdrJSON)
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// cliAgents are user agents that get the bare address at "/", as on
// ifconfig.co.
var cliAgents = []string{"curl/", "wget/", "httpie/", "httpie-go/", "xh/", "fetch libfetch", "go-http-client/", "ddclient/", "mikrotik/", "powershell/", "aria2/"}

// wantsPlain says whether "/" should answer with the bare address: a
// command-line user agent, or a client that does not accept HTML.
func wantsPlain(r *http.Request) bool {
	ua := strings.ToLower(r.UserAgent())
	for _, a := range cliAgents {
		if strings.HasPrefix(ua, a) {
			return true
		}
	}
	accept := r.Header.Get("Accept")
	return accept != "" && !strings.Contains(accept, "text/html") && !strings.Contains(accept, "*/*")
}

// wantsJSON says whether "/" should answer with the JSON report: the
// client prefers application/json, as echoip's scripts ask.
func wantsJSON(r *http.Request) bool {
	first, _, _ := strings.Cut(r.Header.Get("Accept"), ",")
	mt, _, _ := strings.Cut(first, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

func (h *Handler) serveRoot(w http.ResponseWriter, r *http.Request) {
	if wantsJSON(r) {
		h.serveJSON(w, r)
		return
	}
	ip, lookup, err := h.target(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if wantsPlain(r) {
		writePlain(w, ip.String())
		return
	}
	rep := h.report(r.Context(), r, ip, lookup, true)
	web.Render(w, r, "myip.html", web.Page{
		Title:      "title.myip_address",
		Data:       h.pageData(rep),
		Credits:    h.credits(),
		ConnectSrc: h.connectSrc(),
		ImgSrc:     h.imgSrc(),
	})
}

// PageConfig is what the page's script needs besides the report; it is
// embedded in the page as JSON.
type PageConfig struct {
	Report  Report `json:"report"`
	IPv4URL string `json:"ipv4_url,omitempty"`
	IPv6URL string `json:"ipv6_url,omitempty"`
	STUNURL string `json:"stun_url,omitempty"`
	// DNSLeak is true when the leak test is available at
	// POST /api/v1/dnsleak.
	DNSLeak bool `json:"dnsleak"`
}

type pageData struct {
	Report Report
	Config PageConfig
}

func (h *Handler) pageData(rep Report) pageData {
	return pageData{Report: rep, Config: PageConfig{
		Report: rep, IPv4URL: h.IPv4URL, IPv6URL: h.IPv6URL, STUNURL: h.STUNURL, DNSLeak: h.DNSLeak != nil,
	}}
}

func (h *Handler) credits() []web.Credit {
	if !h.Geo.Loaded() {
		return nil
	}
	return []web.Credit{{Text: h.Geo.Attribution.Text, URL: h.Geo.Attribution.URL}}
}

func (h *Handler) connectSrc() []string {
	var out []string
	for _, u := range []string{h.IPv4URL, h.IPv6URL} {
		if u != "" {
			out = append(out, u)
		}
	}
	return out
}

func (h *Handler) imgSrc() []string {
	if h.DNSLeak == nil {
		return nil
	}
	return h.DNSLeak.ImgSrc()
}
