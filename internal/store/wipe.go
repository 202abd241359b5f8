package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Erased data leaves no copy in the database's files. SQLite runs with
// secure_delete, which overwrites deleted content with zeros; after an
// erasure its write-ahead log, which still holds the pages as they were,
// is checkpointed into the database and truncated. PostgreSQL keeps a
// deleted row's bytes in its page even after a plain VACUUM (the space is
// marked free, not cleared), so the tables an erasure touched are
// rewritten with VACUUM FULL, which writes new files and truncates the
// old ones. PostgreSQL's own write-ahead log and the operator's backups
// still hold erased data for a while; the privacy policy says how long.

// personalTables are the tables erasing an account deletes from.
var personalTables = []string{"accounts", "devices", "sessions", "support_tickets", "support_messages", "mail_outbox", "peer_tombstones", "recovery_tokens",
	"affiliates", "referrals", "affiliate_ledger"}

// wipedSince is the first schema version whose database ran with the
// wiping above; a file from before may hold erased data, so the upgrade
// rewrites it once.
const wipedSince = 8

// wipe clears the files of what was just deleted from tables, together
// with what an earlier wipe could not clear. The deletion is committed
// whatever happens here, so a failure is logged, not returned: the tables
// are kept for the next wipe, which the next erasure or retention sweep
// runs.
func (s *sqlStore) wipe(ctx context.Context, tables ...string) {
	s.wipeMu.Lock()
	defer s.wipeMu.Unlock()
	for _, t := range tables {
		s.unwiped[t] = true
	}
	if len(s.unwiped) == 0 {
		return
	}
	// The caller's request may end now; the wipe must not.
	if err := s.wipeFiles(context.WithoutCancel(ctx), slices.Sorted(maps.Keys(s.unwiped)), false); err != nil {
		s.log.Error("erased data is deleted but may remain in the database files until the next erasure or sweep", "err", err)
		return
	}
	clear(s.unwiped)
}

// wipeFiles rewrites what holds deleted data: on PostgreSQL the tables
// named, on SQLite the write-ahead log, and with whole also the database
// file itself (VACUUM, which leaves no free page behind).
func (s *sqlStore) wipeFiles(ctx context.Context, tables []string, whole bool) error {
	if s.d.pg {
		until := time.Now().Add(wipeWait)
		for _, t := range tables {
			if err := s.rewrite(ctx, t, until); err != nil {
				return err
			}
		}
		return nil
	}
	if whole {
		if _, err := s.db.ExecContext(ctx, "VACUUM"); err != nil {
			return fmt.Errorf("vacuuming database: %w", err)
		}
	}
	// TRUNCATE waits (with the busy timeout) for readers of the log; one
	// still reading when the wait ends leaves it untruncated: busy = 1.
	var busy, frames, done int
	if err := s.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &done); err != nil {
		return fmt.Errorf("checkpointing: %w", err)
	}
	if busy != 0 {
		return errors.New("checkpointing: the write-ahead log is still in use")
	}
	return nil
}

// wipeWait bounds how long one wipe waits for older transactions, so an
// erasure request does not hang on a long backup.
const wipeWait = 5 * time.Second

// rewrite clears table of its deleted rows. VACUUM FULL copies a deleted
// row that a transaction older than the deletion may still read,
// anywhere on the server (a backup's snapshot, a connection starting
// up), so a plain VACUUM first waits that out: it removes the rows no
// one can read and counts the others (the table's dead tuples), and is
// tried again, briefly, until there are none; the wipe is otherwise left
// to the next one. VACUUM cannot run inside a transaction: these run on
// the pool.
func (s *sqlStore) rewrite(ctx context.Context, table string, until time.Time) error {
	for wait := 10 * time.Millisecond; ; wait *= 2 {
		if _, err := s.db.ExecContext(ctx, "VACUUM "+table); err != nil {
			return fmt.Errorf("vacuuming %s: %w", table, err)
		}
		var kept int64
		if err := s.db.QueryRowContext(ctx, "SELECT pg_stat_get_dead_tuples($1::regclass)", table).Scan(&kept); err != nil {
			return fmt.Errorf("vacuuming %s: %w", table, err)
		}
		if kept == 0 {
			break
		}
		if time.Now().Add(wait).After(until) {
			return fmt.Errorf("vacuuming %s: %d deleted rows kept for an older transaction", table, kept)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	if _, err := s.db.ExecContext(ctx, "VACUUM (FULL) "+table); err != nil {
		return fmt.Errorf("rewriting %s: %w", table, err)
	}
	return nil
}
