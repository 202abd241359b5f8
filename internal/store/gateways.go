package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

const gatewayCols = "id, name, location, endpoint, token_hash, public_key, builtin, peers, rx_bytes, tx_bytes, last_seen, created_at, egress, tls_port, quic_port, cert_pin, proxy_port"

func scanGateway(row interface{ Scan(...any) error }) (*Gateway, error) {
	var g Gateway
	var rx, tx int64
	var egress string
	if err := row.Scan(&g.ID, &g.Name, &g.Location, &g.Endpoint, &g.TokenHash, &g.PublicKey, &g.Builtin,
		&g.Peers, &rx, &tx, timeCol{&g.LastSeen}, timeCol{&g.CreatedAt}, &egress, &g.TLSPort, &g.QUICPort, &g.CertPin, &g.ProxyPort); err != nil {
		return nil, err
	}
	g.RxBytes, g.TxBytes = uint64(rx), uint64(tx)
	if egress != "" {
		g.Egress = strings.Split(egress, ",")
	}
	return &g, nil
}

// CreateGateway registers g; it fills in g.ID, and g.CreatedAt when zero.
func (s *sqlStore) CreateGateway(ctx context.Context, g *Gateway) (int64, error) {
	if g.Name == "" || len(g.TokenHash) == 0 {
		return 0, errors.New("creating gateway: name and token hash are required")
	}
	created := g.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	var id int64
	err := s.db.QueryRowContext(ctx, `INSERT INTO gateways
		(name, location, endpoint, token_hash, public_key, builtin, peers, rx_bytes, tx_bytes, last_seen, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
		g.Name, g.Location, g.Endpoint, g.TokenHash, g.PublicKey, g.Builtin, g.Peers,
		int64(g.RxBytes), int64(g.TxBytes), s.ts(g.LastSeen), s.ts(created)).Scan(&id)
	if isUnique(err, "gateways", "name") {
		return 0, ErrDuplicateName
	}
	if err != nil {
		return 0, fmt.Errorf("creating gateway: %w", err)
	}
	g.ID = id
	g.CreatedAt = created.UTC().Truncate(time.Microsecond)
	return id, nil
}

// Gateways lists all gateways by name.
func (s *sqlStore) Gateways(ctx context.Context) ([]Gateway, error) {
	rows, err := s.rdb.QueryContext(ctx, "SELECT "+gatewayCols+" FROM gateways ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("listing gateways: %w", err)
	}
	defer rows.Close()
	var gs []Gateway
	for rows.Next() {
		g, err := scanGateway(rows)
		if err != nil {
			return nil, fmt.Errorf("listing gateways: %w", err)
		}
		gs = append(gs, *g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing gateways: %w", err)
	}
	return gs, nil
}

func (s *sqlStore) gatewayBy(ctx context.Context, col string, v any) (*Gateway, error) {
	g, err := scanGateway(s.rdb.QueryRowContext(ctx, "SELECT "+gatewayCols+" FROM gateways WHERE "+col+" = $1", v))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading gateway: %w", err)
	}
	return g, nil
}

// GatewayByTokenHash returns the gateway or ErrNotFound.
func (s *sqlStore) GatewayByTokenHash(ctx context.Context, hash []byte) (*Gateway, error) {
	return s.gatewayBy(ctx, "token_hash", hash)
}

// GatewayByName returns the gateway or ErrNotFound.
func (s *sqlStore) GatewayByName(ctx context.Context, name string) (*Gateway, error) {
	return s.gatewayBy(ctx, "name", name)
}

// UpdateGateway changes the location, endpoint and token hash of the
// gateway with g.ID (or, when g.ID is 0, named g.Name).
func (s *sqlStore) UpdateGateway(ctx context.Context, g *Gateway) error {
	if len(g.TokenHash) == 0 {
		return errors.New("updating gateway: empty token hash")
	}
	col, key := "id", any(g.ID)
	if g.ID == 0 {
		col, key = "name", g.Name
	}
	res, err := s.db.ExecContext(ctx, "UPDATE gateways SET location = $1, endpoint = $2, token_hash = $3 WHERE "+col+" = $4",
		g.Location, g.Endpoint, g.TokenHash, key)
	return affected("updating gateway", res, err)
}

// ReportGatewayLoad records a gateway's key and aggregate load; a zero
// l.At means now.
func (s *sqlStore) ReportGatewayLoad(ctx context.Context, id int64, l GatewayLoad) error {
	at := l.At
	if at.IsZero() {
		at = s.now()
	}
	res, err := s.db.ExecContext(ctx, `UPDATE gateways SET public_key = $1, peers = $2, rx_bytes = $3, tx_bytes = $4, last_seen = $5,
		egress = $6, tls_port = $7, quic_port = $8, cert_pin = $9, proxy_port = $10 WHERE id = $11`, l.PublicKey, l.Peers, int64(l.RxBytes), int64(l.TxBytes), s.ts(at),
		strings.Join(l.Egress, ","), l.TLSPort, l.QUICPort, l.CertPin, l.ProxyPort, id)
	return affected("reporting gateway load", res, err)
}

// DeleteGateway removes a gateway by name.
func (s *sqlStore) DeleteGateway(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM gateways WHERE name = $1", name)
	return affected("deleting gateway", res, err)
}

// affected turns a statement that touched no row into ErrNotFound.
func affected(what string, res sql.Result, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// syncStampEvery is how often a gateway polling at one version has its
// sync time written again: often enough for a liveness of hours, rarely
// enough that long polls do not each cost a write.
const syncStampEvery = time.Hour

// GatewaySynced records that the gateway holds the peer map at version
// and deletes the tombstones every gateway synced within the history age
// now holds. A version above the current one (a database restored from
// a backup) counts as none: that gateway gets the full map.
func (s *sqlStore) GatewaySynced(ctx context.Context, id, version int64) error {
	now := s.now()
	var have int64
	var at time.Time
	err := s.rdb.QueryRowContext(ctx, "SELECT synced_version, synced_at FROM gateways WHERE id = $1", id).Scan(&have, timeCol{&at})
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("recording gateway sync: %w", err)
	}
	if have == version && !at.IsZero() && now.Sub(at) < syncStampEvery {
		return nil
	}
	// The map lock is taken only when there is history to drop: a gateway
	// syncs after every change, and its poll should not queue behind the
	// map changes for nothing. Without the lock, the current version read
	// may be a commit behind, which only lowers the floor; a map change
	// reading this gateway's old version prunes less, never more.
	var dropped int64
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var cur, held int64
		if err := tx.QueryRowContext(ctx, "SELECT version, history_floor FROM peer_version WHERE id = 1").Scan(&cur, &held); err != nil {
			return err
		}
		v := version
		if v > cur {
			v = 0
		}
		res, err := tx.ExecContext(ctx, "UPDATE gateways SET synced_version = $1, synced_at = $2 WHERE id = $3", v, s.ts(now), id)
		if err = affected("storing the sync", res, err); err != nil {
			return err
		}
		floor, err := s.syncedFloor(ctx, tx, cur, now.Add(-s.o.historyAge))
		if err != nil || floor <= held {
			return err
		}
		dropped, err = s.dropHistory(ctx, tx, floor)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("recording gateway sync: %w", err)
	}
	if dropped > 0 {
		s.wipe(ctx, "peer_tombstones")
	}
	return nil
}
