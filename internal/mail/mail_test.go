package mail_test

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"veil/internal/mail"
	"veil/internal/store"
	"veil/internal/store/storetest"
)

// received is one message the test SMTP server accepted.
type received struct {
	from   string
	to     []string
	header textproto.MIMEHeader
	body   string
}

// smtpServer is a real SMTP server on loopback, in the test process.
type smtpServer struct {
	mu       sync.Mutex
	msgs     []received
	failRcpt int // reject this many RCPT commands with a temporary error
	addr     *net.TCPAddr
}

func (s *smtpServer) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{srv: s}, nil }

type session struct {
	srv  *smtpServer
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
	s.srv.msgs = append(s.srv.msgs, received{s.from, s.to, h, string(body)})
	s.srv.mu.Unlock()
	return nil
}

func startSMTP(tb testing.TB) *smtpServer {
	tb.Helper()
	be := &smtpServer{}
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	be.addr = ln.Addr().(*net.TCPAddr)
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return be
}

func (s *smtpServer) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

func sign(s string) []byte {
	m := hmac.New(sha256.New, []byte("test key"))
	m.Write([]byte(s))
	return m.Sum(nil)
}

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

// TestSender is done-when point 5: a real SMTP server in the process,
// transactional mail always sent, marketing only with consent and never
// to a restricted account, RFC 8058 headers, retries with backoff, and
// the outbox emptied as mail goes.
func TestSender(t *testing.T) {
	t.Parallel()
	storetest.Dialects(t, func(t *testing.T, newDB func(testing.TB) string) {
		t.Parallel()
		ctx := t.Context()
		st, err := store.Open(ctx, newDB(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		srv := startSMTP(t)
		srv.failRcpt = 1
		clk := &clock{t: time.Now().UTC().Add(time.Minute)} // after every queued message
		sender := &mail.Sender{
			Store: st, SMTP: mail.SMTP{Host: "127.0.0.1", Port: srv.addr.Port, TLS: "none"},
			From: "veil@example.org", BaseURL: "https://vpn.example", Sign: sign, Now: clk.Now,
			Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		}
		newAcc := func(code, email string, consent, restricted bool) *store.Account {
			a := &store.Account{CodeHash: []byte(code), Plan: store.PlanFree, Email: email, MarketingConsent: consent, Restricted: restricted}
			if _, err := st.CreateAccount(ctx, a); err != nil {
				t.Fatal(err)
			}
			return a
		}
		fan := newAcc("fan", "fan@example.org", true, false)
		quiet := newAcc("quiet", "quiet@example.org", false, false)
		limited := newAcc("limited", "limited@example.org", true, true)
		later := newAcc("later", "later@example.org", true, false)

		nonce := "bm9uY2Ugb2YgdGhlIGxpbmsgaW4gdGhpcyB0ZXN0"
		receiptBody := "Thanks. Your link: " + mail.LinkPlaceholder("/account/recover/", nonce) + "\n"
		if err := mail.Queue(ctx, st, &store.Mail{Kind: store.MailTransactional, AccountID: quiet.ID, To: quiet.Email, Subject: "Receipt", Body: receiptBody}); err != nil {
			t.Fatal(err)
		}
		if err := mail.Queue(ctx, st, &store.Mail{Kind: store.MailMarketing, AccountID: fan.ID, Subject: "News", Body: "New servers."}); err != nil {
			t.Fatal(err)
		}
		for _, a := range []*store.Account{quiet, limited} {
			err := mail.Queue(ctx, st, &store.Mail{Kind: store.MailMarketing, AccountID: a.ID, Subject: "News", Body: "x"})
			if !errors.Is(err, mail.ErrNoConsent) {
				t.Errorf("marketing to %s queued: %v", a.Email, err)
			}
		}
		// Consent withdrawn after queueing: not sent.
		if err := mail.Queue(ctx, st, &store.Mail{Kind: store.MailMarketing, AccountID: later.ID, Subject: "News", Body: "x"}); err != nil {
			t.Fatal(err)
		}
		no := false
		if err := st.UpdateAccount(ctx, later.ID, store.AccountUpdate{MarketingConsent: &no}); err != nil {
			t.Fatal(err)
		}

		// First pass: the server refuses the first recipient once.
		n, err := sender.SendDue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("first pass sent %d, want 1 (one refused, one withdrawn)", n)
		}
		left, err := st.DueMail(ctx, clk.Now().Add(time.Hour), 10)
		if err != nil || len(left) != 1 || left[0].Attempts != 1 {
			t.Fatalf("outbox after first pass = %+v, %v; want one message with one attempt", left, err)
		}
		// Not due again until the backoff has passed.
		if n, _ := sender.SendDue(ctx); n != 0 {
			t.Errorf("resent %d before the backoff", n)
		}
		clk.t = clk.t.Add(mail.Backoff(1))
		if n, err := sender.SendDue(ctx); err != nil || n != 1 {
			t.Fatalf("after backoff sent %d, %v; want 1", n, err)
		}
		if left, _ := st.DueMail(ctx, clk.Now().Add(24*time.Hour), 10); len(left) != 0 {
			t.Errorf("outbox not empty after sending: %+v", left)
		}

		msgs := srv.received()
		if len(msgs) != 2 {
			t.Fatalf("server received %d messages, want 2", len(msgs))
		}
		bySubject := map[string]received{}
		for _, m := range msgs {
			bySubject[m.header.Get("Subject")] = m
		}
		news, receipt := bySubject["News"], bySubject["Receipt"]
		if len(news.to) != 1 || news.to[0] != "fan@example.org" {
			t.Errorf("marketing went to %v", news.to)
		}
		wantURL := "<" + mail.UnsubscribeURL("https://vpn.example", sign, fan.ID) + ">"
		if got := news.header.Get("List-Unsubscribe"); got != wantURL {
			t.Errorf("List-Unsubscribe = %q, want %q", got, wantURL)
		}
		if got := news.header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
			t.Errorf("List-Unsubscribe-Post = %q", got)
		}
		if len(receipt.to) != 1 || receipt.to[0] != "quiet@example.org" || !strings.Contains(receipt.body, "Thanks.") {
			t.Errorf("receipt = %+v", receipt)
		}
		// The link is completed at send time: the outbox held only the
		// nonce.
		text := receipt.body
		if receipt.header.Get("Content-Transfer-Encoding") == "quoted-printable" {
			b, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(text)))
			if err != nil {
				t.Fatal(err)
			}
			text = string(b)
		}
		link := "https://vpn.example/account/recover/" + mail.LinkToken(sign, nonce)
		if !strings.Contains(text, link) || strings.Contains(text, "[[link") || strings.Contains(receiptBody, mail.LinkToken(sign, nonce)) {
			t.Errorf("receipt body %q, want the link %s", text, link)
		}
		if receipt.header.Get("List-Unsubscribe") != "" {
			t.Errorf("transactional mail has List-Unsubscribe")
		}
		if !mail.CheckUnsubscribe(sign, fan.ID, mail.UnsubscribeToken(sign, fan.ID)) || mail.CheckUnsubscribe(sign, quiet.ID, mail.UnsubscribeToken(sign, fan.ID)) {
			t.Errorf("unsubscribe tokens do not check per account")
		}
	})
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 5: 16 * time.Minute, 20: 6 * time.Hour} {
		if got := mail.Backoff(n); got != want {
			t.Errorf("Backoff(%d) = %v, want %v", n, got, want)
		}
	}
}

// testWriter sends log lines to the test's log.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
