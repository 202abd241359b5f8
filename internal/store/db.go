package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is what differs between SQLite and PostgreSQL. The SQL itself is
// shared: both accept $N placeholders, RETURNING, ON CONFLICT and TRUE.
type dialect struct {
	name      string // migrations directory
	pg        bool
	forUpdate string // row-lock suffix; SQLite's BEGIN IMMEDIATE already holds the lock
}

var (
	dialectSQLite   = dialect{name: "sqlite"}
	dialectPostgres = dialect{name: "postgres", pg: true, forUpdate: " FOR UPDATE"}
)

// sqlStore implements Store over database/sql for both dialects.
type sqlStore struct {
	db  *sql.DB // writes
	rdb *sql.DB // reads; the same pool on PostgreSQL
	d   dialect
	log *slog.Logger
	o   options
	// free is the free plan the peer map follows (SetFreePlan).
	free atomic.Pointer[FreePlan]

	hub          *hub
	batch        *batcher        // SQLite: group commit of write transactions; see batch.go
	mapBatch     *mapBatcher     // PostgreSQL: map changes under one hold of the lock; see mapbatch.go
	listenConfig *pgx.ConnConfig // PostgreSQL: for the LISTEN connection

	wipeMu  sync.Mutex
	unwiped map[string]bool // tables a failed wipe left; see wipe

	stop    context.CancelFunc
	wg      sync.WaitGroup
	closers []func() error
	once    sync.Once
}

var _ Store = (*sqlStore)(nil)

func newSQLStore(db, rdb *sql.DB, d dialect, log *slog.Logger, o options) *sqlStore {
	return &sqlStore{db: db, rdb: rdb, d: d, log: log, o: o, hub: newHub(), unwiped: make(map[string]bool)}
}

// Close stops the change watchers and releases the database.
func (s *sqlStore) Close() error {
	var err error
	s.once.Do(func() {
		if s.stop != nil {
			s.stop()
		}
		s.wg.Wait()
		s.hub.close()
		for _, c := range s.closers {
			err = errors.Join(err, c())
		}
	})
	return err
}

// ts converts a time to its column value: NULL when zero, unix
// microseconds on SQLite, a UTC timestamp on PostgreSQL.
func (s *sqlStore) ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Microsecond)
	if s.d.pg {
		return t
	}
	return t.UnixMicro()
}

// now is the store's clock, at the precision stored.
func (s *sqlStore) now() time.Time {
	return s.o.now().UTC().Truncate(time.Microsecond)
}

// timeCol scans a time column of either dialect; NULL gives the zero time.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case time.Time:
		*c.t = v.UTC()
	default:
		return fmt.Errorf("unexpected time column type %T", src)
	}
	return nil
}

// maxAttempts bounds retries of a transaction that failed on lock
// contention (SQLITE_BUSY, serialization failure, deadlock).
const maxAttempts = 8

// tx runs fn in a write transaction, retrying on contention. On SQLite,
// once the store has started, fn shares its commit with the other writes
// waiting at the time (batch.go); fn may then run more than once, as it
// may on a retry, and must not depend on being alone in the transaction.
func (s *sqlStore) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	if b := s.batch; b != nil {
		return s.retry(ctx, func() error { return b.do(ctx, fn) })
	}
	return s.retry(ctx, func() error { return s.plainTx(ctx, fn) })
}

// plainTx runs fn in a transaction of its own.
func (s *sqlStore) plainTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// stmt is one statement and its arguments.
type stmt struct {
	query string
	args  []any
}

// execAll runs stmts in order as one transaction. On PostgreSQL that is
// one round trip, not one per statement plus BEGIN and COMMIT: pgx sends
// them as a batch with a single Sync, which the server runs as an
// implicit transaction, committed after the last statement and rolled
// back at the first error. So no statement may need an earlier one's
// result.
func (s *sqlStore) execAll(ctx context.Context, stmts []stmt) error {
	if !s.d.pg {
		return s.tx(ctx, func(tx *sql.Tx) error {
			for _, st := range stmts {
				if _, err := tx.ExecContext(ctx, st.query, st.args...); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return s.retry(ctx, func() error {
		c, err := s.db.Conn(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Raw(func(dc any) error {
			var b pgx.Batch
			for _, st := range stmts {
				b.Queue(st.query, st.args...)
			}
			br := dc.(*stdlib.Conn).Conn().SendBatch(ctx, &b)
			for range stmts {
				if _, err := br.Exec(); err != nil {
					br.Close()
					return err
				}
			}
			return br.Close()
		})
	})
}

// readTx runs fn in a read-only transaction that sees one snapshot.
func (s *sqlStore) readTx(ctx context.Context, fn func(*sql.Tx) error) error {
	var opts *sql.TxOptions
	if s.d.pg {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	return s.retry(ctx, func() error {
		tx, err := s.rdb.BeginTx(ctx, opts)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		return fn(tx)
	})
}

func (s *sqlStore) retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == maxAttempts || !s.contended(err) {
			return err
		}
		d := time.Duration(1<<attempt)*time.Millisecond + rand.N(5*time.Millisecond)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(d):
		}
	}
}

// mapTx runs fn in a write transaction holding the peer-map lock (the
// version row), which serializes every change to devices and the map.
// fn gets the version its changes belong to and reports whether it
// changed the map; if so the version is stored, the history every
// gateway holds (or beyond the kept versions) dropped, and watchers woken
// after the commit. It returns the version now current. On PostgreSQL fn
// shares its transaction, and the lock's hold, with the other map changes
// of this process waiting at the time (mapbatch.go); as on SQLite it may
// run more than once and must not depend on being alone.
func (s *sqlStore) mapTx(ctx context.Context, fn func(tx *sql.Tx, next int64) (bool, error)) (int64, error) {
	var r mapResult
	var err error
	if b := s.mapBatch; b != nil {
		err = s.retry(ctx, func() error {
			var err error
			r, err = b.do(ctx, fn)
			return err
		})
	} else {
		err = s.tx(ctx, func(tx *sql.Tx) error {
			var err error
			r, err = s.mapAlone(ctx, tx, fn)
			return err
		})
	}
	if err != nil {
		return 0, err
	}
	if r.changed {
		s.hub.publish(r.version)
	}
	if r.dropped > 0 {
		s.wipe(ctx, "peer_tombstones")
	}
	return r.version, nil
}

// mapResult is what one map change did.
type mapResult struct {
	version int64 // current after it
	changed bool  // it changed the map, to version
	dropped int64 // tombstones pruned in its commit
}

// mapAlone is fn as the only map change of transaction tx.
func (s *sqlStore) mapAlone(ctx context.Context, tx *sql.Tx, fn func(tx *sql.Tx, next int64) (bool, error)) (mapResult, error) {
	cur, err := s.lockVersion(ctx, tx)
	if err != nil {
		return mapResult{}, err
	}
	r := mapResult{version: cur}
	if r.changed, err = fn(tx, cur+1); err != nil || !r.changed {
		return r, err
	}
	r.version = cur + 1
	r.dropped, err = s.settleVersion(ctx, tx, r.version)
	return r, err
}

// lockVersion takes the peer-map lock and returns the current version.
func (s *sqlStore) lockVersion(ctx context.Context, tx *sql.Tx) (int64, error) {
	var cur int64
	err := tx.QueryRowContext(ctx, "SELECT version FROM peer_version WHERE id = 1"+s.d.forUpdate).Scan(&cur)
	return cur, err
}

// settleVersion stores version as current, drops the history every
// gateway holds (or beyond the kept versions) and, on PostgreSQL, tells
// the other processes at commit. It returns how many tombstones went.
func (s *sqlStore) settleVersion(ctx context.Context, tx *sql.Tx, version int64) (int64, error) {
	if _, err := tx.ExecContext(ctx, "UPDATE peer_version SET version = $1 WHERE id = 1", version); err != nil {
		return 0, err
	}
	synced, err := s.syncedFloor(ctx, tx, version, s.now().Add(-s.o.historyAge))
	if err != nil {
		return 0, err
	}
	dropped, err := s.dropHistory(ctx, tx, max(synced, version-s.o.historyVersions))
	if err != nil {
		return 0, err
	}
	if s.d.pg {
		if _, err := tx.ExecContext(ctx, "SELECT pg_notify($1, $2)", notifyChannel, fmt.Sprint(version)); err != nil {
			return 0, err
		}
	}
	return dropped, nil
}

// syncedFloor returns the version that every gateway synced since cutoff
// holds: the lowest one such a gateway reported, or current when none
// did. A gateway silent since cutoff does not count: when it comes back
// it is behind the history floor and gets the full map.
func (s *sqlStore) syncedFloor(ctx context.Context, tx *sql.Tx, current int64, cutoff time.Time) (int64, error) {
	var low sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT MIN(synced_version) FROM gateways WHERE synced_at >= $1", s.ts(cutoff)).Scan(&low); err != nil {
		return 0, err
	}
	if !low.Valid {
		return current, nil
	}
	return min(low.Int64, current), nil
}

// dropHistory deletes the tombstones at or below version upTo and raises
// the history floor to it, so that a gateway behind it gets the full map.
// It returns how many tombstones went.
func (s *sqlStore) dropHistory(ctx context.Context, tx *sql.Tx, upTo int64) (int64, error) {
	if _, err := tx.ExecContext(ctx, `UPDATE peer_version
		SET history_floor = CASE WHEN history_floor < $1 THEN $1 ELSE history_floor END WHERE id = 1`, upTo); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, "DELETE FROM peer_tombstones WHERE version <= $1", upTo)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// tombstone records that key left the peer map at version.
func (s *sqlStore) tombstone(ctx context.Context, tx *sql.Tx, key string, version int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO peer_tombstones (public_key, version, removed_at) VALUES ($1, $2, $3)
		ON CONFLICT (public_key) DO UPDATE SET version = excluded.version, removed_at = excluded.removed_at`,
		key, version, s.ts(s.now()))
	return err
}

// sqliteCode returns the SQLite result code of err, or 0.
func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// contended reports whether err is worth retrying the transaction for.
func (s *sqlStore) contended(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	switch sqliteCode(err) & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}

// isUnique reports whether err is a unique violation on column col of
// table.
func isUnique(err error, table, col string) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// PostgreSQL's default names: table_col_key, table_pkey.
		return pe.Code == "23505" && (pe.ConstraintName == table+"_"+col+"_key" || pe.ConstraintName == table+"_pkey")
	}
	switch sqliteCode(err) {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return strings.Contains(err.Error(), table+"."+col)
	}
	return false
}

// isForeignKey reports whether err is a foreign-key violation.
func isForeignKey(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23503"
	}
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
