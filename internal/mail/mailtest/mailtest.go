// Package mailtest is a real SMTP server on loopback for tests: it keeps
// every message it accepts, and reads their subject and text as a mail
// client would (RFC 2047 words, quoted-printable or base64 bodies).
package mailtest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	From   string
	To     []string
	Header textproto.MIMEHeader
	// Raw is the body as it travelled, in its transfer encoding.
	Raw string
}

// Subject is the message's subject, decoded.
func (m Message) Subject() string {
	s, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		return m.Header.Get("Subject")
	}
	return s
}

// Text is the message's body, decoded from its transfer encoding.
func (m Message) Text() string {
	var r io.Reader = strings.NewReader(m.Raw)
	switch strings.ToLower(m.Header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, newlineSkipper{r})
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return m.Raw
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

// newlineSkipper drops the line breaks of a base64 body.
type newlineSkipper struct{ r io.Reader }

func (n newlineSkipper) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	j := 0
	for _, c := range p[:k] {
		if c != '\r' && c != '\n' {
			p[j] = c
			j++
		}
	}
	return j, err
}

// Server is the SMTP server. Port is where it listens on 127.0.0.1.
type Server struct {
	Port     int
	mu       sync.Mutex
	msgs     []Message
	failRcpt int
}

// Start runs a server until the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return s
}

// FailRcpt makes the server refuse the next n recipients with a
// temporary error, as a busy relay does.
func (s *Server) FailRcpt(n int) {
	s.mu.Lock()
	s.failRcpt = n
	s.mu.Unlock()
}

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// NewSession is go-smtp's backend method.
func (s *Server) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{srv: s}, nil }

type session struct {
	srv  *Server
	from string
	to   []string
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if s.srv.failRcpt > 0 {
		s.srv.failRcpt--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(b)))
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(tp.R)
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, Message{From: s.from, To: s.to, Header: h, Raw: string(body)})
	s.srv.mu.Unlock()
	return nil
}
