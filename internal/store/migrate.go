package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrations holds one directory of goose SQL files per dialect. The two
// directories must describe the same tables; the tests run the whole suite
// against both.
//
//go:embed migrations
var migrations embed.FS

// migrate applies pending migrations while holding a lock that other
// processes opening the same database respect, so two processes starting
// together do not apply the same migration twice. For SQLite the lock is
// the file lockPath; for PostgreSQL it is a session advisory lock.
//
// goose creates its version table before it takes the lock and, when another
// process wins that race, retries after a second, so the very first start of
// several processes on an empty database can take a second longer.
func (s *Store) migrate(ctx context.Context, lockPath string) (version int64, applied int, err error) {
	dir, err := fs.Sub(migrations, "migrations/"+s.dialect.String())
	if err != nil {
		return 0, 0, fmt.Errorf("migrate %s: %w", s.dialect, err)
	}
	opts := []goose.ProviderOption{
		// Anything goose reports goes through our logger, not the log package.
		goose.WithSlog(s.logger),
		// Go migrations registered globally by other packages are not ours.
		goose.WithDisableGlobalRegistry(true),
	}
	var gooseDialect goose.Dialect
	switch s.dialect {
	case postgres:
		gooseDialect = goose.DialectPostgres
		// Probe every second for up to five minutes: migrations take
		// milliseconds, so a waiting process should not sleep goose's
		// default five seconds between probes.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return 0, 0, fmt.Errorf("migrate %s: %w", s.dialect, err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	default:
		gooseDialect = goose.DialectSQLite3
		opts = append(opts, goose.WithLocker(&fileLocker{path: lockPath}))
	}

	provider, err := goose.NewProvider(gooseDialect, s.db, dir, opts...)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate %s: %w", s.dialect, err)
	}
	// provider.Close is not called: it would close s.db.
	results, err := provider.Up(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate %s: %w", s.dialect, err)
	}
	version, err = provider.GetDBVersion(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate %s: read schema version: %w", s.dialect, err)
	}
	return version, len(results), nil
}
