package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const ticketCols = "id, account_id, email, token_hash, subject, status, created_at, updated_at, lang"

func scanTicket(row interface{ Scan(...any) error }) (*Ticket, error) {
	var t Ticket
	var acc sql.NullInt64
	var email, lang sql.NullString
	if err := row.Scan(&t.ID, &acc, &email, &t.TokenHash, &t.Subject, &t.Status, timeCol{&t.CreatedAt}, timeCol{&t.UpdatedAt}, &lang); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	t.AccountID, t.Email, t.Lang = acc.Int64, email.String, lang.String
	return &t, nil
}

// CreateTicket stores a ticket and its first message in one transaction.
func (s *sqlStore) CreateTicket(ctx context.Context, t *Ticket, first TicketMessage) (int64, error) {
	if len(t.TokenHash) == 0 || t.Subject == "" || first.Body == "" {
		return 0, errors.New("creating ticket: token hash, subject and message are required")
	}
	now := s.now()
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now
	}
	if first.CreatedAt.IsZero() {
		first.CreatedAt = t.CreatedAt
	}
	t.UpdatedAt = first.CreatedAt
	if t.Status == "" {
		t.Status = TicketOpen
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO support_tickets (account_id, email, token_hash, subject, status, created_at, updated_at, lang)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			nullID(t.AccountID), nullString(t.Email), t.TokenHash, t.Subject, t.Status, s.ts(t.CreatedAt), s.ts(t.UpdatedAt), nullString(t.Lang)).Scan(&t.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO support_messages (ticket_id, from_operator, body, created_at) VALUES ($1, $2, $3, $4)",
			t.ID, first.FromOperator, first.Body, s.ts(first.CreatedAt))
		return err
	})
	if isForeignKey(err) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("creating ticket: %w", err)
	}
	return t.ID, nil
}

// AddTicketMessage appends m and sets the ticket's status and activity time.
func (s *sqlStore) AddTicketMessage(ctx context.Context, ticketID int64, m TicketMessage, status string) error {
	if m.Body == "" || status == "" {
		return errors.New("adding ticket message: empty message or status")
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = s.now()
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE support_tickets SET status = $1, updated_at = $2 WHERE id = $3", status, s.ts(m.CreatedAt), ticketID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO support_messages (ticket_id, from_operator, body, created_at) VALUES ($1, $2, $3, $4)",
			ticketID, m.FromOperator, m.Body, s.ts(m.CreatedAt))
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("adding ticket message: %w", err)
	}
	return nil
}

// tickets reads tickets, with their messages when full, in one snapshot.
func (s *sqlStore) tickets(ctx context.Context, full bool, where string, args ...any) ([]Ticket, error) {
	var out []Ticket
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, "SELECT "+ticketCols+" FROM support_tickets WHERE "+where, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			t, err := scanTicket(rows)
			if err != nil {
				return err
			}
			out = append(out, *t)
		}
		if err := rows.Err(); err != nil || !full {
			return err
		}
		rows.Close()
		for i := range out {
			if out[i].Messages, err = ticketMessages(ctx, tx, out[i].ID); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

func ticketMessages(ctx context.Context, tx *sql.Tx, id int64) ([]TicketMessage, error) {
	rows, err := tx.QueryContext(ctx, "SELECT id, from_operator, body, created_at FROM support_messages WHERE ticket_id = $1 ORDER BY id", id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ms := []TicketMessage{}
	for rows.Next() {
		var m TicketMessage
		if err := rows.Scan(&m.ID, &m.FromOperator, &m.Body, timeCol{&m.CreatedAt}); err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, rows.Err()
}

func (s *sqlStore) oneTicket(ctx context.Context, where string, arg any) (*Ticket, error) {
	ts, err := s.tickets(ctx, true, where, arg)
	if err != nil {
		return nil, fmt.Errorf("reading ticket: %w", err)
	}
	if len(ts) == 0 {
		return nil, ErrNotFound
	}
	return &ts[0], nil
}

// Ticket returns a ticket with its messages.
func (s *sqlStore) Ticket(ctx context.Context, id int64) (*Ticket, error) {
	return s.oneTicket(ctx, "id = $1", id)
}

// TicketByTokenHash returns a ticket with its messages.
func (s *sqlStore) TicketByTokenHash(ctx context.Context, hash []byte) (*Ticket, error) {
	return s.oneTicket(ctx, "token_hash = $1", hash)
}

// Tickets lists tickets, newest activity first.
func (s *sqlStore) Tickets(ctx context.Context, status string) ([]Ticket, error) {
	where, args := "TRUE ORDER BY updated_at DESC, id DESC", []any(nil)
	if status != "" {
		where, args = "status = $1 ORDER BY updated_at DESC, id DESC", []any{status}
	}
	ts, err := s.tickets(ctx, false, where, args...)
	if err != nil {
		return nil, fmt.Errorf("listing tickets: %w", err)
	}
	return ts, nil
}

// AccountTickets returns the account's tickets with their messages.
func (s *sqlStore) AccountTickets(ctx context.Context, accountID int64) ([]Ticket, error) {
	ts, err := s.tickets(ctx, true, "account_id = $1 ORDER BY id", accountID)
	if err != nil {
		return nil, fmt.Errorf("reading account tickets: %w", err)
	}
	return ts, nil
}

// DeleteSupportBefore removes old messages, then tickets without activity
// since cutoff, sparing accounts on legal hold.
func (s *sqlStore) DeleteSupportBefore(ctx context.Context, cutoff time.Time) (tickets, messages int, err error) {
	c := s.ts(cutoff)
	held := "SELECT t.id FROM support_tickets t JOIN accounts a ON a.id = t.account_id WHERE a.legal_hold"
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM support_messages WHERE created_at < $1 AND ticket_id NOT IN ("+held+")", c)
		if err != nil {
			return err
		}
		m, err := res.RowsAffected()
		if err != nil {
			return err
		}
		res, err = tx.ExecContext(ctx, "DELETE FROM support_tickets WHERE updated_at < $1 AND id NOT IN ("+held+")", c)
		if err != nil {
			return err
		}
		t, err := res.RowsAffected()
		tickets, messages = int(t), int(m)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("deleting old support tickets: %w", err)
	}
	if tickets+messages > 0 {
		s.wipe(ctx, "support_tickets", "support_messages")
	}
	return tickets, messages, nil
}
