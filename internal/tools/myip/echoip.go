package myip

import (
	"context"
	"encoding/json"
	"math/big"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"veil/internal/netguard"
	"veil/internal/tools/outbound"
)

// PortCheck is how /port/N reaches back to the visitor.
type PortCheck struct {
	// Guard decides whether the visitor's address may be dialled, as for
	// every outbound tool: a visitor in a private or reserved range, or
	// in the tunnel pools, is not checked.
	Guard netguard.Guard
	// Quota bounds checks per visitor. If nil, 20 per 10 minutes per
	// visitor (Handler.Visitors).
	Quota *outbound.Quota
	// Timeout bounds one connection attempt; default 2 s, as echoip's.
	Timeout time.Duration
}

// PortReport is the answer of /port/N, in echoip's shape.
type PortReport struct {
	IP        string `json:"ip"`
	Port      int    `json:"port"`
	Reachable bool   `json:"reachable"`
}

// servePort answers whether the visitor's own address accepts a TCP
// connection on the port of the path. ?ip= is ignored on purpose: the
// check must not scan anyone else.
func (h *Handler) servePort(w http.ResponseWriter, r *http.Request) {
	if h.Ports == nil {
		writeError(w, r, http.StatusNotFound, "404 page not found")
		return
	}
	s := r.PathValue("port")
	port, err := strconv.ParseUint(s, 10, 16)
	if err != nil || port == 0 {
		writeError(w, r, http.StatusBadRequest, "invalid port: "+s)
		return
	}
	ip, err := h.Visitors.Addr(r)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "your address could not be read")
		return
	}
	if err := h.Ports.Guard.Permit(ip); err != nil {
		writeError(w, r, http.StatusForbidden, "your address is in a private, local or reserved range; it is not checked from here")
		return
	}
	done, status, err := h.Ports.Quota.Begin(r)
	if err != nil {
		writeError(w, r, status, err.Error())
		return
	}
	defer done()
	timeout := h.Ports.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	addr := netip.AddrPortFrom(ip, uint16(port)).String()
	conn, err := h.Ports.Guard.Dialer(nil).DialContext(ctx, "tcp", addr)
	if err == nil {
		conn.Close()
	}
	writeJSON(w, http.StatusOK, PortReport{IP: ip.String(), Port: int(port), Reachable: err == nil})
}

// writeError answers as echoip's errors do: {"status":N,"error":"…"}
// where JSON is asked for or the path is an API one, the bare message
// otherwise.
func writeError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if wantsJSON(r) || strings.HasPrefix(r.URL.Path, "/port/") {
		writeJSON(w, code, struct {
			Status int    `json:"status"`
			Error  string `json:"error"`
		}{code, msg})
		return
	}
	apiHeaders(w.Header(), hdrText)
	w.WriteHeader(code)
	w.Write([]byte(msg))
}

// decimal is ip as a decimal number: 32 bits for IPv4, 128 for IPv6.
func decimal(ip netip.Addr) json.Number {
	if ip.Is4() {
		b := ip.As4()
		return json.Number(strconv.FormatUint(uint64(b[0])<<24|uint64(b[1])<<16|uint64(b[2])<<8|uint64(b[3]), 10))
	}
	b := ip.As16()
	return json.Number(new(big.Int).SetBytes(b[:]).String())
}

// UserAgent is a User-Agent header split as echoip splits it: the first
// product, its version, and the rest.
type UserAgent struct {
	Product  string `json:"product,omitempty"`
	Version  string `json:"version,omitempty"`
	Comment  string `json:"comment,omitempty"`
	RawValue string `json:"raw_value,omitempty"`
}

// parseUserAgent splits "curl/8.5.0" into product curl and version
// 8.5.0; what follows the version (or a slash not followed by a digit)
// is the comment.
func parseUserAgent(s string) *UserAgent {
	ua := &UserAgent{RawValue: s}
	product, rest, slash := strings.Cut(s, "/")
	if !slash {
		ua.Product, ua.Comment, _ = strings.Cut(s, " ")
		return ua
	}
	ua.Product = product
	if rest != "" && rest[0] >= '0' && rest[0] <= '9' {
		ua.Version, ua.Comment, _ = strings.Cut(rest, " ")
	} else {
		ua.Comment = rest
	}
	return ua
}
