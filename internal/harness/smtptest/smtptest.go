// Package smtptest runs a real SMTP server in-process, for tests (as
// net/http/httptest does for HTTP) and for cmd/mailsink.
package smtptest

import (
	"io"
	"mime"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// Mail is one message the sink accepted.
type Mail struct {
	From    string
	To      []string
	Subject string
	Header  mail.Header
	Data    []byte
}

// Server is a real SMTP server that keeps what it receives.
type Server struct {
	Addr   string
	server *smtp.Server
	mu     sync.Mutex
	mails  []Mail
	onMail func(Mail)
	reject func(to string) bool
}

// OnMail sets a function called with every accepted message.
func (s *Server) OnMail(f func(Mail)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onMail = f
}

// RejectRecipient sets a function that picks the recipients to answer 550.
func (s *Server) RejectRecipient(f func(to string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = f
}

// NewServer starts a Server on 127.0.0.1 for the test; it stops at cleanup.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Start listens on addr and serves until Close.
func Start(addr string) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: l.Addr().String()}
	s.server = smtp.NewServer(s)
	s.server.Domain = "localhost"
	s.server.AllowInsecureAuth = true
	go func() { _ = s.server.Serve(l) }()
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error { return s.server.Close() }

// URL is the sink's address as an SMTP_URL.
func (s *Server) URL() string { return "smtp://" + s.Addr + "?starttls=off" }

// Mails returns what the sink has accepted so far.
func (s *Server) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Count returns how many accepted mails have a subject containing substr.
func (s *Server) Count(substr string) int {
	n := 0
	for _, m := range s.Mails() {
		if strings.Contains(m.Subject, substr) {
			n++
		}
	}
	return n
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &sinkSession{sink: s}, nil
}

type sinkSession struct {
	sink *Server
	from string
	to   []string
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.sink.mu.Lock()
	reject := ss.sink.reject
	ss.sink.mu.Unlock()
	if reject != nil && reject(to) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Mail{From: ss.from, To: ss.to, Data: data}
	if msg, err := mail.ReadMessage(strings.NewReader(string(data))); err == nil {
		m.Header = msg.Header
		dec := new(mimeDecoder)
		m.Subject = dec.decode(msg.Header.Get("Subject"))
	}
	ss.sink.mu.Lock()
	ss.sink.mails = append(ss.sink.mails, m)
	onMail := ss.sink.onMail
	ss.sink.mu.Unlock()
	if onMail != nil {
		onMail(m)
	}
	return nil
}

func (ss *sinkSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *sinkSession) Logout() error { return nil }

type mimeDecoder struct{ mime.WordDecoder }

func (d *mimeDecoder) decode(s string) string {
	if out, err := d.DecodeHeader(s); err == nil {
		return out
	}
	return s
}
