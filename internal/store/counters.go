package store

import (
	"context"
	"fmt"
)

// CountClient adds one to the day's count for the version pair.
func (s *sqlStore) CountClient(ctx context.Context, day, osVersion, appVersion string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO client_counters (day, os_version, app_version, count) VALUES ($1, $2, $3, 1)
		ON CONFLICT (day, os_version, app_version) DO UPDATE SET count = client_counters.count + 1`, day, osVersion, appVersion)
	if err != nil {
		return fmt.Errorf("counting client: %w", err)
	}
	return nil
}

// ClientCounts lists the counts by day, OS version and app version.
func (s *sqlStore) ClientCounts(ctx context.Context) ([]ClientCount, error) {
	rows, err := s.rdb.QueryContext(ctx, "SELECT day, os_version, app_version, count FROM client_counters ORDER BY day, os_version, app_version")
	if err != nil {
		return nil, fmt.Errorf("reading client counts: %w", err)
	}
	defer rows.Close()
	var out []ClientCount
	for rows.Next() {
		var c ClientCount
		if err := rows.Scan(&c.Day, &c.OSVersion, &c.AppVersion, &c.Count); err != nil {
			return nil, fmt.Errorf("reading client counts: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading client counts: %w", err)
	}
	return out, nil
}

// DeleteClientCountsBefore removes the counts of days before day.
func (s *sqlStore) DeleteClientCountsBefore(ctx context.Context, day string) (int, error) {
	n, err := s.deleted(ctx, "DELETE FROM client_counters WHERE day < $1", day)
	if err != nil {
		return 0, fmt.Errorf("deleting old client counts: %w", err)
	}
	return n, nil
}
