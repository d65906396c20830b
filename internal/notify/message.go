// Package notify delivers diditflow's notifications: e-mail to users and to
// compliance, through a local outbox or SMTP, and JSON webhooks to compliance.
//
// Every failure is classified once, as permanent (IsPermanent) or transient,
// so activities can park what cannot succeed and retry the rest; a circuit
// breaker (WithBreaker, WithPosterBreaker) keeps a dead server from being
// hammered by every retry.
package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
)

// Mailer sends one message. Implementations classify failures so that
// IsPermanent tells the caller whether to retry.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// Message is a plain-text e-mail.
type Message struct {
	// ID identifies the notification, such as "<session>/<kind>". It must be
	// stable across retries: the Message-ID header and the outbox file name
	// derive from it so that a re-sent message can be recognised as a duplicate.
	ID       string
	To       []string // RFC 5322 addresses, with or without display names
	Subject  string
	TextBody string
	// Commit, if set, is called at the last moment at which the delivery can
	// still be called off: over SMTP when the whole message but its final
	// "." is with the server, in the outbox when the file is complete under
	// a temporary name and not yet renamed into place. An error calls the
	// delivery off. Callers record "handed over" there, so that a crash
	// leaves a message in doubt rather than sent twice; if Send then fails
	// with an error for which NotDelivered holds, the message was not
	// delivered after all and may be sent again.
	Commit func() error `json:"-"`
	// Refused, if set, is called once per Send, before Commit or before
	// Send fails, with the recipients the server refused for good (5xx to
	// RCPT) when it deferred none (a 4xx to any RCPT fails the whole Send,
	// transiently, with nothing sent). The message goes to the recipients
	// the server accepted; when it accepted none, Send fails with an error
	// for which IsRecipientRejected holds.
	Refused func([]Refusal) `json:"-"`
}

// envelopeRecipient is one RCPT address and its position in Message.To.
type envelopeRecipient struct {
	address string
	index   int
}

// Render returns the message as RFC 5322 bytes with CRLF line endings, sent
// from the given address at the given time.
func (m Message) Render(from string, date time.Time) ([]byte, error) {
	sender, err := parseSender(from)
	if err != nil {
		return nil, err
	}
	raw, _, err := m.render(sender, date)
	return raw, err
}

// render returns the message bytes and the bare envelope recipients, each
// address once.
func (m Message) render(from *mail.Address, date time.Time) ([]byte, []envelopeRecipient, error) {
	if m.ID == "" {
		return nil, nil, fmt.Errorf("%w: empty ID", ErrInvalidMessage)
	}
	if err := checkHeaderValue("ID", m.ID); err != nil {
		return nil, nil, err
	}
	if err := checkHeaderValue("Subject", m.Subject); err != nil {
		return nil, nil, err
	}
	if len(m.To) == 0 {
		return nil, nil, fmt.Errorf("%w: no recipients", ErrInvalidAddress)
	}
	to := make([]string, 0, len(m.To))
	rcpts := make([]envelopeRecipient, 0, len(m.To))
	seen := make(map[string]bool, len(m.To))
	for i, s := range m.To {
		// The index, not the value, goes into the error: addresses are PII.
		addr, err := parseAddress(fmt.Sprintf("To[%d]", i), s)
		if err != nil {
			return nil, nil, err
		}
		key := strings.ToLower(addr.Address)
		if seen[key] {
			continue
		}
		seen[key] = true
		to = append(to, addr.String())
		rcpts = append(rcpts, envelopeRecipient{address: addr.Address, index: i})
	}

	var b bytes.Buffer
	header := func(name, value string) {
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(value)
		b.WriteString("\r\n")
	}
	header("Date", date.Format(time.RFC1123Z))
	header("From", from.String())
	header("To", foldList(to))
	header("Subject", encodeSubject(m.Subject))
	header("Message-ID", MessageID(m.ID, from.Address))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")

	qp := quotedprintable.NewWriter(&b)
	// Normalising first means a stray CR cannot survive as a bare line break,
	// which some servers reject and others treat differently.
	body := strings.ReplaceAll(m.TextBody, "\r\n", "\n")
	body = strings.ReplaceAll(body, "\r", "\n")
	if _, err := qp.Write([]byte(body)); err != nil {
		return nil, nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, nil, err
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes(), rcpts, nil
}

// MessageID is the Message-ID header of the message with the given ID sent
// from fromAddress: the same on every attempt, so duplicates can be told.
func MessageID(id, fromAddress string) string {
	sum := sha256.Sum256([]byte(id))
	domain := fromAddress[strings.LastIndexByte(fromAddress, '@')+1:]
	return "<" + hex.EncodeToString(sum[:16]) + "@" + domain + ">"
}

func encodeSubject(s string) string {
	// QEncoding splits long subjects into several encoded-words; putting each
	// on its own folded line keeps header lines within RFC 5322's limits.
	return strings.ReplaceAll(mime.QEncoding.Encode("utf-8", s), "?= =?", "?=\r\n =?")
}

func foldList(items []string) string {
	joined := strings.Join(items, ", ")
	if len(joined) <= 70 {
		return joined
	}
	return strings.Join(items, ",\r\n ")
}

func checkHeaderValue(name, value string) error {
	if strings.ContainsAny(value, "\r\n") {
		return fmt.Errorf("%w: %s", ErrHeaderInjection, name)
	}
	return nil
}

func parseSender(from string) (*mail.Address, error) {
	return parseAddress("From", from)
}

// parseAddress accepts only ASCII addr-specs: a UTF-8 address would need
// SMTPUTF8 end to end, which the plain-text 7-bit message does not promise.
func parseAddress(field, s string) (*mail.Address, error) {
	if err := checkHeaderValue(field, s); err != nil {
		return nil, err
	}
	addr, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: malformed", ErrInvalidAddress, field)
	}
	for i := 0; i < len(addr.Address); i++ {
		if c := addr.Address[i]; c < 0x21 || c > 0x7e {
			return nil, fmt.Errorf("%w: %s: non-ASCII or control character", ErrInvalidAddress, field)
		}
	}
	return addr, nil
}
