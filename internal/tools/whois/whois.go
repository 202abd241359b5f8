// Package whois is the site's whois tool. It asks RDAP (RFC 9083) first
// where the registry of a domain name, an address or an AS number offers
// it, by IANA's bootstrap files shipped in bootstrap/; elsewhere, or when
// RDAP fails, it asks whois on port 43 (RFC 3912): IANA's whois server
// for the registry, then that registry, and the registrar it names. Every
// connection goes through the egress guard. Nothing is kept: not the
// question, not the answer, not who asked.
package whois

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/openrdap/rdap"
	"golang.org/x/net/idna"

	"veil/internal/i18n"
	"veil/internal/netguard"
)

// Client asks whois servers.
type Client struct {
	// Root is the first server asked (default whois.iana.org).
	Root string
	// Port is the whois port of every server asked (default 43; tests
	// use another).
	Port int
	// Dial opens the TCP connections: the egress guard's DialContext; nil:
	// a guard that allows no special range.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// MaxBytes bounds one server's answer (default 256 KiB).
	MaxBytes int
	// RDAP names the RDAP servers asked before port 43 (IANA() in
	// production). If nil, only port 43 is asked.
	RDAP *Bootstrap

	httpOnce sync.Once
	http     *http.Client
}

// Answer is one server's reply.
type Answer struct {
	Server string `json:"server"`
	Text   string `json:"text"`
}

// Result is the answer to a question: the RDAP answer's JSON when RDAP
// answered, else every whois server's reply in the order asked, IANA's
// first; and their key fields.
type Result struct {
	Query string `json:"query"`
	// Summary is the key fields, when any were found.
	Summary *Summary `json:"summary,omitempty"`
	// Note says why port 43 was asked although RDAP is offered.
	Note string `json:"note,omitempty"`
	// RDAPError is why RDAP did not answer, for the page's own note.
	RDAPError string   `json:"-"`
	Answers   []Answer `json:"answers"`
}

// ErrQuery is wrapped by the error for a question that is neither a
// domain name, an IP address nor an AS number.
var ErrQuery error = i18n.NewError("whois.err.query")

// maxServers bounds the referral chain: IANA, the registry, the registrar.
const maxServers = 3

// Normalize checks a question and returns it as it is sent: an address
// in its canonical form, an AS number as "AS64500", a domain name in
// lower-case ASCII (IDNA).
func Normalize(q string) (string, error) {
	q = strings.TrimSpace(q)
	if ip, err := netip.ParseAddr(q); err == nil {
		return ip.Unmap().WithZone("").String(), nil
	}
	if len(q) > 2 && strings.EqualFold(q[:2], "AS") {
		if n, err := strconv.ParseUint(q[2:], 10, 32); err == nil {
			return "AS" + strconv.FormatUint(n, 10), nil
		}
	}
	name, err := idna.Lookup.ToASCII(strings.TrimSuffix(q, "."))
	if err != nil || name == "" || len(name) > 253 || !strings.Contains(name, ".") {
		return "", ErrQuery
	}
	return name, nil
}

// Lookup asks about q (see Normalize), following referrals from the root
// to the registry and from the registry to the registrar.
func (c *Client) Lookup(ctx context.Context, q string) (Result, error) {
	query, err := Normalize(q)
	if err != nil {
		return Result{}, err
	}
	res := Result{Query: query}
	if c.RDAP != nil {
		sum, raw, err := c.askRDAP(ctx, query)
		if err == nil {
			res.Summary = sum
			res.Answers = []Answer{{Server: sum.Server, Text: raw}}
			return res, nil
		}
		if !errors.Is(err, errNoRDAP) {
			res.Note = "RDAP did not answer (" + err.Error() + "), so whois was asked."
			res.RDAPError = err.Error()
		}
	}
	server := c.Root
	if server == "" {
		server = "whois.iana.org"
	}
	asked := map[string]bool{}
	for server != "" && len(res.Answers) < maxServers && !asked[server] {
		asked[server] = true
		text, err := c.ask(ctx, server, query)
		if err != nil {
			if len(res.Answers) > 0 {
				// What was learnt so far stands; the failure is part
				// of the answer.
				res.Answers = append(res.Answers, Answer{Server: server, Text: "(no answer: " + err.Error() + ")"})
				break
			}
			return res, err
		}
		res.Answers = append(res.Answers, Answer{Server: server, Text: text})
		server = referral(text)
	}
	res.Summary = summarizeWhois(query, res.Answers)
	return res, nil
}

func (c *Client) dialer() func(ctx context.Context, network, address string) (net.Conn, error) {
	if c.Dial == nil {
		return netguard.Guard{}.DialContext
	}
	return c.Dial
}

func (c *Client) maxBytes() int {
	if c.MaxBytes <= 0 {
		return 256 << 10
	}
	return c.MaxBytes
}

// ask sends one question to server and reads its whole answer.
func (c *Client) ask(ctx context.Context, server, query string) (string, error) {
	port := c.Port
	if port == 0 {
		port = 43
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := c.dialer()(ctx, "tcp", net.JoinHostPort(server, strconv.Itoa(port)))
	if err != nil {
		return "", visible(server, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, query+"\r\n"); err != nil {
		return "", visible(server, err)
	}
	max := c.maxBytes()
	b, err := io.ReadAll(io.LimitReader(conn, int64(max)+1))
	if err != nil && len(b) == 0 {
		return "", visible(server, err)
	}
	if len(b) > max {
		b = append(b[:max], "\n(cut: the answer is longer)"...)
	}
	return strings.ToValidUTF8(string(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))), "?"), nil
}

// visibleError is an error as the visitor reads it: what went wrong with
// which server, without the resolver's address or other details of this
// host, which stay in the wrapped error.
type visibleError struct {
	msg string
	err error
}

func (e *visibleError) Error() string { return e.msg }
func (e *visibleError) Unwrap() error { return e.err }

// visible words err, met asking server, for the visitor.
func visible(server string, err error) error {
	var dnsErr *net.DNSError
	var netErr net.Error
	msg := server + " could not be reached"
	switch {
	case errors.Is(err, netguard.ErrDenied):
		msg = server + " is in a private, local or reserved range, which is not asked from here"
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		msg = server + " does not exist (its name does not resolve)"
	case errors.As(err, &dnsErr):
		msg = server + "'s address could not be looked up"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		msg = server + " did not answer in time"
	case errors.Is(err, syscall.ECONNREFUSED):
		msg = server + " refused the connection"
	case errors.As(err, new(*rdap.ClientError)):
		msg = server + ": " + err.Error()
	}
	return &visibleError{msg: msg, err: err}
}

// referral finds the next server an answer names: IANA's "refer:" or
// "whois:", a registry's "Registrar WHOIS Server:". Only a plain host
// name or address is taken.
func referral(text string) string {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "refer", "whois", "registrar whois server":
		default:
			continue
		}
		val = strings.TrimSpace(val)
		val = strings.TrimPrefix(strings.TrimPrefix(val, "whois://"), "rwhois://")
		if h, err := Normalize(val); err == nil && !strings.HasPrefix(h, "AS") {
			return h
		}
	}
	return ""
}
