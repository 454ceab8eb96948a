// Package store opens Lookout's durable state database (SQLite through the pure-Go
// modernc.org/sqlite driver, in WAL mode) and applies each component's schema.
//
// Every component owns its own tables and migrations and receives the *sql.DB;
// nothing else is shared, so a server database can replace SQLite later behind the
// same per-component stores.
package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Open opens (creating if needed) the SQLite database at path with WAL journaling,
// a busy timeout and foreign keys on. Use ":memory:" only for throwaway tests; prefer
// a file in t.TempDir() so WAL and concurrency behave as in production.
func Open(path string) (*sql.DB, error) {
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("store: create dir: %w", err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return db, nil
}

// Migrate applies, in order and once each, the schema statements of one component.
// Statements are identified by (component, index), so a component may only append
// to its list, never reorder or edit an applied entry.
func Migrate(ctx context.Context, db *sql.DB, component string, stmts []string) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		component TEXT NOT NULL, step INTEGER NOT NULL, PRIMARY KEY (component, step))`); err != nil {
		return fmt.Errorf("store: migrations table: %w", err)
	}
	for i, stmt := range stmts {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("store: migrate %s: %w", component, err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE component=? AND step=?`, component, i).Scan(&n); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migrate %s: %w", component, err)
		}
		if n > 0 {
			tx.Rollback()
			continue
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migrate %s step %d: %w", component, i, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(component, step) VALUES(?, ?)`, component, i); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migrate %s step %d: %w", component, i, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("store: migrate %s step %d: %w", component, i, err)
		}
	}
	return nil
}
