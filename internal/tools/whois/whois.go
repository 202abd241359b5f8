// Package whois is the site's whois tool (RFC 3912): it asks IANA's whois
// server which registry holds a domain name, an address or an AS number,
// then asks that registry, and the registrar it names, over connections
// the egress guard checks. Nothing is kept: not the question, not the
// answer, not who asked.
package whois

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/idna"

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
}

// Answer is one server's reply.
type Answer struct {
	Server string `json:"server"`
	Text   string `json:"text"`
}

// Result is every server's reply, in the order asked: IANA's first.
type Result struct {
	Query   string   `json:"query"`
	Answers []Answer `json:"answers"`
}

// ErrQuery is wrapped by the error for a question that is neither a
// domain name, an IP address nor an AS number.
var ErrQuery = errors.New("ask for a domain name, an IP address or an AS number (AS64500)")

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
				return res, nil
			}
			return res, err
		}
		res.Answers = append(res.Answers, Answer{Server: server, Text: text})
		server = referral(text)
	}
	return res, nil
}

// ask sends one question to server and reads its whole answer.
func (c *Client) ask(ctx context.Context, server, query string) (string, error) {
	port := c.Port
	if port == 0 {
		port = 43
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	dial := c.Dial
	if dial == nil {
		dial = netguard.Guard{}.DialContext
	}
	conn, err := dial(ctx, "tcp", net.JoinHostPort(server, strconv.Itoa(port)))
	if err != nil {
		return "", fmt.Errorf("%s: %w", server, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, query+"\r\n"); err != nil {
		return "", fmt.Errorf("%s: %w", server, err)
	}
	max := c.MaxBytes
	if max <= 0 {
		max = 256 << 10
	}
	b, err := io.ReadAll(io.LimitReader(conn, int64(max)+1))
	if err != nil && len(b) == 0 {
		return "", fmt.Errorf("%s: %w", server, err)
	}
	if len(b) > max {
		b = append(b[:max], "\n(cut: the answer is longer)"...)
	}
	return strings.ToValidUTF8(string(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))), "?"), nil
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
