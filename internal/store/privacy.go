package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Mail kinds. Transactional mail is always sent; marketing mail only to an
// account that consented and is not restricted.
const (
	MailTransactional = "transactional"
	MailMarketing     = "marketing"
)

// Ticket statuses.
const (
	TicketOpen     = "open"     // waiting for the operator
	TicketAnswered = "answered" // the operator replied last
	TicketClosed   = "closed"
)

// PolicyVersion is one published privacy policy.
type PolicyVersion struct {
	ID          int64
	PublishedAt time.Time
	Prose       string // the operator's text
	Body        string // the whole policy as published: prose and inventory
}

// Mail is one message in the outbox.
type Mail struct {
	ID        int64
	Kind      string // MailTransactional or MailMarketing
	AccountID int64  // 0: not for an account
	To        string
	Subject   string
	Body      string
	Attempts  int
	NextAt    time.Time // next attempt
	CreatedAt time.Time
}

// Ticket is a support request. Messages is filled by the calls that say so.
type Ticket struct {
	ID        int64
	AccountID int64  // 0: sent without an account
	Email     string // for notifications; empty: none
	TokenHash []byte // keyed hash of the ticket's reading token
	Subject   string
	Status    string
	CreatedAt time.Time
	UpdatedAt time.Time
	Messages  []TicketMessage
	// Lang is the language of the page the ticket was written on (a code
	// of i18n.Langs), for the notices of replies; empty: unknown.
	Lang string
}

// TicketMessage is one message of a ticket.
type TicketMessage struct {
	ID           int64
	FromOperator bool
	Body         string
	CreatedAt    time.Time
}

// ClientCount is an aggregate count of client reports (promise P6).
type ClientCount struct {
	Day        string // YYYY-MM-DD
	OSVersion  string
	AppVersion string
	Count      int64
}

// day truncates t to its UTC day; zero stays zero.
func day(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func (s *sqlStore) accounts(ctx context.Context, where string, args ...any) ([]Account, error) {
	rows, err := s.rdb.QueryContext(ctx, "SELECT "+accountCols+" FROM accounts WHERE "+where+" ORDER BY id", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	return out, rows.Err()
}

// AccountsByEmail returns the accounts holding email, compared without
// case. SQL's LOWER folds only ASCII on SQLite (and on PostgreSQL under
// the C locale), so the query also fetches the addresses with any other
// character and Go's lowering decides, the same on every database.
func (s *sqlStore) AccountsByEmail(ctx context.Context, email string) ([]Account, error) {
	want := strings.ToLower(email)
	other := "email GLOB '*[^ -~]*'"
	if s.d.pg {
		other = "email ~ '[^ -~]'"
	}
	as, err := s.accounts(ctx, "(LOWER(email) = $1 OR "+other+")", want)
	if err != nil {
		return nil, fmt.Errorf("reading accounts by email: %w", err)
	}
	var out []Account
	for _, a := range as {
		if strings.ToLower(a.Email) == want {
			out = append(out, a)
		}
	}
	return out, nil
}

// AccountsWithEmail returns the accounts that have an email.
func (s *sqlStore) AccountsWithEmail(ctx context.Context) ([]Account, error) {
	as, err := s.accounts(ctx, "email IS NOT NULL")
	if err != nil {
		return nil, fmt.Errorf("reading accounts with email: %w", err)
	}
	return as, nil
}

// DeleteUnusedAccounts removes the unused accounts as the Store contract
// says, in one peer-map transaction.
func (s *sqlStore) DeleteUnusedAccounts(ctx context.Context, cutoff time.Time) (int, error) {
	c := s.ts(cutoff)
	unused := `SELECT id FROM accounts WHERE NOT legal_hold AND created_at < $1
		AND (paid_until IS NULL OR paid_until < $1) AND (trial_until IS NULL OR trial_until < $1)
		AND (last_used IS NULL OR last_used < $1)`
	var n int64
	_, err := s.mapTx(ctx, func(tx *sql.Tx, next int64) (bool, error) {
		res, err := tx.ExecContext(ctx, `INSERT INTO peer_tombstones (public_key, version, removed_at)
			SELECT public_key, $2, $3 FROM devices WHERE in_map AND account_id IN (`+unused+`)
			ON CONFLICT (public_key) DO UPDATE SET version = excluded.version, removed_at = excluded.removed_at`,
			c, next, s.ts(s.now()))
		if err != nil {
			return false, err
		}
		left, err := res.RowsAffected()
		if err != nil {
			return false, err
		}
		res, err = tx.ExecContext(ctx, "DELETE FROM accounts WHERE id IN ("+unused+")", c)
		if err != nil {
			return false, err
		}
		if n, err = res.RowsAffected(); err != nil {
			return false, err
		}
		return left > 0, nil
	})
	if err != nil {
		return 0, fmt.Errorf("deleting unused accounts: %w", err)
	}
	if n > 0 {
		s.wipe(ctx, personalTables...)
	} else {
		s.wipe(ctx) // what an earlier wipe left, if any
	}
	return int(n), nil
}

// PrunePeerHistory deletes, under the peer-map lock, the tombstones of
// keys removed before cutoff and those every gateway synced since cutoff
// holds, raising the history floor past them.
func (s *sqlStore) PrunePeerHistory(ctx context.Context, cutoff time.Time) (int, error) {
	var n int64
	_, err := s.mapTx(ctx, func(tx *sql.Tx, next int64) (bool, error) {
		var old sql.NullInt64
		if err := tx.QueryRowContext(ctx, "SELECT MAX(version) FROM peer_tombstones WHERE removed_at < $1", s.ts(cutoff)).Scan(&old); err != nil {
			return false, err
		}
		synced, err := s.syncedFloor(ctx, tx, next-1, cutoff)
		if err != nil {
			return false, err
		}
		n, err = s.dropHistory(ctx, tx, max(old.Int64, synced))
		return false, err
	})
	if err != nil {
		return 0, fmt.Errorf("pruning peer history: %w", err)
	}
	if n > 0 {
		s.wipe(ctx, "peer_tombstones")
	}
	return int(n), nil
}

// PublishPolicy stores a new policy version.
func (s *sqlStore) PublishPolicy(ctx context.Context, p *PolicyVersion) (int64, error) {
	at := p.PublishedAt
	if at.IsZero() {
		at = s.now()
	}
	var id int64
	err := s.db.QueryRowContext(ctx, "INSERT INTO policy_versions (published_at, prose, body) VALUES ($1, $2, $3) RETURNING id",
		s.ts(at), p.Prose, p.Body).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("publishing policy: %w", err)
	}
	p.ID, p.PublishedAt = id, at.UTC().Truncate(time.Microsecond)
	return id, nil
}

// PolicyVersions lists the published versions, oldest first.
func (s *sqlStore) PolicyVersions(ctx context.Context) ([]PolicyVersion, error) {
	rows, err := s.rdb.QueryContext(ctx, "SELECT id, published_at, prose, body FROM policy_versions ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("reading policy versions: %w", err)
	}
	defer rows.Close()
	var out []PolicyVersion
	for rows.Next() {
		var p PolicyVersion
		if err := rows.Scan(&p.ID, timeCol{&p.PublishedAt}, &p.Prose, &p.Body); err != nil {
			return nil, fmt.Errorf("reading policy versions: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading policy versions: %w", err)
	}
	return out, nil
}

// deleted runs a DELETE and returns the rows it removed.
func (s *sqlStore) deleted(ctx context.Context, q string, args ...any) (int, error) {
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// accountTables are the queries of AccountRows: each table's rows that
// belong to account $1.
var accountTables = []struct{ table, query string }{
	{"accounts", "SELECT * FROM accounts WHERE id = $1"},
	{"devices", "SELECT * FROM devices WHERE account_id = $1 ORDER BY id"},
	{"sessions", "SELECT * FROM sessions WHERE account_id = $1 ORDER BY expires_at"},
	{"recovery_tokens", "SELECT * FROM recovery_tokens WHERE account_id = $1 ORDER BY expires_at"},
	{"support_tickets", "SELECT * FROM support_tickets WHERE account_id = $1 ORDER BY id"},
	{"support_messages", "SELECT m.* FROM support_messages m JOIN support_tickets t ON t.id = m.ticket_id WHERE t.account_id = $1 ORDER BY m.id"},
	{"mail_outbox", "SELECT * FROM mail_outbox WHERE account_id = $1 ORDER BY id"},
	{"billing_records", "SELECT * FROM billing_records WHERE account_id = $1 ORDER BY id"},
	{"affiliates", "SELECT * FROM affiliates WHERE account_id = $1"},
	{"referrals", "SELECT * FROM referrals WHERE account_id = $1"},
	{"affiliate_ledger", "SELECT * FROM affiliate_ledger WHERE affiliate_id = $1 ORDER BY id"},
}

// boolColumns are the flag columns, which SQLite stores as 0 and 1.
var boolColumns = map[string]bool{
	"marketing_consent": true, "restricted": true, "legal_hold": true,
	"in_map": true, "free": true, "from_operator": true, "builtin": true,
}

// isTimeColumn reports whether a column holds a time (SQLite: unix
// microseconds), by the schema's naming.
func isTimeColumn(col string) bool {
	return strings.HasSuffix(col, "_at") || strings.HasSuffix(col, "_until") || col == "last_used" || col == "last_seen"
}

// AccountRows dumps the account's rows, one snapshot, column by column.
func (s *sqlStore) AccountRows(ctx context.Context, accountID int64) (map[string][]map[string]any, error) {
	out := make(map[string][]map[string]any)
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		for _, t := range accountTables {
			rows, err := tx.QueryContext(ctx, t.query, accountID)
			if err != nil {
				return err
			}
			recs, err := dumpRows(rows)
			if err != nil {
				return err
			}
			out[t.table] = recs
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading account rows: %w", err)
	}
	if len(out["accounts"]) == 0 {
		return nil, ErrNotFound
	}
	return out, nil
}

func dumpRows(rows *sql.Rows) ([]map[string]any, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	recs := []map[string]any{}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		r := make(map[string]any, len(cols))
		for i, c := range cols {
			r[c] = exportValue(c, vals[i])
		}
		recs = append(recs, r)
	}
	return recs, rows.Err()
}

// exportValue gives a column value one form on both databases.
func exportValue(col string, v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case []byte:
		if strings.HasSuffix(col, "_hash") {
			return hex.EncodeToString(x)
		}
		return string(x)
	case time.Time:
		return x.UTC()
	case int64:
		switch {
		case boolColumns[col]:
			return x != 0
		case isTimeColumn(col):
			return time.UnixMicro(x).UTC()
		}
	}
	return v
}
