package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Outbox is the local-development Mailer: it writes each message as an .eml
// file into a directory instead of sending it. The file name derives from the
// message ID, so sending the same message again replaces the file.
type Outbox struct {
	dir  string
	from *mail.Address
	now  func() time.Time
}

// NewOutbox returns an Outbox writing into dir, creating it if missing, with
// messages sent from the given address.
func NewOutbox(dir, from string) (*Outbox, error) {
	sender, err := parseSender(from)
	if err != nil {
		return nil, fmt.Errorf("outbox sender: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return &Outbox{dir: dir, from: sender, now: time.Now}, nil
}

// Send writes m to its file atomically: readers see the previous version or
// the new one, never a partial message. The file is written and synced under
// a temporary name first; m.Commit is called then, the last moment before the
// rename that delivers it, as it is before SMTP's final ".". Every failure
// leaves no new file and satisfies NotDelivered; only a crash between the
// rename and the caller's record of it leaves doubt.
func (o *Outbox) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return notDelivered(err)
	}
	raw, _, err := m.render(o.from, o.now())
	if err != nil {
		return fmt.Errorf("outbox %s: %w", m.ID, notDelivered(err))
	}
	if err := writeFileAtomic(o.dir, outboxFileName(m.ID), raw, m.Commit); err != nil {
		return fmt.Errorf("outbox %s: %w", m.ID, notDelivered(err))
	}
	return nil
}

// outboxFileName keeps the ID readable for whoever browses the outbox and adds
// a hash of the raw ID, because sanitising maps distinct IDs such as "a/b" and
// "a_b" to the same text.
func outboxFileName(id string) string {
	const maxReadable = 80
	var b strings.Builder
	for _, r := range id {
		if b.Len() >= maxReadable {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == '.' && b.Len() > 0:
			// A leading dot would hide the file and ".." would climb out of the directory.
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	sum := sha256.Sum256([]byte(id))
	return b.String() + "-" + hex.EncodeToString(sum[:6]) + ".eml"
}

// writeFileAtomic writes data to dir/name through a temporary file, calling
// commit (if not nil) once the temporary file is complete and synced, just
// before the rename; an error from commit calls the write off. rename is
// atomic, so when it fails the file was not replaced.
func writeFileAtomic(dir, name string, data []byte, commit func() error) (err error) {
	// The temporary name starts with a dot and does not end in .eml, so tools
	// watching the outbox for *.eml never pick up a half-written file.
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				_ = tmp.Close()
			}
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	closed = true
	if err = tmp.Close(); err != nil {
		return err
	}
	if commit != nil {
		if err = commit(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	if err = os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// syncDir makes the rename durable. It is best effort: not every platform can
// fsync a directory, and the file content is already safely on disk.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
