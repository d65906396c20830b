// Package simulator plays Didit: it builds realistic session webhooks from
// the shapes of Didit's real deliveries, signs them with the didit package's
// Signer and sends them the way Didit does, retries included. As Didit, it
// puts a decision only in webhooks of the statuses that carry one (SPEC
// §2.3), so a receiver must fetch the others' from Didit's API; a Registry
// tells a fake of that API (internal/harness/fakedidit) each session's state
// before its webhook goes out.
package simulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/httppost"
)

//go:embed templates/*.json
var templates embed.FS

// step is one delivery of a scenario: a template, the status it reports and
// how long after the session's start Didit created the event.
type step struct {
	template string
	status   didit.Status
	after    time.Duration
	// resubmit adds resubmit_info, as Didit does for Resubmitted.
	resubmit bool
	// edit, if set, changes the template's decision to fit the step.
	edit func(decision map[string]any)
}

// CarriesDecision reports whether Didit puts a decision in a webhook of
// status (SPEC §2.3). The others (Not Started, In Progress, Awaiting User,
// Resubmitted, Expired, Kyc Expired) come without one.
func CarriesDecision(status didit.Status) bool {
	switch status {
	case didit.StatusApproved, didit.StatusDeclined, didit.StatusInReview, didit.StatusAbandoned:
		return true
	}
	return false
}

// livenessInReview leaves the liveness check to a reviewer, as a low score
// does; the reviewer may then ask the user to redo it (Resubmitted).
func livenessInReview(decision map[string]any) {
	scoreLiveness(decision, didit.StatusInReview, "41.5")
}

// LivenessDeclined edits a decision into that of a session whose liveness
// check failed, as a spoof attempt's does.
func LivenessDeclined(decision map[string]any) {
	for _, c := range scoreLiveness(decision, didit.StatusDeclined, "12.4") {
		c["warnings"] = []any{map[string]any{
			"feature": "LIVENESS", "risk": "LOW_LIVENESS_SCORE", "log_type": "error", "additional_data": nil,
			"node_id":           c["node_id"],
			"short_description": "Low liveness score",
			"long_description":  "The liveness check scored below the workflow's threshold: the face may not be a live person.",
		}}
	}
}

// scoreLiveness gives the decision's liveness checks a status and a score,
// and returns them.
func scoreLiveness(decision map[string]any, status didit.Status, score string) []map[string]any {
	var out []map[string]any
	checks, _ := decision["liveness_checks"].([]any)
	for _, c := range checks {
		if c, ok := c.(map[string]any); ok {
			c["status"] = string(status)
			c["score"] = json.Number(score)
			out = append(out, c)
		}
	}
	return out
}

// LeftAfterDocument edits a decision into that of a session abandoned after
// its ID document: the features after it never ran, and Didit has null for
// those (SPEC §2.4).
func LeftAfterDocument(decision map[string]any) {
	for _, f := range []string{"liveness_checks", "face_matches", "aml_screenings"} {
		decision[f] = nil
	}
}

var scenarios = map[string][]step{
	"approved": {
		{template: "status-updated-in-progress.json", status: didit.StatusInProgress},
		{template: "status-updated-approved.json", status: didit.StatusApproved, after: time.Minute},
	},
	"declined-aml": {
		{template: "status-updated-in-progress.json", status: didit.StatusInProgress},
		{template: "status-updated-in-review.json", status: didit.StatusInReview, after: time.Minute},
		{template: "status-updated-declined-aml-hit.json", status: didit.StatusDeclined, after: 10 * time.Minute},
	},
	"in-review-then-approved": {
		{template: "status-updated-in-progress.json", status: didit.StatusInProgress},
		{template: "status-updated-in-review.json", status: didit.StatusInReview, after: time.Minute},
		{template: "status-updated-approved.json", status: didit.StatusApproved, after: 10 * time.Minute},
	},
	// A reviewer asks for a new liveness check (SPEC §2.2: Resubmitted comes
	// from manual review).
	"resubmitted": {
		{template: "status-updated-in-progress.json", status: didit.StatusInProgress},
		{template: "status-updated-approved.json", status: didit.StatusInReview, after: time.Minute, edit: livenessInReview},
		{template: "status-updated-approved.json", status: didit.StatusResubmitted, after: 10 * time.Minute, resubmit: true},
	},
	"abandoned": {
		{template: "status-updated-in-progress.json", status: didit.StatusInProgress},
		{template: "status-updated-approved.json", status: didit.StatusAbandoned, after: 30 * time.Minute, edit: LeftAfterDocument},
	},
	"kyc-expired": {
		{template: "status-updated-approved.json", status: didit.StatusApproved},
		{template: "status-updated-approved.json", status: didit.StatusKycExpired, after: 24 * time.Hour},
	},
}

// Scenarios lists the scenario names.
func Scenarios() []string {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Delivery is one webhook of one session. Its body is re-stamped with the
// sending time at every attempt, as a fresh signature needs.
type Delivery struct {
	SessionID string
	Name      string
	Status    didit.Status
	body      map[string]any
}

// Options shape the deliveries.
type Options struct {
	// Email is put in each decision's contact details; empty leaves none.
	Email string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Build returns the deliveries of a scenario for a new session, in the
// order Didit creates them.
func Build(scenario string, opts Options) ([]Delivery, error) {
	steps, ok := scenarios[scenario]
	if !ok {
		return nil, fmt.Errorf("unknown scenario %q (one of %v)", scenario, Scenarios())
	}
	session := NewUUID()
	vendor := "user_" + NewUUID()[:8]
	// The session started long enough ago for its last event to be now.
	start := opts.now().Add(-steps[len(steps)-1].after)
	var out []Delivery
	for i, st := range steps {
		body, err := loadTemplate(st.template)
		if err != nil {
			return nil, err
		}
		body["status"] = string(st.status)
		body["vendor_data"] = vendor
		body["created_at"] = json.Number(strconv.FormatInt(start.Add(st.after).Unix(), 10))
		if !CarriesDecision(st.status) {
			delete(body, "decision")
		}
		if d, ok := body["decision"].(map[string]any); ok {
			d["status"] = string(st.status)
			d["vendor_data"] = vendor
			if st.edit != nil {
				st.edit(d)
			}
		}
		if st.resubmit {
			body["resubmit_info"] = map[string]any{
				"nodes_to_resubmit": []any{"feature_liveness_1"},
				"reasons":           map[string]any{"feature_liveness_1": "LOW_LIVENESS_SCORE"},
			}
		}
		d := newDelivery(body, session, opts)
		d.Name = fmt.Sprintf("%s %d/%d %s", scenario, i+1, len(steps), st.status)
		out = append(out, d)
	}
	return out, nil
}

// Decision returns a fresh copy of the decision in one of the templates
// (such as "status-updated-approved.json"), its numbers kept as written, for
// a harness that builds its own webhooks from Didit's shapes (the fake
// Didit's hosted page).
func Decision(template string) (map[string]any, error) {
	body, err := loadTemplate(template)
	if err != nil {
		return nil, err
	}
	d, ok := body["decision"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("template %s has no decision", template)
	}
	return d, nil
}

// FromFile turns one event body (such as a Didit fixture) into a delivery
// for a new session. The body is otherwise sent as written, so a file can
// hold what Didit would not send (a decision with Kyc Expired, say).
func FromFile(raw []byte, opts Options) (Delivery, error) {
	body, err := decode(raw)
	if err != nil {
		return Delivery{}, err
	}
	d := newDelivery(body, NewUUID(), opts)
	d.Name = fmt.Sprintf("%v %v", body["webhook_type"], body["status"])
	return d, nil
}

func newDelivery(body map[string]any, session string, opts Options) Delivery {
	body["session_id"] = session
	body["event_id"] = NewUUID()
	if d, ok := body["decision"].(map[string]any); ok {
		d["session_id"] = session
		if opts.Email != "" {
			d["contact_details"] = map[string]any{"email": opts.Email, "send_notification_emails": false}
		}
	}
	status, _ := body["status"].(string)
	return Delivery{SessionID: session, Status: didit.Status(status), body: body}
}

// loadTemplate decodes one of the templates afresh.
func loadTemplate(name string) (map[string]any, error) {
	raw, err := templates.ReadFile("templates/" + name)
	if err != nil {
		return nil, err
	}
	return decode(raw)
}

func decode(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	return body, nil
}

// EventID is the delivery's event_id.
func (d Delivery) EventID() string {
	id, _ := d.body["event_id"].(string)
	return id
}

// Body returns the delivery as Didit puts it on the wire, signed at ts.
func (d Delivery) Body(ts time.Time) ([]byte, error) { return WireAt(d.body, ts) }

// WireAt is a session webhook body stamped with ts (its timestamp) and
// rendered as Didit puts it on the wire: sorted keys, no spaces,
// non-ASCII escaped. body is not changed.
func WireAt(body map[string]any, ts time.Time) ([]byte, error) {
	stamped := make(map[string]any, len(body)+1)
	for k, v := range body {
		stamped[k] = v
	}
	stamped["timestamp"] = json.Number(strconv.FormatInt(ts.Unix(), 10))
	js, err := json.Marshal(stamped)
	if err != nil {
		return nil, err
	}
	return didit.Wire(js)
}

// NewUUID returns a random (version 4) UUID, as Didit's session and event
// IDs are.
func NewUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ParseDelays reads a comma-separated list of durations (a -retry-delays
// flag); empty means none.
func ParseDelays(s string) ([]time.Duration, error) {
	out := []time.Duration{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil {
			return nil, fmt.Errorf("-retry-delays: %w", err)
		}
		out = append(out, d)
	}
	return out, nil
}

// DiditRetryDelays is Didit's schedule after a failed attempt (SPEC §3.1):
// about a minute, then about four more.
var DiditRetryDelays = []time.Duration{time.Minute, 4 * time.Minute}

// Registry learns a session's state from the webhook body Didit is about to
// send, so that a fake of Didit's API answers what Didit would: Didit's
// decision API knows a session before its webhook leaves.
type Registry interface {
	Register(ctx context.Context, body []byte) error
}

// Sender posts deliveries to a receiver.
type Sender struct {
	URL    string
	Secret string
	Client *http.Client
	// RetryDelays are the waits before each retry of a 5xx, 404 or
	// connection failure; nil means DiditRetryDelays.
	RetryDelays []time.Duration
	// Registry, if set, is told each delivery's session state before its
	// first attempt. A failure is logged and counted, and the delivery is
	// sent all the same.
	Registry Registry
	// Log receives one line per attempt; nil discards.
	Log io.Writer
	Now func() time.Time

	mu sync.Mutex
}

// Attempt is one HTTP attempt of a delivery.
type Attempt struct {
	Status int
	Err    error
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Send registers d's session state with the Registry, if any, then
// delivers d, retrying like Didit, and returns every attempt.
func (s *Sender) Send(ctx context.Context, d Delivery) []Attempt {
	attempts, _ := s.send(ctx, d)
	return attempts
}

// send is Send that also reports whether the registration failed.
func (s *Sender) send(ctx context.Context, d Delivery) ([]Attempt, bool) {
	failed := s.register(ctx, d) != nil
	return s.deliver(ctx, d), failed
}

func (s *Sender) register(ctx context.Context, d Delivery) error {
	if s.Registry == nil {
		return nil
	}
	body, err := d.Body(s.now())
	if err == nil {
		err = s.Registry.Register(ctx, body)
	}
	if err != nil {
		s.logf("%s  session %s  registration failed: %v\n", d.Name, d.SessionID, err)
	}
	return err
}

func (s *Sender) deliver(ctx context.Context, d Delivery) []Attempt {
	delays := s.RetryDelays
	if delays == nil {
		delays = DiditRetryDelays
	}
	var attempts []Attempt
	for i := 0; ; i++ {
		a := s.attempt(ctx, d)
		attempts = append(attempts, a)
		s.logf("%s  session %s  attempt %d  → %s\n", d.Name, d.SessionID, i+1, describe(a))
		if !retryable(a) || i >= len(delays) {
			return attempts
		}
		select {
		case <-ctx.Done():
			return attempts
		case <-time.After(delays[i]):
		}
	}
}

func (s *Sender) attempt(ctx context.Context, d Delivery) Attempt {
	body, err := d.Body(s.now())
	if err != nil {
		return Attempt{Err: err}
	}
	h, err := didit.Signer{Secret: s.Secret}.Sign(body)
	if err != nil {
		return Attempt{Err: err}
	}
	header := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"DiditWebhook/2.0 +https://didit.me"}}
	h.Set(header)
	client := s.Client
	if client == nil {
		// Didit gives up on a delivery after five seconds.
		client = &http.Client{Timeout: 5 * time.Second}
	}
	status, err := httppost.Do(ctx, client, s.URL, header, body)
	if err != nil {
		return Attempt{Err: err}
	}
	return Attempt{Status: status}
}

// retryable is Didit's rule: 5xx, 404 and failures to connect or answer.
func retryable(a Attempt) bool {
	return a.Err != nil || a.Status >= 500 || a.Status == http.StatusNotFound
}

func describe(a Attempt) string {
	if a.Err != nil {
		return "error: " + a.Err.Error()
	}
	return fmt.Sprintf("%d %s", a.Status, http.StatusText(a.Status))
}

func (s *Sender) logf(format string, args ...any) {
	if s.Log == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.Log, format, args...)
}

// Plan says how a run shapes and paces its deliveries.
type Plan struct {
	// Duplicate sends every delivery this many times (1 = once).
	Duplicate int
	// Reorder sends a session's deliveries newest first.
	Reorder bool
	// Delay waits between a session's deliveries.
	Delay time.Duration
	// Sessions is how many sessions to run; Rate how many start per second
	// (0 = all at once).
	Sessions int
	Rate     float64
}

// Order applies Duplicate and Reorder to a session's deliveries.
func (p Plan) Order(ds []Delivery) []Delivery {
	ds = slices.Clone(ds)
	if p.Reorder {
		slices.Reverse(ds)
	}
	var out []Delivery
	for _, d := range ds {
		for range max(p.Duplicate, 1) {
			out = append(out, d)
		}
	}
	return out
}

// Result counts the outcome of a run.
type Result struct {
	Sessions   []string
	Deliveries int
	// ByStatus counts final answers by HTTP status; 0 counts errors.
	ByStatus map[int]int
	// RegistrationFailures counts deliveries whose session state the
	// Sender's Registry refused or could not be told.
	RegistrationFailures int
}

// Run sends plan.Sessions sessions built by build, at plan.Rate.
func (s *Sender) Run(ctx context.Context, plan Plan, build func() ([]Delivery, error)) (Result, error) {
	res := Result{ByStatus: map[int]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var interval time.Duration
	if plan.Rate > 0 {
		interval = time.Duration(float64(time.Second) / plan.Rate)
	}
	for i := 0; i < max(plan.Sessions, 1); i++ {
		if i > 0 && interval > 0 {
			select {
			case <-ctx.Done():
				wg.Wait()
				return res, ctx.Err()
			case <-time.After(interval):
			}
		}
		ds, err := build()
		if err != nil {
			wg.Wait()
			return res, err
		}
		mu.Lock()
		res.Sessions = append(res.Sessions, ds[0].SessionID)
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j, d := range plan.Order(ds) {
				if j > 0 && plan.Delay > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(plan.Delay):
					}
				}
				attempts, unregistered := s.send(ctx, d)
				last := attempts[len(attempts)-1]
				mu.Lock()
				res.Deliveries++
				res.ByStatus[last.Status]++
				if unregistered {
					res.RegistrationFailures++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return res, nil
}

// HarnessAPI is a Registry that posts each session's state to a fake
// Didit's harness-only endpoint, POST <URL>/_harness/sessions/ (package
// fakedidit; real Didit has no such thing).
type HarnessAPI struct {
	// URL is the fake's base URL, as DIDIT_API_URL has it (without /v3).
	URL string
	// Key is the fake's x-api-key.
	Key string
	// Client nil means one with a 5 s timeout.
	Client *http.Client
}

// SessionState is the body of POST /_harness/sessions/: what Didit knows of
// a session, taken from a webhook body.
type SessionState struct {
	SessionID string `json:"session_id"`
	Status    string `json:"status"`
	// Decision is absent when the webhook carries none: the fake then keeps
	// the one it has.
	Decision   json.RawMessage `json:"decision,omitempty"`
	VendorData string          `json:"vendor_data,omitempty"`
	// CreatedAt is RFC 3339; the fake uses it only for a session it does
	// not know yet.
	CreatedAt string `json:"created_at,omitempty"`
}

// StateOf reads a webhook body's session state.
func StateOf(body []byte) (SessionState, error) {
	var ev struct {
		SessionID  string          `json:"session_id"`
		Status     string          `json:"status"`
		Decision   json.RawMessage `json:"decision"`
		VendorData string          `json:"vendor_data"`
		CreatedAt  json.Number     `json:"created_at"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return SessionState{}, fmt.Errorf("webhook body: %w", err)
	}
	st := SessionState{SessionID: ev.SessionID, Status: ev.Status, VendorData: ev.VendorData}
	if len(ev.Decision) > 0 && string(ev.Decision) != "null" {
		st.Decision = ev.Decision
	}
	// created_at is Unix seconds; anything else is left to the fake's clock.
	if sec, err := ev.CreatedAt.Int64(); err == nil {
		st.CreatedAt = time.Unix(sec, 0).UTC().Format(time.RFC3339)
	}
	return st, nil
}

// Register posts the session state body reports.
func (h HarnessAPI) Register(ctx context.Context, body []byte) error {
	st, err := StateOf(body)
	if err != nil {
		return err
	}
	js, err := json.Marshal(st)
	if err != nil {
		return err
	}
	client := h.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	header := http.Header{"Content-Type": {"application/json"}, "X-Api-Key": {h.Key}}
	status, err := httppost.Do(ctx, client, strings.TrimSuffix(h.URL, "/")+"/_harness/sessions/", header, js)
	if err != nil {
		return fmt.Errorf("register session %s: %w", st.SessionID, err)
	}
	if status < 200 || status > 299 {
		return fmt.Errorf("register session %s: fake Didit answered %d %s", st.SessionID, status, http.StatusText(status))
	}
	return nil
}
