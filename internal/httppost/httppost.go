// Package httppost makes the outgoing HTTP POSTs of diditflow and of its
// Didit simulator: one request, a bounded read of the answer, and errors
// that never quote the URL, which may carry a secret token.
package httppost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// maxDrain bounds how much of an answer is read (and discarded) so the
// connection can be reused without letting a misbehaving endpoint stream
// forever.
const maxDrain = 64 << 10

// Do posts body to rawURL with header through client and returns the
// answer's status code. A transport failure (refused, timeout, the context
// ending) is returned with its cause but without the URL.
func Do(ctx context.Context, client *http.Client, rawURL string, header http.Header, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("post: %w", withoutURL(err))
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post: %w", withoutURL(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	return resp.StatusCode, nil
}

// withoutURL unwraps a *url.Error, whose message quotes the URL.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
