package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/diditflow/diditflow/internal/pii"
)

// DefaultSMTPTimeout bounds one delivery when the caller's context has no
// earlier deadline, so a server that stops answering cannot hold a worker slot.
const DefaultSMTPTimeout = 30 * time.Second

// helloName is the name sent in EHLO: a worker has no host name a mail
// server could check, so it sends the one every client may.
const helloName = "localhost"

type startTLSPolicy string

const (
	startTLSOptional startTLSPolicy = "optional"
	startTLSRequired startTLSPolicy = "required"
	startTLSOff      startTLSPolicy = "off"
)

// SMTP is a Mailer that delivers each message over a new SMTP connection.
// One connection per message keeps the client stateless and lets retries and
// the circuit breaker work message by message. It is safe for concurrent use.
type SMTP struct {
	host        string
	addr        string
	implicitTLS bool
	startTLS    startTLSPolicy
	username    string
	password    string
	from        *mail.Address
	tlsConfig   *tls.Config
	timeout     time.Duration
	logger      *slog.Logger
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	now         func() time.Time
}

// SMTPOption configures NewSMTP.
type SMTPOption func(*SMTP)

// WithTimeout bounds each delivery (dial to QUIT) when the context allows
// longer; the default is DefaultSMTPTimeout. Non-positive values are ignored.
func WithTimeout(d time.Duration) SMTPOption {
	return func(s *SMTP) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// WithLogger sets the logger; the default is slog.Default().
func WithLogger(l *slog.Logger) SMTPOption {
	return func(s *SMTP) { s.logger = l }
}

// NewSMTP returns a Mailer for the server at rawURL, sending from the given
// address. Accepted URLs:
//
//	smtp://[user:pass@]host[:port][?starttls=optional|required|off]   (port 25)
//	smtps://[user:pass@]host[:port]                                   (port 465, implicit TLS)
//
// With starttls=optional (the default) the connection is upgraded when the
// server offers STARTTLS. Credentials are sent with AUTH PLAIN, which is only
// done over TLS or to localhost.
func NewSMTP(rawURL, from string, opts ...SMTPOption) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse's errors quote the URL or a piece of it ("invalid port
		// \":pa\" after host" for a password with a '/'), and with it the
		// password: none of it is repeated.
		return nil, errors.New("notify: SMTP URL does not parse; percent-encode reserved characters in the user and password")
	}
	s := &SMTP{
		startTLS: startTLSOptional,
		timeout:  DefaultSMTPTimeout,
		logger:   slog.Default(),
		dial:     (&net.Dialer{}).DialContext,
		now:      time.Now,
	}
	port := ""
	switch u.Scheme {
	case "smtp":
		port = "25"
	case "smtps":
		port = "465"
		s.implicitTLS = true
	default:
		return nil, fmt.Errorf("notify: SMTP URL: scheme %q, want smtp or smtps", u.Scheme)
	}
	s.host = u.Hostname()
	if s.host == "" || u.Opaque != "" {
		return nil, errors.New("notify: SMTP URL: missing host")
	}
	if u.Port() != "" {
		port = u.Port()
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.Path != "" && u.Path != "/" {
		return nil, errors.New("notify: SMTP URL: unexpected path")
	}
	for key, values := range u.Query() {
		if key != "starttls" {
			return nil, fmt.Errorf("notify: SMTP URL: unknown parameter %q", key)
		}
		if s.implicitTLS {
			return nil, errors.New("notify: SMTP URL: starttls does not apply to smtps")
		}
		switch p := startTLSPolicy(values[len(values)-1]); p {
		case startTLSOptional, startTLSRequired, startTLSOff:
			s.startTLS = p
		default:
			return nil, fmt.Errorf("notify: SMTP URL: starttls=%q, want optional, required or off", string(p))
		}
	}
	if u.User != nil {
		s.username = u.User.Username()
		s.password, _ = u.User.Password()
	}
	if s.username != "" && !s.implicitTLS && s.startTLS == startTLSOff && !isLocalhost(s.host) {
		return nil, errors.New("notify: SMTP URL: credentials with starttls=off would be sent in clear")
	}
	if s.from, err = parseSender(from); err != nil {
		return nil, fmt.Errorf("notify: SMTP sender: %w", err)
	}
	for _, opt := range opts {
		opt(s)
	}
	return s, nil
}

// Send delivers m to every recipient the server accepts. Once the server has
// accepted the message data, Send reports success even if QUIT fails, so a
// retry cannot deliver it twice.
//
// Every reply code is taken at its word: a 4xx or 5xx reply, at any stage and
// to the final "." too, means the message was not accepted, and the error
// satisfies NotDelivered (4xx transient, 5xx permanent). The one failure that
// leaves doubt is a connection lost or timed out after the final "." was
// written and before a reply was read: that error wraps ErrUnconfirmed.
//
// A recipient refused for good (5xx to RCPT) is dropped and reported through
// m.Refused, and the message goes to the others; see Message.Refused.
func (s *SMTP) Send(ctx context.Context, m Message) (err error) {
	raw, rcpts, err := m.render(s.from, s.now())
	if err != nil {
		return fmt.Errorf("smtp %s: %w", m.ID, notDelivered(err))
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// A client span under the activity's, when the process traces: the
	// server and the counts, never an address.
	ctx, span := otel.Tracer(tracerName).Start(ctx, "SMTP send", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("server.address", s.host), attribute.Int("smtp.recipients", len(rcpts))))
	var accepted int
	defer func() {
		span.SetAttributes(attribute.Int("smtp.accepted", accepted))
		if err != nil {
			span.SetStatus(codes.Error, sendOutcome(err))
		}
		span.End()
	}()
	accepted, err = s.deliver(ctx, m.ID, raw, rcpts, m.Commit, m.Refused)
	if err != nil {
		// Network errors caused by the deadline or a cancellation say only
		// "i/o timeout"; wrapping the context error lets callers and the
		// breaker tell a caller's cancellation from a slow server.
		if ctxErr := contextErr(ctx); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
		return fmt.Errorf("smtp %s: %w", m.ID, notDelivered(err))
	}
	s.logger.DebugContext(ctx, "notify: smtp message delivered", "message_id", m.ID,
		"recipients", accepted, "refused", len(rcpts)-accepted)
	return nil
}

// tracerName is the instrumentation scope of the mailer's spans.
const tracerName = "github.com/diditflow/diditflow/internal/notify"

// sendOutcome names how a send failed, in words that hold no address.
func sendOutcome(err error) string {
	switch {
	case errors.Is(err, ErrUnconfirmed):
		return "unconfirmed"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "not delivered"
}

// deliver runs one SMTP transaction and returns how many recipients the
// server accepted the message for.
func (s *SMTP) deliver(ctx context.Context, id string, raw []byte, rcpts []envelopeRecipient, commit func() error, onRefused func([]Refusal)) (int, error) {
	conn, err := s.dial(ctx, "tcp", s.addr)
	if err != nil {
		return 0, fmt.Errorf("dial: %w", err)
	}
	// net/smtp has no context support: a deadline bounds every read and
	// write, and cancellation moves the deadline into the past to unblock them.
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if s.implicitTLS {
		tc := tls.Client(conn, s.clientTLSConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return 0, fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		_ = conn.Close()
		return 0, replyError("greeting", err)
	}
	defer c.Close()

	if err := c.Hello(helloName); err != nil {
		return 0, replyError("EHLO", err)
	}
	if !s.implicitTLS && s.startTLS != startTLSOff {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.clientTLSConfig()); err != nil {
				return 0, replyError("STARTTLS", err)
			}
		} else if s.startTLS == startTLSRequired {
			// Transient: the server, not the message, is at fault, and the
			// breaker should see it.
			return 0, errors.New("server does not offer STARTTLS, which starttls=required demands")
		} else {
			s.logger.DebugContext(ctx, "notify: smtp server offers no STARTTLS, sending in clear", "host", s.host)
		}
	}
	if s.username != "" {
		if _, isTLS := c.TLSConnectionState(); !isTLS && !isLocalhost(s.host) {
			return 0, errors.New("refusing AUTH over an unencrypted connection")
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			return 0, errors.New("server does not offer AUTH, but the URL has credentials")
		}
		if err := c.Auth(smtp.PlainAuth("", s.username, s.password, s.host)); err != nil {
			return 0, replyError("AUTH", err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return 0, replyError("MAIL", err)
	}
	accepted, err := s.recipients(ctx, c, id, rcpts, onRefused)
	if err != nil {
		return 0, err
	}
	if err := s.data(c, raw, commit); err != nil {
		return 0, err
	}
	_ = c.Quit()
	return accepted, nil
}

// recipients sends RCPT for each recipient and returns how many the server
// accepted. Each recipient is answered on its own (RFC 5321 §3.3): a 5xx
// drops that recipient only, while a 4xx fails the whole message, which is
// retried later as a whole, because nothing has been sent yet.
func (s *SMTP) recipients(ctx context.Context, c *smtp.Client, id string, rcpts []envelopeRecipient, onRefused func([]Refusal)) (int, error) {
	var (
		refused  []Refusal
		firstErr *ReplyError
	)
	for _, r := range rcpts {
		err := c.Rcpt(r.address)
		if err == nil {
			continue
		}
		var tpErr *textproto.Error
		if !errors.As(err, &tpErr) || tpErr.Code < 500 || tpErr.Code > 599 {
			return 0, replyError("RCPT", err)
		}
		reply := newReplyError("RCPT", tpErr.Code, tpErr.Msg)
		if firstErr == nil {
			firstErr = reply
		}
		refusal := Refusal{Index: r.index, RecipientHash: pii.HashAddress(r.address),
			Code: reply.Code, Enhanced: reply.Enhanced,
			Text: pii.RedactAddresses(strings.TrimSpace(strings.TrimPrefix(reply.Text, reply.Enhanced)))}
		refused = append(refused, refusal)
		s.logger.DebugContext(ctx, "notify: smtp recipient refused", "message_id", id,
			"recipient_hash", refusal.RecipientHash, "code", refusal.Code, "enhanced", refusal.Enhanced)
	}
	if len(refused) > 0 && onRefused != nil {
		onRefused(refused)
	}
	switch {
	case len(refused) < len(rcpts):
		return len(rcpts) - len(refused), nil
	case len(rcpts) == 1:
		return 0, firstErr
	default:
		return 0, fmt.Errorf("all %d recipients refused: %w", len(rcpts), firstErr)
	}
}

// data sends DATA, the message and the final ".", and reads the reply to
// it. net/smtp's Data writes the "." and reads its reply in one call, which
// would hide the one distinction that matters here: whether the server can
// have the message (the "." went out) when no reply comes back.
func (s *SMTP) data(c *smtp.Client, raw []byte, commit func() error) error {
	id, err := c.Text.Cmd("DATA")
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	c.Text.StartResponse(id)
	_, _, err = c.Text.ReadResponse(354)
	c.Text.EndResponse(id)
	if err != nil {
		return replyError("DATA", err)
	}
	w := c.Text.DotWriter()
	if _, err := w.Write(raw); err != nil {
		return fmt.Errorf("write message: %w", err)
	}
	if commit != nil {
		// Without the final "." the server discards what it has.
		if err := commit(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	// A failed write leaves the "." (the last bytes written) unsent, so the
	// server cannot have taken the message.
	if err := w.Close(); err != nil {
		return fmt.Errorf(`write final ".": %w`, err)
	}
	// The server has the whole message: from here only its reply tells.
	if _, _, err := c.Text.ReadResponse(2); err != nil {
		var tpErr *textproto.Error
		if errors.As(err, &tpErr) {
			return replyError(".", err)
		}
		return fmt.Errorf(`%w: reply to the final ".": %w`, ErrUnconfirmed, err)
	}
	return nil
}

func (s *SMTP) clientTLSConfig() *tls.Config {
	cfg := &tls.Config{}
	if s.tlsConfig != nil {
		cfg = s.tlsConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = s.host
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

// replyError turns an SMTP reply into a ReplyError, which carries its own
// permanent/transient classification; other errors (I/O, TLS) stay transient.
func replyError(command string, err error) error {
	var tpErr *textproto.Error
	if errors.As(err, &tpErr) {
		return newReplyError(command, tpErr.Code, tpErr.Msg)
	}
	return fmt.Errorf("%s: %w", command, err)
}

// contextErr is ctx.Err, except that it also reports a deadline that has
// passed but whose timer has not fired yet: the connection deadline, set to
// the same instant, can trip first.
func contextErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// isLocalhost mirrors net/smtp's rule for when PLAIN may go over plain text.
func isLocalhost(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
