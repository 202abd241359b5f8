package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
		q := `SELECT d.public_key, d.addr_index, ` + peerClass + `, d.block FROM devices d JOIN accounts a ON a.id = d.account_id
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
			if err := rows.Scan(&p.PublicKey, &p.AddrIndex, &p.Plan, &block); err != nil {
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
