package smtptest_test

import (
	"errors"
	"io"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/diditflow/diditflow/internal/harness/smtptest"
)

// dialogue is one SMTP transaction's replies, as a client sees them.
type dialogue struct {
	mail  error
	rcpts []error
	data  error // the reply to DATA (354 expected)
	dot   error // the reply to the final "."
}

// send runs one transaction against the server with net/smtp, recording
// every reply instead of stopping at the first refusal.
func send(t *testing.T, s *smtptest.Server, to ...string) dialogue {
	t.Helper()
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var d dialogue
	if d.mail = c.Mail("sender@example.com"); d.mail != nil {
		return d
	}
	accepted := 0
	for _, rcpt := range to {
		err := c.Rcpt(rcpt)
		d.rcpts = append(d.rcpts, err)
		if err == nil {
			accepted++
		}
	}
	if accepted == 0 {
		return d
	}
	w, err := c.Data()
	if d.data = err; err != nil {
		return d
	}
	if _, err := io.WriteString(w, "Subject: hello\r\n\r\nbody\r\n"); err != nil {
		t.Fatal(err)
	}
	d.dot = w.Close()
	if d.dot == nil {
		_ = c.Quit()
	}
	return d
}

func code(err error) int {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return tp.Code
	}
	return 0
}

func TestDefaultAcceptsAndKeepsExistingAPI(t *testing.T) {
	s := smtptest.NewServer(t)
	var seen []smtptest.Mail
	s.OnMail(func(m smtptest.Mail) { seen = append(seen, m) })
	s.RejectRecipient(func(to string) bool { return to == "gone@example.com" })
	d := send(t, s, "a@example.com", "gone@example.com")
	if d.dot != nil || d.rcpts[0] != nil || code(d.rcpts[1]) != 550 {
		t.Fatalf("dialogue = %+v", d)
	}
	mails := s.Mails()
	if len(mails) != 1 || mails[0].Subject != "hello" || strings.Join(mails[0].To, ",") != "a@example.com" || !mails[0].Accepted() {
		t.Fatalf("mails = %+v", mails)
	}
	if len(seen) != 1 || s.Count("hello") != 1 {
		t.Fatalf("OnMail saw %d, Count %d", len(seen), s.Count("hello"))
	}
}

func TestGreylistFirstCallsThenAccept(t *testing.T) {
	s := smtptest.NewServer(t)
	s.Script(smtptest.Rule{Command: smtptest.RcptTo, Calls: []int{1}, Reply: smtptest.Greylisted},
		smtptest.Rule{Command: smtptest.DataEnd, Calls: []int{1}, Reply: smtptest.Greylisted})
	if d := send(t, s, "a@example.com"); code(d.rcpts[0]) != 451 {
		t.Fatalf("first RCPT: %+v, want 451", d)
	}
	d := send(t, s, "a@example.com")
	if d.rcpts[0] != nil || code(d.dot) != 451 || !strings.Contains(d.dot.Error(), "4.7.1") {
		t.Fatalf("second attempt: %+v, want RCPT accepted and 451 4.7.1 to the final dot", d)
	}
	if d := send(t, s, "a@example.com"); d.dot != nil {
		t.Fatalf("third attempt: %+v, want accepted", d)
	}
	got := s.Received()
	if len(got) != 2 || got[0].Code != 451 || got[0].Accepted() || !got[1].Accepted() || len(s.Mails()) != 1 {
		t.Fatalf("received %+v, want a refused then an accepted message", got)
	}
	if s.Calls(smtptest.RcptTo) != 3 || s.Calls(smtptest.DataEnd) != 2 || s.Calls(smtptest.MailFrom) != 3 {
		t.Fatalf("calls: MAIL %d RCPT %d . %d", s.Calls(smtptest.MailFrom), s.Calls(smtptest.RcptTo), s.Calls(smtptest.DataEnd))
	}
}

func TestRuleForOneRecipientCountsItsCalls(t *testing.T) {
	s := smtptest.NewServer(t)
	s.Script(smtptest.Rule{Command: smtptest.RcptTo, Recipient: "B@example.com", Calls: []int{2}, Reply: smtptest.NoSuchUser})
	if d := send(t, s, "a@example.com", "b@example.com"); d.rcpts[0] != nil || d.rcpts[1] != nil {
		t.Fatalf("first: %+v, want both accepted", d)
	}
	d := send(t, s, "a@example.com", "b@example.com")
	if d.rcpts[0] != nil || code(d.rcpts[1]) != 550 || d.dot != nil {
		t.Fatalf("second: %+v, want b refused (550) and the message accepted for a", d)
	}
	if m := s.Mails(); len(m) != 2 || strings.Join(m[1].To, ",") != "a@example.com" {
		t.Fatalf("mails = %+v", m)
	}
	s.ClearScript()
	if d := send(t, s, "b@example.com"); d.rcpts[0] != nil {
		t.Fatalf("after ClearScript: %+v", d)
	}
}

func TestHangUpAfterFinalDotKeepsTheMessageWithoutReply(t *testing.T) {
	s := smtptest.NewServer(t)
	onMail := 0
	s.OnMail(func(smtptest.Mail) { onMail++ })
	s.Script(smtptest.Rule{Command: smtptest.DataEnd, Reply: smtptest.HangUp})
	d := send(t, s, "a@example.com")
	if d.dot == nil || code(d.dot) != 0 {
		t.Fatalf("reply to the final dot: %v, want a lost connection, no reply", d.dot)
	}
	got := s.Received()
	if len(got) != 1 || !got[0].ReplyLost || got[0].Accepted() || got[0].Subject != "hello" {
		t.Fatalf("received %+v, want the whole message, reply lost", got)
	}
	if len(s.Mails()) != 0 || onMail != 0 || len(s.Kept()) != 1 {
		t.Fatalf("%d accepted, %d OnMail, %d kept; want 0, 0, 1", len(s.Mails()), onMail, len(s.Kept()))
	}
}

func TestHangUpAtRcpt(t *testing.T) {
	s := smtptest.NewServer(t)
	s.Script(smtptest.Rule{Command: smtptest.RcptTo, Reply: smtptest.HangUp})
	if d := send(t, s, "a@example.com"); d.rcpts[0] == nil || code(d.rcpts[0]) != 0 {
		t.Fatalf("RCPT: %v, want a lost connection", d.rcpts[0])
	}
	if n := len(s.Received()); n != 0 {
		t.Fatalf("%d messages received", n)
	}
}

func TestDelayedReply(t *testing.T) {
	s := smtptest.NewServer(t)
	const delay = 200 * time.Millisecond
	s.Script(smtptest.Rule{Command: smtptest.DataEnd, Reply: smtptest.Reply{Delay: delay}})
	start := time.Now()
	if d := send(t, s, "a@example.com"); d.dot != nil {
		t.Fatalf("dialogue = %+v", d)
	}
	if took := time.Since(start); took < delay {
		t.Fatalf("answered after %v, want at least %v", took, delay)
	}
	if len(s.Mails()) != 1 {
		t.Fatal("a slow accept is still an accept")
	}
}

func TestCloseCutsDelayShort(t *testing.T) {
	s, err := smtptest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Script(smtptest.Rule{Command: smtptest.MailFrom, Reply: smtptest.Reply{Delay: time.Hour}})
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() { done <- c.Mail("sender@example.com") }()
	time.Sleep(50 * time.Millisecond)
	_ = s.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close left a scripted delay running")
	}
}

// Text reads a body as its reader would: quoted-printable decoded (a soft
// line break, an encoded "="), CRLF as LF; a plain body as it is.
func TestMailText(t *testing.T) {
	for _, c := range []struct{ header, body, want string }{
		{"Content-Transfer-Encoding: quoted-printable\r\n", "a long line that was =\r\nbroken, 1 =3D 1\r\nnext\r\n", "a long line that was broken, 1 = 1\nnext\n"},
		{"", "plain =3D text\r\n", "plain =3D text\n"},
	} {
		m := smtptest.Mail{Data: []byte("Subject: x\r\n" + c.header + "\r\n" + c.body)}
		got, err := m.Text()
		if err != nil || got != c.want {
			t.Errorf("Text() = %q, %v; want %q", got, err, c.want)
		}
	}
}
