package notify

import (
	"errors"
	"fmt"
	"regexp"
)

// ErrPermanent marks failures that retrying the same message cannot fix: the
// recipient or the message is at fault, not the transport. Callers should park
// such a notification for an operator instead of retrying it.
var ErrPermanent = errors.New("notify: permanent failure")

// ErrCircuitOpen is returned, wrapped, by a breaker-wrapped Mailer or Poster
// while it fails fast after repeated transient failures. It is transient: the
// same message is expected to succeed once the server recovers.
var ErrCircuitOpen = errors.New("notify: circuit open")

// ErrHeaderInjection reports a CR or LF in a value destined for a mail header,
// which would let the value forge extra headers or a body.
var ErrHeaderInjection error = permanentSentinel("notify: CR or LF in header value")

// ErrInvalidAddress reports a recipient or sender that is not a usable
// RFC 5322 address.
var ErrInvalidAddress error = permanentSentinel("notify: invalid address")

// ErrInvalidMessage reports a message that cannot be rendered for reasons
// other than its headers or addresses, such as a missing ID.
var ErrInvalidMessage error = permanentSentinel("notify: invalid message")

// ErrUnconfirmed reports that the whole message, its final "." included, was
// written to the mail server and no reply came back: the connection was lost
// or timed out while the reply was awaited. The server may have accepted the
// message, so sending it again could deliver it twice. It is transient, and it
// is the only failure after Message.Commit that NotDelivered does not report.
var ErrUnconfirmed = errors.New("notify: message handed over, no reply")

// errNotDelivered marks failures after which the message is known not to
// have been delivered; see NotDelivered.
var errNotDelivered = errors.New("notify: not delivered")

// NotDelivered reports whether err proves that the message was delivered to
// no one: the server answered with a refusal (any ReplyError, 4xx or 5xx: a
// reply code is definitive), or the attempt stopped before the server had the
// whole message (a failed Commit, the final "." not written, the outbox file
// not renamed into place). The mailers in this package mark every failure so
// but ErrUnconfirmed. An unmarked error from another Mailer after Commit
// proves nothing, and callers should treat the message as possibly delivered.
func NotDelivered(err error) bool {
	return err != nil && !errors.Is(err, ErrUnconfirmed) && errors.Is(err, errNotDelivered)
}

// notDeliveredError marks err for NotDelivered without changing its message.
type notDeliveredError struct{ err error }

func (e *notDeliveredError) Error() string { return e.err.Error() }

func (e *notDeliveredError) Unwrap() error { return e.err }

func (e *notDeliveredError) Is(target error) bool { return target == errNotDelivered }

// notDelivered marks err for NotDelivered, unless it is ErrUnconfirmed.
func notDelivered(err error) error {
	if err == nil || errors.Is(err, ErrUnconfirmed) || errors.Is(err, errNotDelivered) {
		return err
	}
	return &notDeliveredError{err}
}

// IsPermanent reports whether err is a failure that retrying cannot fix.
// Everything else (timeouts, refused connections, 4xx replies, ErrCircuitOpen)
// is transient.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrPermanent)
}

// permanentSentinel is a sentinel that also matches ErrPermanent, so callers can
// test for the specific cause or only for its class.
type permanentSentinel string

func (e permanentSentinel) Error() string { return string(e) }

func (e permanentSentinel) Is(target error) bool { return target == ErrPermanent }

// permanentError classifies an arbitrary error as permanent without changing
// its message.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }

func (e *permanentError) Unwrap() error { return e.err }

func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

// ReplyError is a negative SMTP reply. 5xx replies are permanent, 4xx
// transient; either way the server refused what it was asked, so a
// ReplyError also satisfies NotDelivered (for RCPT, only that recipient was
// refused; see Message.Refused).
//
// Error leaves out the server's text because servers commonly echo the
// rejected address in it, and error strings end up in logs and in Temporal's
// history; Text keeps it for callers that know where it goes.
type ReplyError struct {
	Command  string // SMTP command that was rejected: "EHLO", "MAIL", "RCPT", "DATA", "." (the end of the data), ...
	Code     int    // reply code, such as 550
	Enhanced string // RFC 3463 enhanced status code such as "5.1.1", if the server sent one
	Text     string // the server's text; may contain PII
}

func (e *ReplyError) Error() string {
	if e.Enhanced != "" {
		return fmt.Sprintf("smtp %s rejected: %d %s", e.Command, e.Code, e.Enhanced)
	}
	return fmt.Sprintf("smtp %s rejected: %d", e.Command, e.Code)
}

// Is makes errors.Is(err, ErrPermanent) hold for 5xx replies, and NotDelivered
// for every reply.
func (e *ReplyError) Is(target error) bool {
	switch target {
	case ErrPermanent:
		return e.Code >= 500 && e.Code < 600
	case errNotDelivered:
		return true
	}
	return false
}

var enhancedCode = regexp.MustCompile(`^[245]\.\d{1,3}\.\d{1,3}\b`)

func newReplyError(command string, code int, text string) *ReplyError {
	return &ReplyError{
		Command:  command,
		Code:     code,
		Enhanced: enhancedCode.FindString(text),
		Text:     text,
	}
}

// StatusError is a non-2xx answer from the compliance callback. 408, 429 and 5xx
// are transient; any other status is permanent because the endpoint rejected
// the request itself and will keep doing so.
type StatusError struct {
	StatusCode int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("callback: unexpected HTTP status %d", e.StatusCode)
}

// Is makes errors.Is(err, ErrPermanent) hold for statuses that retrying cannot fix.
func (e *StatusError) Is(target error) bool {
	return target == ErrPermanent && !transientStatus(e.StatusCode)
}

func transientStatus(code int) bool {
	return code == 408 || code == 429 || code >= 500
}

// IsRecipientRejected reports whether a mail server refused a recipient for
// good (a 5xx answer to RCPT: unknown user, mailbox disabled). Send fails so
// only when it refused every recipient (the message goes to those it
// accepts); retrying or waiting for an operator cannot help, and the message
// is undeliverable.
func IsRecipientRejected(err error) bool {
	var reply *ReplyError
	return errors.As(err, &reply) && reply.Command == "RCPT" && reply.Code >= 500 && reply.Code < 600
}

// Refusal is a recipient the mail server refused for good (a 5xx reply to
// RCPT), told without the address: it goes into records and logs.
type Refusal struct {
	// Index is the recipient's position in Message.To.
	Index int
	// RecipientHash is pii.HashAddress of the bare address.
	RecipientHash string
	Code          int    // reply code, such as 550
	Enhanced      string // RFC 3463 enhanced status code, if the server sent one
	// Text is the server's text with anything shaped like an address
	// redacted (pii.RedactAddresses).
	Text string
}
