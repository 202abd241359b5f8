package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"reflect"
	"strings"

	"modernc.org/sqlite"
)

// SQLite statement cache. database/sql hands the driver each query as
// text, and modernc's SQLite parses and plans it anew every time: under
// load that was a quarter of the control plane's CPU, most of it on the
// single writer connection, whose speed bounds every write. Each
// connection here keeps its statements prepared, keyed by their text, and
// runs them again with new arguments. PostgreSQL needs none of this: pgx
// caches prepared statements itself.

// maxCachedStmts bounds one connection's cache; queries beyond it (the
// store's texts are a fixed set, a few with built-in lists) run uncached.
const maxCachedStmts = 256

// openSQLiteDB opens a pool over dsn whose connections cache statements.
func openSQLiteDB(dsn string) (*sql.DB, error) {
	base, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(stmtConnector{base}), nil
}

type stmtConnector struct{ base driver.Connector }

func (c stmtConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &stmtConn{c: conn, stmts: make(map[string]*cachedStmt)}, nil
}

func (c stmtConnector) Driver() driver.Driver { return c.base.Driver() }

// stmtConn is a modernc connection with a statement cache. database/sql
// uses a connection from one goroutine at a time, so the cache needs no
// lock. It forwards the optional interfaces modernc's connections have.
type stmtConn struct {
	c     driver.Conn
	stmts map[string]*cachedStmt
}

// cachedStmt is busy while rows read from it are open: a second query of
// the same text meanwhile (rows read while another runs) gets a statement
// of its own.
type cachedStmt struct {
	st   driver.Stmt
	busy bool
}

var (
	_ driver.ConnBeginTx        = (*stmtConn)(nil)
	_ driver.ConnPrepareContext = (*stmtConn)(nil)
	_ driver.ExecerContext      = (*stmtConn)(nil)
	_ driver.QueryerContext     = (*stmtConn)(nil)
	_ driver.Pinger             = (*stmtConn)(nil)
	_ driver.SessionResetter    = (*stmtConn)(nil)
	_ driver.Validator          = (*stmtConn)(nil)
)

func (s *stmtConn) Unwrap() driver.Conn { return s.c }

func (s *stmtConn) Prepare(q string) (driver.Stmt, error) { return s.c.Prepare(q) }

func (s *stmtConn) Begin() (driver.Tx, error) {
	return s.c.Begin() //nolint:staticcheck // driver.Conn requires it
}

func (s *stmtConn) BeginTx(ctx context.Context, o driver.TxOptions) (driver.Tx, error) {
	return s.c.(driver.ConnBeginTx).BeginTx(ctx, o)
}

func (s *stmtConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return s.c.(driver.ConnPrepareContext).PrepareContext(ctx, q)
}

func (s *stmtConn) Ping(ctx context.Context) error { return s.c.(driver.Pinger).Ping(ctx) }

func (s *stmtConn) ResetSession(ctx context.Context) error {
	return s.c.(driver.SessionResetter).ResetSession(ctx)
}

func (s *stmtConn) IsValid() bool { return s.c.(driver.Validator).IsValid() }

func (s *stmtConn) Close() error {
	for q, cs := range s.stmts {
		cs.st.Close()
		delete(s.stmts, q)
	}
	return s.c.Close()
}

// cached returns the prepared statement for q, or nil when q is to run
// uncached: a script of several statements, a full cache, a statement in
// use, or one that does not prepare (running it uncached reports why).
func (s *stmtConn) cached(ctx context.Context, q string) *cachedStmt {
	if cs, ok := s.stmts[q]; ok {
		if cs.busy {
			return nil
		}
		return cs
	}
	if len(s.stmts) >= maxCachedStmts || strings.Contains(q, ";") {
		return nil
	}
	st, err := s.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	cs := &cachedStmt{st: st}
	s.stmts[q] = cs
	return cs
}

func (s *stmtConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	cs := s.cached(ctx, q)
	if cs == nil {
		return s.c.(driver.ExecerContext).ExecContext(ctx, q, args)
	}
	cs.busy = true
	defer func() { cs.busy = false }()
	return cs.st.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *stmtConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	cs := s.cached(ctx, q)
	if cs == nil {
		return s.c.(driver.QueryerContext).QueryContext(ctx, q, args)
	}
	cs.busy = true
	r, err := cs.st.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		cs.busy = false
		return nil, err
	}
	return &cachedRows{Rows: r, cs: cs}, nil
}

// cachedRows frees its statement for the next query when closed; closing
// resets the statement, which keeps it prepared.
type cachedRows struct {
	driver.Rows
	cs *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.cs.busy = false
	return err
}

type columnTypes interface {
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeLength
	driver.RowsColumnTypeNullable
	driver.RowsColumnTypePrecisionScale
	driver.RowsColumnTypeScanType
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	return r.Rows.(columnTypes).ColumnTypeDatabaseTypeName(i)
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	return r.Rows.(columnTypes).ColumnTypeLength(i)
}

func (r *cachedRows) ColumnTypeNullable(i int) (bool, bool) {
	return r.Rows.(columnTypes).ColumnTypeNullable(i)
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	return r.Rows.(columnTypes).ColumnTypePrecisionScale(i)
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	return r.Rows.(columnTypes).ColumnTypeScanType(i)
}
