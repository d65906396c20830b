// Package smtptest runs a real SMTP server in-process, for tests (as
// net/http/httptest does for HTTP) and for cmd/mailsink.
//
// By default the server accepts everything. A test scripts other answers per
// command, as RFC 5321 servers give them: a Rule picks some calls of MAIL,
// RCPT or the final "." of DATA (by call number, by recipient) and answers
// them with a Reply: a 4xx or 5xx code, a delay, or a hang-up. Calls are
// counted over the server's lifetime, across connections, so "greylist the
// first attempt, accept the next" is one Rule.
package smtptest

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Mail is one message the server read to its final ".".
type Mail struct {
	From    string
	To      []string
	Subject string
	Header  mail.Header
	Data    []byte
	// Code is the server's reply to the final ".": 250 when it accepted
	// the message, the scripted 4xx or 5xx when it refused it (and, as a
	// real server does, discarded it), 0 when it hung up instead (ReplyLost).
	Code int
	// ReplyLost: the server received the whole message and hung up without
	// replying. It keeps the message, as a real server may have queued it
	// already, while the client cannot know: the in-doubt case.
	ReplyLost bool
}

// Accepted reports whether the server answered 250 to the final ".".
func (m Mail) Accepted() bool { return m.Code == 250 }

// Text is the message's body as its reader sees it: decoded from
// quoted-printable when so encoded, with the wire's CRLF line ends as LF.
func (m Mail) Text() (string, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return "", err
	}
	body := msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	text, err := io.ReadAll(body)
	if err != nil {
		return "", err
	}
	return strings.ReplaceAll(string(text), "\r\n", "\n"), nil
}

// Command is a point in the SMTP dialogue that a Rule answers.
type Command string

// The commands a Rule can answer.
const (
	MailFrom Command = "MAIL"
	RcptTo   Command = "RCPT"
	// DataEnd is the final "." of DATA, whose reply says whether the server
	// took the message. The server answers it after reading the whole data.
	DataEnd Command = "."
)

// Reply is how the server answers a command in place of its default.
type Reply struct {
	// Code is the reply code: 4xx (transient) or 5xx (permanent) refuses
	// the command; 0 answers as the server would (accepts).
	Code int
	// Enhanced is the RFC 3463 status code, such as "4.7.1"; empty sends
	// the class default (Code/100 .0.0).
	Enhanced string
	// Message is the reply text.
	Message string
	// Delay is how long the server waits before it answers or hangs up.
	Delay time.Duration
	// HangUp closes the connection instead of answering. At DataEnd the
	// whole message was received: it is kept, marked ReplyLost.
	HangUp bool
}

// Replies real servers give.
var (
	// Greylisted is a greylisting server's answer to a first attempt.
	Greylisted = Reply{Code: 451, Enhanced: "4.7.1", Message: "Greylisted, please try again later"}
	// NoSuchUser refuses a recipient for good.
	NoSuchUser = Reply{Code: 550, Enhanced: "5.1.1", Message: "No such user here"}
	// Refused refuses a message for good, such as a content filter's verdict.
	Refused = Reply{Code: 554, Enhanced: "5.7.1", Message: "Message refused"}
	// HangUp drops the connection without a reply.
	HangUp = Reply{HangUp: true}
)

// Rule scripts the answer to some calls of one command.
type Rule struct {
	Command Command
	// Recipient limits the rule to one address (compared without case): at
	// RcptTo the RCPT for it, at DataEnd the messages it is a recipient of.
	// Empty means any. MAIL rules ignore it.
	Recipient string
	// Calls limits the rule to these calls of Command, counted from 1 over
	// the server's lifetime (and per recipient when Recipient is set).
	// Empty means every call.
	Calls []int
	Reply Reply
}

// Server is a real SMTP server that keeps what it receives.
type Server struct {
	Addr   string
	server *smtp.Server
	done   chan struct{}
	close  sync.Once

	mu       sync.Mutex
	received []Mail
	onMail   func(Mail)
	reject   func(to string) bool
	rules    []Rule
	calls    map[Command]int
	rcptSeen map[string]int // calls per command and recipient
}

// OnMail sets a function called with every accepted message.
func (s *Server) OnMail(f func(Mail)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onMail = f
}

// RejectRecipient sets a function that picks the recipients to answer 550.
// Script rules are consulted first.
func (s *Server) RejectRecipient(f func(to string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = f
}

// Script adds rules. For each call, the first rule that matches it, in the
// order added, decides the answer; with none the server answers as usual.
func (s *Server) Script(rules ...Rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, rules...)
}

// ClearScript removes every rule: the server accepts everything again. Call
// counts go on.
func (s *Server) ClearScript() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
}

// Calls returns how many times the server received cmd.
func (s *Server) Calls(cmd Command) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[cmd]
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
	s := &Server{Addr: l.Addr().String(), done: make(chan struct{}),
		calls: map[Command]int{}, rcptSeen: map[string]int{}}
	s.server = smtp.NewServer(s)
	s.server.Domain = "localhost"
	s.server.AllowInsecureAuth = true
	go func() { _ = s.server.Serve(l) }()
	return s, nil
}

// Close stops the server, cutting short any scripted delay.
func (s *Server) Close() error {
	s.close.Do(func() { close(s.done) })
	return s.server.Close()
}

// URL is the sink's address as an SMTP_URL.
func (s *Server) URL() string { return "smtp://" + s.Addr + "?starttls=off" }

// Mails returns what the sink has accepted so far (250 to the final ".").
func (s *Server) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Mail
	for _, m := range s.received {
		if m.Accepted() {
			out = append(out, m)
		}
	}
	return out
}

// Received returns every message the sink read to its final ".", whatever
// it answered: accepted, refused, or with the reply lost.
func (s *Server) Received() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.received)
}

// Kept returns the messages the sink holds, which a recipient may get:
// those it accepted and those whose reply was lost.
func (s *Server) Kept() []Mail {
	var out []Mail
	for _, m := range s.Received() {
		if m.Accepted() || m.ReplyLost {
			out = append(out, m)
		}
	}
	return out
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
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &sinkSession{sink: s, conn: c}, nil
}

// answer counts a call of cmd (for the given recipients, at RCPT one, at
// DataEnd the message's) and returns the scripted reply, if any.
func (s *Server) answer(cmd Command, rcpts []string) (Reply, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[cmd]++
	n := s.calls[cmd]
	perRcpt := make(map[string]int, len(rcpts))
	for _, r := range rcpts {
		key := string(cmd) + "\x00" + strings.ToLower(r)
		s.rcptSeen[key]++
		perRcpt[strings.ToLower(r)] = s.rcptSeen[key]
	}
	for _, rule := range s.rules {
		if rule.Command != cmd {
			continue
		}
		call := n
		if rule.Recipient != "" && cmd != MailFrom {
			c, ok := perRcpt[strings.ToLower(rule.Recipient)]
			if !ok {
				continue
			}
			call = c
		}
		if len(rule.Calls) == 0 || slices.Contains(rule.Calls, call) {
			return rule.Reply, true
		}
	}
	return Reply{}, false
}

// wait sleeps for d, or until the server closes.
func (s *Server) wait(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.done:
	}
}

type sinkSession struct {
	sink *Server
	conn *smtp.Conn
	from string
	to   []string
}

// play carries out a scripted reply: nil accepts, an error refuses, and a
// hang-up closes the connection so that whatever go-smtp writes next is lost.
func (ss *sinkSession) play(r Reply) (hungUp bool, err error) {
	ss.sink.wait(r.Delay)
	if r.HangUp {
		_ = ss.conn.Conn().Close()
		return true, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "connection dropped"}
	}
	if r.Code == 0 {
		return false, nil
	}
	return false, &smtp.SMTPError{Code: r.Code, EnhancedCode: enhancedCode(r), Message: cmp.Or(r.Message, "scripted reply")}
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	if r, ok := ss.sink.answer(MailFrom, nil); ok {
		if _, err := ss.play(r); err != nil {
			return err
		}
	}
	ss.from = from
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if r, ok := ss.sink.answer(RcptTo, []string{to}); ok {
		if _, err := ss.play(r); err != nil {
			return err
		}
	} else {
		ss.sink.mu.Lock()
		reject := ss.sink.reject
		ss.sink.mu.Unlock()
		if reject != nil && reject(to) {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	// A server answers the final "." only once it has read the whole data.
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Mail{From: ss.from, To: slices.Clone(ss.to), Data: data, Code: 250}
	if msg, err := mail.ReadMessage(strings.NewReader(string(data))); err == nil {
		m.Header = msg.Header
		dec := new(mimeDecoder)
		m.Subject = dec.decode(msg.Header.Get("Subject"))
	}
	reply, scripted := ss.sink.answer(DataEnd, ss.to)
	if scripted && reply.HangUp {
		// The server holds the whole message when it drops the line: it is
		// received before the client can see the connection lost.
		m.Code, m.ReplyLost = 0, true
		ss.record(m)
		_, err := ss.play(reply)
		return err
	}
	var replyErr error
	if scripted {
		if _, replyErr = ss.play(reply); replyErr != nil {
			m.Code = reply.Code
		}
	}
	ss.record(m)
	return replyErr
}

// record keeps m as received and, if accepted, hands it to OnMail.
func (ss *sinkSession) record(m Mail) {
	ss.sink.mu.Lock()
	ss.sink.received = append(ss.sink.received, m)
	onMail := ss.sink.onMail
	ss.sink.mu.Unlock()
	if onMail != nil && m.Accepted() {
		onMail(m)
	}
}

func (ss *sinkSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *sinkSession) Logout() error { return nil }

func enhancedCode(r Reply) smtp.EnhancedCode {
	var ec smtp.EnhancedCode
	if _, err := fmt.Sscanf(r.Enhanced, "%d.%d.%d", &ec[0], &ec[1], &ec[2]); err == nil {
		return ec
	}
	return smtp.EnhancedCodeNotSet
}

type mimeDecoder struct{ mime.WordDecoder }

func (d *mimeDecoder) decode(s string) string {
	if out, err := d.DecodeHeader(s); err == nil {
		return out
	}
	return s
}
