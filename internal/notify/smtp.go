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
	"time"
)

// DefaultSMTPTimeout bounds one delivery when the caller's context has no
// earlier deadline, so a server that stops answering cannot hold a worker slot.
const DefaultSMTPTimeout = 30 * time.Second

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
	helloName   string
	tlsConfig   *tls.Config
	timeout     time.Duration
	logger      *slog.Logger
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	now         func() time.Time
}

// SMTPOption configures NewSMTP.
type SMTPOption func(*SMTP)

// WithTLSConfig sets the TLS configuration for smtps:// and STARTTLS, for
// example to trust a private CA. ServerName defaults to the URL's host.
func WithTLSConfig(cfg *tls.Config) SMTPOption {
	return func(s *SMTP) { s.tlsConfig = cfg }
}

// WithHelloName sets the name sent in EHLO; the default is "localhost".
func WithHelloName(name string) SMTPOption {
	return func(s *SMTP) { s.helloName = name }
}

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
		// url.Error quotes the URL, and with it the password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("notify: SMTP URL: %w", err)
	}
	s := &SMTP{
		startTLS:  startTLSOptional,
		helloName: "localhost",
		timeout:   DefaultSMTPTimeout,
		logger:    slog.Default(),
		dial:      (&net.Dialer{}).DialContext,
		now:       time.Now,
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

// Send delivers m. Once the server has accepted the message data, Send
// reports success even if QUIT fails, so a retry cannot deliver it twice.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	raw, rcpts, err := m.render(s.from, s.now())
	if err != nil {
		return fmt.Errorf("smtp %s: %w", m.ID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.deliver(ctx, raw, rcpts, m.Commit); err != nil {
		// Network errors caused by the deadline or a cancellation say only
		// "i/o timeout"; wrapping the context error lets callers and the
		// breaker tell a caller's cancellation from a slow server.
		if ctxErr := contextErr(ctx); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
		return fmt.Errorf("smtp %s: %w", m.ID, err)
	}
	s.logger.DebugContext(ctx, "notify: smtp message delivered", "message_id", m.ID, "recipients", len(rcpts))
	return nil
}

func (s *SMTP) deliver(ctx context.Context, raw []byte, rcpts []string, commit func() error) error {
	conn, err := s.dial(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
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
			return fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		_ = conn.Close()
		return replyError("greeting", err)
	}
	defer c.Close()

	if err := c.Hello(s.helloName); err != nil {
		return replyError("EHLO", err)
	}
	if !s.implicitTLS && s.startTLS != startTLSOff {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.clientTLSConfig()); err != nil {
				return replyError("STARTTLS", err)
			}
		} else if s.startTLS == startTLSRequired {
			// Transient: the server, not the message, is at fault, and the
			// breaker should see it.
			return errors.New("server does not offer STARTTLS, which starttls=required demands")
		} else {
			s.logger.DebugContext(ctx, "notify: smtp server offers no STARTTLS, sending in clear", "host", s.host)
		}
	}
	if s.username != "" {
		if _, isTLS := c.TLSConnectionState(); !isTLS && !isLocalhost(s.host) {
			return errors.New("refusing AUTH over an unencrypted connection")
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("server does not offer AUTH, but the URL has credentials")
		}
		if err := c.Auth(smtp.PlainAuth("", s.username, s.password, s.host)); err != nil {
			return replyError("AUTH", err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return replyError("MAIL", err)
	}
	for _, rcpt := range rcpts {
		// Failing the whole message on any rejected recipient keeps delivery
		// all-or-nothing: nothing has been sent before DATA.
		if err := c.Rcpt(rcpt); err != nil {
			return replyError("RCPT", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return replyError("DATA", err)
	}
	if _, err := w.Write(raw); err != nil {
		return fmt.Errorf("write message: %w", err)
	}
	if commit != nil {
		// Without the final "." the server discards what it has.
		if err := commit(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return replyError("DATA", err)
	}
	_ = c.Quit()
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
