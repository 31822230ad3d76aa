// Package store is banger's state database: SQLite in WAL mode with
// embedded migrations. Every mutation runs in a transaction; callers that
// write artifacts first put them in place (temp path, fsync, rename) and
// only then commit the row that points at them.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is an open state database. Its read methods (those of Reader)
// query outside any transaction; every write goes through Tx.
type Store struct {
	Reader
	db *sql.DB
}

// Open opens (creating if needed) the database at path and migrates it.
func Open(ctx context.Context, path string) (*Store, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening state database %s: %w", path, err)
	}
	// One writer at a time is what SQLite does anyway; a single
	// connection also makes transactions strictly serial.
	db.SetMaxOpenConns(1)
	s := &Store{Reader: Reader{q: db}, db: db}
	if err := s.migrate(ctx, migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrating state database %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Tx runs fn in a transaction, committing when fn returns nil.
func (s *Store) Tx(ctx context.Context, fn func(*Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	if err := fn(&Tx{Reader{q: tx}}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing transaction: %w", err)
	}
	return nil
}

// Reader holds the read queries: on the Store they run outside any
// transaction, on a Tx inside it.
type Reader struct {
	q querier
}

// Tx is one transaction: its reads (Reader's) and its writes see the
// same snapshot and commit together.
type Tx struct {
	Reader
}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) migrate(ctx context.Context, fsys fs.FS) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return err
	}
	list, err := migrationList(fsys)
	if err != nil {
		return err
	}
	for _, m := range list {
		if err := s.apply(ctx, fsys, m.version, m.path); err != nil {
			return fmt.Errorf("applying migration %s: %w", m.name, err)
		}
	}
	return nil
}

type migration struct {
	version    int
	name, path string
}

// migrationList returns the migrations/*.sql files of fsys in order of
// their numbers, refusing two files with one number: the second would be
// skipped as already applied (two branches merged can do this).
func migrationList(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []migration
	seen := map[int]string{}
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number", name)
		}
		if prev, ok := seen[v]; ok {
			return nil, fmt.Errorf("migrations %s and %s share the number %d; renumber one", prev, base, v)
		}
		seen[v] = base
		out = append(out, migration{version: v, name: base, path: name})
	}
	return out, nil
}

func (s *Store) apply(ctx context.Context, fsys fs.FS, version int, name string) error {
	body, err := fs.ReadFile(fsys, name)
	if err != nil {
		return err
	}
	return s.Tx(ctx, func(tx *Tx) error {
		var n int
		err := tx.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n)
		if err != nil || n > 0 {
			return err
		}
		if _, err := tx.q.ExecContext(ctx, string(body)); err != nil {
			return err
		}
		_, err = tx.q.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, now())
		return err
	})
}

// ErrNoRow is returned by getters when nothing matches.
var ErrNoRow = errors.New("no such row")

func now() string { return formatTime(time.Now()) }

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
