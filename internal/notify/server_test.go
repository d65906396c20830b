package notify_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"

	"io"
	"log"
	"net"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/diditflow/diditflow/internal/notify"
)

// received is one message as the test SMTP server saw it.
type received struct {
	From string
	To   []string
	Data []byte
	TLS  bool
	User string
}

// backend is a go-smtp backend that stores what it accepts and can be told to
// reject recipients or require authentication.
type backend struct {
	rcptErr  error
	user     string // when set, AUTH PLAIN with user/pass is required
	password string

	mu   sync.Mutex
	msgs []received
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{b: b, tls: isTLS}, nil
}

func (b *backend) messages() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.msgs...)
}

type session struct {
	b    *backend
	tls  bool
	user string
	from string
	to   []string
}

func (s *session) AuthMechanisms() []string {
	if s.b.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != s.b.user || password != s.b.password {
			return smtp.ErrAuthFailed
		}
		s.user = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.b.user != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.b.rcptErr != nil {
		return s.b.rcptErr
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.msgs = append(s.b.msgs, received{From: s.from, To: s.to, Data: data, TLS: s.tls, User: s.user})
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

// gateListener counts accepted connections and, while dead, hangs up on them
// at once, which a client sees as a server that is down.
type gateListener struct {
	net.Listener
	dead    atomic.Bool
	accepts atomic.Int32
}

func (l *gateListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.accepts.Add(1)
		if !l.dead.Load() {
			return c, nil
		}
		_ = c.Close()
	}
}

type serverOption func(*smtp.Server, *net.Listener)

// withSTARTTLS makes the server offer STARTTLS.
func withSTARTTLS(cfg *tls.Config) serverOption {
	return func(s *smtp.Server, _ *net.Listener) { s.TLSConfig = cfg }
}

// withImplicitTLS makes the server speak TLS from the first byte (smtps).
func withImplicitTLS(cfg *tls.Config) serverOption {
	return func(_ *smtp.Server, l *net.Listener) { *l = tls.NewListener(*l, cfg) }
}

// startServer runs a real SMTP server on 127.0.0.1 and returns its address
// and the listener, which starts alive.
func startServer(t *testing.T, b *backend, opts ...serverOption) (string, *gateListener) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gate := &gateListener{Listener: raw}
	var l net.Listener = gate
	s := smtp.NewServer(b)
	s.Domain = "localhost"
	s.AllowInsecureAuth = true
	s.ErrorLog = log.New(io.Discard, "", 0)
	for _, opt := range opts {
		opt(s, &l)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(l)
	}()
	t.Cleanup(func() {
		_ = s.Close()
		// Close only closes listeners Serve has registered; if the goroutine
		// has not got that far, closing it here is what makes Serve return.
		_ = raw.Close()
		<-done
	})
	return raw.Addr().String(), gate
}

// closedAddr returns an address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// testTLS returns a server configuration with a certificate for 127.0.0.1
// and a client configuration that trusts it, borrowed from httptest.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	ts := httptest.NewTLSServer(nil)
	defer ts.Close()
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return &tls.Config{Certificates: ts.TLS.Certificates}, &tls.Config{RootCAs: pool}
}

// dialCounter counts the connections an SMTP mailer opens.
type dialCounter struct{ n atomic.Int32 }

func (d *dialCounter) install(s *notify.SMTP) {
	var dialer net.Dialer
	notify.SetDial(s, func(ctx context.Context, network, addr string) (net.Conn, error) {
		d.n.Add(1)
		return dialer.DialContext(ctx, network, addr)
	})
}

func newSMTP(t *testing.T, rawURL string, opts ...notify.SMTPOption) *notify.SMTP {
	t.Helper()
	s, err := notify.NewSMTP(rawURL, "diditflow <noreply@diditflow.test>", opts...)
	if err != nil {
		t.Fatalf("NewSMTP: %v", err)
	}
	return s
}

func testMessage() notify.Message {
	return notify.Message{
		ID:       "session-123/approved",
		To:       []string{"Alice Example <alice@example.com>"},
		Subject:  "Your verification is complete",
		TextBody: "Hello,\nyour identity verification was approved.\n",
	}
}

// mailerFunc adapts a function to notify.Mailer.
type mailerFunc func(context.Context, notify.Message) error

func (f mailerFunc) Send(ctx context.Context, m notify.Message) error { return f(ctx, m) }
