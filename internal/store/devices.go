package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// active is the SQL form of Account.Active for accounts rows, with the
// time as parameter $n.
func active(n int) string {
	return fmt.Sprintf("(COALESCE(paid_until > $%d, FALSE) OR COALESCE(trial_until > $%d, FALSE))", n, n)
}

// CreateDevice registers a device. Everything happens under the peer-map
// lock, so the device count and the free index it reads cannot change
// before the insert commits.
func (s *sqlStore) CreateDevice(ctx context.Context, nd NewDevice) (*Device, error) {
	switch {
	case nd.PublicKey == "":
		return nil, errors.New("creating device: empty public key")
	case nd.MaxDevices <= 0:
		return nil, ErrDeviceLimit
	case nd.MinIndex > nd.MaxIndex:
		return nil, ErrPoolExhausted
	}
	var dev *Device
	_, err := s.mapTx(ctx, func(tx *sql.Tx, next int64) (bool, error) {
		now := s.now()
		// One round trip for the account, its device count, the key's
		// use, its tombstone and the pool's highest address: the lock is
		// held while it runs.
		var a Account
		var n int
		var taken, tomb bool
		var top sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT a.paid_until, a.trial_until,
			(SELECT COUNT(*) FROM devices WHERE account_id = a.id),
			EXISTS (SELECT 1 FROM devices WHERE public_key = $2),
			EXISTS (SELECT 1 FROM peer_tombstones WHERE public_key = $2),
			(SELECT addr_index FROM devices WHERE addr_index >= $3 AND addr_index <= $4 ORDER BY addr_index DESC LIMIT 1)
			FROM accounts a WHERE a.id = $1`, nd.AccountID, nd.PublicKey, nd.MinIndex, nd.MaxIndex).
			Scan(timeCol{&a.PaidUntil}, timeCol{&a.TrialUntil}, &n, &taken, &tomb, &top)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return false, ErrNotFound
		case err != nil:
			return false, err
		case n >= nd.MaxDevices:
			return false, ErrDeviceLimit
		case taken:
			return false, ErrDuplicateKey
		}
		idx, err := freeIndex(ctx, tx, top, nd.MinIndex, nd.MaxIndex)
		if err != nil {
			return false, err
		}
		fp := s.freePlan()
		free := !a.Active(now) && fp.Enabled && n < fp.Devices
		in := a.Active(now) || free
		version := int64(0)
		if in {
			version = next
		}
		if in && tomb {
			if _, err := tx.ExecContext(ctx, "DELETE FROM peer_tombstones WHERE public_key = $1", nd.PublicKey); err != nil {
				return false, err
			}
		}
		dev = &Device{AccountID: nd.AccountID, Name: nd.Name, PublicKey: nd.PublicKey, AddrIndex: idx,
			Block: splitBlock(joinBlock(nd.Block)), CreatedAt: now, KeyCreatedAt: now, ProxyHash: nd.ProxyHash}
		err = tx.QueryRowContext(ctx, `INSERT INTO devices (account_id, name, public_key, addr_index, in_map, free, peer_version, block, created_at, key_created_at, proxy_hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) RETURNING id`,
			nd.AccountID, nd.Name, nd.PublicKey, idx, in, free, version, joinBlock(nd.Block), s.ts(now), nd.ProxyHash).Scan(&dev.ID)
		return in, err
	})
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrDeviceLimit), errors.Is(err, ErrDuplicateKey), errors.Is(err, ErrPoolExhausted):
		return nil, err
	case isUnique(err, "devices", "public_key"):
		return nil, ErrDuplicateKey
	case err != nil:
		return nil, fmt.Errorf("creating device: %w", err)
	}
	return dev, nil
}

func exists(ctx context.Context, tx *sql.Tx, query string, args ...any) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// freeIndex returns an addr_index in [lo, hi] that no device holds, given
// top, the highest one held in it (NULL for none): the one after top, found
// by an index seek that costs the same at a million devices as at none.
// Only once the pool's top is taken does it look for the lowest gap, a
// scan; so a freed address also rests a while before another device gets
// it.
func freeIndex(ctx context.Context, tx *sql.Tx, top sql.NullInt64, lo, hi int64) (int64, error) {
	switch {
	case !top.Valid:
		return lo, nil
	case top.Int64 < hi:
		return top.Int64 + 1, nil
	}
	if taken, err := exists(ctx, tx, "SELECT 1 FROM devices WHERE addr_index = $1", lo); err != nil || !taken {
		return lo, err
	}
	var idx sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT MIN(d.addr_index) + 1 FROM devices d
		WHERE d.addr_index >= $1 AND d.addr_index < $2
		AND NOT EXISTS (SELECT 1 FROM devices e WHERE e.addr_index = d.addr_index + 1)`, lo, hi).Scan(&idx)
	if err != nil {
		return 0, err
	}
	if !idx.Valid {
		return 0, ErrPoolExhausted
	}
	return idx.Int64, nil
}

// Devices lists an account's devices by id.
func (s *sqlStore) Devices(ctx context.Context, accountID int64) ([]Device, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, account_id, name, public_key, addr_index, block, created_at, key_created_at, proxy_hash
		FROM devices WHERE account_id = $1 ORDER BY id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("listing devices: %w", err)
	}
	defer rows.Close()
	var ds []Device
	for rows.Next() {
		var d Device
		var block string
		if err := rows.Scan(&d.ID, &d.AccountID, &d.Name, &d.PublicKey, &d.AddrIndex, &block, timeCol{&d.CreatedAt}, timeCol{&d.KeyCreatedAt}, &d.ProxyHash); err != nil {
			return nil, fmt.Errorf("listing devices: %w", err)
		}
		d.Block = splitBlock(block)
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing devices: %w", err)
	}
	return ds, nil
}

// deviceInTx reads one of the account's devices and whether it is in the
// peer map.
func deviceInTx(ctx context.Context, tx *sql.Tx, accountID, deviceID int64) (*Device, bool, error) {
	var d Device
	var in bool
	var block string
	err := tx.QueryRowContext(ctx, `SELECT id, account_id, name, public_key, addr_index, block, created_at, key_created_at, in_map, proxy_hash
		FROM devices WHERE id = $1 AND account_id = $2`, deviceID, accountID).
		Scan(&d.ID, &d.AccountID, &d.Name, &d.PublicKey, &d.AddrIndex, &block, timeCol{&d.CreatedAt}, timeCol{&d.KeyCreatedAt}, &in, &d.ProxyHash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, ErrNotFound
	}
	d.Block = splitBlock(block)
	return &d, in, err
}

// DeleteDevice removes one of the account's devices; its key leaves the
// peer map.
func (s *sqlStore) DeleteDevice(ctx context.Context, accountID, deviceID int64) error {
	_, err := s.mapTx(ctx, func(tx *sql.Tx, next int64) (bool, error) {
		d, in, err := deviceInTx(ctx, tx, accountID, deviceID)
		if err != nil {
			return false, err
		}
		if in {
			if err := s.tombstone(ctx, tx, d.PublicKey, next); err != nil {
				return false, err
			}
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM devices WHERE id = $1", deviceID)
		return in, err
	})
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("deleting device: %w", err)
	}
	return nil
}

// RekeyDevice replaces a device's key: in the peer map, the old key leaves
// and the new one enters with the same addresses.
func (s *sqlStore) RekeyDevice(ctx context.Context, accountID, deviceID int64, publicKey string) (*Device, error) {
	if publicKey == "" {
		return nil, errors.New("rekeying device: empty public key")
	}
	var dev *Device
	_, err := s.mapTx(ctx, func(tx *sql.Tx, next int64) (bool, error) {
		d, in, err := deviceInTx(ctx, tx, accountID, deviceID)
		if err != nil {
			return false, err
		}
		dev = d
		if d.PublicKey == publicKey {
			return false, nil
		}
		if taken, err := exists(ctx, tx, "SELECT 1 FROM devices WHERE public_key = $1", publicKey); err != nil {
			return false, err
		} else if taken {
			return false, ErrDuplicateKey
		}
		version := int64(0)
		if in {
			version = next
			if err := s.tombstone(ctx, tx, d.PublicKey, next); err != nil {
				return false, err
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM peer_tombstones WHERE public_key = $1", publicKey); err != nil {
				return false, err
			}
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET public_key = $1, key_created_at = $2,
			peer_version = CASE WHEN in_map THEN $3 ELSE peer_version END WHERE id = $4`, publicKey, s.ts(now), version, deviceID); err != nil {
			return false, err
		}
		d.PublicKey, d.KeyCreatedAt = publicKey, now
		return in, nil
	})
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrDuplicateKey):
		return nil, err
	case isUnique(err, "devices", "public_key"):
		return nil, ErrDuplicateKey
	case err != nil:
		return nil, fmt.Errorf("rekeying device: %w", err)
	}
	return dev, nil
}

// RenameDevice gives one of the account's devices a new name. The name
// is not in the peer map, so gateways see no change.
func (s *sqlStore) RenameDevice(ctx context.Context, accountID, deviceID int64, name string) (*Device, error) {
	if name == "" {
		return nil, errors.New("renaming device: empty name")
	}
	var dev *Device
	err := s.tx(ctx, func(tx *sql.Tx) error {
		d, _, err := deviceInTx(ctx, tx, accountID, deviceID)
		if err != nil {
			return err
		}
		dev = d
		_, err = tx.ExecContext(ctx, "UPDATE devices SET name = $1 WHERE id = $2", name, deviceID)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("renaming device: %w", err)
	}
	dev.Name = name
	return dev, nil
}

// SetDeviceBlock replaces a device's DNS blocking categories; a device in
// the peer map gets a new peer version so gateways pick the change up.
func (s *sqlStore) SetDeviceBlock(ctx context.Context, accountID, deviceID int64, block []string) (*Device, error) {
	var dev *Device
	_, err := s.mapTx(ctx, func(tx *sql.Tx, next int64) (bool, error) {
		d, in, err := deviceInTx(ctx, tx, accountID, deviceID)
		if err != nil {
			return false, err
		}
		dev = d
		joined := joinBlock(block)
		if joined == joinBlock(d.Block) {
			return false, nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET block = $1,
			peer_version = CASE WHEN in_map THEN $2 ELSE peer_version END WHERE id = $3`, joined, next, deviceID); err != nil {
			return false, err
		}
		d.Block = splitBlock(joined)
		return in, nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("setting device blocking: %w", err)
	}
	return dev, nil
}

// joinBlock stores categories as one sorted, de-duplicated, comma-joined
// string.
func joinBlock(cats []string) string {
	c := slices.Clone(cats)
	slices.Sort(c)
	return strings.Join(slices.Compact(c), ",")
}

func splitBlock(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
