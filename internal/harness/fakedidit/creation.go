package fakedidit

import (
	"cmp"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"mime"
	"net/http"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/harness/simulator"
)

// hosted is what a session created through POST /v3/session/ has beyond
// what every session has: its page, its workflow and what its creator gave.
type hosted struct {
	token           string
	url             string
	workflowID      string
	workflowVersion int
	callback        string
	callbackMethod  string
	language        string
	// metadata is the creator's JSON object, compact; nil when none.
	metadata json.RawMessage
	contact  *contactDetails
	expected map[string]any
}

// contactDetails is Create Session's contact_details, as the decision
// echoes it.
type contactDetails struct {
	Email                  string `json:"email"`
	EmailLang              string `json:"email_lang"`
	SendNotificationEmails bool   `json:"send_notification_emails"`
	Phone                  string `json:"phone"`
}

// createRequest is the body of Didit's Create Session. Unknown fields are
// ignored, as Django REST framework does; portrait_image (for biometric
// re-authentication) is accepted and not used.
type createRequest struct {
	WorkflowID      string          `json:"workflow_id"`
	VendorData      string          `json:"vendor_data"`
	Callback        string          `json:"callback"`
	CallbackMethod  string          `json:"callback_method"`
	Metadata        json.RawMessage `json:"metadata"`
	Language        string          `json:"language"`
	ContactDetails  *contactDetails `json:"contact_details"`
	ExpectedDetails map[string]any  `json:"expected_details"`
	PortraitImage   string          `json:"portrait_image"`
}

// languages are the interface languages Create Session accepts (ISO 639-1,
// a few with a region), for language and contact_details.email_lang.
var languages = []string{"en", "ar", "bg", "bn", "ca", "cnr", "cs", "da", "de", "el", "es", "et", "fa", "fi",
	"fr", "he", "hi", "hr", "hu", "hy", "id", "it", "ja", "ka", "ko", "lt", "lv", "mk", "ms", "nl", "no", "pl",
	"pt-BR", "pt", "ro", "ru", "sk", "sl", "so", "sr", "sv", "th", "tr", "uk", "uz", "vi", "zh-CN", "zh-TW", "zh"}

var callbackMethods = []string{"initiator", "completer", "both"}

// unfinished are the statuses whose session a creation for the same
// vendor_data returns again (Didit's Create Session docs).
var unfinished = []string{string(didit.StatusNotStarted), string(didit.StatusInProgress),
	string(didit.StatusResubmitted), string(didit.StatusAwaitingUser)}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// hostedPrefix is where the hosted verification pages are: /session/<token>,
// as Didit's are on verify.didit.me.
const hostedPrefix = "/session/"

// maxCreateBody bounds a creation's body: portrait_image may hold a 1 MB
// image in base64.
const maxCreateBody = 2 << 20

// invalid is a validation error as Django REST framework reports it: the
// field's path (nested for contact_details and expected_details) and the
// message.
type invalid struct {
	path []string
	msg  string
}

func (e *invalid) write(w http.ResponseWriter) {
	var body any = []string{e.msg}
	for i := len(e.path) - 1; i >= 0; i-- {
		body = map[string]any{e.path[i]: body}
	}
	writeJSON(w, http.StatusBadRequest, body)
}

func field(msg string, path ...string) *invalid { return &invalid{path: path, msg: msg} }

func notAChoice(v string, path ...string) *invalid {
	return field(strconv.Quote(v)+" is not a valid choice.", path...)
}

// createSession serves POST /v3/session/ (Didit's Create Session): 201 with
// a new session, or with an unfinished one of the same vendor_data on the
// workflow's current version, whose callback and metadata it overwrites.
// A new session's Not Started webhook goes out in the background, and may
// reach a receiver before its creator has the answer, as Didit's may.
func (s *Server) createSession(w http.ResponseWriter, r *http.Request, _ []string) {
	if wait := s.admitCreation(); wait > 0 {
		throttleCreation(w, s.createLimit(), wait, s.now())
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType,
			detail(fmt.Sprintf("Unsupported media type %q in request.", r.Header.Get("Content-Type"))))
		return
	}
	var in createRequest
	if !decodeJSON(w, r, &in, maxCreateBody) {
		return
	}
	// Django's UUIDField takes any case and answers the canonical one.
	in.WorkflowID = strings.ToLower(in.WorkflowID)
	h, bad := validateCreate(in)
	if bad != nil {
		bad.write(w)
		return
	}
	h.url = pageBase(r, s.opts.PageURL) + hostedPrefix + h.token

	s.mu.Lock()
	version, known := s.workflows[in.WorkflowID]
	if !known {
		s.mu.Unlock()
		field("Workflow not found or not published.", "workflow_id").write(w)
		return
	}
	h.workflowVersion = version
	ss := s.reusable(in.VendorData, in.WorkflowID, version)
	var created event
	var at time.Time
	if ss != nil {
		ss.hosted.callback, ss.hosted.metadata = h.callback, h.metadata
	} else {
		s.nextNumber++
		ss = &session{id: simulator.NewUUID(), number: s.nextNumber, status: string(didit.StatusNotStarted),
			vendorData: in.VendorData, createdAt: s.now(), hosted: h}
		s.sessions[ss.id] = ss
		at = ss.nextEventTime(ss.createdAt)
		created = s.statusEvent(ss, didit.StatusNotStarted, at)
	}
	body := ss.creationBody()
	s.mu.Unlock()
	if created != nil {
		s.bg.Go(func() { s.sendAt(s.ctx, created, at) })
	}
	writeJSON(w, http.StatusCreated, body)
}

// validateCreate checks a creation's fields as Didit does, all but whether
// its workflow is published, and returns the session's hosted part.
func validateCreate(in createRequest) (*hosted, *invalid) {
	switch {
	case in.WorkflowID == "":
		return nil, field("This field is required.", "workflow_id")
	case !isUUID(in.WorkflowID):
		return nil, field("Must be a valid UUID.", "workflow_id")
	case in.Callback != "" && !validURL(in.Callback):
		return nil, field("Enter a valid URL.", "callback")
	case in.CallbackMethod != "" && !slices.Contains(callbackMethods, in.CallbackMethod):
		return nil, notAChoice(in.CallbackMethod, "callback_method")
	case in.Language != "" && !slices.Contains(languages, in.Language):
		return nil, notAChoice(in.Language, "language")
	}
	metadata, ok := parseMetadata(in.Metadata)
	if !ok {
		return nil, field("Value must be valid JSON.", "metadata")
	}
	if c := in.ContactDetails; c != nil {
		if _, err := mail.ParseAddress(c.Email); c.Email != "" && err != nil {
			return nil, field("Enter a valid email address.", "contact_details", "email")
		}
		if c.EmailLang != "" && !slices.Contains(languages, c.EmailLang) {
			return nil, notAChoice(c.EmailLang, "contact_details", "email_lang")
		}
		if c.Phone != "" && !e164.MatchString(c.Phone) {
			return nil, field("Enter a valid phone number.", "contact_details", "phone")
		}
	}
	if bad := validateExpected(in.ExpectedDetails); bad != nil {
		return nil, bad
	}
	return &hosted{
		token: newToken(), workflowID: in.WorkflowID,
		callback: in.Callback, callbackMethod: cmp.Or(in.CallbackMethod, "initiator"), language: in.Language,
		metadata: metadata, contact: in.ContactDetails, expected: in.ExpectedDetails,
	}, nil
}

// validateExpected checks the expected_details fields whose format Didit
// documents; the others are kept as given.
func validateExpected(e map[string]any) *invalid {
	if v, ok := e["date_of_birth"]; ok && v != nil {
		s, _ := v.(string)
		if _, err := time.Parse(time.DateOnly, s); err != nil {
			return field("Date has wrong format. Use one of these formats instead: YYYY-MM-DD.", "expected_details", "date_of_birth")
		}
	}
	if v, ok := e["gender"]; ok && v != nil && v != "M" && v != "F" {
		s, _ := v.(string)
		return notAChoice(s, "expected_details", "gender")
	}
	return nil
}

// parseMetadata reads metadata: a JSON object, or a string holding one (the
// docs show both); absent or null is none.
func parseMetadata(raw json.RawMessage) (json.RawMessage, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true
	}
	var text string
	if json.Unmarshal(raw, &text) == nil {
		raw = json.RawMessage(text)
	}
	var obj map[string]any
	if json.Unmarshal(raw, &obj) != nil || obj == nil {
		return nil, false
	}
	out, err := encodeJSON(obj)
	return out, err == nil
}

// reusable is the newest unfinished session a creation for vendorData on
// version of workflowID returns again, or nil; s.mu must be held. Without
// vendor_data Didit never reuses a session.
func (s *Server) reusable(vendorData, workflowID string, version int) *session {
	if vendorData == "" {
		return nil
	}
	var found *session
	for _, ss := range s.sessions {
		h := ss.hosted
		if h != nil && ss.vendorData == vendorData && h.workflowID == workflowID && h.workflowVersion == version &&
			slices.Contains(unfinished, ss.status) && (found == nil || ss.number > found.number) {
			found = ss
		}
	}
	return found
}

// creationBody is Create Session's 201 answer; s.mu must be held.
func (ss *session) creationBody() map[string]any {
	h := ss.hosted
	return map[string]any{
		"session_id":       ss.id,
		"session_number":   ss.number,
		"session_token":    h.token,
		"url":              h.url,
		"vendor_data":      nullable(ss.vendorData),
		"metadata":         h.metadata,
		"status":           ss.status,
		"workflow_id":      h.workflowID,
		"workflow_version": h.workflowVersion,
		"callback":         nullable(h.callback),
	}
}

// PublishWorkflow publishes a new version of a Didit workflow (a workflow
// the fake did not know starts at version 1), as saving it in Didit's
// console does, and returns the version. A creation no longer returns an
// unfinished session of an older version.
func (s *Server) PublishWorkflow(workflowID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.workflows[workflowID]++
	return s.workflows[workflowID]
}

func (s *Server) createLimit() int {
	if s.opts.CreateLimit == 0 {
		return DiditCreateLimit
	}
	return s.opts.CreateLimit
}

// admitCreation counts a creation against the limit of a sliding minute,
// as Didit's throttle does (a refused request is not counted), and returns
// 0, or how long until one is admitted again.
func (s *Server) admitCreation() time.Duration {
	limit := s.createLimit()
	if limit < 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for len(s.creations) > 0 && !s.creations[0].After(now.Add(-time.Minute)) {
		s.creations = s.creations[1:]
	}
	if len(s.creations) >= limit {
		return max(s.creations[0].Add(time.Minute).Sub(now), time.Second)
	}
	s.creations = append(s.creations, now)
	return 0
}

// throttleCreation answers 429 with Didit's headers: the limit, none left,
// and when (Unix seconds) and after how long (Retry-After) one is.
func throttleCreation(w http.ResponseWriter, limit int, wait time.Duration, now time.Time) {
	secs := int64((wait + time.Second - 1) / time.Second)
	h := w.Header()
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(now.Unix()+secs, 10))
	writeJSON(w, http.StatusTooManyRequests, detail(fmt.Sprintf("Request was throttled. Expected available in %d seconds.", secs)))
}

// pageBase is where the hosted pages are: base, else the scheme and Host
// the request came to.
func pageBase(r *http.Request, base string) string {
	if base != "" {
		return strings.TrimSuffix(base, "/")
	}
	return scheme(r) + "://" + r.Host
}

const tokenAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newToken is a session token like Didit's: twelve letters and digits.
func newToken() string {
	b := make([]byte, 12)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(tokenAlphabet))))
		b[i] = tokenAlphabet[n.Int64()]
	}
	return string(b)
}
