package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// DefaultBaseURL is Didit's API host (SPEC §4), without the /v3 prefix.
const DefaultBaseURL = "https://verification.didit.me"

// DefaultMaxBody is the response body cap used when Config.MaxBody is 0.
const DefaultMaxBody int64 = 4 << 20

// defaultTimeout bounds a whole call when Config.HTTPClient is nil.
const defaultTimeout = 10 * time.Second

// drainLimit is how much of an unread body is discarded before closing it,
// so that a short leftover does not cost a connection; a longer one is cut.
const drainLimit = 64 << 10

// Config configures a Client. Zero fields take the documented defaults.
type Config struct {
	// BaseURL is the API's scheme and host, e.g. https://verification.didit.me
	// (without /v3). "" means DefaultBaseURL.
	BaseURL string
	// Key is sent as x-api-key on every call. "" disables the client: every
	// call returns ErrNoKey without any network I/O.
	Key string
	// HTTPClient sends the requests; nil means a client with a 10 s timeout.
	// Redirects to another scheme or host are never followed, whatever its
	// CheckRedirect says, so that the key stays with BaseURL.
	HTTPClient *http.Client
	// MaxBody caps a response body; 0 means DefaultMaxBody. A larger body
	// is a KindMalformed error.
	MaxBody int64
}

// Client calls Didit's management and decision APIs. It is safe for
// concurrent use. It never sleeps or retries: see Error.Retryable.
type Client struct {
	base    *url.URL
	key     string
	http    *http.Client
	maxBody int64
}

// New returns a Client for cfg. It fails when BaseURL is not an absolute
// http or https URL.
func New(cfg Config) (*Client, error) {
	raw := cfg.BaseURL
	if raw == "" {
		raw = DefaultBaseURL
	}
	base, err := url.Parse(raw)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, errors.New("didit api: BaseURL must be an absolute http(s) URL")
	}
	base.Path = strings.TrimSuffix(base.Path, "/")
	base.RawPath = ""
	base.RawQuery, base.Fragment = "", ""

	c := &Client{base: base, key: cfg.Key, maxBody: cfg.MaxBody}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxBody
	}
	c.http = sameOriginClient(cfg.HTTPClient, base)
	return c, nil
}

// sameOriginClient returns a copy of hc (or a default client) whose
// redirects stop at the first one that leaves base's scheme and host.
func sameOriginClient(hc *http.Client, base *url.URL) *http.Client {
	var copied http.Client
	if hc != nil {
		copied = *hc
	} else {
		copied.Timeout = defaultTimeout
	}
	inner := copied.CheckRedirect
	copied.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !sameOrigin(req.URL, base) {
			return http.ErrUseLastResponse
		}
		if inner != nil {
			return inner(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &copied
}

// sameOrigin reports whether u has the scheme and host of base.
func sameOrigin(u, base *url.URL) bool {
	return strings.EqualFold(u.Scheme, base.Scheme) && strings.EqualFold(u.Host, base.Host)
}

// Enabled reports whether the client has an API key. A disabled client
// answers every call with ErrNoKey.
func (c *Client) Enabled() bool {
	return c != nil && c.key != ""
}

// request is one call to make.
type request struct {
	op     string
	method string
	// path is the escaped path after BaseURL, e.g. "/v3/webhook/".
	path  string
	query url.Values
	// next, when set, is an absolute URL from a previous page, used instead
	// of path and query.
	next string
	// body, when not nil, is sent as JSON.
	body any
	// refused, when set, reads the body of a refusal (a 4xx but 429),
	// which the client otherwise never reads.
	refused func(body io.Reader)
}

// response is a successful (2xx) answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends r and returns its 2xx answer, or an *Error (or ErrNoKey).
// Each call is a client span of OpenTelemetry's global tracer provider
// (a no-op unless the process turned tracing on), named after the
// operation, with the method, host, status and error kind: never the URL,
// whose query can hold a vendor_data filter.
func (c *Client) do(ctx context.Context, r request) (resp response, err error) {
	if !c.Enabled() {
		return response{}, ErrNoKey
	}
	ctx, span := otel.Tracer(tracerName).Start(ctx, "Didit API "+r.op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", r.method), attribute.String("server.address", c.base.Hostname())))
	defer func() {
		var e *Error
		switch {
		case err == nil:
			span.SetAttributes(attribute.Int("http.response.status_code", resp.status))
		case errors.As(err, &e):
			if e.Status != 0 {
				span.SetAttributes(attribute.Int("http.response.status_code", e.Status))
			}
			span.SetAttributes(attribute.String("error.type", e.Kind.String()))
			span.SetStatus(codes.Error, e.Kind.String())
		default:
			span.SetStatus(codes.Error, "error")
		}
		span.End()
	}()
	return c.send(ctx, r)
}

// tracerName is the instrumentation scope of the client's spans.
const tracerName = "github.com/diditflow/diditflow/didit/api"

func (c *Client) send(ctx context.Context, r request) (response, error) {
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return response{}, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return response{}, transportError(r.op, err)
	}
	defer closeBody(resp.Body)

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := statusError(r.op, resp)
		if r.refused != nil && resp.StatusCode >= 400 && !e.Retryable() {
			r.refused(resp.Body)
		}
		return response{}, e
	}
	body, err := c.readBody(r.op, resp)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// newRequest builds the HTTP request for r, with the key and JSON headers.
func (c *Client) newRequest(ctx context.Context, r request) (*http.Request, error) {
	target, err := c.target(r)
	if err != nil {
		return nil, err
	}
	var body io.Reader
	if r.body != nil {
		encoded, err := json.Marshal(r.body)
		if err != nil {
			return nil, &Error{Kind: KindRequest, Op: r.op, Err: errors.New("encoding request body failed")}
		}
		body = bytes.NewReader(encoded)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, &Error{Kind: KindRequest, Op: r.op, Err: errors.New("building request failed")}
	}
	req.Header.Set("x-api-key", c.key)
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// target is the absolute URL of r. A next link is accepted only when it
// points at BaseURL's scheme and host, so the key is never sent elsewhere.
func (c *Client) target(r request) (string, error) {
	if r.next == "" {
		u := *c.base
		u.Path, u.RawPath = "", ""
		s := u.String() + c.base.EscapedPath() + r.path
		if len(r.query) > 0 {
			s += "?" + r.query.Encode()
		}
		return s, nil
	}
	next, err := url.Parse(r.next)
	if err != nil || !next.IsAbs() {
		return "", &Error{Kind: KindRequest, Op: r.op, Err: errors.New("next link is not an absolute URL")}
	}
	if !sameOrigin(next, c.base) || next.User != nil {
		return "", &Error{Kind: KindRequest, Op: r.op, Err: errors.New("next link points elsewhere than BaseURL")}
	}
	return r.next, nil
}

// readBody reads a 2xx body, at most the cap plus one byte.
func (c *Client) readBody(op string, resp *http.Response) ([]byte, error) {
	tooLarge := &Error{Kind: KindMalformed, Op: op, Status: resp.StatusCode,
		Err: errors.New("response body larger than the cap")}
	if resp.ContentLength > c.maxBody {
		return nil, tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return nil, readError(op, resp.StatusCode, err)
	}
	if int64(len(body)) > c.maxBody {
		return nil, tooLarge
	}
	return body, nil
}

// closeBody discards a bounded leftover of body and closes it.
func closeBody(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, drainLimit)
	_ = body.Close()
}
