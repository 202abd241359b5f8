// Package webproxy is the site's web proxy: /proxy?url=URL fetches a page
// from the server's address and shows it with every link, image and
// style sheet going back through the proxy, so that the site sees the
// server and never the visitor. Requests carry no cookie, referrer or
// forwarding header of the visitor's; pages lose their scripts, frames
// and plug-ins and are served in a sandbox that allows neither script
// nor any load from elsewhere. Destinations go through the egress guard.
// Nothing is kept: not the address asked for, not the page, not who
// asked.
package webproxy

import (
	"bytes"
	"errors"
	"html"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"veil/internal/i18n"
	"veil/internal/netguard"
	"veil/internal/tools/outbound"
	"veil/internal/visitor"
	"veil/internal/web"
)

// Handler serves the proxy at /proxy.
type Handler struct {
	Guard netguard.Guard
	// Visitors tells visitors apart for the default Quota and for
	// MaxPerVisitor; nil: by TCP peer.
	Visitors *visitor.Resolver
	// Quota bounds fetches per visitor (a page's images and style sheets
	// each count); nil: 1,000 per 10 minutes per visitor.
	Quota *outbound.Quota
	// MaxBytes bounds one fetched resource (default 8 MiB), which is
	// held in memory while it is rewritten; MaxFetches bounds the fetches
	// running at once, server-wide (default 32), so that memory stays
	// under MaxBytes × MaxFetches. More are answered 503. MaxPerVisitor
	// bounds one visitor's share of them (default 6, the connections a
	// browser opens to one site); more are answered 429.
	MaxBytes                  int64
	MaxFetches, MaxPerVisitor int
	// Pace is the slowest a visitor may read an answer before its fetch
	// slot is taken back; zero fields: visitor.Pace's defaults.
	Pace visitor.Pace

	client *http.Client
	slots  *visitor.Slots
}

// Path is where the proxy is mounted.
const Path = "/proxy"

// userAgent is what the proxy tells sites: the same for every visitor.
const userAgent = "Mozilla/5.0 (compatible; Veil web proxy)"

// policy is the Content-Security-Policy of every proxied resource: a
// sandbox (an opaque origin, no script), nothing loaded from anywhere but
// the proxy, forms only to the proxy.
const policy = "sandbox allow-forms; default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; font-src 'self'; media-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Register mounts the proxy on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	if h.Quota == nil {
		h.Quota = outbound.NewQuota(1000, 10*time.Minute, h.Visitors)
	}
	if h.MaxBytes <= 0 {
		h.MaxBytes = 8 << 20
	}
	if h.MaxFetches <= 0 {
		h.MaxFetches = 32
	}
	if h.MaxPerVisitor <= 0 {
		h.MaxPerVisitor = 6
	}
	h.slots = visitor.NewSlots(h.Visitors, h.MaxFetches, h.MaxPerVisitor, h.Pace)
	h.client = &http.Client{
		Transport: &http.Transport{
			DialContext:            h.Guard.DialContext,
			Proxy:                  nil,
			TLSHandshakeTimeout:    10 * time.Second,
			ResponseHeaderTimeout:  15 * time.Second,
			MaxResponseHeaderBytes: 64 << 10,
			IdleConnTimeout:        30 * time.Second,
		},
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return errors.New("a redirect to another scheme")
			}
			return nil
		},
	}
	mux.HandleFunc("GET "+Path, h.serve)
}

// errAddress refuses what is not a web address.
var errAddress error = i18n.NewError("proxy.err.address")

// target reads the URL asked for: url's value, with any other parameters
// (a proxied form's fields) added to its query.
func target(r *http.Request) (*url.URL, error) {
	q := r.URL.Query()
	raw := q.Get("url")
	if len(raw) > 4096 {
		return nil, i18n.NewError("proxy.err.too_long")
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, errAddress
	}
	u.Fragment = ""
	q.Del("url")
	if len(q) > 0 {
		tq := u.Query()
		for k, vs := range q {
			for _, v := range vs {
				tq.Add(k, v)
			}
		}
		u.RawQuery = tq.Encode()
	}
	return u, nil
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) {
	if !r.URL.Query().Has("url") {
		web.Render(w, r, "proxy.html", web.Page{Title: "title.proxy"})
		return
	}
	u, err := target(r)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, err)
		return
	}
	if err := h.Quota.Use(r); err != nil {
		h.fail(w, r, http.StatusTooManyRequests, err)
		return
	}
	sw, release, err := h.slots.Hold(w, r)
	if err != nil {
		w.Header().Set("Retry-After", "5")
		h.fail(w, r, visitor.Status(err), err)
		return
	}
	defer release()
	w = sw // a visitor too slow to read the answer loses the slot
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, errAddress)
		return
	}
	// Only what any visitor would send: nothing of this one's.
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,text/css,image/*;q=0.9,*/*;q=0.8")
	req.Header.Set("Accept-Language", "en")
	resp, err := h.client.Do(req)
	if err != nil {
		msg := i18n.NewError("proxy.err.no_answer")
		if errors.Is(err, netguard.ErrDenied) {
			msg = i18n.NewError("proxy.err.denied")
		}
		h.fail(w, r, http.StatusBadGateway, msg)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, h.MaxBytes+1))
	if err != nil {
		h.fail(w, r, http.StatusBadGateway, i18n.NewError("proxy.err.broke_off"))
		return
	}
	if int64(len(body)) > h.MaxBytes {
		h.fail(w, r, http.StatusBadGateway, i18n.NewError("proxy.err.too_large", "MiB", h.MaxBytes>>20))
		return
	}
	h.write(w, r, resp, body)
}

// write sends a fetched resource on: pages and style sheets rewritten,
// images and plain text as they are, anything else as a download. An SVG
// image is a document with links when opened by itself: it is shown only
// where the browser loads it as an image.
func (h *Handler) write(w http.ResponseWriter, r *http.Request, resp *http.Response, body []byte) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", policy)
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	ct := resp.Header.Get("Content-Type")
	mt, params, _ := mime.ParseMediaType(ct)
	rw := &rewriter{base: resp.Request.URL, path: Path}
	switch {
	case mt == "text/html" || mt == "application/xhtml+xml":
		hd.Set("Content-Type", "text/html; charset=utf-8") // the rewriter writes UTF-8
		w.WriteHeader(resp.StatusCode)
		lang, prefix := web.Language(r)
		l := i18n.For(lang)
		banner := `<div style="all:initial;display:block;font:14px sans-serif;background:#1d2433;color:#fff;padding:6px 12px">` +
			html.EscapeString(l.T("proxy.banner")) + ` ` + html.EscapeString(resp.Request.URL.String()) + ` · <a style="color:#9cf" href="` + prefix + Path + `">` + html.EscapeString(l.T("proxy.banner.another")) + `</a></div>`
		rw.html(w, bytes.NewReader(body), ct, banner)
	case mt == "text/css":
		hd.Set("Content-Type", "text/css"+charset(params))
		w.WriteHeader(resp.StatusCode)
		io.WriteString(w, rw.css(string(body)))
	case mt == "image/svg+xml" && r.Header.Get("Sec-Fetch-Dest") != "image":
		hd.Set("Content-Type", "application/octet-stream")
		hd.Set("Content-Disposition", "attachment")
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	case strings.HasPrefix(mt, "image/"), mt == "text/plain", strings.HasPrefix(mt, "font/"), strings.HasPrefix(mt, "audio/"), strings.HasPrefix(mt, "video/"):
		hd.Set("Content-Type", ct)
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	default:
		hd.Set("Content-Type", "application/octet-stream")
		hd.Set("Content-Disposition", "attachment")
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	}
}

func charset(params map[string]string) string {
	if cs := params["charset"]; cs != "" && !strings.ContainsAny(cs, "\";\r\n") {
		return "; charset=" + cs
	}
	return ""
}

// fail shows the form with what went wrong.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	web.Render(w, r, "proxy.html", web.Page{Title: "title.proxy", Status: status,
		Data: struct {
			URL   string
			Error error
		}{r.URL.Query().Get("url"), err}})
}
