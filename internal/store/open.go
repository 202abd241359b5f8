package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations
var migrationFS embed.FS

// Peer-map history bounds: tombstones older than either are pruned, and a
// since older than the pruned history gets the full map.
const (
	defaultHistoryVersions = 10000
	defaultHistoryAge      = 24 * time.Hour
)

// options are the knobs tests turn; Open uses the defaults.
type options struct {
	historyVersions int64
	historyAge      time.Duration
	now             func() time.Time // the store's clock: device creation time and map membership
	pollEvery       time.Duration    // SQLite: how often to look for other processes' changes
	// PostgreSQL: how often to read the version besides LISTEN, so that a
	// notice lost with its connection is late by this much at most.
	listenPollEvery time.Duration
}

func defaultOptions() options {
	return options{
		historyVersions: defaultHistoryVersions,
		historyAge:      defaultHistoryAge,
		now:             time.Now,
		pollEvery:       500 * time.Millisecond,
		listenPollEvery: time.Second,
	}
}

// Open opens the database named by dsn and applies pending migrations. A
// dsn starting postgres:// or postgresql:// is a PostgreSQL URL; anything
// else is a SQLite file path, optionally prefixed sqlite:. A nil log
// discards. The dsn is never logged: it may hold a password.
func Open(ctx context.Context, dsn string, log *slog.Logger) (Store, error) {
	return open(ctx, dsn, log, defaultOptions())
}

func open(ctx context.Context, dsn string, log *slog.Logger, o options) (*sqlStore, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return openPostgres(ctx, dsn, log, o)
	}
	p := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite://"), "sqlite:")
	if p == "" {
		return nil, errors.New("opening database: empty sqlite path")
	}
	return openSQLite(ctx, p, log, o)
}

// openSQLite opens two pools on the file: one writer connection whose
// transactions start with BEGIN IMMEDIATE (so writers queue in Go, and
// across processes on SQLite's lock with a busy timeout), and a read-only
// pool that WAL lets run beside it.
//
// synchronous=FULL: a commit survives power loss, not only a crash. Writes
// are rare (sign-ups, device registrations, payments), so an fsync per
// commit is cheap, and losing a paid-for account to a power cut is not.
func openSQLite(ctx context.Context, p string, log *slog.Logger, o options) (*sqlStore, error) {
	if strings.ContainsRune(p, '?') {
		return nil, errors.New("opening database: sqlite path must not contain '?'")
	}
	// The database is the operator's alone; SQLite gives its -wal and
	// -shm files the database file's mode.
	if f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("opening database: %w", err)
	} else {
		f.Close()
	}
	// secure_delete: deleted content is overwritten with zeros, not left
	// in free pages (see wipe).
	common := "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=secure_delete(1)"
	wdb, err := openSQLiteDB(p + "?" + common + "&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("opening database: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	if err := pingSQLite(ctx, wdb); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("opening database: %w", err)
	}
	s := newSQLStore(wdb, wdb, dialectSQLite, log, o)
	if err := s.migrate(ctx); err != nil {
		wdb.Close()
		return nil, err
	}
	rdb, err := openSQLiteDB(p + "?" + common + "&_pragma=query_only(1)")
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("opening database: %w", err)
	}
	rdb.SetMaxOpenConns(max(4, runtime.NumCPU()))
	rdb.SetMaxIdleConns(max(4, runtime.NumCPU()))
	s.rdb = rdb
	s.closers = append(s.closers, rdb.Close, wdb.Close)
	if err := s.start(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// pingSQLite opens the writer connection. Turning a new file to WAL needs
// a lock that SQLite does not wait for with the busy timeout, so when
// several processes open one new database at once some are told "busy"
// at once: they try again for up to the busy timeout.
func pingSQLite(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := db.PingContext(ctx)
		if err == nil || sqliteCode(err)&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(10+rand.IntN(40)) * time.Millisecond):
		}
	}
}

// openPostgres opens a pgx pool, used through database/sql so both
// dialects share one implementation, plus (in start) a dedicated
// connection that LISTENs for other processes' peer-map changes.
func openPostgres(ctx context.Context, dsn string, log *slog.Logger, o options) (*sqlStore, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors may quote the URL, password included.
		return nil, errors.New("opening database: invalid postgres url")
	}
	if u, err := url.Parse(dsn); err == nil && !u.Query().Has("pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, 16)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening database: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	db.SetMaxOpenConns(int(cfg.MaxConns))
	db.SetMaxIdleConns(int(cfg.MaxConns))
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		pool.Close()
		return nil, fmt.Errorf("opening database: %w", err)
	}
	s := newSQLStore(db, db, dialectPostgres, log, o)
	s.closers = append(s.closers, db.Close, func() error { pool.Close(); return nil })
	s.listenConfig = cfg.ConnConfig.Copy()
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// migration is one embedded schema step.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the dialect's embedded migrations in order. Files are
// named NNNN_what.sql.
func migrations(d dialect) ([]migration, error) {
	dir := path.Join("migrations", d.name)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		n, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(n)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("reading migrations: bad file name %q", e.Name())
		}
		b, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading migrations: %w", err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := range ms {
		if ms[i].version != i+1 {
			return nil, fmt.Errorf("reading migrations: %s out of sequence", ms[i].name)
		}
	}
	return ms, nil
}

// migrationLockKey is the pg_advisory_xact_lock key that keeps concurrent
// Opens of one PostgreSQL database from applying a migration twice.
const migrationLockKey = 0x7665696c // "veil"

// migrate applies pending migrations, forward only, in one transaction
// (BEGIN IMMEDIATE on SQLite; an advisory lock on PostgreSQL).
func (s *sqlStore) migrate(ctx context.Context) error {
	ms, err := migrations(s.d)
	if err != nil {
		return err
	}
	newest := len(ms)
	var applied []string
	var from int
	err = s.tx(ctx, func(tx *sql.Tx) error {
		applied = applied[:0]
		if s.d.pg {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockKey); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"); err != nil {
			return err
		}
		var cur int
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_version").Scan(&cur); err != nil {
			return err
		}
		if cur > newest {
			return fmt.Errorf("database schema version %d, newest known %d: %w", cur, newest, ErrSchemaTooNew)
		}
		from = cur
		for _, m := range ms[cur:] {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO schema_version (version) VALUES ($1)", m.version); err != nil {
				return err
			}
			applied = append(applied, m.name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrating database: %w", err)
	}
	for _, n := range applied {
		s.log.Info("applied migration", "migration", n)
	}
	if len(applied) > 0 && from > 0 && from < wipedSince {
		if err := s.wipeFiles(ctx, personalTables, true); err != nil {
			return fmt.Errorf("migrating database: clearing data erased before the upgrade: %w", err)
		}
	}
	return nil
}

// connectListener opens the dedicated LISTEN connection.
func connectListener(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	c, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := c.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		c.Close(context.Background())
		return nil, err
	}
	return c, nil
}
