package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/diditflow/diditflow/internal/httppost"
)

// DefaultCallbackTimeout bounds a post made with the default client, whose
// context might carry no deadline.
const DefaultCallbackTimeout = 30 * time.Second

// Callback posts JSON payloads to compliance's own HTTP endpoint (the compliance callback). It is safe for
// concurrent use.
type Callback struct {
	url    string
	host   string
	client *http.Client
}

// NewCallback returns a Callback posting to rawURL (http or https) with client;
// a nil client means one with DefaultCallbackTimeout.
func NewCallback(rawURL string, client *http.Client) (*Callback, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// Callback URLs often carry a secret token (Slack's and Teams' in
		// their path), and url.Parse's errors quote the URL or a piece of
		// it: none of it is repeated.
		return nil, errors.New("notify: callback URL does not parse")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("notify: callback URL: want an absolute http or https URL")
	}
	if client == nil {
		client = &http.Client{Timeout: DefaultCallbackTimeout}
	}
	return &Callback{url: u.String(), host: u.Hostname(), client: client}, nil
}

// Post sends payload as JSON. A 2xx answer is success; see StatusError for
// how other statuses are classified. Network errors are transient, and a
// payload that cannot be encoded is permanent.
//
// When the process traces, the post is a client span with the host and
// the status: never the URL, which may carry a token, nor the payload.
func (w *Callback) Post(ctx context.Context, payload any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return &permanentError{fmt.Errorf("callback: encode payload: %w", err)}
	}
	ctx, span := otel.Tracer(tracerName).Start(ctx, "Compliance webhook POST", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", http.MethodPost), attribute.String("server.address", w.host)))
	defer span.End()
	status, err := httppost.Do(ctx, w.client, w.url, jsonHeader, body)
	if err != nil {
		span.SetStatus(codes.Error, "transport")
		return fmt.Errorf("callback: %w", err)
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status < 200 || status > 299 {
		span.SetStatus(codes.Error, http.StatusText(status))
		return &StatusError{StatusCode: status}
	}
	return nil
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}
