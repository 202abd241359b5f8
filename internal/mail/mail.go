// Package mail delivers Veil's mail: an outbox in the store holding two
// kinds of message, transactional (receipts, reminders, policy changes,
// access-code recovery; always sent) and marketing (only to an account
// that consented and has not restricted processing, checked when queued
// and again when sent), and a sender that delivers it over SMTP with
// github.com/wneessen/go-mail, retrying with backoff. Every marketing
// message carries RFC 8058 one-click unsubscribe headers. The receipt and
// the expiry reminder are written here too (Receipt, Reminder), in the
// reader's language from the catalogue area mail.LANG.toml, with the
// dates (Date) and amounts (Amount) as that language writes them.
//
// Logs hold counts and errors, never an address, a subject or a body.
package mail

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"veil/internal/store"
)

// Store is what the outbox and the sender need of the store.
type Store interface {
	AccountByID(ctx context.Context, id int64) (*store.Account, error)
	QueueMail(ctx context.Context, m *store.Mail) (int64, error)
	DueMail(ctx context.Context, now time.Time, limit int) ([]store.Mail, error)
	DeleteMail(ctx context.Context, id int64) error
	RetryMail(ctx context.Context, id int64, attempts int, next time.Time) error
}

// ErrNoConsent is returned when marketing mail is queued for an account
// that did not agree to it or restricted processing.
var ErrNoConsent = errors.New("no consent to marketing mail")

// Queue adds a message to the outbox. Marketing mail needs an account that
// consented and is not restricted.
func Queue(ctx context.Context, st Store, m *store.Mail) error {
	if m.Kind == store.MailMarketing {
		if m.AccountID == 0 {
			return ErrNoConsent
		}
		a, err := st.AccountByID(ctx, m.AccountID)
		if err != nil {
			return fmt.Errorf("queueing mail: %w", err)
		}
		if !a.MarketingConsent || a.Restricted || a.Email == "" {
			return ErrNoConsent
		}
		m.To = a.Email
	}
	if _, err := st.QueueMail(ctx, m); err != nil {
		return err
	}
	return nil
}

// Signer makes the unsubscribe links' signatures: a keyed hash (the
// server's account.Hasher.Token fits).
type Signer func(s string) []byte

// UnsubscribeToken is the signature in an account's unsubscribe link.
func UnsubscribeToken(sign Signer, accountID int64) string {
	return hex.EncodeToString(sign("unsubscribe:" + strconv.FormatInt(accountID, 10)))[:32]
}

// CheckUnsubscribe reports whether token is the account's unsubscribe
// signature.
func CheckUnsubscribe(sign Signer, accountID int64, token string) bool {
	return hmac.Equal([]byte(UnsubscribeToken(sign, accountID)), []byte(token))
}

// UnsubscribeURL is the one-click link for an account under base (the
// server's public URL).
func UnsubscribeURL(base string, sign Signer, accountID int64) string {
	return fmt.Sprintf("%s/unsubscribe?a=%d&t=%s", base, accountID, UnsubscribeToken(sign, accountID))
}

// A queued body may hold links that the sender completes at send time
// (LinkPlaceholder): the outbox keeps a nonce, and the link's token is
// its signature, so whoever reads the outbox (a backup, a stolen
// database) holds nothing the link would accept.
var linkRE = regexp.MustCompile(`\[\[link (/[!-~]*?) ([A-Za-z0-9_-]{22,64})\]\]`)

// LinkPlaceholder is the text a queued body holds for the link to path
// (under the site's base URL) followed by LinkToken(nonce); nonce is
// URL-safe base64 of 22 to 64 characters (account.NewToken fits).
func LinkPlaceholder(path, nonce string) string { return "[[link " + path + " " + nonce + "]]" }

// LinkToken is the token that ends the link of a placeholder's nonce.
func LinkToken(sign Signer, nonce string) string {
	return base64.RawURLEncoding.EncodeToString(sign("link:" + nonce))
}

// ExpandLinks replaces the placeholders of body with their links under
// base.
func ExpandLinks(body, base string, sign Signer) string {
	return linkRE.ReplaceAllStringFunc(body, func(p string) string {
		m := linkRE.FindStringSubmatch(p)
		return base + m[1] + LinkToken(sign, m[2])
	})
}

// SMTP is how the sender reaches the mail relay.
type SMTP struct {
	Host     string
	Port     int
	Username string // empty: no authentication
	Password string
	// TLS: "mandatory", "opportunistic" (STARTTLS when offered) or "none".
	TLS string
}

// Sender delivers the outbox.
type Sender struct {
	Store Store
	SMTP  SMTP
	From  string
	// BaseURL is the public URL of the site, for unsubscribe links and
	// the links of LinkPlaceholder.
	BaseURL string
	// Sign makes the links' signatures.
	Sign Signer
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Logger; nil: discard.
	Logger *slog.Logger
	// MaxAttempts before a message is given up; 0: 10.
	MaxAttempts int
}

// Backoff is the wait after a message's nth failed attempt: a minute,
// doubling, at most six hours.
func Backoff(n int) time.Duration {
	d := time.Minute
	for i := 1; i < n && d < 6*time.Hour; i++ {
		d *= 2
	}
	return min(d, 6*time.Hour)
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sender) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// client returns a go-mail client for the relay.
func (s *Sender) client() (*gomail.Client, error) {
	policy := gomail.TLSOpportunistic
	switch s.SMTP.TLS {
	case "mandatory":
		policy = gomail.TLSMandatory
	case "none":
		policy = gomail.NoTLS
	}
	opts := []gomail.Option{gomail.WithTLSPolicy(policy), gomail.WithTimeout(30 * time.Second), gomail.WithPort(s.SMTP.Port)}
	if s.SMTP.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(s.SMTP.Username), gomail.WithPassword(s.SMTP.Password))
	}
	return gomail.NewClient(s.SMTP.Host, opts...)
}

// message builds the SMTP message for m.
func (s *Sender) message(m store.Mail) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(s.From); err != nil {
		return nil, fmt.Errorf("sender address: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("recipient address: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	body := m.Body
	if linkRE.MatchString(body) {
		if s.Sign == nil {
			return nil, errors.New("a link to complete and no signer")
		}
		body = ExpandLinks(body, s.BaseURL, s.Sign)
	}
	msg.SetBodyString(gomail.TypeTextPlain, body)
	if m.Kind == store.MailMarketing {
		// RFC 8058: a POST to the link unsubscribes with no further step.
		msg.SetGenHeader(gomail.HeaderListUnsubscribe, "<"+UnsubscribeURL(s.BaseURL, s.Sign, m.AccountID)+">")
		msg.SetGenHeader(gomail.HeaderListUnsubscribePost, "List-Unsubscribe=One-Click")
	}
	return msg, nil
}

// stillWanted re-checks marketing mail at send time: consent may have been
// withdrawn, or processing restricted, since it was queued.
func (s *Sender) stillWanted(ctx context.Context, m store.Mail) (bool, error) {
	if m.Kind != store.MailMarketing {
		return true, nil
	}
	a, err := s.Store.AccountByID(ctx, m.AccountID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return a.MarketingConsent && !a.Restricted && a.Email != "", nil
}

// SendDue sends every message due now, one connection per message, and
// returns how many were sent. A failed message is retried later; after
// MaxAttempts it is deleted.
func (s *Sender) SendDue(ctx context.Context) (int, error) {
	maxAttempts := s.MaxAttempts
	if maxAttempts == 0 {
		maxAttempts = 10
	}
	sent := 0
	for {
		due, err := s.Store.DueMail(ctx, s.now(), 50)
		if err != nil || len(due) == 0 {
			return sent, err
		}
		for _, m := range due {
			ok, err := s.stillWanted(ctx, m)
			if err != nil {
				return sent, err
			}
			if ok {
				err = s.send(ctx, m)
			}
			if err == nil {
				if err := s.Store.DeleteMail(ctx, m.ID); err != nil {
					return sent, err
				}
				if ok {
					sent++
				}
				continue
			}
			if ctx.Err() != nil {
				return sent, ctx.Err()
			}
			n := m.Attempts + 1
			if n >= maxAttempts {
				s.log().Warn("mail given up", "id", m.ID, "kind", m.Kind, "attempts", n, "err", safeErr(err))
				if err := s.Store.DeleteMail(ctx, m.ID); err != nil {
					return sent, err
				}
				continue
			}
			s.log().Info("mail delivery failed; will retry", "id", m.ID, "attempts", n, "err", safeErr(err))
			if err := s.Store.RetryMail(ctx, m.ID, n, s.now().Add(Backoff(n))); err != nil {
				return sent, err
			}
		}
	}
}

func (s *Sender) send(ctx context.Context, m store.Mail) error {
	msg, err := s.message(m)
	if err != nil {
		return err
	}
	c, err := s.client()
	if err != nil {
		return err
	}
	return c.DialAndSendWithContext(ctx, msg)
}

// Run sends due mail every interval, and at once when wake receives,
// until ctx ends.
func (s *Sender) Run(ctx context.Context, interval time.Duration, wake <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.SendDue(ctx); err != nil && ctx.Err() == nil {
			s.log().Warn("sending mail", "err", err)
		} else if n > 0 {
			s.log().Debug("mail sent", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
	}
}

// safeErr is an error's text for the log, withheld when it may quote an
// email address (SMTP replies sometimes do).
func safeErr(err error) string {
	if t := err.Error(); !strings.Contains(t, "@") {
		return t
	}
	return "smtp error (text withheld: it quotes an address)"
}
