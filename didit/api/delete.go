package api

import (
	"context"
	"net/http"
	"net/url"
)

// DeleteSession asks Didit to delete a session and the personal data it
// holds for it (DELETE /v3/session/{id}/delete/, SPEC §4.8), which is final.
// Any 2xx is success (Didit answers 204). A session Didit does not have (or
// no longer has) is a KindNotFound *Error, which a caller erasing the
// session may take as done. It is a write: it counts against Didit's 300 a
// minute per key.
func (c *Client) DeleteSession(ctx context.Context, sessionID string) error {
	const op = "delete session"
	if err := c.checkIDs(op, sessionID); err != nil {
		return err
	}
	_, err := c.do(ctx, request{op: op, method: http.MethodDelete,
		path: "/v3/session/" + url.PathEscape(sessionID) + "/delete/"})
	return err
}
