package storetest

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Leftovers returns "name in file" for every secret (name to bytes) found
// in a file of the database named by dsn: the directory of a SQLite file;
// for PostgreSQL, after a CHECKPOINT has written every page out, the
// cluster's data directory (VEIL_TEST_POSTGRES_DATA, which
// scripts/test.sh sets, else the server's data_directory) without its
// write-ahead log, which the privacy policy declares. It skips tb when
// those files cannot be read.
func Leftovers(tb testing.TB, dsn string, secrets map[string][]byte) []string {
	tb.Helper()
	dir, skip := filepath.Dir(strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite://"), "sqlite:")), ""
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		dir, skip = "", "pg_wal"
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Fatalf("connecting: %v", err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "CHECKPOINT"); err != nil {
			tb.Skipf("CHECKPOINT (the test's PostgreSQL user must be a superuser, as scripts/pgtmp.sh makes it): %v", err)
		}
		if dir = os.Getenv("VEIL_TEST_POSTGRES_DATA"); dir == "" {
			if err := c.QueryRow(ctx, "SHOW data_directory").Scan(&dir); err != nil {
				tb.Skipf("the PostgreSQL data directory is unknown: set VEIL_TEST_POSTGRES_DATA (%v)", err)
			}
		}
	}
	var found []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // another test's database went meanwhile
		}
		if err != nil {
			return err
		}
		if e.IsDir() {
			if e.Name() == skip {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for name, v := range secrets {
			if bytes.Contains(b, v) {
				found = append(found, name+" in "+p)
			}
		}
		return nil
	})
	if errors.Is(err, fs.ErrPermission) {
		tb.Skipf("the database files are not readable by this user (run as root or as their owner): %v", err)
	}
	if err != nil {
		tb.Fatalf("reading the database files: %v", err)
	}
	sort.Strings(found)
	return found
}
