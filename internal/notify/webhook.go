package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// DefaultWebhookTimeout bounds a post made with the default client, whose
// context might carry no deadline.
const DefaultWebhookTimeout = 30 * time.Second

// Webhook posts JSON payloads to a compliance endpoint. It is safe for
// concurrent use.
type Webhook struct {
	url    string
	client *http.Client
}

// NewWebhook returns a Webhook posting to rawURL (http or https) with client;
// a nil client means one with DefaultWebhookTimeout.
func NewWebhook(rawURL string, client *http.Client) (*Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// Webhook URLs often carry a secret token; url.Error would quote it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("notify: webhook URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("notify: webhook URL: want an absolute http or https URL")
	}
	if client == nil {
		client = &http.Client{Timeout: DefaultWebhookTimeout}
	}
	return &Webhook{url: u.String(), client: client}, nil
}

// Post sends payload as JSON. A 2xx answer is success; see StatusError for
// how other statuses are classified. Network errors are transient, and a
// payload that cannot be encoded is permanent.
func (w *Webhook) Post(ctx context.Context, payload any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return &permanentError{fmt.Errorf("webhook: encode payload: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		// Drop url.Error's copy of the URL, which may hold a secret token,
		// and keep the cause (timeout, refused, context cancellation).
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("webhook: post: %w", err)
	}
	defer resp.Body.Close()
	// Draining a bounded amount lets the connection be reused without letting
	// a misbehaving endpoint stream forever.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{StatusCode: resp.StatusCode}
	}
	return nil
}
