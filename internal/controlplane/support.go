package controlplane

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
	"veil/internal/apitypes"

	"veil/internal/account"
	"veil/internal/i18n"
	"veil/internal/mail"
	"veil/internal/privacy"
	"veil/internal/store"
)

func ticketView(t *store.Ticket, withEmail bool) apitypes.TicketView {
	v := apitypes.TicketView{ID: t.ID, Subject: t.Subject, Status: t.Status, Account: t.AccountID != 0,
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
	if withEmail {
		v.Email = t.Email
	}
	for _, m := range t.Messages {
		v.Messages = append(v.Messages, apitypes.MessageView{FromOperator: m.FromOperator, Body: m.Body, CreatedAt: m.CreatedAt})
	}
	return v
}

// ErrTicket is the user-facing text for a bad ticket.
var ErrTicket = errors.New("a subject (at most 200 characters) and a message (at most 20000) are required")

func cleanTicket(subject, message string) (string, string, error) {
	subject, message = strings.TrimSpace(subject), strings.TrimSpace(message)
	if subject == "" || message == "" || utf8.RuneCountInString(subject) > 200 || utf8.RuneCountInString(message) > 20000 ||
		!utf8.ValidString(subject) || !utf8.ValidString(message) {
		return "", "", ErrTicket
	}
	return subject, message, nil
}

// optionalAccount returns the account of a valid bearer token, or nil.
func (s *Server) optionalAccount(r *http.Request) *store.Account {
	a, _, _ := s.Session(r.Context(), bearer(r))
	return a
}

func (s *Server) createTicket(w http.ResponseWriter, r *http.Request) {
	var req apitypes.TicketRequest
	if err := decode(w, r, &req); err != nil {
		writeDecodeError(w, err)
		return
	}
	var accountID int64
	lang := i18n.Default
	if bearer(r) != "" {
		a := s.optionalAccount(r)
		if a == nil {
			writeError(w, http.StatusUnauthorized, "session expired or unknown; log in again, or send without Authorization")
			return
		}
		accountID, lang = a.ID, mailLang(a)
	}
	out, err := s.CreateTicket(r.Context(), accountID, req, s.publicURL(r)+i18n.Prefix(lang), lang)
	if errors.Is(err, ErrTicket) || errors.Is(err, ErrBadEmail) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		s.fail(w, "creating ticket", err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// CreateTicket stores a ticket (for accountID, or none when 0) and, when
// an email is given, queues a receipt to it in lang, the language of
// the page it was sent from; base is that page's address prefix.
func (s *Server) CreateTicket(ctx context.Context, accountID int64, req apitypes.TicketRequest, base, lang string) (*apitypes.TicketCreated, error) {
	subject, message, err := cleanTicket(req.Subject, req.Message)
	if err != nil {
		return nil, err
	}
	email, err := CleanEmail(req.Email)
	if err != nil {
		return nil, err
	}
	tok, err := account.NewToken()
	if err != nil {
		return nil, err
	}
	t := &store.Ticket{AccountID: accountID, Email: email, TokenHash: s.cfg.Hasher.Token("ticket:" + tok), Subject: subject,
		CreatedAt: s.cfg.Now(), Lang: i18n.Known(lang)}
	if _, err := s.cfg.Store.CreateTicket(ctx, t, store.TicketMessage{Body: message, CreatedAt: t.CreatedAt}); err != nil {
		return nil, err
	}
	if email != "" {
		l := i18n.For(lang)
		body := l.N("mail.ticket.body", privacy.SupportMonths, "ID", t.ID, "Link", base+"/support/ticket/"+tok)
		if err := mail.Queue(ctx, s.cfg.Store, &store.Mail{Kind: store.MailTransactional, AccountID: accountID, To: email,
			Subject: l.T("mail.ticket.subject", "ID", t.ID), Body: body}); err != nil {
			return nil, err
		}
		s.wakeMail()
	}
	return &apitypes.TicketCreated{ID: t.ID, Token: tok}, nil
}

func (s *Server) ticketByToken(r *http.Request) (*store.Ticket, error) {
	return s.ticket(r.Context(), r.PathValue("token"))
}

// ticket is the ticket the visitor's token names.
func (s *Server) ticket(ctx context.Context, tok string) (*store.Ticket, error) {
	if tok == "" || len(tok) > 128 {
		return nil, store.ErrNotFound
	}
	return s.cfg.Store.TicketByTokenHash(ctx, s.cfg.Hasher.Token("ticket:"+tok))
}

// Ticket is the ticket the visitor's token names, as its sender sees
// it; store.ErrNotFound for none.
func (s *Server) Ticket(ctx context.Context, tok string) (*apitypes.TicketView, error) {
	t, err := s.ticket(ctx, tok)
	if err != nil {
		return nil, err
	}
	v := ticketView(t, true)
	return &v, nil
}

// ErrReply is the user-facing text for a reply without a message, or
// one too long.
var ErrReply = errors.New("a message of at most 20000 characters is required")

// Reply adds the visitor's message to the ticket its token names and
// opens it again; store.ErrNotFound for no ticket, ErrReply for a bad
// message.
func (s *Server) Reply(ctx context.Context, tok, message string) error {
	t, err := s.ticket(ctx, tok)
	if err != nil {
		return err
	}
	_, msg, err := cleanTicket("-", message)
	if err != nil {
		return ErrReply
	}
	return s.cfg.Store.AddTicketMessage(ctx, t.ID, store.TicketMessage{Body: msg, CreatedAt: s.cfg.Now()}, store.TicketOpen)
}

// TicketCount is how many tickets the account has.
func (s *Server) TicketCount(ctx context.Context, accountID int64) (int, error) {
	ts, err := s.cfg.Store.AccountTickets(ctx, accountID)
	return len(ts), err
}

// apiTicket is the ticket named by the request's token, or an error
// answer written (false).
func (s *Server) apiTicket(w http.ResponseWriter, r *http.Request) (*store.Ticket, bool) {
	t, err := s.ticketByToken(r)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such ticket (tickets are deleted after 6 months)")
		return nil, false
	}
	if err != nil {
		s.fail(w, "reading ticket", err)
		return nil, false
	}
	return t, true
}

func (s *Server) getTicket(w http.ResponseWriter, r *http.Request) {
	t, ok := s.apiTicket(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, ticketView(t, true))
}

func (s *Server) userReply(w http.ResponseWriter, r *http.Request) {
	var req apitypes.TicketMessage
	if err := decode(w, r, &req); err != nil {
		writeDecodeError(w, err)
		return
	}
	t, ok := s.apiTicket(w, r)
	if !ok {
		return
	}
	_, msg, err := cleanTicket("-", req.Message)
	if err != nil {
		writeError(w, http.StatusBadRequest, "a message of at most 20000 characters is required")
		return
	}
	if err := s.cfg.Store.AddTicketMessage(r.Context(), t.ID, store.TicketMessage{Body: msg, CreatedAt: s.cfg.Now()}, store.TicketOpen); err != nil {
		s.fail(w, "adding ticket message", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminTickets(w http.ResponseWriter, r *http.Request) {
	ts, err := s.cfg.Store.Tickets(r.Context(), r.URL.Query().Get("status"))
	if err != nil {
		s.fail(w, "listing tickets", err)
		return
	}
	out := []apitypes.TicketView{}
	for i := range ts {
		out = append(out, ticketView(&ts[i], true))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) adminTicketByID(w http.ResponseWriter, r *http.Request) *store.Ticket {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "ticket id must be a number")
		return nil
	}
	t, err := s.cfg.Store.Ticket(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such ticket")
		return nil
	}
	if err != nil {
		s.fail(w, "reading ticket", err)
		return nil
	}
	return t
}

func (s *Server) adminTicket(w http.ResponseWriter, r *http.Request) {
	if t := s.adminTicketByID(w, r); t != nil {
		writeJSON(w, http.StatusOK, ticketView(t, true))
	}
}

func (s *Server) adminReply(w http.ResponseWriter, r *http.Request) {
	var req apitypes.TicketMessage
	if err := decode(w, r, &req); err != nil {
		writeDecodeError(w, err)
		return
	}
	_, msg, err := cleanTicket("-", req.Message)
	if err != nil {
		writeError(w, http.StatusBadRequest, "a message of at most 20000 characters is required")
		return
	}
	t := s.adminTicketByID(w, r)
	if t == nil {
		return
	}
	status := store.TicketAnswered
	if req.Close {
		status = store.TicketClosed
	}
	if err := s.cfg.Store.AddTicketMessage(r.Context(), t.ID, store.TicketMessage{FromOperator: true, Body: msg, CreatedAt: s.cfg.Now()}, status); err != nil {
		s.fail(w, "replying to ticket", err)
		return
	}
	to, lang := t.Email, t.Lang
	if t.AccountID != 0 {
		if a, err := s.cfg.Store.AccountByID(r.Context(), t.AccountID); err == nil {
			if lang == "" {
				lang = mailLang(a)
			}
			if to == "" {
				to = a.Email
			}
		}
	}
	if to != "" {
		// The notice is in the language the ticket was written in, else
		// in its account's.
		l := i18n.For(lang)
		body := l.T("mail.reply.body", "ID", t.ID, "Message", msg)
		if err := mail.Queue(r.Context(), s.cfg.Store, &store.Mail{Kind: store.MailTransactional, AccountID: t.AccountID, To: to,
			Subject: l.T("mail.reply.subject", "ID", t.ID, "Subject", t.Subject), Body: body}); err != nil {
			s.fail(w, "queueing reply notice", err)
			return
		}
		s.wakeMail()
	}
	t, err = s.cfg.Store.Ticket(r.Context(), t.ID)
	if err != nil {
		s.fail(w, "reading ticket", err)
		return
	}
	writeJSON(w, http.StatusOK, ticketView(t, true))
}
