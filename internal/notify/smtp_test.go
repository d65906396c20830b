package notify_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/harness/smtptest"
	"github.com/diditflow/diditflow/internal/notify"
	"github.com/diditflow/diditflow/internal/pii"
)

func TestSMTPDeliversMessage(t *testing.T) {
	b := &backend{}
	addr, _ := startServer(t, b)
	s := newSMTP(t, "smtp://"+addr)

	m := testMessage()
	m.To = []string{"Alice Example <alice@example.com>", "bob@example.com", "ALICE@example.com"}
	m.Subject = "Vérification terminée"
	m.TextBody = "Hello,\n.a line that needs dot-stuffing\n.\nend=of message é\n"
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}

	msgs := b.messages()
	if len(msgs) != 1 {
		t.Fatalf("server received %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if got.From != "noreply@diditflow.test" {
		t.Errorf("MAIL FROM = %q", got.From)
	}
	if strings.Join(got.To, ",") != "alice@example.com,bob@example.com" {
		t.Errorf("RCPT TO = %q, want each address once", got.To)
	}
	msg := parse(t, got.Data)
	if to, _ := msg.Header.AddressList("To"); len(to) != 2 {
		t.Errorf("To header lists %v, want each address once", to)
	}
	if body := decodedBody(t, msg); body != m.TextBody {
		t.Errorf("received body = %q, want %q", body, m.TextBody)
	}
	if got.TLS || got.User != "" {
		t.Errorf("plain server: TLS=%v user=%q", got.TLS, got.User)
	}
}

func TestSMTPRejectedRecipientIsPermanent(t *testing.T) {
	b := &backend{rcptErr: &smtp.SMTPError{
		Code:         550,
		EnhancedCode: smtp.EnhancedCode{5, 1, 1},
		Message:      "<alice@example.com>: mailbox unknown",
	}}
	addr, _ := startServer(t, b)
	err := newSMTP(t, "smtp://"+addr).Send(context.Background(), testMessage())
	if !notify.IsPermanent(err) {
		t.Fatalf("550 is not permanent: %v", err)
	}
	var reply *notify.ReplyError
	if !errors.As(err, &reply) || reply.Code != 550 || reply.Command != "RCPT" || reply.Enhanced != "5.1.1" {
		t.Fatalf("err = %#v, want a RCPT 550 5.1.1 ReplyError", err)
	}
	if strings.Contains(err.Error(), "alice") {
		t.Errorf("error %q repeats the server's text with the address", err)
	}
	if n := len(b.messages()); n != 0 {
		t.Errorf("server received %d messages", n)
	}
}

func TestSMTPTemporaryFailureIsTransient(t *testing.T) {
	b := &backend{rcptErr: &smtp.SMTPError{
		Code:         451,
		EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message:      "try again later",
	}}
	addr, _ := startServer(t, b)
	err := newSMTP(t, "smtp://"+addr).Send(context.Background(), testMessage())
	var reply *notify.ReplyError
	if !errors.As(err, &reply) || reply.Code != 451 {
		t.Fatalf("err = %v, want a 451 ReplyError", err)
	}
	if notify.IsPermanent(err) {
		t.Errorf("451 is classified permanent: %v", err)
	}
}

func TestSMTPConnectionRefusedIsTransient(t *testing.T) {
	err := newSMTP(t, "smtp://"+closedAddr(t)).Send(context.Background(), testMessage())
	if err == nil || notify.IsPermanent(err) {
		t.Fatalf("err = %v, want a transient error", err)
	}
}

func TestSMTPAuthPlain(t *testing.T) {
	b := &backend{user: "diditflow", password: "p@ss:word"}
	addr, _ := startServer(t, b)
	creds := url.UserPassword(b.user, b.password).String()

	if err := newSMTP(t, "smtp://"+creds+"@"+addr).Send(context.Background(), testMessage()); err != nil {
		t.Fatal(err)
	}
	if msgs := b.messages(); len(msgs) != 1 || msgs[0].User != "diditflow" {
		t.Fatalf("server received %+v, want one message from an authenticated session", msgs)
	}

	wrong := url.UserPassword(b.user, "wrong").String()
	err := newSMTP(t, "smtp://"+wrong+"@"+addr).Send(context.Background(), testMessage())
	var reply *notify.ReplyError
	if !errors.As(err, &reply) || reply.Command != "AUTH" || reply.Code != 535 || !notify.IsPermanent(err) {
		t.Fatalf("wrong password: err = %v, want permanent AUTH 535", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error %q leaks the password", err)
	}
	if n := len(b.messages()); n != 1 {
		t.Errorf("server received %d messages, want still 1", n)
	}
}

func TestSMTPStartTLS(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)

	t.Run("required and offered", func(t *testing.T) {
		b := &backend{user: "u", password: "p"}
		addr, _ := startServer(t, b, withSTARTTLS(serverTLS))
		s := newSMTP(t, "smtp://u:p@"+addr+"?starttls=required", notify.WithTLSConfig(clientTLS))
		if err := s.Send(context.Background(), testMessage()); err != nil {
			t.Fatal(err)
		}
		if msgs := b.messages(); len(msgs) != 1 || !msgs[0].TLS || msgs[0].User != "u" {
			t.Fatalf("server received %+v, want one message over TLS", msgs)
		}
	})
	t.Run("optional upgrades when offered", func(t *testing.T) {
		b := &backend{}
		addr, _ := startServer(t, b, withSTARTTLS(serverTLS))
		if err := newSMTP(t, "smtp://"+addr, notify.WithTLSConfig(clientTLS)).Send(context.Background(), testMessage()); err != nil {
			t.Fatal(err)
		}
		if msgs := b.messages(); len(msgs) != 1 || !msgs[0].TLS {
			t.Fatalf("server received %+v, want one message over TLS", msgs)
		}
	})
	t.Run("required but not offered", func(t *testing.T) {
		b := &backend{}
		addr, _ := startServer(t, b)
		err := newSMTP(t, "smtp://"+addr+"?starttls=required").Send(context.Background(), testMessage())
		if err == nil || notify.IsPermanent(err) {
			t.Fatalf("err = %v, want a transient error", err)
		}
		if n := len(b.messages()); n != 0 {
			t.Errorf("server received %d messages in clear", n)
		}
	})
	t.Run("off", func(t *testing.T) {
		b := &backend{}
		addr, _ := startServer(t, b, withSTARTTLS(serverTLS))
		if err := newSMTP(t, "smtp://"+addr+"?starttls=off").Send(context.Background(), testMessage()); err != nil {
			t.Fatal(err)
		}
		if msgs := b.messages(); len(msgs) != 1 || msgs[0].TLS {
			t.Fatalf("server received %+v, want one message in clear", msgs)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		b := &backend{}
		addr, _ := startServer(t, b, withSTARTTLS(serverTLS))
		err := newSMTP(t, "smtp://"+addr+"?starttls=required").Send(context.Background(), testMessage())
		if err == nil || notify.IsPermanent(err) {
			t.Fatalf("err = %v, want a transient error", err)
		}
		if n := len(b.messages()); n != 0 {
			t.Errorf("server received %d messages", n)
		}
	})
}

func TestSMTPImplicitTLS(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	b := &backend{user: "u", password: "p"}
	addr, _ := startServer(t, b, withImplicitTLS(serverTLS))
	if err := newSMTP(t, "smtps://u:p@"+addr, notify.WithTLSConfig(clientTLS)).Send(context.Background(), testMessage()); err != nil {
		t.Fatal(err)
	}
	if msgs := b.messages(); len(msgs) != 1 || !msgs[0].TLS || msgs[0].User != "u" {
		t.Fatalf("server received %+v, want one authenticated message over TLS", msgs)
	}
}

func TestSMTPCancellationUnblocksSend(t *testing.T) {
	addr, accepted := launch.SilentServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-accepted
		cancel()
	}()
	err := newSMTP(t, "smtp://"+addr).Send(ctx, testMessage())
	if !errors.Is(err, context.Canceled) || notify.IsPermanent(err) {
		t.Fatalf("err = %v, want transient context.Canceled", err)
	}
}

func TestSMTPTimeoutIsTransient(t *testing.T) {
	addr, _ := launch.SilentServer(t)
	err := newSMTP(t, "smtp://"+addr, notify.WithTimeout(50*time.Millisecond)).Send(context.Background(), testMessage())
	if !errors.Is(err, context.DeadlineExceeded) || notify.IsPermanent(err) {
		t.Fatalf("err = %v, want transient context.DeadlineExceeded", err)
	}
}

func TestSMTPInvalidMessageFailsBeforeDialing(t *testing.T) {
	addr, _ := startServer(t, &backend{})
	s := newSMTP(t, "smtp://"+addr)
	var dials dialCounter
	dials.install(s)
	m := testMessage()
	m.Subject = "hi\r\nBcc: victim@example.com"
	if err := s.Send(context.Background(), m); !errors.Is(err, notify.ErrHeaderInjection) || !notify.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent ErrHeaderInjection", err)
	}
	if n := dials.n.Load(); n != 0 {
		t.Errorf("dialed %d times for a message that cannot be sent", n)
	}
}

func TestNewSMTPRejectsBadConfiguration(t *testing.T) {
	for name, tt := range map[string]struct{ url, from string }{
		"scheme":              {"http://mail.example.com", sender},
		"no host":             {"smtp://", sender},
		"bad starttls":        {"smtp://mail.example.com?starttls=maybe", sender},
		"starttls with smtps": {"smtps://mail.example.com?starttls=required", sender},
		"unknown parameter":   {"smtp://mail.example.com?tls=1", sender},
		"path":                {"smtp://mail.example.com/inbox", sender},
		"clear credentials":   {"smtp://u:secret@mail.example.com?starttls=off", sender},
		"unparseable":         {"smtp://u:secret@mail.example.com:port", sender},
		"sender":              {"smtp://mail.example.com", "not an address"},
		"sender injection":    {"smtp://mail.example.com", "a@example.com\r\nBcc: b@example.com"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := notify.NewSMTP(tt.url, tt.from)
			if err == nil {
				t.Fatal("NewSMTP accepted it")
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
}

// --- reply codes are definitive; only a lost reply after "." leaves doubt ---

// sinkMailer is an SMTP mailer for a scripted smtptest server.
func sinkMailer(t *testing.T, sink *smtptest.Server, opts ...notify.SMTPOption) *notify.SMTP {
	t.Helper()
	return newSMTP(t, sink.URL(), opts...)
}

// hooked returns testMessage to the given recipients with Commit and Refused
// recording their calls.
func hooked(to ...string) (notify.Message, *int, *[]notify.Refusal) {
	m := testMessage()
	m.To = to
	commits := new(int)
	refused := new([]notify.Refusal)
	m.Commit = func() error { *commits++; return nil }
	m.Refused = func(rs []notify.Refusal) { *refused = append(*refused, rs...) }
	return m, commits, refused
}

func TestSMTPReplyToFinalDotIsDefinitive(t *testing.T) {
	for name, tc := range map[string]struct {
		reply     smtptest.Reply
		permanent bool
	}{
		"451 greylisted": {smtptest.Greylisted, false},
		"554 refused":    {smtptest.Refused, true},
	} {
		t.Run(name, func(t *testing.T) {
			sink := smtptest.NewServer(t)
			sink.Script(smtptest.Rule{Command: smtptest.DataEnd, Reply: tc.reply})
			m, commits, _ := hooked("alice@example.com")
			err := sinkMailer(t, sink).Send(context.Background(), m)
			var reply *notify.ReplyError
			if !errors.As(err, &reply) || reply.Command != "." || reply.Code != tc.reply.Code {
				t.Fatalf("err = %v, want the %d to the final dot", err, tc.reply.Code)
			}
			if !notify.NotDelivered(err) || errors.Is(err, notify.ErrUnconfirmed) || notify.IsPermanent(err) != tc.permanent {
				t.Fatalf("err = %v: NotDelivered %v, permanent %v; want not delivered, permanent %v",
					err, notify.NotDelivered(err), notify.IsPermanent(err), tc.permanent)
			}
			if *commits != 1 || len(sink.Mails()) != 0 {
				t.Fatalf("%d commits, %d mails accepted; want 1 commit and none accepted", *commits, len(sink.Mails()))
			}
		})
	}
}

func TestSMTPNoReplyAfterFinalDotIsUnconfirmed(t *testing.T) {
	for name, tc := range map[string]struct {
		reply smtptest.Reply
		opts  []notify.SMTPOption
	}{
		"hang-up":    {reply: smtptest.HangUp},
		"slow reply": {reply: smtptest.Reply{Delay: time.Second}, opts: []notify.SMTPOption{notify.WithTimeout(100 * time.Millisecond)}},
	} {
		t.Run(name, func(t *testing.T) {
			sink := smtptest.NewServer(t)
			sink.Script(smtptest.Rule{Command: smtptest.DataEnd, Reply: tc.reply})
			m, commits, _ := hooked("alice@example.com")
			err := sinkMailer(t, sink, tc.opts...).Send(context.Background(), m)
			if !errors.Is(err, notify.ErrUnconfirmed) || notify.NotDelivered(err) || notify.IsPermanent(err) {
				t.Fatalf("err = %v, want transient ErrUnconfirmed that NotDelivered does not claim", err)
			}
			if *commits != 1 || sink.Calls(smtptest.DataEnd) != 1 {
				t.Fatalf("%d commits, %d messages; want 1 and 1", *commits, sink.Calls(smtptest.DataEnd))
			}
		})
	}
}

func TestSMTPFailuresBeforeFinalDotAreNotDelivered(t *testing.T) {
	for name, rule := range map[string]smtptest.Rule{
		"MAIL 553":         {Command: smtptest.MailFrom, Reply: smtptest.Reply{Code: 553, Enhanced: "5.7.1", Message: "no"}},
		"MAIL hang-up":     {Command: smtptest.MailFrom, Reply: smtptest.HangUp},
		"RCPT 451":         {Command: smtptest.RcptTo, Reply: smtptest.Greylisted},
		"RCPT hang-up":     {Command: smtptest.RcptTo, Reply: smtptest.HangUp},
		"RCPT 451 for one": {Command: smtptest.RcptTo, Recipient: "bob@example.com", Reply: smtptest.Greylisted},
	} {
		t.Run(name, func(t *testing.T) {
			sink := smtptest.NewServer(t)
			sink.Script(rule)
			m, commits, refused := hooked("alice@example.com", "bob@example.com")
			err := sinkMailer(t, sink).Send(context.Background(), m)
			if err == nil || !notify.NotDelivered(err) || errors.Is(err, notify.ErrUnconfirmed) {
				t.Fatalf("err = %v, want a failure NotDelivered holds for", err)
			}
			if *commits != 0 || len(*refused) != 0 || sink.Calls(smtptest.DataEnd) != 0 {
				t.Fatalf("%d commits, refusals %v, %d messages; want none", *commits, *refused, sink.Calls(smtptest.DataEnd))
			}
		})
	}
}

func TestSMTPRefusedRecipientIsDroppedAndReported(t *testing.T) {
	sink := smtptest.NewServer(t)
	sink.Script(smtptest.Rule{Command: smtptest.RcptTo, Recipient: "bob@example.com",
		Reply: smtptest.Reply{Code: 550, Enhanced: "5.1.1", Message: "<bob@example.com>: Recipient address rejected"}})
	m, commits, refused := hooked("Alice <alice@example.com>", "Bob <bob@example.com>")
	if err := sinkMailer(t, sink).Send(context.Background(), m); err != nil {
		t.Fatalf("Send = %v, want the message sent to the other recipient", err)
	}
	mails := sink.Mails()
	if len(mails) != 1 || strings.Join(mails[0].To, ",") != "alice@example.com" || *commits != 1 {
		t.Fatalf("mails = %+v after %d commits, want one to alice", mails, *commits)
	}
	want := notify.Refusal{Index: 1, RecipientHash: pii.HashAddress("bob@example.com"), Code: 550, Enhanced: "5.1.1",
		Text: "<[redacted]>: Recipient address rejected"}
	if len(*refused) != 1 || (*refused)[0] != want {
		t.Fatalf("refused = %+v, want %+v", *refused, want)
	}
}

func TestSMTPAllRecipientsRefused(t *testing.T) {
	sink := smtptest.NewServer(t)
	sink.Script(smtptest.Rule{Command: smtptest.RcptTo, Reply: smtptest.NoSuchUser})
	m, commits, refused := hooked("alice@example.com", "bob@example.com")
	err := sinkMailer(t, sink).Send(context.Background(), m)
	if !notify.IsRecipientRejected(err) || !notify.IsPermanent(err) || !notify.NotDelivered(err) {
		t.Fatalf("err = %v, want a permanent recipient rejection", err)
	}
	if strings.Contains(err.Error(), "@example.com") {
		t.Errorf("error %q names an address", err)
	}
	if *commits != 0 || len(*refused) != 2 || sink.Calls(smtptest.DataEnd) != 0 {
		t.Fatalf("%d commits, refusals %+v, %d messages; want 0, both, none", *commits, *refused, sink.Calls(smtptest.DataEnd))
	}
}

// TestURLErrorsQuoteNoSecret: a URL that does not parse is refused without
// repeating any piece of it, as url.Parse's own errors would (a password
// with a '/' made it "invalid port \":pa\" after host").
func TestURLErrorsQuoteNoSecret(t *testing.T) {
	if _, err := notify.NewSMTP("smtp://mailer:Zq7/ssw0rd@mail.example.com:587", "a@example.com"); err == nil || strings.Contains(err.Error(), "Zq7") {
		t.Errorf("NewSMTP: %v; want an error that quotes nothing of the URL", err)
	}
	if _, err := notify.NewCallback("https://hooks:Xk9/cret@hooks.example.com/services/T0", nil); err == nil || strings.Contains(err.Error(), "Xk9") {
		t.Errorf("NewCallback: %v; want an error that quotes nothing of the URL", err)
	}
}
