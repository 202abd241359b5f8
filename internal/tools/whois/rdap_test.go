package whois

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"veil/internal/netguard"
)

// RDAP answers of the stand-in registry, in RFC 9083's shapes.
var rdapObjects = map[string]string{
	"/domain/example.test": `{"objectClassName":"domain","rdapConformance":["rdap_level_0"],"handle":"D1-TEST",
		"ldhName":"EXAMPLE.TEST","status":["client transfer prohibited","active"],
		"events":[{"eventAction":"registration","eventDate":"1995-08-14T04:00:00Z"},{"eventAction":"expiration","eventDate":"2030-08-13T04:00:00Z"}],
		"nameservers":[{"objectClassName":"nameserver","ldhName":"A.NS.EXAMPLE.TEST"},{"objectClassName":"nameserver","ldhName":"b.ns.example.test"}],
		"entities":[{"objectClassName":"entity","handle":"376","roles":["registrar"],
			"vcardArray":["vcard",[["version",{},"text","4.0"],["fn",{},"text","Example Registrar, Inc."]]]}]}`,
	"/ip/192.0.2.1": `{"objectClassName":"ip network","handle":"NET-192-0-2-0-1","startAddress":"192.0.2.0",
		"endAddress":"192.0.2.255","ipVersion":"v4","name":"TEST-NET-1","type":"ASSIGNED","country":"US",
		"entities":[{"objectClassName":"entity","handle":"IANA","roles":["registrant"],
			"vcardArray":["vcard",[["version",{},"text","4.0"],["fn",{},"text","Internet Assigned Numbers Authority"]]]}]}`,
	"/domain/odd.test": `{"objectClassName":"entity","handle":"X"}`,
	"/autnum/64500":    `{"objectClassName":"autnum","handle":"AS64500","startAutnum":64500,"endAutnum":64510,"name":"EXAMPLE-AS","country":"SE"}`,
}

// startRDAP runs the stand-in registry on loopback and a bootstrap that
// sends .test, 192.0.2.0/24, 2001:db8::/32 and AS64500-64510 to it.
func startRDAP(t *testing.T) (*Bootstrap, *atomic.Int32) {
	t.Helper()
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		body, ok := rdapObjects[r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/rdap+json")
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return testBootstrap(t, srv.URL+"/"), &asked
}

func testBootstrap(t *testing.T, url string) *Bootstrap {
	t.Helper()
	file := func(entry string) *fstest.MapFile {
		b, _ := json.Marshal(map[string]any{"version": "1.0", "publication": "2026-01-01T00:00:00Z",
			"services": [][][]string{{{entry}, {url}}}})
		return &fstest.MapFile{Data: b}
	}
	b, err := ParseBootstrap(fstest.MapFS{
		"b/dns.json": file("test"), "b/ipv4.json": file("192.0.2.0/24"),
		"b/ipv6.json": file("2001:db8::/32"), "b/asn.json": file("64500-64510"),
	}, "b")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestShippedBootstrap: the embedded IANA files parse and send the big
// registries' questions where IANA says.
func TestShippedBootstrap(t *testing.T) {
	for q, want := range map[string]string{
		"example.com": "verisign", "example.org": "rdap", "8.8.8.8": "arin", "2001:67c:2e8::1": "ripe", "AS3333": "ripe",
	} {
		req, urls := IANA().servers(q)
		if len(urls) == 0 || !strings.Contains(urls[0].Host, want) {
			t.Errorf("%s: %v, want a server of %s", q, urls, want)
		}
		if q == "AS3333" && req.Query != "3333" {
			t.Errorf("AS3333 asked as %q, want the number", req.Query)
		}
	}
	if _, urls := IANA().servers("example.invalid"); len(urls) != 0 {
		t.Errorf("example.invalid has RDAP servers %v", urls)
	}
}

func TestRDAPFirst(t *testing.T) {
	boot, rdapAsked := startRDAP(t)
	whois43 := startServers(t, map[string]string{"127.0.0.1": "refer: 127.0.0.2\n", "127.0.0.2": "port 43 answer\n"})
	c := &Client{Root: "127.0.0.1", Port: whois43.port, Dial: loopback.DialContext, RDAP: boot}
	tests := []struct {
		q    string
		want Summary
	}{
		{"Example.TEST", Summary{Kind: "domain", Handle: "D1-TEST", Name: "example.test", Registrar: "Example Registrar, Inc.",
			Status: []string{"client transfer prohibited", "active"}, NameServers: []string{"a.ns.example.test", "b.ns.example.test"},
			Events: []Event{{"registration", "1995-08-14T04:00:00Z"}, {"expiration", "2030-08-13T04:00:00Z"}}}},
		{"192.0.2.1", Summary{Kind: "ip network", Handle: "NET-192-0-2-0-1", Name: "TEST-NET-1", Range: "192.0.2.0 – 192.0.2.255",
			Type: "ASSIGNED", Country: "US", Holder: "Internet Assigned Numbers Authority"}},
		{"as64500", Summary{Kind: "autnum", Handle: "AS64500", Name: "EXAMPLE-AS", Range: "AS64500 – AS64510", Country: "SE"}},
	}
	for _, tt := range tests {
		res, err := c.Lookup(context.Background(), tt.q)
		if err != nil {
			t.Fatalf("%s: %v", tt.q, err)
		}
		if res.Summary == nil {
			t.Fatalf("%s: no RDAP answer: %+v", tt.q, res)
		}
		got := *res.Summary
		if !strings.HasPrefix(got.Server, "http://127.0.0.1:") {
			t.Errorf("%s: server %q", tt.q, got.Server)
		}
		if got.Protocol != "rdap" {
			t.Errorf("%s: protocol %q", tt.q, got.Protocol)
		}
		got.Server, got.Protocol = "", ""
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(tt.want)
		if string(g) != string(w) {
			t.Errorf("%s:\n got %s\nwant %s", tt.q, g, w)
		}
		if len(res.Answers) != 1 || !strings.Contains(res.Answers[0].Text, `"objectClassName": "`) {
			t.Errorf("%s: the raw answer is missing or not indented: %+v", tt.q, res.Answers)
		}
	}
	if n := len(whois43.asked("127.0.0.1")); n != 0 {
		t.Errorf("port 43 asked %d times although RDAP answered", n)
	}
	if rdapAsked.Load() != 3 {
		t.Errorf("RDAP asked %d times, want 3", rdapAsked.Load())
	}

	// Where RDAP is offered but fails (here: the object is unknown to
	// it), port 43 answers, and the page says why.
	res, err := c.Lookup(context.Background(), "other.test")
	if err != nil || res.Summary != nil || len(res.Answers) != 2 || !strings.Contains(res.Note, "RDAP did not answer") {
		t.Fatalf("RDAP failing: %+v, %v; want port 43's answers and a note", res, err)
	}
	res, err = c.Lookup(context.Background(), "odd.test")
	if err != nil || res.Summary != nil || !strings.Contains(res.Note, "gave no RDAP answer") {
		t.Fatalf("RDAP answering with another object: %+v, %v", res, err)
	}
	// Where it is not offered, port 43 is asked without a note.
	res, err = c.Lookup(context.Background(), "example.org")
	if err != nil || res.Summary != nil || res.Note != "" || len(res.Answers) != 2 {
		t.Fatalf("no RDAP: %+v, %v", res, err)
	}
}

// TestRDAPGuard: an RDAP server the egress guard refuses is never
// fetched, whatever the bootstrap says.
func TestRDAPGuard(t *testing.T) {
	boot, rdapAsked := startRDAP(t)
	c := &Client{Root: "127.0.0.1", Port: 1, Dial: netguard.Guard{}.DialContext, RDAP: boot}
	res, err := c.Lookup(context.Background(), "example.test")
	if !errors.Is(err, netguard.ErrDenied) || res.Summary != nil || rdapAsked.Load() != 0 {
		t.Fatalf("%+v, %v, RDAP asked %d times; want ErrDenied and nothing fetched", res, err, rdapAsked.Load())
	}
	if !strings.Contains(res.Note, "private, local or reserved range") {
		t.Errorf("note %q", res.Note)
	}
}

// TestErrorsForVisitors: the resolver's address and other details of
// this host stay out of what the visitor reads.
func TestErrorsForVisitors(t *testing.T) {
	resolverErr := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{
			Err: "no such host", Name: host, Server: "127.0.0.53:53", IsNotFound: true}}
	}
	c := &Client{Root: "whois.nowhere.test", Dial: resolverErr}
	_, err := c.Lookup(context.Background(), "example.org")
	var dnsErr *net.DNSError
	if err == nil || strings.Contains(err.Error(), "127.0.0.53") || strings.Contains(err.Error(), "lookup") ||
		!strings.Contains(err.Error(), "whois.nowhere.test does not exist") || !errors.As(err, &dnsErr) {
		t.Fatalf("error %q (%T): want a message for the visitor, the DNS error wrapped", err, err)
	}
	mux := http.NewServeMux()
	(&Handler{Client: c}).Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/whois?q=example.org", nil))
	if body := rec.Body.String(); rec.Code != http.StatusBadGateway || strings.Contains(body, "127.0.0.53") || !strings.Contains(body, "does not exist") {
		t.Errorf("API: %d %s", rec.Code, body)
	}
}

// TestRDAPPage: the page shows the key fields above the raw answer.
func TestRDAPPage(t *testing.T) {
	boot, _ := startRDAP(t)
	mux := http.NewServeMux()
	(&Handler{Client: &Client{Root: "127.0.0.1", Dial: loopback.DialContext, RDAP: boot}}).Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/whois?q=example.test", nil))
	body := rec.Body.String()
	for _, want := range []string{`id="summary"`, "Example Registrar, Inc.", "a.ns.example.test, b.ns.example.test", "expiration", "2030-08-13T04:00:00Z", "client transfer prohibited", `&#34;ldhName&#34;: &#34;EXAMPLE.TEST&#34;`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if rec.Code != 200 || strings.Index(body, `id="summary"`) > strings.Index(body, `class="card answer"`) {
		t.Errorf("%d; the key fields must come before the raw answer", rec.Code)
	}
}

// TestWhoisSummary: on port 43 the key fields are read from the labels
// registries commonly use; IANA's answer, about the TLD, is left out,
// and the registrar's answer is read before the registry's.
func TestWhoisSummary(t *testing.T) {
	srv := startServers(t, map[string]string{
		"127.0.0.1": "refer: 127.0.0.2\n\ndomain: ORG\nstatus: ACTIVE\ncreated: 1985-01-01\n",
		"127.0.0.2": "Domain Name: EXAMPLE.ORG\r\nRegistry Domain ID: D1-LROR\r\nRegistrar WHOIS Server: 127.0.0.3\r\n" +
			"Registrar: Registry's Idea Of The Registrar\r\nCreation Date: 1995-08-31T04:00:00Z\r\n" +
			"Domain Status: clientTransferProhibited https://icann.org/epp#clientTransferProhibited\r\n" +
			"Name Server: A.IANA-SERVERS.NET\r\nName Server: B.IANA-SERVERS.NET\r\n",
		"127.0.0.3": "Domain Name: example.org\r\nRegistrar: Example Registrar, Inc.\r\n" +
			"Registrar Registration Expiration Date: 2030-08-30T04:00:00Z\r\nRegistrant Organization: Example Org\r\n",
	})
	c := &Client{Root: "127.0.0.1", Port: srv.port, Dial: loopback.DialContext}
	res, err := c.Lookup(context.Background(), "example.org")
	if err != nil || res.Summary == nil {
		t.Fatalf("%+v, %v", res, err)
	}
	got, _ := json.Marshal(res.Summary)
	want, _ := json.Marshal(Summary{Protocol: "whois", Server: "127.0.0.3", Kind: "domain", Handle: "D1-LROR", Name: "example.org",
		Registrar: "Example Registrar, Inc.", Holder: "Example Org", Status: []string{"clientTransferProhibited"},
		Events:      []Event{{"registration", "1995-08-31T04:00:00Z"}, {"expiration", "2030-08-30T04:00:00Z"}},
		NameServers: []string{"a.iana-servers.net", "b.iana-servers.net"}})
	if string(got) != string(want) {
		t.Errorf("summary\n got %s\nwant %s", got, want)
	}

	// An RIR's RPSL answer for an address.
	srv = startServers(t, map[string]string{
		"127.0.0.1": "refer: 127.0.0.2\n",
		"127.0.0.2": "inetnum:        192.0.2.0 - 192.0.2.255\nnetname:        TEST-NET-1\ncountry:        NL\nlast-modified:  2020-01-01T00:00:00Z\n",
	})
	c.Port = srv.port
	res, err = c.Lookup(context.Background(), "192.0.2.7")
	if err != nil || res.Summary == nil || res.Summary.Kind != "ip network" || res.Summary.Name != "TEST-NET-1" ||
		res.Summary.Range != "192.0.2.0 - 192.0.2.255" || res.Summary.Country != "NL" || len(res.Summary.Events) != 1 {
		t.Fatalf("RPSL summary %+v, %v", res.Summary, err)
	}
}
