// Package speedtest is the site's speed test: the page at /speedtest and
// the endpoints it measures with, which follow LibreSpeed's backend so
// that LibreSpeed's clients (the web client, librespeed-cli) can use a
// Veil server too:
//
//	GET  /speedtest/backend/empty.php         ping: an empty answer
//	POST /speedtest/backend/empty.php         upload: the body is read and dropped
//	GET  /speedtest/backend/garbage.php?ckSize=N  download: N MiB (default 4, at most 1024)
//	GET  /speedtest/backend/getIP.php         the visitor's address and network
//	GET  /speedtest/servers.json              this server, as a LibreSpeed server list
//
// Nothing of a test is kept or logged: not the address, not the results
// (LibreSpeed's telemetry has no counterpart here).
package speedtest

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"veil/internal/geo"
	"veil/internal/tools/myip"
	"veil/internal/visitor"
	"veil/internal/web"
)

// Visitor describes the request's own address: the address and its
// network ("AS64500 Example AB, Sweden"), for getIP.php.
type Visitor func(r *http.Request) (ip, network string, err error)

// Handler serves the speed test.
type Handler struct {
	// Visitor names the visitor's address for getIP.php; nil answers
	// with the address alone, as Visitors finds it.
	Visitor Visitor
	// Visitors tells visitors apart for MaxPerVisitor; nil: by TCP peer.
	Visitors *visitor.Resolver
	// Lookup is what My IP knows of the visitor's address, for getIP's
	// rawIspInfo (the ISP and country that librespeed-cli --json shows).
	// If nil, rawIspInfo holds the address alone.
	Lookup func(r *http.Request) (myip.Report, error)
	// MaxTransfers bounds the downloads and uploads running at once,
	// server-wide (default 64); more are answered 503, so that the test
	// cannot starve the rest of the site. MaxPerVisitor bounds one
	// visitor's share of them (default 8: the page runs 4 streams,
	// LibreSpeed's client 6); more are answered 429.
	MaxTransfers, MaxPerVisitor int
	// Pace is the slowest a transfer may go before it loses its slot;
	// zero fields: visitor.Pace's defaults (256 KiB per 15 s, 2 minutes
	// in all, which is longer than any client measures).
	Pace visitor.Pace
	// MaxUpload bounds one upload request's body (default 256 MiB;
	// LibreSpeed's clients send about 20 MiB at a time).
	MaxUpload int64

	slots *visitor.Slots
}

// Size limits.
const (
	chunk         = 1 << 20   // a download is whole chunks of this many bytes
	defaultChunks = 4         // LibreSpeed's default ckSize
	maxChunks     = 1024      // and its upper bound
	maxUpload     = 256 << 20 // Handler.MaxUpload's default
)

// garbage is the download's content: random, so that nothing on the way
// can compress it, made once.
var garbage = sync.OnceValue(func() []byte {
	b := make([]byte, chunk)
	rand.Read(b)
	return b
})

// Register mounts the page and the endpoints on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	if h.MaxTransfers <= 0 {
		h.MaxTransfers = 64
	}
	if h.MaxUpload <= 0 {
		h.MaxUpload = maxUpload
	}
	if h.MaxPerVisitor <= 0 {
		h.MaxPerVisitor = 8
	}
	h.slots = visitor.NewSlots(h.Visitors, h.MaxTransfers, h.MaxPerVisitor, h.Pace)
	mux.HandleFunc("GET /speedtest", h.servePage)
	mux.HandleFunc("GET /speedtest/servers.json", h.serveServers)
	mux.HandleFunc("GET /speedtest/backend/empty.php", h.serveEmpty)
	mux.HandleFunc("POST /speedtest/backend/empty.php", h.transfer(h.serveUpload))
	mux.HandleFunc("GET /speedtest/backend/garbage.php", h.transfer(h.serveGarbage))
	mux.HandleFunc("GET /speedtest/backend/getIP.php", h.serveIP)
	mux.HandleFunc("OPTIONS /speedtest/backend/", h.servePreflight)
}

func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	web.Render(w, r, "speedtest.html", web.Page{Title: "title.speedtest"})
}

// Server is one entry of a LibreSpeed server list.
type Server struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	Server   string `json:"server"`
	DlURL    string `json:"dlURL"`
	UlURL    string `json:"ulURL"`
	PingURL  string `json:"pingURL"`
	GetIPURL string `json:"getIpURL"`
}

// serveServers lists this server for librespeed-cli (--server-json) and
// LibreSpeed's multi-server web client, at the address it was asked by.
func (h *Handler) serveServers(w http.ResponseWriter, r *http.Request) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	noCache(w.Header())
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode([]Server{{
		ID: 1, Name: "Veil", Server: scheme + "://" + r.Host + "/speedtest/",
		DlURL: "backend/garbage.php", UlURL: "backend/empty.php",
		PingURL: "backend/empty.php", GetIPURL: "backend/getIP.php",
	}})
}

// noCache keeps every cache on the way out of a measurement, and lets
// LibreSpeed clients served from other origins measure against this one
// (no credentials are involved).
func noCache(hd http.Header) {
	hd.Set("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0, s-maxage=0")
	hd.Set("Pragma", "no-cache")
	hd.Set("Access-Control-Allow-Origin", "*")
}

func (h *Handler) servePreflight(w http.ResponseWriter, r *http.Request) {
	noCache(w.Header())
	w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	w.Header().Set("Access-Control-Allow-Headers", "Content-Encoding, Content-Type")
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) serveEmpty(w http.ResponseWriter, r *http.Request) {
	noCache(w.Header())
	w.WriteHeader(http.StatusOK)
}

// transfer runs next if the visitor may have a transfer slot, and
// answers 429 or 503 if not. next writes to a writer that drops a reader
// too slow to keep the slot.
func (h *Handler) transfer(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sw, release, err := h.slots.Hold(w, r)
		if err != nil {
			noCache(w.Header())
			w.Header().Set("Retry-After", "5")
			http.Error(w, err.Error(), visitor.Status(err))
			return
		}
		defer release()
		next(sw, r)
	}
}

func (h *Handler) serveUpload(w http.ResponseWriter, r *http.Request) {
	noCache(w.Header())
	limit := h.MaxUpload
	n, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, limit))
	if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
		http.Error(w, "an upload request carries at most "+strconv.FormatInt(limit>>20, 10)+" MiB", http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		return // the client went away
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, strconv.FormatInt(n, 10))
}

func (h *Handler) serveGarbage(w http.ResponseWriter, r *http.Request) {
	n := defaultChunks
	if s := r.URL.Query().Get("ckSize"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			noCache(w.Header())
			http.Error(w, "ckSize must be a whole number of MiB from 1 to 1024", http.StatusBadRequest)
			return
		}
		n = min(v, maxChunks)
	}
	hd := w.Header()
	noCache(hd)
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Description", "File Transfer")
	hd.Set("Content-Disposition", "attachment; filename=random.dat")
	hd.Set("Content-Transfer-Encoding", "binary")
	hd.Set("Content-Length", strconv.Itoa(n*chunk))
	b := garbage()
	for range n {
		if _, err := w.Write(b); err != nil {
			return
		}
	}
}

// IP is getIP.php's answer, in LibreSpeed's shape.
type IP struct {
	ProcessedString string  `json:"processedString"`
	RawISPInfo      ISPInfo `json:"rawIspInfo"`
}

// ISPInfo is getIP's rawIspInfo. LibreSpeed's backends pass on
// ipinfo.io's answer there, so its clients read that shape: country as
// an ISO code, loc as "latitude,longitude", org as "AS64500 Example AB".
// Fields nobody knows are empty.
type ISPInfo struct {
	IP       string `json:"ip"`
	Hostname string `json:"hostname"`
	City     string `json:"city"`
	Region   string `json:"region"`
	Country  string `json:"country"`
	Loc      string `json:"loc"`
	Org      string `json:"org"`
	Postal   string `json:"postal"`
	Timezone string `json:"timezone"`
	Readme   string `json:"readme"`
}

// ispInfo maps My IP's report to rawIspInfo.
func ispInfo(rep myip.Report) ISPInfo {
	known := func(s string) string {
		if s == geo.Unknown {
			return ""
		}
		return s
	}
	info := ISPInfo{
		IP: rep.IP, Hostname: rep.Hostname, City: known(rep.City), Region: rep.Region,
		Country: rep.CountryISO, Postal: rep.ZipCode, Timezone: known(rep.TimeZone),
		Org: strings.TrimSpace(known(rep.ASN) + " " + known(rep.ASNOrg)),
	}
	if rep.Latitude != nil && rep.Longitude != nil {
		info.Loc = strconv.FormatFloat(*rep.Latitude, 'f', 4, 64) + "," + strconv.FormatFloat(*rep.Longitude, 'f', 4, 64)
	}
	return info
}

func (h *Handler) serveIP(w http.ResponseWriter, r *http.Request) {
	var ip, network string
	var err error
	if h.Visitor != nil {
		ip, network, err = h.Visitor(r)
	} else {
		var a netip.Addr
		a, err = h.Visitors.Addr(r)
		ip = a.String()
	}
	noCache(w.Header())
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(IP{ProcessedString: "unknown"})
		return
	}
	s := ip
	if network != "" {
		s += " - " + network
	}
	raw := ISPInfo{IP: ip}
	if h.Lookup != nil {
		if rep, err := h.Lookup(r); err == nil {
			raw = ispInfo(rep)
		}
	}
	json.NewEncoder(w).Encode(IP{ProcessedString: s, RawISPInfo: raw})
}
