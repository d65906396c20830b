package api

import (
	"context"
	"net/http"
	"net/url"
)

// destinationsPath is the collection of webhook destinations (SPEC §4.2).
const destinationsPath = "/v3/webhook/destinations/"

// destinationPath is one destination's path, with a trailing slash.
func destinationPath(uuid string) string {
	return destinationsPath + url.PathEscape(uuid) + "/"
}

// deliveryPath is one delivery of a destination, with a trailing slash.
func deliveryPath(destUUID, deliveryUUID string) string {
	return destinationPath(destUUID) + "deliveries/" + url.PathEscape(deliveryUUID) + "/"
}

// Destinations lists the webhook destinations, oldest first, without
// their secrets (GET /v3/webhook/destinations/).
func (c *Client) Destinations(ctx context.Context) ([]Destination, error) {
	const op = "destinations"
	r, err := c.do(ctx, request{op: op, method: http.MethodGet, path: destinationsPath})
	if err != nil {
		return nil, err
	}
	var list []Destination
	if err := decodeArray(op, r, &list); err != nil {
		return nil, err
	}
	return list, nil
}

// Destination reads one destination, with its secret.
func (c *Client) Destination(ctx context.Context, uuid string) (Destination, error) {
	const op = "destination"
	if err := c.checkIDs(op, uuid); err != nil {
		return Destination{}, err
	}
	return c.destinationCall(ctx, request{op: op, method: http.MethodGet, path: destinationPath(uuid)})
}

// destinationBody is what CreateDestination sends: the secret and UUID are
// Didit's to choose.
type destinationBody struct {
	Label            string   `json:"label"`
	URL              string   `json:"url"`
	Enabled          bool     `json:"enabled"`
	WebhookVersion   string   `json:"webhook_version,omitempty"`
	SubscribedEvents []string `json:"subscribed_events,omitempty"`
}

// CreateDestination creates a destination from d's label, URL, enabled
// flag, version and events; the answer carries the new secret.
func (c *Client) CreateDestination(ctx context.Context, d Destination) (Destination, error) {
	body := destinationBody{Label: d.Label, URL: d.URL, Enabled: d.Enabled,
		WebhookVersion: d.WebhookVersion, SubscribedEvents: d.SubscribedEvents}
	return c.destinationCall(ctx, request{op: "create destination", method: http.MethodPost,
		path: destinationsPath, body: body})
}

// UpdateDestination patches a destination. SubscribedEvents, when set,
// replaces the list wholesale; the secret is not rotated.
func (c *Client) UpdateDestination(ctx context.Context, uuid string, p DestinationPatch) (Destination, error) {
	const op = "update destination"
	if err := c.checkIDs(op, uuid); err != nil {
		return Destination{}, err
	}
	return c.destinationCall(ctx, request{op: op, method: http.MethodPatch,
		path: destinationPath(uuid), body: p})
}

// destinationCall makes r and decodes the destination it answers; a 204
// is success with the zero Destination.
func (c *Client) destinationCall(ctx context.Context, r request) (Destination, error) {
	resp, err := c.do(ctx, r)
	if err != nil || resp.status == http.StatusNoContent {
		return Destination{}, err
	}
	var d Destination
	if err := decodeObject(r.op, resp, &d); err != nil {
		return Destination{}, err
	}
	return d, nil
}

// DestinationDeliveries lists a destination's deliveries, newest first
// (SPEC §4.5). Cursor follows the same rule as in Sessions.
func (c *Client) DestinationDeliveries(ctx context.Context, destUUID string, f DeliveryFilter, cursor string) (DeliveryPage, error) {
	const op = "destination deliveries"
	if err := c.checkIDs(op, destUUID); err != nil {
		return DeliveryPage{}, err
	}
	r, err := c.do(ctx, request{op: op, method: http.MethodGet,
		path: destinationPath(destUUID) + "deliveries/", query: f.query(), next: cursor})
	if err != nil {
		return DeliveryPage{}, err
	}
	var page struct {
		Count   int           `json:"count"`
		Next    string        `json:"next"`
		Results []DeliveryRow `json:"results"`
	}
	if err := decodeObject(op, r, &page); err != nil {
		return DeliveryPage{}, err
	}
	return DeliveryPage{Count: page.Count, Next: page.Next, Results: page.Results}, nil
}

// query encodes the filter's non-zero fields.
func (f DeliveryFilter) query() url.Values {
	q := url.Values{}
	setDate(q, "date_from", f.DateFrom)
	setDate(q, "date_to", f.DateTo)
	setLimit(q, f.Limit)
	return q
}

// DestinationDelivery reads one delivery of a destination, with what was
// sent.
func (c *Client) DestinationDelivery(ctx context.Context, destUUID, deliveryUUID string) (Delivery, error) {
	const op = "delivery"
	if err := c.checkIDs(op, destUUID, deliveryUUID); err != nil {
		return Delivery{}, err
	}
	r, err := c.do(ctx, request{op: op, method: http.MethodGet, path: deliveryPath(destUUID, deliveryUUID)})
	if err != nil {
		return Delivery{}, err
	}
	return decodeDelivery(op, r)
}

// ResendDestinationDelivery asks Didit to deliver again, re-signed with
// the destination's current secret; it returns the new delivery (the zero
// Delivery on a 204).
func (c *Client) ResendDestinationDelivery(ctx context.Context, destUUID, deliveryUUID string) (Delivery, error) {
	const op = "resend"
	if err := c.checkIDs(op, destUUID, deliveryUUID); err != nil {
		return Delivery{}, err
	}
	r, err := c.do(ctx, request{op: op, method: http.MethodPost,
		path: deliveryPath(destUUID, deliveryUUID) + "resend/"})
	if err != nil || r.status == http.StatusNoContent {
		return Delivery{}, err
	}
	return decodeDelivery(op, r)
}

// WebhookConfig reads the legacy single-webhook config (GET /v3/webhook/).
func (c *Client) WebhookConfig(ctx context.Context) (WebhookConfig, error) {
	return c.webhookConfigCall(ctx, request{op: "webhook config", method: http.MethodGet, path: "/v3/webhook/"})
}

// PatchWebhookConfig patches the legacy config. With RotateSecret the old
// secret stops working at once (SPEC §4.1); the answer carries the new one.
func (c *Client) PatchWebhookConfig(ctx context.Context, p WebhookPatch) (WebhookConfig, error) {
	return c.webhookConfigCall(ctx, request{op: "webhook config", method: http.MethodPatch,
		path: "/v3/webhook/", body: p})
}

// webhookConfigCall makes r and decodes the config it answers; a 204 is
// success with the zero config.
func (c *Client) webhookConfigCall(ctx context.Context, r request) (WebhookConfig, error) {
	resp, err := c.do(ctx, r)
	if err != nil || resp.status == http.StatusNoContent {
		return WebhookConfig{}, err
	}
	var cfg WebhookConfig
	if err := decodeObject(r.op, resp, &cfg); err != nil {
		return WebhookConfig{}, err
	}
	return cfg, nil
}
