package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// PlanTrial is the class the peer map gives the devices of an account on
// trial (whose plan is still PlanFree); PlanFree there means a device on
// the free plan, which gateways cap.
const PlanTrial = "trial"

// FreePlan is the store's part of the free plan: whether devices of an
// account without paid or trial time stay in the peer map, and how many
// of them (its oldest).
type FreePlan struct {
	Enabled bool
	Devices int
}

// SetFreePlan sets the free plan the peer map follows from the next
// registration and sync on; the zero FreePlan (the default) is off.
func (s *sqlStore) SetFreePlan(f FreePlan) {
	if f.Devices < 1 {
		f.Enabled = false
	}
	s.free.Store(&f)
}

func (s *sqlStore) freePlan() FreePlan {
	if f := s.free.Load(); f != nil {
		return *f
	}
	return FreePlan{}
}

// peerClass is the SQL of a peer's plan class, for devices d of accounts a.
const peerClass = "CASE WHEN d.free THEN '" + PlanFree + "' WHEN a.plan = '" + PlanFree + "' THEN '" + PlanTrial + "' ELSE a.plan END"

// SyncPeerActivity moves the devices of accounts whose activity changed at
// now into or out of the peer map, or onto and off the free plan, and
// prunes tombstones older than the kept history. It first looks without
// the lock, so the periodic call from every process costs a read when
// there is nothing to do; under the lock it works from the state it finds,
// which makes it idempotent.
func (s *sqlStore) SyncPeerActivity(ctx context.Context, now time.Time) (int, error) {
	return s.syncPeers(ctx, now, 0)
}

// syncPeers is SyncPeerActivity for one account's devices, or for all when
// account is 0 (which alone prunes the history). A device's place
// follows its account: with paid or trial time, in the map at its plan;
// without, in the map on the free plan if it is one of the account's
// oldest FreePlan.Devices and the free plan is on; else out.
func (s *sqlStore) syncPeers(ctx context.Context, now time.Time, account int64) (int, error) {
	fp := s.freePlan()
	at, cutoff := s.ts(now), s.ts(now.Add(-s.o.historyAge))
	only := ""
	if account != 0 {
		only = fmt.Sprintf(" AND account_id = %d", account)
	}
	// keep is whether a device t of an account without time stays on the
	// free plan.
	keep := func(t string) string {
		if !fp.Enabled {
			return "FALSE"
		}
		return fmt.Sprintf("((SELECT COUNT(*) FROM devices e WHERE e.account_id = %s.account_id AND e.id < %s.id) < %d)", t, t, fp.Devices)
	}
	look := `SELECT EXISTS (SELECT 1 FROM devices d JOIN accounts a ON a.id = d.account_id
		WHERE (d.in_map <> (` + active(1) + ` OR ` + keep("d") + `) OR (d.in_map AND d.free = ` + active(1) + `))` +
		// only names account_id, which only devices has here
		only + `)`
	args := []any{at}
	if account == 0 {
		look += " OR EXISTS (SELECT 1 FROM peer_tombstones WHERE removed_at < $2)"
		args = append(args, cutoff)
	}
	var todo bool
	if err := s.rdb.QueryRowContext(ctx, look, args...).Scan(&todo); err != nil {
		return 0, fmt.Errorf("syncing peer activity: %w", err)
	}
	if !todo {
		return 0, nil
	}
	var moved, aged int64
	_, err := s.mapTx(ctx, func(tx *sql.Tx, next int64) (bool, error) {
		moved, aged = 0, 0
		if account == 0 {
			var old sql.NullInt64
			if err := tx.QueryRowContext(ctx, "SELECT MAX(version) FROM peer_tombstones WHERE removed_at < $1", cutoff).Scan(&old); err != nil {
				return false, err
			}
			if old.Valid {
				var err error
				if aged, err = s.dropHistory(ctx, tx, old.Int64); err != nil {
					return false, err
				}
			}
		}
		count := func(q string, args ...any) error {
			res, err := tx.ExecContext(ctx, q, args...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			moved += n
			return err
		}
		leaving := "in_map AND account_id IN (SELECT id FROM accounts WHERE NOT %s) AND NOT " + keep("devices") + only
		if _, err := tx.ExecContext(ctx, `INSERT INTO peer_tombstones (public_key, version, removed_at)
			SELECT public_key, $1, $2 FROM devices WHERE `+fmt.Sprintf(leaving, active(3))+`
			ON CONFLICT (public_key) DO UPDATE SET version = excluded.version, removed_at = excluded.removed_at`,
			next, at, at); err != nil {
			return false, err
		}
		if err := count("UPDATE devices SET in_map = FALSE, free = FALSE WHERE "+fmt.Sprintf(leaving, active(1)), at); err != nil {
			return false, err
		}
		if err := count(`UPDATE devices SET in_map = TRUE, free = FALSE, peer_version = $1
			WHERE (NOT in_map OR free) AND account_id IN (SELECT id FROM accounts WHERE `+active(2)+`)`+only, next, at); err != nil {
			return false, err
		}
		if fp.Enabled {
			if err := count(`UPDATE devices SET in_map = TRUE, free = TRUE, peer_version = $1
				WHERE (NOT in_map OR NOT free) AND account_id IN (SELECT id FROM accounts WHERE NOT `+active(2)+`)
				AND `+keep("devices")+only, next, at); err != nil {
				return false, err
			}
		}
		if moved > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM peer_tombstones
				WHERE public_key IN (SELECT public_key FROM devices WHERE in_map AND peer_version = $1)`, next); err != nil {
				return false, err
			}
		}
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

// syncPaid brings an account's devices in line with its time right after
// a payment changed it, so an upgrade reaches the gateways with the next
// peer-map poll instead of the next periodic sync; that sync repairs what
// a failure here leaves.
func (s *sqlStore) syncPaid(ctx context.Context, account int64, now time.Time) {
	if _, err := s.syncPeers(ctx, now, account); err != nil {
		s.log.Warn("moving a paid account's devices in the peer map", "err", err)
	}
}
