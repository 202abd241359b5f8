package store

import (
	"context"
	"database/sql"
	"time"
)

// OpenTest opens like Open, with a fast SQLite poll and, when
// historyVersions > 0, a shorter peer-map history.
func OpenTest(ctx context.Context, dsn string, historyVersions int64) (Store, error) {
	o := defaultOptions()
	o.pollEvery = 50 * time.Millisecond
	if historyVersions > 0 {
		o.historyVersions = historyVersions
	}
	s, err := open(ctx, dsn, nil, o)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// OpenPolling opens like OpenTest, with PostgreSQL's fallback poll of the
// version every listenPoll.
func OpenPolling(ctx context.Context, dsn string, listenPoll time.Duration) (Store, error) {
	o := defaultOptions()
	o.listenPollEvery = listenPoll
	s, err := open(ctx, dsn, nil, o)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// RawDB returns the store's write pool.
func RawDB(s Store) *sql.DB { return s.(*sqlStore).db }

// LatestMigration returns the newest migration the binary knows for s.
func LatestMigration(s Store) int {
	ms, err := migrations(s.(*sqlStore).d)
	if err != nil {
		panic(err)
	}
	return len(ms)
}

// MapBatch runs fns as one batch of map changes on the PostgreSQL store s,
// as concurrent callers of mapTx would share one, and returns each one's
// version and error.
func MapBatch(s Store, fns ...func(*sql.Tx, int64) (bool, error)) ([]int64, []error) {
	var jobs []*mapJob
	for _, fn := range fns {
		jobs = append(jobs, &mapJob{ctx: context.Background(), fn: fn, done: make(chan struct{})})
	}
	s.(*sqlStore).runMapBatch(jobs)
	vs, errs := make([]int64, len(jobs)), make([]error, len(jobs))
	for i, j := range jobs {
		vs[i], errs[i] = j.res.version, j.err
	}
	return vs, errs
}
