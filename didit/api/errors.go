package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// statusError classifies a non-2xx answer. The body is not read into the
// error: it may quote personal data or the request.
func statusError(op string, resp *http.Response) *Error {
	e := &Error{Kind: kindForStatus(resp.StatusCode), Op: op, Status: resp.StatusCode}
	if e.Kind == KindRateLimited {
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		e.Err = errors.New("redirect not followed")
	}
	return e
}

// kindForStatus maps a non-2xx HTTP status to a Kind (SPEC §4.4).
func kindForStatus(status int) Kind {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return KindCredentials
	case status == http.StatusNotFound:
		return KindNotFound
	case status == http.StatusTooManyRequests:
		return KindRateLimited
	case status >= 500:
		return KindServer
	default:
		return KindRequest
	}
}

// retryAfter parses a Retry-After value, either seconds or an HTTP date,
// relative to now. It returns 0 when the value is absent, invalid or past.
func retryAfter(value string, now time.Time) time.Duration {
	if value == "" {
		return 0
	}
	if secs, err := strconv.Atoi(value); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	at, err := http.ParseTime(value)
	if err != nil {
		return 0
	}
	if d := at.Sub(now); d > 0 {
		return d
	}
	return 0
}

// transportError wraps a failure to get an answer. The *url.Error from
// net/http quotes the URL (and so the query), so only a summary is kept.
func transportError(op string, err error) *Error {
	return &Error{Kind: KindServer, Op: op, Err: errors.New("transport: " + transportReason(err))}
}

// readError wraps a failure while reading a 2xx body.
func readError(op string, status int, err error) *Error {
	return &Error{Kind: KindServer, Op: op, Status: status,
		Err: errors.New("transport: reading body: " + transportReason(err))}
}

// transportReason names a transport failure without quoting it.
func transportReason(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	default:
		return "transport failure"
	}
}
