package notify_test

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/diditflow/diditflow/internal/notify"
)

const sender = "diditflow <noreply@diditflow.test>"

func parse(t *testing.T, raw []byte) *mail.Message {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("net/mail cannot parse the message: %v\n%s", err, raw)
	}
	return msg
}

func decodedBody(t *testing.T, msg *mail.Message) string {
	t.Helper()
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatalf("decode quoted-printable body: %v", err)
	}
	return strings.ReplaceAll(string(body), "\r\n", "\n")
}

func TestRenderProducesParseableRFC5322(t *testing.T) {
	date := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	subject := "Vérification terminée ✅ — merci d'avoir patienté pendant que nous examinions vos documents"
	body := "Bonjour,\n\nVotre vérification est terminée.\n.line starting with a dot\nx=y and a very long line " +
		strings.Repeat("abcdefghij", 20) + "\r\nCRLF line\rCR line\n"
	m := notify.Message{
		ID:       "session-1/approved",
		To:       []string{"Zoë Exämple <zoe@example.com>", "bob@example.com"},
		Subject:  subject,
		TextBody: body,
	}
	raw, err := m.Render(sender, date)
	if err != nil {
		t.Fatal(err)
	}

	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if bytes.ContainsAny(line, "\r\n") {
			t.Fatalf("line %d has a bare CR or LF: %q", i, line)
		}
		if len(line) > 998 {
			t.Fatalf("line %d is %d octets long", i, len(line))
		}
	}

	msg := parse(t, raw)
	if got, err := msg.Header.Date(); err != nil || !got.Equal(date) {
		t.Errorf("Date = %v, %v; want %v", got, err, date)
	}
	from, err := mail.ParseAddress(msg.Header.Get("From"))
	if err != nil || from.Address != "noreply@diditflow.test" || from.Name != "diditflow" {
		t.Errorf("From = %v, %v", from, err)
	}
	to, err := msg.Header.AddressList("To")
	if err != nil || len(to) != 2 || to[0].Name != "Zoë Exämple" || to[0].Address != "zoe@example.com" || to[1].Address != "bob@example.com" {
		t.Errorf("To = %v, %v", to, err)
	}
	gotSubject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || gotSubject != subject {
		t.Errorf("Subject = %q, %v; want %q", gotSubject, err, subject)
	}
	if !strings.HasPrefix(msg.Header.Get("Subject"), "=?utf-8?q?") {
		t.Errorf("non-ASCII Subject not RFC 2047-encoded: %q", msg.Header.Get("Subject"))
	}
	for name, want := range map[string]string{
		"MIME-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
	} {
		if got := msg.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	wantBody := "Bonjour,\n\nVotre vérification est terminée.\n.line starting with a dot\nx=y and a very long line " +
		strings.Repeat("abcdefghij", 20) + "\nCRLF line\nCR line\n"
	if got := decodedBody(t, msg); got != wantBody {
		t.Errorf("body = %q, want %q", got, wantBody)
	}
}

func TestRenderASCIISubjectStaysReadable(t *testing.T) {
	m := testMessage()
	raw, err := m.Render(sender, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := parse(t, raw).Header.Get("Subject"); got != m.Subject {
		t.Errorf("Subject = %q, want %q", got, m.Subject)
	}
}

func TestMessageIDIsStablePerID(t *testing.T) {
	m := testMessage()
	idOf := func(m notify.Message, date time.Time) string {
		t.Helper()
		raw, err := m.Render(sender, date)
		if err != nil {
			t.Fatal(err)
		}
		return parse(t, raw).Header.Get("Message-ID")
	}
	first := idOf(m, time.Unix(1, 0))
	m.TextBody = "a retry may render a different body"
	if again := idOf(m, time.Unix(2, 0)); again != first {
		t.Errorf("Message-ID changed across renders of one ID: %q then %q", first, again)
	}
	if !strings.HasPrefix(first, "<") || !strings.HasSuffix(first, "@diditflow.test>") {
		t.Errorf("Message-ID = %q, want <...@diditflow.test>", first)
	}
	m.ID = "session-123/aml-hit"
	if other := idOf(m, time.Unix(1, 0)); other == first {
		t.Errorf("different IDs share Message-ID %q", first)
	}
}

func TestRenderRejectsHeaderInjection(t *testing.T) {
	base := testMessage()
	tests := map[string]struct {
		from string
		edit func(*notify.Message)
	}{
		"subject CRLF": {sender, func(m *notify.Message) { m.Subject = "Hi\r\nBcc: victim@example.com" }},
		"subject LF":   {sender, func(m *notify.Message) { m.Subject = "Hi\nBcc: victim@example.com" }},
		"subject CR":   {sender, func(m *notify.Message) { m.Subject = "Hi\rBcc: victim@example.com" }},
		"to":           {sender, func(m *notify.Message) { m.To = []string{"a@example.com\r\nBcc: victim@example.com"} }},
		"id":           {sender, func(m *notify.Message) { m.ID = "s/k\r\nX-Evil: 1" }},
		"from":         {"noreply@diditflow.test\nBcc: victim@example.com", func(*notify.Message) {}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			m := base
			m.To = append([]string(nil), base.To...)
			tt.edit(&m)
			_, err := m.Render(tt.from, time.Now())
			if !errors.Is(err, notify.ErrHeaderInjection) {
				t.Fatalf("err = %v, want ErrHeaderInjection", err)
			}
			if !notify.IsPermanent(err) {
				t.Errorf("header injection is not permanent: %v", err)
			}
		})
	}
}

func TestRenderRejectsInvalidAddresses(t *testing.T) {
	for name, to := range map[string][]string{
		"none":      nil,
		"malformed": {"alice at example dot com"},
		"empty":     {""},
		"non-ASCII": {"jöe@example.com"},
		"second":    {"ok@example.com", "<broken"},
	} {
		t.Run(name, func(t *testing.T) {
			m := testMessage()
			m.To = to
			_, err := m.Render(sender, time.Now())
			if !errors.Is(err, notify.ErrInvalidAddress) || !notify.IsPermanent(err) {
				t.Fatalf("err = %v, want permanent ErrInvalidAddress", err)
			}
			for _, addr := range to {
				if addr != "" && strings.Contains(err.Error(), addr) {
					t.Errorf("error %q repeats the address, which is PII", err)
				}
			}
		})
	}
}

func TestRenderRequiresID(t *testing.T) {
	m := testMessage()
	m.ID = ""
	if _, err := m.Render(sender, time.Now()); !errors.Is(err, notify.ErrInvalidMessage) || !notify.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent ErrInvalidMessage", err)
	}
}
