package mail_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"veil/internal/mail"
	"veil/internal/mail/mailtest"
	"veil/internal/store"
	"veil/internal/store/storetest"
)

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
		srv := mailtest.Start(t)
		srv.FailRcpt(1)
		clk := &clock{t: time.Now().UTC().Add(time.Minute)} // after every queued message
		sender := &mail.Sender{
			Store: st, SMTP: mail.SMTP{Host: "127.0.0.1", Port: srv.Port, TLS: "none"},
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

		msgs := srv.Messages()
		if len(msgs) != 2 {
			t.Fatalf("server received %d messages, want 2", len(msgs))
		}
		bySubject := map[string]mailtest.Message{}
		for _, m := range msgs {
			bySubject[m.Subject()] = m
		}
		news, receipt := bySubject["News"], bySubject["Receipt"]
		if len(news.To) != 1 || news.To[0] != "fan@example.org" {
			t.Errorf("marketing went to %v", news.To)
		}
		wantURL := "<" + mail.UnsubscribeURL("https://vpn.example", sign, fan.ID) + ">"
		if got := news.Header.Get("List-Unsubscribe"); got != wantURL {
			t.Errorf("List-Unsubscribe = %q, want %q", got, wantURL)
		}
		if got := news.Header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
			t.Errorf("List-Unsubscribe-Post = %q", got)
		}
		if len(receipt.To) != 1 || receipt.To[0] != "quiet@example.org" || !strings.Contains(receipt.Text(), "Thanks.") {
			t.Errorf("receipt = %+v", receipt)
		}
		// The link is completed at send time: the outbox held only the
		// nonce.
		text := receipt.Text()
		link := "https://vpn.example/account/recover/" + mail.LinkToken(sign, nonce)
		if !strings.Contains(text, link) || strings.Contains(text, "[[link") || strings.Contains(receiptBody, mail.LinkToken(sign, nonce)) {
			t.Errorf("receipt body %q, want the link %s", text, link)
		}
		if receipt.Header.Get("List-Unsubscribe") != "" {
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
