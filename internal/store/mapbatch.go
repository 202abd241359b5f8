package store

import (
	"context"
	"database/sql"
)

// Map batches (PostgreSQL). Every map change holds the version row's lock
// from its first statement to its commit, so map changes are serial
// across all serve processes, and each held the lock over a dozen round
// trips and a commit's WAL flush. A serve process instead runs the map
// changes that wait at the same moment in one transaction, under one hold
// of the lock: each in a savepoint, with a version of its own as before,
// and the history pruning, the notice and the commit once for all. As
// with SQLite's group commit, every caller is answered after the commit
// that holds its change, and a change whose function fails has its
// savepoint rolled back and gets its own error; the others are unaffected.

type mapJob struct {
	ctx  context.Context
	fn   func(*sql.Tx, int64) (bool, error)
	res  mapResult
	err  error
	done chan struct{}
}

type mapBatcher struct {
	jobs chan *mapJob // unbuffered: a waiting sender is a waiting change
	quit <-chan struct{}
}

// do runs fn in the next map batch and returns its outcome.
func (b *mapBatcher) do(ctx context.Context, fn func(*sql.Tx, int64) (bool, error)) (mapResult, error) {
	j := &mapJob{ctx: ctx, fn: fn, done: make(chan struct{})}
	select {
	case b.jobs <- j:
	case <-ctx.Done():
		return mapResult{}, ctx.Err()
	case <-b.quit:
		return mapResult{}, errClosed
	}
	<-j.done // a job taken is always answered
	return j.res, j.err
}

// runMapBatches takes the waiting map changes, up to maxBatch, and runs
// them as one transaction, until ctx ends.
func (s *sqlStore) runMapBatches(ctx context.Context, b *mapBatcher) {
	for {
		jobs, ok := nextBatch(ctx, b.jobs)
		if !ok {
			return
		}
		s.runMapBatch(jobs)
	}
}

// runMapBatch runs jobs in one transaction. If the transaction itself
// fails (it could not begin or commit, or the connection broke under a
// cancelled caller), nothing of it is committed and each job runs again
// in a transaction of its own.
func (s *sqlStore) runMapBatch(jobs []*mapJob) {
	if !s.tryMapBatch(jobs) {
		for _, j := range jobs {
			j.res, j.err = mapResult{}, nil
			j.err = s.plainTx(j.ctx, func(tx *sql.Tx) error {
				var err error
				j.res, err = s.mapAlone(j.ctx, tx, j.fn)
				return err
			})
		}
	}
	for _, j := range jobs {
		close(j.done)
	}
}

// tryMapBatch runs jobs each in a savepoint of one transaction holding
// the peer-map lock, settles the last version and commits; it is false
// when nothing was committed for a reason other than the jobs' own errors.
// A single job needs no savepoint: its error rolls the transaction back.
func (s *sqlStore) tryMapBatch(jobs []*mapJob) bool {
	bg := context.Background()
	tx, err := s.db.BeginTx(bg, nil)
	if err != nil {
		return false
	}
	defer tx.Rollback() // after Commit, a no-op
	cur, err := s.lockVersion(bg, tx)
	if err != nil {
		return false
	}
	solo := len(jobs) == 1
	var changed []*mapJob
	// A job's savepoint is released in the round trip that opens the
	// next one's: release holds the statement still to send. RELEASE fails
	// when the savepoint is gone, that is when PostgreSQL rolled the whole
	// transaction back under the job.
	release := ""
	for _, j := range jobs {
		j.res = mapResult{version: cur}
		if j.err = j.ctx.Err(); j.err != nil {
			continue
		}
		if !solo {
			if _, err := tx.ExecContext(bg, release+"SAVEPOINT job"); err != nil {
				return false
			}
			release = "RELEASE job; "
		}
		ch, err := j.fn(tx, cur+1)
		if j.err = err; err != nil {
			if solo {
				return true // the deferred rollback undoes it
			}
			if _, err := tx.ExecContext(bg, "ROLLBACK TO job"); err != nil {
				return false
			}
		} else if ch {
			cur++
			j.res = mapResult{version: cur, changed: true}
			changed = append(changed, j)
		}
	}
	if release != "" {
		if _, err := tx.ExecContext(bg, "RELEASE job"); err != nil {
			return false
		}
	}
	// A job left unchanged reports the version current after the batch,
	// as it would have read it after the jobs before it committed.
	for _, j := range jobs {
		if !j.res.changed && j.err == nil {
			j.res.version = cur
		}
	}
	if len(changed) > 0 {
		dropped, err := s.settleVersion(bg, tx, cur)
		if err != nil {
			return false
		}
		changed[len(changed)-1].res.dropped = dropped
	}
	return tx.Commit() == nil
}
