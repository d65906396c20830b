//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package store

import (
	"context"
	"database/sql"
)

// fileLocker does nothing where flock(2) is unavailable. Processes opening
// the same new SQLite file at the same moment may then race to migrate it,
// and one of them fails to open; opening it again succeeds.
type fileLocker struct {
	path string
}

func (l *fileLocker) Lock(context.Context, *sql.DB) error { return nil }

func (l *fileLocker) Unlock(context.Context, *sql.DB) error { return nil }
