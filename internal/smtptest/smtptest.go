// Package smtptest runs a real SMTP server in-process for tests, as
// net/http/httptest does for HTTP.
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

// Server is a real SMTP server on 127.0.0.1 that keeps what it receives.
type Server struct {
	Addr   string
	server *smtp.Server
	mu     sync.Mutex
	mails  []Mail
}

// NewServer starts a Server for the test; it stops at cleanup.
func NewServer(t testing.TB) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink := &Server{Addr: l.Addr().String()}
	sink.server = smtp.NewServer(sink)
	sink.server.Domain = "localhost"
	sink.server.AllowInsecureAuth = true
	go func() { _ = sink.server.Serve(l) }()
	t.Cleanup(func() { _ = sink.server.Close() })
	return sink
}

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
	ss.sink.mu.Unlock()
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
