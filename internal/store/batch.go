package store

import (
	"context"
	"database/sql"
	"errors"
)

// Group commit (SQLite). SQLite has one writer, and with synchronous=FULL
// each commit costs an fsync of the write-ahead log; a login is two write
// transactions (the session, the day of use). Run one after the other,
// 1,000 logins a second queue behind 2,000 commits. The batcher instead
// runs the write transactions that are waiting at the same moment in one
// SQLite transaction, each inside its own savepoint, and commits them with
// one fsync. Durability is unchanged: every caller is answered after the
// commit that holds its change is on disk, and a caller whose function
// fails has its savepoint rolled back and gets its own error, the others
// are unaffected.

// maxBatch bounds how many write transactions share one commit, so a
// batch's wait stays short.
const maxBatch = 64

// errClosed is what a write gets once the store is closing.
var errClosed = errors.New("store is closed")

type writeJob struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	done chan error
}

type batcher struct {
	jobs chan *writeJob // unbuffered: a waiting sender is a waiting writer
	quit <-chan struct{}
}

// do runs fn in the next batch and returns its outcome.
func (b *batcher) do(ctx context.Context, fn func(*sql.Tx) error) error {
	j := &writeJob{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case b.jobs <- j:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.quit:
		return errClosed
	}
	return <-j.done // a job taken is always answered
}

// runBatches takes the waiting writes, up to maxBatch, and runs them as
// one transaction, until ctx ends.
func (s *sqlStore) runBatches(ctx context.Context, b *batcher) {
	for {
		jobs, ok := nextBatch(ctx, b.jobs)
		if !ok {
			return
		}
		s.runBatch(jobs)
	}
}

// nextBatch waits for a job on jobs, then takes those waiting behind it,
// up to maxBatch; false when ctx ends first.
func nextBatch[J any](ctx context.Context, jobs <-chan J) ([]J, bool) {
	var batch []J
	select {
	case <-ctx.Done():
		return nil, false
	case j := <-jobs:
		batch = append(batch, j)
	}
	for len(batch) < maxBatch {
		select {
		case j := <-jobs:
			batch = append(batch, j)
		default:
			return batch, true
		}
	}
	return batch, true
}

// runBatch runs jobs in one transaction. If the transaction itself fails
// (it could not begin or commit, or a cancelled caller's interrupted
// statement rolled it back, which SQLite does to the whole transaction),
// nothing of it is committed and each job runs again on its own.
func (s *sqlStore) runBatch(jobs []*writeJob) {
	if len(jobs) == 1 {
		jobs[0].done <- s.plainTx(context.Background(), jobs[0].fn)
		return
	}
	errs, ok := s.tryBatch(jobs)
	for i, j := range jobs {
		if !ok {
			errs[i] = s.plainTx(context.Background(), j.fn)
			if j.ctx.Err() != nil && errs[i] != nil {
				errs[i] = j.ctx.Err()
			}
		}
		j.done <- errs[i]
	}
}

// tryBatch runs jobs each in a savepoint of one transaction and commits;
// ok is false when nothing was committed for a reason other than the
// jobs' own errors.
func (s *sqlStore) tryBatch(jobs []*writeJob) (errs []error, ok bool) {
	errs = make([]error, len(jobs))
	bg := context.Background()
	tx, err := s.db.BeginTx(bg, nil)
	if err != nil {
		return errs, false
	}
	for i, j := range jobs {
		if err := j.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := tx.ExecContext(bg, "SAVEPOINT job"); err != nil {
			tx.Rollback()
			return errs, false
		}
		if errs[i] = j.fn(tx); errs[i] != nil {
			if _, err := tx.ExecContext(bg, "ROLLBACK TO job"); err != nil {
				tx.Rollback()
				return errs, false
			}
		}
		// RELEASE fails when the savepoint is gone, that is when SQLite
		// rolled the whole transaction back under the job.
		if _, err := tx.ExecContext(bg, "RELEASE job"); err != nil {
			tx.Rollback()
			return errs, false
		}
	}
	if err := tx.Commit(); err != nil {
		return errs, false
	}
	return errs, true
}

// exec runs one write statement: in the next batch on SQLite, on its own
// on PostgreSQL, whose many connections commit side by side.
func (s *sqlStore) exec(ctx context.Context, q string, args ...any) error {
	if s.batch == nil {
		_, err := s.db.ExecContext(ctx, q, args...)
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	})
}
