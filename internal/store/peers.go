package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PeersSince returns the peer-map changes after since, from one snapshot.
// A since of 0, older than the kept history, or newer than the current
// version (a restored database) gets the full map.
func (s *sqlStore) PeersSince(ctx context.Context, since int64) (*PeerChanges, error) {
	var peers []Peer
	pc, err := s.streamPeers(ctx, since, func(_ *PeerChanges, p Peer) error {
		peers = append(peers, p)
		return nil
	}, func() { peers = peers[:0] })
	if err != nil {
		return nil, err
	}
	pc.Peers = append([]Peer{}, peers...)
	return pc, nil
}

// errStreamRetried stops a stream that would start again after peers went out.
var errStreamRetried = errors.New("the snapshot failed after peers were sent")

// StreamPeers reads what PeersSince returns from one snapshot, handing
// each peer to fn as its row is read, in address order, so a map of any
// size takes constant memory; fn gets the version and fullness, known
// before the first peer. The result holds the removals (a delta's
// tombstones) and no peers.
func (s *sqlStore) StreamPeers(ctx context.Context, since int64, fn func(*PeerChanges, Peer) error) (*PeerChanges, error) {
	return s.streamPeers(ctx, since, fn, nil)
}

// streamPeers is StreamPeers; a snapshot that fails for contention is
// read again only if restart, called first, can undo what fn was given.
func (s *sqlStore) streamPeers(ctx context.Context, since int64, fn func(*PeerChanges, Peer) error, restart func()) (*PeerChanges, error) {
	var pc *PeerChanges
	sent := false
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		if sent && restart == nil {
			return errStreamRetried
		}
		if restart != nil {
			restart()
		}
		pc = &PeerChanges{Peers: []Peer{}, Removed: []string{}}
		var floor int64
		if err := tx.QueryRowContext(ctx, "SELECT version, history_floor FROM peer_version WHERE id = 1").Scan(&pc.Version, &floor); err != nil {
			return err
		}
		pc.Full = since <= 0 || since < floor || since > pc.Version
		q := `SELECT d.public_key, d.addr_index, a.plan, d.block, d.proxy_hash FROM devices d JOIN accounts a ON a.id = d.account_id
			WHERE d.in_map AND d.peer_version > $1 ORDER BY d.addr_index`
		after := since
		if pc.Full {
			after = -1
		}
		rows, err := tx.QueryContext(ctx, q, after)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p Peer
			var block string
			if err := rows.Scan(&p.PublicKey, &p.AddrIndex, &p.Plan, &block, &p.ProxyHash); err != nil {
				return err
			}
			p.Block = splitBlock(block)
			sent = true
			if err := fn(pc, p); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil || pc.Full {
			return err
		}
		rows, err = tx.QueryContext(ctx, "SELECT public_key FROM peer_tombstones WHERE version > $1 ORDER BY public_key", since)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				return err
			}
			pc.Removed = append(pc.Removed, k)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("reading peer map: %w", err)
	}
	return pc, nil
}

// PeerVersion returns the current peer-map version.
func (s *sqlStore) PeerVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.rdb.QueryRowContext(ctx, "SELECT version FROM peer_version WHERE id = 1").Scan(&v); err != nil {
		return 0, fmt.Errorf("reading peer version: %w", err)
	}
	return v, nil
}

// SyncPeerActivity moves the devices of accounts whose activity changed at
// now into or out of the peer map, and prunes tombstones older than the
// kept history. It first looks without the lock, so the periodic call from
// every process costs a read when there is nothing to do; under the lock
// it works from the state it finds, which makes it idempotent.
func (s *sqlStore) SyncPeerActivity(ctx context.Context, now time.Time) (int, error) {
	at, cutoff := s.ts(now), s.ts(now.Add(-s.o.historyAge))
	var todo bool
	err := s.rdb.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM devices d JOIN accounts a ON a.id = d.account_id
			WHERE d.in_map <> `+active(1)+`)
		OR EXISTS (SELECT 1 FROM peer_tombstones WHERE removed_at < $2)`, at, cutoff).Scan(&todo)
	if err != nil {
		return 0, fmt.Errorf("syncing peer activity: %w", err)
	}
	if !todo {
		return 0, nil
	}
	var moved, aged int64
	_, err = s.mapTx(ctx, func(tx *sql.Tx, next int64) (bool, error) {
		moved, aged = 0, 0
		var old sql.NullInt64
		if err := tx.QueryRowContext(ctx, "SELECT MAX(version) FROM peer_tombstones WHERE removed_at < $1", cutoff).Scan(&old); err != nil {
			return false, err
		}
		if old.Valid {
			if aged, err = s.dropHistory(ctx, tx, old.Int64); err != nil {
				return false, err
			}
		}
		inactive := "SELECT id FROM accounts WHERE NOT " + active(3)
		if _, err := tx.ExecContext(ctx, `INSERT INTO peer_tombstones (public_key, version, removed_at)
			SELECT public_key, $1, $2 FROM devices WHERE in_map AND account_id IN (`+inactive+`)
			ON CONFLICT (public_key) DO UPDATE SET version = excluded.version, removed_at = excluded.removed_at`,
			next, at, at); err != nil {
			return false, err
		}
		res, err := tx.ExecContext(ctx, "UPDATE devices SET in_map = FALSE WHERE in_map AND account_id IN ("+
			"SELECT id FROM accounts WHERE NOT "+active(1)+")", at)
		if err != nil {
			return false, err
		}
		left, err := res.RowsAffected()
		if err != nil {
			return false, err
		}
		res, err = tx.ExecContext(ctx, "UPDATE devices SET in_map = TRUE, peer_version = $1 WHERE NOT in_map AND account_id IN ("+
			"SELECT id FROM accounts WHERE "+active(2)+")", next, at)
		if err != nil {
			return false, err
		}
		entered, err := res.RowsAffected()
		if err != nil {
			return false, err
		}
		if entered > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM peer_tombstones
				WHERE public_key IN (SELECT public_key FROM devices WHERE in_map AND peer_version = $1)`, next); err != nil {
				return false, err
			}
		}
		moved = left + entered
		return moved > 0, nil
	})
	if err != nil {
		return 0, fmt.Errorf("syncing peer activity: %w", err)
	}
	if aged > 0 {
		s.wipe(ctx, "peer_tombstones")
	}
	return int(moved), nil
}

// Schema lists the live database's tables and their columns in order.
func (s *sqlStore) Schema(ctx context.Context) (map[string][]string, error) {
	q := `SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY m.name, p.cid`
	if s.d.pg {
		q = `SELECT table_name, column_name FROM information_schema.columns
			WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`
	}
	rows, err := s.rdb.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("reading schema: %w", err)
	}
	defer rows.Close()
	schema := make(map[string][]string)
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			return nil, fmt.Errorf("reading schema: %w", err)
		}
		schema[t] = append(schema[t], c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading schema: %w", err)
	}
	return schema, nil
}
