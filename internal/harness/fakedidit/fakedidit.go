// Package fakedidit is a fake of Didit's management and decision API
// (verification.didit.me/v3) and of its hosted verification pages, for
// diditflow's test harness. It follows what docs/didit-SPEC.md says Didit
// does, not what a friendly client would like: API-key auth with 403s
// without a key and 401s with a wrong one, throttling with 429 and
// Retry-After, Django's HTML 404 for malformed ids and its 301 for a missing
// trailing slash, absolute LimitOffset pagination links, a delivery log with
// resend, AML hit review write-back that comes home as a data.updated
// webhook, webhook destinations and a legacy webhook config whose secret
// rotation kills the old secret at once.
//
// It creates sessions as Didit does (POST /v3/session/, see Create Session
// in Didit's docs): on a published workflow (Options.Workflows), at most
// Options.CreateLimit a minute, returning an unfinished session of the same
// vendor_data on the workflow's current version again, and sending the new
// session's Not Started webhook, which may arrive before the creator has
// the answer. Each created session's url is a hosted verification page the
// fake serves itself (/session/<token>, no key, no script): a developer
// picks what the user does (Approve, Decline, Review with an AML hit,
// Abandon, Expire) and what happens later in Didit's console (a reviewer's
// decision, Kyc Expired), and the fake sends Didit's webhooks for that
// path, a step a second, keeps the session's truth for the decision API
// and sends the browser to the creator's callback. Choose does the same
// from Go.
//
// The harness drives its state directly: PutSession registers sessions and
// their decisions, Deliver sends a session webhook to every enabled,
// subscribed destination the way Didit does (signed, 5 s timeout, retried on
// 5xx, 404 and transport failures) and logs every attempt. Like Didit, the
// fake's record of a session follows the webhooks it sends: Deliver first
// records the body's session state (see Register).
//
// One endpoint is the harness's, not Didit's: POST /_harness/sessions/, with
// the API's x-api-key, records a session state sent by a tool in another
// process (cmd/didit-sim -didit-api), as Register does:
//
//	{"session_id": "<uuid>", "status": "Approved", "decision": {…},
//	 "vendor_data": "user-1", "created_at": "2026-01-01T00:00:00Z"}
//
// decision, vendor_data and created_at are optional. It answers 200 with the
// session as GET /v3/sessions/ lists it, or 400 with the reason. It is never
// throttled.
package fakedidit

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// DefaultDestinationUUID is the uuid of the destination that always exists
// and stands for the legacy webhook config (GET/PATCH /v3/webhook/).
const DefaultDestinationUUID = "d1d17000-0000-4000-8000-000000000001"

// ApplicationID is the application_id put in webhooks the fake builds itself.
const ApplicationID = "a9911ca7-0000-4000-8000-000000000001"

// DefaultWorkflowID is the Didit workflow the fake knows when Options name
// none: the workflow of the fixtures' sessions, a KYC workflow with ID
// document, liveness, face match, AML screening and IP analysis.
const DefaultWorkflowID = "c4a81f6e-2b57-4d93-8e0a-71f35bd2c9e4"

// DiditCreateLimit is Didit's rate limit on session creation: 600 a
// minute per API key (SPEC §4.4).
const DiditCreateLimit = 600

// DiditRetryDelays is Didit's schedule after a failed attempt (SPEC §3.1).
var DiditRetryDelays = []time.Duration{time.Minute, 4 * time.Minute}

// Options configure a Server.
type Options struct {
	// Key is the only accepted x-api-key; a missing or wrong one gets 401.
	Key string
	// ReceiverURL is the default destination's url, where webhooks go.
	ReceiverURL string
	// Secret is the default destination's (legacy) webhook secret, used to
	// sign its deliveries and returned by GET /v3/webhook/.
	Secret string
	// RetryDelays are the waits before each retry; nil means
	// DiditRetryDelays. Their count is the number of retries.
	RetryDelays []time.Duration
	// RestampRetries re-stamps and re-signs every retry with the time it is
	// sent. By default a retry repeats the first attempt's bytes and
	// signatures, so with Didit's delays the last retry reaches a receiver
	// about 300 s after its X-Timestamp (SPEC §1.6 leaves this open; the
	// fake takes the unkind reading). Resends always re-sign (SPEC §4.5).
	RestampRetries bool
	// RateLimitEvery makes every Nth authenticated API request answer 429
	// (0 = never).
	RateLimitEvery int
	// Workflows are the published Didit workflows sessions can be created
	// on, each at version 1 (PublishWorkflow publishes a new one); nil
	// means DefaultWorkflowID alone.
	Workflows []string
	// CreateLimit is how many session creations a sliding minute admits
	// before answering 429; 0 means Didit's DiditCreateLimit, a negative
	// value no limit.
	CreateLimit int
	// PageURL is the base URL of the hosted verification pages, which the
	// fake serves itself at /session/<token>; empty means the scheme and
	// Host the creation request came to.
	PageURL string
	// Now is the clock for timestamps and log entries; nil means time.Now.
	Now func() time.Time
	// HTTPClient sends deliveries; nil means a client with Didit's 5 s
	// timeout that does not follow redirects (a 3xx is a final failure).
	HTTPClient *http.Client
}

// Attempt is one HTTP attempt of a delivery: the answer's status, or the
// transport error (Status 0).
type Attempt struct {
	Status int
	Err    error
}

// LoggedDelivery is one attempt in the delivery log.
type LoggedDelivery struct {
	UUID            string
	DestinationUUID string
	SessionID       string
	WebhookType     string
	EventID         string
	RequestURL      string
	// ResponseStatus is 0 when the request got no answer.
	ResponseStatus int
	ResponseTimeMS int64
	// Status is "delivered" (2xx) or "failed".
	Status        string
	CreatedAt     time.Time
	RequestHeader map[string]string
	// RequestBody is the exact bytes sent.
	RequestBody []byte
}

// HitReviewCall is one hit review written through an AML endpoint.
type HitReviewCall struct {
	SessionID    string
	NodeID       string
	HitID        string
	ReviewStatus string
	Bulk         bool
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	opts   Options
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*session
	dests    []*destination // oldest first, deleted ones included
	log      []*LoggedDelivery
	hitCalls []HitReviewCall
	requests int
	// calls counts the requests that reached a route, by its method and
	// pattern (Calls).
	calls      map[string]int
	legacy     legacyConfig
	nextNumber int
	// workflows maps each published workflow to its current version.
	workflows map[string]int
	// creations are the times of the session creations admitted in the
	// last minute, oldest first.
	creations []time.Time

	httpSrv *http.Server
}

type session struct {
	id         string
	number     int
	status     string
	vendorData string
	decision   json.RawMessage
	createdAt  time.Time
	// hosted is set for a session created through POST /v3/session/.
	hosted *hosted
	// lastEvent is the created_at of the last webhook the fake built for
	// the session: each later one is at least a second after it.
	lastEvent time.Time
}

// New returns a fake with the default destination in place.
func New(o Options) *Server {
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{
			Timeout:       5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{opts: o, client: client, ctx: ctx, cancel: cancel, sessions: map[string]*session{}, calls: map[string]int{}}
	s.legacy = legacyConfig{webhookVersion: "v3", captureMethod: "both"}
	s.workflows = map[string]int{}
	workflows := o.Workflows
	if workflows == nil {
		workflows = []string{DefaultWorkflowID}
	}
	for _, w := range workflows {
		s.workflows[strings.ToLower(w)] = 1
	}
	now := s.now()
	s.dests = []*destination{{
		uuid:      DefaultDestinationUUID,
		label:     "default",
		url:       o.ReceiverURL,
		enabled:   true,
		version:   "v3",
		events:    []string{"status.updated", "data.updated"},
		secret:    o.Secret,
		createdAt: now,
		updatedAt: now,
	}}
	return s
}

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

func (s *Server) retryDelays() []time.Duration {
	if s.opts.RetryDelays == nil {
		return DiditRetryDelays
	}
	return s.opts.RetryDelays
}

// Start listens on addr (such as 127.0.0.1:0) and serves the API in the
// background. It returns the base URL, e.g. http://127.0.0.1:41234.
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	s.httpSrv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.httpSrv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// Close stops the listener of Start, cancels background deliveries and
// waits for them to end.
func (s *Server) Close() error {
	s.cancel()
	var err error
	if s.httpSrv != nil {
		if err = s.httpSrv.Close(); errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	}
	s.bg.Wait()
	return err
}

// Wait blocks until the webhooks fired in the background (by AML hit
// reviews) have been delivered or given up.
func (s *Server) Wait() { s.bg.Wait() }

// PutSession registers or updates a session and its current decision. The
// decision's "status" should equal status; with a nil decision the decision
// endpoint answers a minimal one, as Didit always has a decision.
func (s *Server) PutSession(id, status string, decision json.RawMessage, vendorData string, createdAt time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[id]
	if !ok {
		s.nextNumber++
		ss = &session{id: id, number: s.nextNumber}
		s.sessions[id] = ss
	}
	ss.status, ss.vendorData, ss.createdAt = status, vendorData, createdAt
	ss.decision = append(json.RawMessage(nil), decision...)
	if decision == nil {
		ss.decision = nil
	}
}

// Register records the session state a webhook body reports, as Deliver
// does before sending it, and sends nothing; it lets a harness that sends
// its own webhooks (a simulator.Sender's Registry) keep the fake's decision
// API in step. A body without a session_id is ignored.
//
// The status becomes the session's. A decision in the body becomes the
// session's; without one the stored decision stays, its status set to the
// new one, since Didit's decision API always answers the session's current
// status. vendor_data replaces the stored one when present. A session seen
// for the first time is created at the body's created_at, else now.
func (s *Server) Register(_ context.Context, body []byte) error {
	ev, err := parseEvent(body)
	if err != nil {
		return err
	}
	s.record(ev.update())
	return nil
}

// Deliveries returns a copy of the delivery log, oldest first.
func (s *Server) Deliveries() []LoggedDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]LoggedDelivery, len(s.log))
	for i, d := range s.log {
		out[i] = *d
	}
	return out
}

// HitReviews returns the latest review status written per hit id of a
// session through the AML endpoints.
func (s *Server) HitReviews(sessionID string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for _, c := range s.hitCalls {
		if c.SessionID == sessionID {
			out[c.HitID] = c.ReviewStatus
		}
	}
	return out
}

// Calls returns how many requests, authorized or not, reached the route of
// pattern (as routes name it, "/v3/session/{id}/decision/") with method:
// what a test asserts a client did, or never did, ask of Didit.
func (s *Server) Calls(method, pattern string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method+" "+pattern]
}

// HitReviewCalls returns every hit review written, in order.
func (s *Server) HitReviewCalls() []HitReviewCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]HitReviewCall(nil), s.hitCalls...)
}
