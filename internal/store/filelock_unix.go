//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// fileLocker serialises SQLite migrations across processes with flock(2) on a
// file beside the database. SQLite's own locks cannot do it: goose checks
// which migrations are pending outside the transaction that applies them.
// The kernel drops the lock when its holder exits, so a crash mid-migration
// cannot wedge the next start. The lock file is left in place, since deleting
// it would race with a process about to lock it.
type fileLocker struct {
	path string
	f    *os.File
}

// fileLockPoll is how often a waiting process retries the lock. flock(2) has
// no timeout, and polling lets the wait end when ctx does.
const fileLockPoll = 20 * time.Millisecond

func (l *fileLocker) Lock(ctx context.Context, _ *sql.DB) error {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("lock %s: %w", l.path, err)
	}
	ticker := time.NewTicker(fileLockPoll)
	defer ticker.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			l.f = f
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return fmt.Errorf("lock %s: %w", l.path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return fmt.Errorf("lock %s: %w", l.path, ctx.Err())
		case <-ticker.C:
		}
	}
}

func (l *fileLocker) Unlock(context.Context, *sql.DB) error {
	if l.f == nil {
		return nil
	}
	// Closing the only descriptor of the open file releases the flock.
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("unlock %s: %w", l.path, err)
	}
	return nil
}
