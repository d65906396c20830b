// Package store keeps the business's verification records: one row per Didit
// session, the append-only log of the events that shaped it, the notifications
// sent about it and its AML case.
//
// It speaks SQLite (the single-machine default) and PostgreSQL (production)
// through database/sql, and applies its own embedded migrations when opened.
// Every write is idempotent or monotonic, so a Temporal activity that retries
// after a crash changes nothing twice.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	// Registers the "pgx" database/sql driver.
	_ "github.com/jackc/pgx/v5/stdlib"
	// Registers the "sqlite" database/sql driver (pure Go, no cgo).
	_ "modernc.org/sqlite"
)

var (
	// ErrNotFound reports that the requested row does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict reports a write that contradicts what is already recorded,
	// such as resolving an AML case a second time with another outcome.
	ErrConflict = errors.New("store: conflict")
	// ErrInvalid reports an argument the store refuses to record; retrying the
	// same call cannot succeed.
	ErrInvalid = errors.New("store: invalid argument")
	// ErrErased reports a write about a person refused because their
	// session was erased (diditflow-admin erase).
	ErrErased = errors.New("store: the session was erased")
)

// sqliteBusyTimeout is how long a SQLite writer waits for another process's
// write transaction before failing with SQLITE_BUSY. Transactions here last
// milliseconds, so this only runs out if the other process is stuck.
const sqliteBusyTimeout = 5 * time.Second

// Store is a handle on the records database. It is safe for concurrent use,
// and several processes may open the same database at once.
type Store struct {
	db      *sql.DB
	dialect dialect
	logger  *slog.Logger
	// now is replaced by tests that need stable timestamps.
	now func() time.Time
}

// Option configures Open.
type Option func(*options)

type options struct{ maxConns int }

// WithMaxConns bounds a PostgreSQL store's pool at n connections (n > 0):
// callers beyond it wait for a connection instead of opening one more, so a
// burst cannot exhaust the server's max_connections, which other clients
// (Temporal's own stores, other workers) share. Without it the pool is
// unbounded. A SQLite store keeps its single connection.
func WithMaxConns(n int) Option { return func(o *options) { o.maxConns = n } }

// Open connects to the database named by dsn and applies any pending
// migrations.
//
// A dsn starting with postgres:// or postgresql:// is a PostgreSQL connection
// URL (any parameter pgx understands, such as sslmode or search_path, is
// passed through). Anything else names a SQLite file: a plain path, or the
// same path written as sqlite://path or file:path (sqlite:///abs/path and
// file:///abs/path for absolute paths). A SQLite dsn takes no query
// parameters because the store sets the ones that make sharing the file safe;
// the file and its parent directories are created if missing.
//
// A nil logger discards logs.
func Open(ctx context.Context, dsn string, logger *slog.Logger, opts ...Option) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := &Store{logger: logger, now: time.Now}

	var migrationLock string
	if isPostgresDSN(dsn) {
		s.dialect = postgres
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			// pgx redacts the password from parse errors, so err is safe to return.
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		if o.maxConns > 0 {
			db.SetMaxOpenConns(o.maxConns)
			// As many idle as open: a pool that closes what a burst opened
			// reconnects (a TLS handshake, an authentication) for the next.
			db.SetMaxIdleConns(o.maxConns)
		}
		s.db = db
	} else {
		path, err := sqlitePath(dsn)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		db, err := sql.Open("sqlite", sqliteDSN(path))
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		// SQLite admits one writer at a time. With a single connection, this
		// process's writers queue fairly inside database/sql instead of
		// spinning in SQLite's busy handler; only other processes' writers are
		// waited for with busy_timeout.
		db.SetMaxOpenConns(1)
		s.db = db
		s.dialect = sqlite
		migrationLock = path + "-migrate.lock"
	}

	if err := s.connect(ctx, migrationLock); err != nil {
		_ = s.db.Close()
		return nil, fmt.Errorf("connect to %s: %w", s.dialect, err)
	}
	version, applied, err := s.migrate(ctx, migrationLock)
	if err != nil {
		_ = s.db.Close()
		return nil, err
	}
	logger.InfoContext(ctx, "store opened", "dialect", s.dialect.String(),
		"schema_version", version, "migrations_applied", applied)
	return s, nil
}

// connect opens the first connection. For SQLite that connection switches a
// new file to WAL, which needs an exclusive lock that SQLite does not wait
// for with busy_timeout, so processes opening the file together take turns
// under the migration lock. WAL is then a property of the file, and later
// connections find it already set.
func (s *Store) connect(ctx context.Context, lockPath string) error {
	if s.dialect != sqlite {
		return s.db.PingContext(ctx)
	}
	l := &fileLocker{path: lockPath}
	if err := l.Lock(ctx, s.db); err != nil {
		return err
	}
	defer l.Unlock(ctx, s.db)
	return s.db.PingContext(ctx)
}

// Close closes the database connections.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close %s store: %w", s.dialect, err)
	}
	return nil
}

// Ping checks that the database is reachable, for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.dialect, err)
	}
	return nil
}

type dialect int

const (
	sqlite dialect = iota
	postgres
)

func (d dialect) String() string {
	if d == postgres {
		return "postgres"
	}
	return "sqlite"
}

func isPostgresDSN(dsn string) bool {
	lower := strings.ToLower(dsn)
	return strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://")
}

// sqlitePath turns a SQLite dsn into an absolute file path.
func sqlitePath(dsn string) (string, error) {
	path := dsn
	switch {
	case strings.HasPrefix(path, "sqlite://"):
		path = strings.TrimPrefix(path, "sqlite://")
	case strings.HasPrefix(path, "file:"):
		path = strings.TrimPrefix(path, "file:")
		// file:///abs/path has an empty authority before the path.
		path = strings.TrimPrefix(path, "//")
	}
	if path == "" {
		return "", fmt.Errorf("open sqlite: empty path: %w", ErrInvalid)
	}
	if strings.Contains(path, "?") {
		return "", fmt.Errorf("open sqlite %s: query parameters are not supported, the store sets its own: %w", path, ErrInvalid)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return abs, nil
}

// sqliteDSN builds the modernc.org/sqlite connection string for an absolute
// path. It is a file: URI so that any character in the path is escaped rather
// than mistaken for a parameter.
func sqliteDSN(absPath string) string {
	p := filepath.ToSlash(absPath)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // A Windows drive letter: file:///C:/...
	}
	u := url.URL{Scheme: "file", Path: p}
	q := url.Values{}
	// The driver always applies busy_timeout first, so the journal_mode switch
	// below waits for another process instead of failing.
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(sqliteBusyTimeout.Milliseconds(), 10)+")")
	// WAL lets the worker and tools read while one of them writes.
	q.Add("_pragma", "journal_mode(WAL)")
	// FULL syncs every commit: a completed activity is never redone by
	// Temporal, so its write must survive a power cut.
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	// BEGIN IMMEDIATE takes the write lock up front. A deferred transaction
	// that reads and then writes can fail with SQLITE_BUSY without waiting
	// when another process committed in between.
	q.Set("_txlock", "immediate")
	return u.String() + "?" + q.Encode()
}

// queryer is what *sql.DB and *sql.Tx share.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// scanner is what *sql.Row and *sql.Rows share.
type scanner interface {
	Scan(dest ...any) error
}

// each runs query on db (the store's, or a transaction) and hands every
// row to scan.
func (s *Store) each(ctx context.Context, db queryer, query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// collect runs query on db and returns every row as scan reads it.
func collect[T any](ctx context.Context, s *Store, db queryer, query string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	var out []T
	err := s.each(ctx, db, query, args, func(rows *sql.Rows) error {
		v, err := scan(rows)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// scanText reads a row of one text column.
func scanText(row scanner) (string, error) {
	var v string
	err := row.Scan(&v)
	return v, err
}

// q rewrites a query written with ? placeholders for the store's dialect.
// Queries in this package never contain a literal '?'.
func (s *Store) q(query string) string {
	if s.dialect != postgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// inTx runs fn in a transaction and commits it if fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// clock returns the current time truncated to what the database stores.
func (s *Store) clock() time.Time {
	return s.now().UTC().Truncate(time.Second)
}

// unixOrNow stores t, or now when t is zero, as unix seconds.
func (s *Store) unixOrNow(t time.Time) int64 {
	if t.IsZero() {
		return s.clock().Unix()
	}
	return t.Unix()
}

func fromUnix(sec int64) time.Time {
	return time.Unix(sec, 0).UTC()
}

func fromNullUnix(sec sql.NullInt64) time.Time {
	if !sec.Valid {
		return time.Time{}
	}
	return fromUnix(sec.Int64)
}

// transition moves one row to the state target with update. When update
// changes nothing, the row's current value (read by current) decides: no row
// is ErrNotFound, the target already is a retry and succeeds, anything else
// is ErrConflict, because only a person changes a settled row.
func (s *Store) transition(ctx context.Context, tx *sql.Tx, target, update string, updateArgs []any, current string, key ...any) error {
	r, err := tx.ExecContext(ctx, s.q(update), updateArgs...)
	if err != nil {
		return err
	}
	n, err := r.RowsAffected()
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	var now sql.NullString
	err = tx.QueryRowContext(ctx, s.q(current), key...).Scan(&now)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrNotFound
	case err != nil:
		return err
	case now.String == target:
		return nil
	default:
		return fmt.Errorf("already %s: %w", now.String, ErrConflict)
	}
}
