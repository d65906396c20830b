package didit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestParseEventFixtures(t *testing.T) {
	cases := []struct {
		file        string
		session     string
		webhookType WebhookType
		status      Status
		decision    bool
		amlHits     int
	}{
		{"status-updated-in-progress.json", "9b2f4c1e-6d3a-4e8b-a5f0-1c7d2e9b8a64", WebhookStatusUpdated, StatusInProgress, false, 0},
		{"status-updated-approved.json", "9b2f4c1e-6d3a-4e8b-a5f0-1c7d2e9b8a64", WebhookStatusUpdated, StatusApproved, true, 0},
		{"data-updated.json", "9b2f4c1e-6d3a-4e8b-a5f0-1c7d2e9b8a64", WebhookDataUpdated, StatusApproved, true, 0},
		{"status-updated-in-review.json", "e1c7a3d5-4b92-4f0e-8d61-3a5b9c2f7e18", WebhookStatusUpdated, StatusInReview, true, 1},
		{"status-updated-declined-aml-hit.json", "e1c7a3d5-4b92-4f0e-8d61-3a5b9c2f7e18", WebhookStatusUpdated, StatusDeclined, true, 1},
		{"status-updated-approved-unicode.json", "4a6d8e2f-1c3b-4f57-9e0d-b82a7c6f15e3", WebhookStatusUpdated, StatusApproved, true, 0},
		{"status-updated-approved-unicode.reencoded.json", "4a6d8e2f-1c3b-4f57-9e0d-b82a7c6f15e3", WebhookStatusUpdated, StatusApproved, true, 0},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			ev, err := ParseEvent(readFixture(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if ev.SessionID != c.session || ev.WebhookType != c.webhookType || ev.Status != c.status {
				t.Fatalf("envelope = %s %s %q", ev.SessionID, ev.WebhookType, ev.Status)
			}
			if !ev.Status.Known() || !ev.WebhookType.Known() {
				t.Fatal("fixture status or type not known")
			}
			if ev.Timestamp != fixtureTime || ev.CreatedAt == 0 || ev.CreatedAt > ev.Timestamp || ev.EventID == "" {
				t.Fatalf("times/event id = %d %d %q", ev.Timestamp, ev.CreatedAt, ev.EventID)
			}
			if (ev.Decision != nil) != c.decision || ev.DecisionError != "" {
				t.Fatalf("decision = %v (%s)", ev.Decision, ev.DecisionError)
			}
			if got := len(ev.Decision.AMLHits()); got != c.amlHits {
				t.Fatalf("AML hits = %d, want %d", got, c.amlHits)
			}
			if c.decision && (ev.Decision.Status != c.status || len(ev.Decision.Features) != 5) {
				t.Fatalf("decision status %q features %v", ev.Decision.Status, ev.Decision.Features)
			}
		})
	}
}

func TestParseEventAMLDecision(t *testing.T) {
	ev, err := ParseEvent(readFixture(t, "status-updated-declined-aml-hit.json"))
	if err != nil {
		t.Fatal(err)
	}
	hit := ev.Decision.AMLHits()[0]
	if hit.ID == "" || hit.ReviewStatus != ReviewConfirmedMatch || *hit.MatchScore != 95 || *hit.RiskScore != 86 {
		t.Fatalf("hit = %+v", hit)
	}
	if len(hit.Datasets) != 1 || hit.Datasets[0] != "PEP Level 2" {
		t.Fatalf("datasets = %v", hit.Datasets)
	}
	if s := ev.Decision.AMLScreenings[0]; s.TotalHits != 1 || *s.Score != 86 || s.Status != "Declined" {
		t.Fatalf("screening = %+v", s)
	}
	if r := ev.Decision.Reviews; len(r) != 1 || r[0].NewStatus != StatusDeclined || r[0].CreatedAt == "" {
		t.Fatalf("reviews = %+v", r)
	}
	if ev.VendorData == "" || len(ev.Metadata) == 0 {
		t.Fatal("vendor_data and metadata should be read")
	}
}

func TestAMLHitsSkipFalsePositives(t *testing.T) {
	d := &Decision{AMLScreenings: []AMLScreening{{Hits: []AMLHit{
		{ID: "a", ReviewStatus: ReviewFalsePositive},
		{ID: "b", ReviewStatus: ReviewUnreviewed},
	}}, {Hits: []AMLHit{{ID: "c", ReviewStatus: ReviewInconclusive}}}}}
	hits := d.AMLHits()
	if len(hits) != 2 || hits[0].ID != "b" || hits[1].ID != "c" {
		t.Fatalf("AMLHits = %+v", hits)
	}
}

func TestContactEmail(t *testing.T) {
	var none *Decision
	if none.ContactEmail() != "" {
		t.Fatal("nil decision has no email")
	}
	for body, want := range map[string]string{
		`{"email_verifications":[{"status":"Declined","email":"x@example.com"},{"status":"Approved","email":"v@example.com"}]}`: "v@example.com",
		`{"contact_details":{"email":"c@example.com"},"email_verifications":[{"status":"Approved","email":"v@example.com"}]}`:   "c@example.com",
		`{"contact_details":null}`: "",
	} {
		d, err := parseDecision([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if got := d.ContactEmail(); got != want {
			t.Errorf("%s: ContactEmail = %q, want %q", body, got, want)
		}
	}
}

// TestDecisionCarriesNoPersonalData: what travels into workflow histories
// holds none of the personal data in the fixtures about the user, nor the
// reviewer's comment. Who reviewed is kept (Decision.Reviewer): a member of
// the business's staff, named as a resolve signal names its reviewer.
func TestDecisionCarriesNoPersonalData(t *testing.T) {
	for _, f := range []string{"status-updated-declined-aml-hit.json", "status-updated-approved-unicode.json", "data-updated.json"} {
		ev, err := ParseEvent(readFixture(t, f))
		if err != nil {
			t.Fatal(err)
		}
		ev.Metadata = nil
		js, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		for _, pii := range []string{"Daniel", "Navarro", "CBX482917", "1968-02-23", "José", "Müller", "Königstraße",
			"AML hit confirmed", "Outside risk appetite", "media.example.com", "Leeds", "passport", "Passport"} {
			if strings.Contains(string(js), pii) {
				t.Errorf("%s: parsed event carries %q", f, pii)
			}
		}
	}
}

func TestParseEventMatchesExactNames(t *testing.T) {
	// encoding/json alone would let "Status" override "status"; a signature
	// over "status" does not cover "Status".
	body := `{"session_id":"s","webhook_type":"status.updated","status":"In Review","timestamp":5,` +
		`"Status":"Approved","Session_ID":"victim","Timestamp":9999999999}`
	ev, err := ParseEvent([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if ev.SessionID != "s" || ev.Status != StatusInReview || ev.Timestamp != 5 || ev.CreatedAt != 5 {
		t.Fatalf("event = %+v", ev)
	}
}

func TestParseEventToleratesOddFields(t *testing.T) {
	body := `{"session_id":"s","webhook_type":"status.updated","status":"Approved","timestamp":7,` +
		`"created_at":"yesterday","workflow_version":"3","resubmit_info":["x"],"vendor_data":42}`
	ev, err := ParseEvent([]byte(body))
	if err != nil {
		t.Fatalf("an authentic event with odd fields must still be delivered: %v", err)
	}
	if ev.Status != StatusApproved || ev.CreatedAt != 7 || len(ev.Warnings) != 4 {
		t.Fatalf("event = %+v", ev)
	}
}

func TestParseEventKeepsEventWhenDecisionIsOdd(t *testing.T) {
	body := `{"session_id":"s","webhook_type":"status.updated","status":"Approved","timestamp":1,"decision":{"aml_screenings":[{"total_hits":"many"}]}}`
	ev, err := ParseEvent([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Decision != nil || ev.DecisionError == "" || ev.Status != StatusApproved {
		t.Fatalf("event = %+v", ev)
	}
}

func TestParseEventRejects(t *testing.T) {
	for name, body := range map[string]string{
		"not JSON":             `hello`,
		"array":                `[{"session_id":"s"}]`,
		"no session_id":        `{"webhook_type":"status.updated","timestamp":1}`,
		"empty session_id":     `{"session_id":"","webhook_type":"status.updated"}`,
		"no webhook_type":      `{"session_id":"s","timestamp":1}`,
		"session_id as number": `{"session_id":7,"webhook_type":"status.updated"}`,
	} {
		if _, err := ParseEvent([]byte(body)); !errors.Is(err, ErrNotDiditEvent) {
			t.Errorf("%s: %v, want ErrNotDiditEvent", name, err)
		}
	}
}

func TestConstructEvent(t *testing.T) {
	body, h := signedFixture(t)
	ev, ver, err := fixtureVerifier().ConstructEvent(body, h)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Status != StatusApproved || ver.Scheme != SchemeRaw || ver.EnvelopeOnly {
		t.Fatalf("ConstructEvent = %s %+v", ev.Status, ver)
	}
	if _, _, err := fixtureVerifier().ConstructEvent([]byte(strings.ToUpper(string(body))), h); !errors.Is(err, ErrSignatureMismatch) {
		t.Fatalf("forged body: %v", err)
	}
}

func TestStatusKnown(t *testing.T) {
	if Status("KYC Expired").Known() {
		t.Error(`"KYC Expired" is the UI label; the value is "Kyc Expired"`)
	}
	if !StatusKycExpired.Known() || StatusKycExpired != "Kyc Expired" {
		t.Error("Kyc Expired")
	}
	if WebhookType("user.status.updated").Known() {
		t.Error("entity webhooks are not handled")
	}
}

func TestAuthenticatedDropsUnsignedFields(t *testing.T) {
	ev, err := ParseEvent(readFixture(t, "status-updated-declined-aml-hit.json"))
	if err != nil {
		t.Fatal(err)
	}
	if full := ev.Authenticated(Proof{Scheme: SchemeRaw}); full.Decision == nil || full.EventID != ev.EventID {
		t.Fatal("a full-body verification must keep the whole event")
	}
	env := ev.Authenticated(Proof{Scheme: SchemeSimple, EnvelopeOnly: true})
	want := Event{WebhookType: ev.WebhookType, Timestamp: ev.Timestamp, SessionID: ev.SessionID, Status: ev.Status}
	if env.Decision != nil || env.VendorData != "" || env.EventID != "" || len(env.Metadata) != 0 ||
		env.WebhookType != want.WebhookType || env.Timestamp != want.Timestamp || env.CreatedAt != want.CreatedAt ||
		env.SessionID != want.SessionID || env.Status != want.Status {
		t.Fatalf("envelope-only event = %+v", env)
	}
}

func TestEventKey(t *testing.T) {
	ev := Event{EventID: "e-1", SessionID: "s", WebhookType: WebhookStatusUpdated, Status: StatusApproved, Timestamp: 10}
	if ev.Key() != "e-1" {
		t.Fatalf("Key = %q, want the event_id", ev.Key())
	}
	ev.EventID = ""
	other := ev
	other.Timestamp = 11
	if ev.Key() == "" || ev.Key() == other.Key() {
		t.Fatalf("keys without event_id: %q, %q", ev.Key(), other.Key())
	}
}

func TestResubmitSteps(t *testing.T) {
	var info ResubmitInfo
	body := `{"nodes_to_resubmit":["feature_ocr_1",{"node_id":"feature_liveness_1"},{"feature":"POA","node_id":"x"},{},7]}`
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatal(err)
	}
	got := info.Steps()
	want := []string{"feature_ocr_1", "feature_liveness_1", "POA"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Steps = %q, want %q", got, want)
	}
	var none *ResubmitInfo
	if none.Steps() != nil {
		t.Fatal("nil info has no steps")
	}
}

func TestStatusRankAndFinal(t *testing.T) {
	order := []Status{StatusNotStarted, StatusInProgress, StatusInReview, StatusApproved, StatusKycExpired}
	for i := 1; i < len(order); i++ {
		if order[i-1].Rank() >= order[i].Rank() {
			t.Errorf("%q should rank below %q", order[i-1], order[i])
		}
	}
	if Status("Something New").Rank() >= StatusNotStarted.Rank() {
		t.Error("unknown statuses must rank lowest")
	}
	for _, s := range []Status{StatusApproved, StatusDeclined, StatusExpired, StatusKycExpired, StatusAbandoned} {
		if !s.Final() {
			t.Errorf("%q should be final", s)
		}
	}
	for _, s := range []Status{StatusNotStarted, StatusInProgress, StatusAwaitingUser, StatusInReview, StatusResubmitted} {
		if s.Final() {
			t.Errorf("%q should not be final", s)
		}
	}
}

func TestConsoleTestIsJudgedByTheBody(t *testing.T) {
	for _, c := range []struct {
		name string
		ev   Event
		want bool
	}{
		// The business's metadata, which a user may influence, never
		// makes a real event a test.
		{"metadata.test_webhook true on a real event", Event{EventID: "e-1", VendorData: "user-1", Metadata: []byte(`{"test_webhook":true}`)}, false},
		{"metadata.test_webhook true without an event_id", Event{VendorData: "user-1", Metadata: []byte(`{"test_webhook":true}`)}, false},
		{"test vendor_data, no event_id", Event{VendorData: TestVendorData}, true},
		{"a console test as Didit sends it", Event{VendorData: TestVendorData, Metadata: []byte(`{"test_webhook":true}`)}, true},
		{"test vendor_data with an event_id", Event{EventID: "e-1", VendorData: TestVendorData}, false},
		{"metadata.test_webhook false", Event{Metadata: []byte(`{"test_webhook":false}`)}, false},
		{"metadata.test_webhook a string", Event{Metadata: []byte(`{"test_webhook":"true"}`)}, false},
		{"metadata that is not an object", Event{Metadata: []byte(`[1,2]`)}, false},
		{"a real event", Event{EventID: "e-1", VendorData: "user-1", Metadata: []byte(`{"tier":"gold"}`)}, false},
	} {
		if got := c.ev.ConsoleTest(); got != c.want {
			t.Errorf("%s: ConsoleTest() = %v, want %v", c.name, got, c.want)
		}
	}
	// Only X-Signature-Simple verified: metadata and vendor_data are not
	// authentic, so nothing marks the event as a test.
	simple := Event{VendorData: TestVendorData, Metadata: []byte(`{"test_webhook":true}`), SessionID: "s-1"}
	if simple.Authenticated(Proof{Scheme: SchemeSimple, EnvelopeOnly: true}).ConsoleTest() {
		t.Error("an envelope-only event counts as a console test")
	}
}

// reencodings of a signed body: what anyone who captured the delivery can
// send in its place and still have X-Signature-V2 verify, because each has
// the same canonical form (SPEC §1.4): other spacing, other member order,
// whole numbers written as floats, a member given twice with the genuine
// copy last.
func reencodings(t *testing.T, body []byte) map[string][]byte {
	t.Helper()
	indent := func(b []byte) []byte {
		var indented bytes.Buffer
		if err := json.Indent(&indented, b, "", "  "); err != nil {
			t.Fatal(err)
		}
		return indented.Bytes()
	}
	// Top-level members in reverse order.
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var members []string
	for dec.More() {
		name, _ := dec.Token()
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			t.Fatal(err)
		}
		quoted, _ := json.Marshal(name)
		members = append([]string{string(quoted) + ":" + string(value)}, members...)
	}
	floats := regexp.MustCompile(`"(timestamp|created_at)":(\d+)`).ReplaceAll(body, []byte(`"$1":$2.0`))
	exponent := regexp.MustCompile(`"created_at":(\d)(\d+)`).ReplaceAllFunc(body, func(m []byte) []byte {
		digits := regexp.MustCompile(`\d+`).Find(m)
		return []byte(`"created_at":` + string(digits[:1]) + "." + string(digits[1:]) + "e" + strconv.Itoa(len(digits)-1))
	})
	// An address injected into the decision before the genuine copy of
	// contact_details, which the canonical form drops and Go's decoder
	// would merge into it.
	injected := bytes.Replace(body, []byte(`"decision":{`),
		[]byte(`"decision":{"contact_details":{"email":"mallory@example.com"},`), 1)
	for name, b := range map[string][]byte{"floats": floats, "exponent": exponent, "injected": injected} {
		if bytes.Equal(b, body) {
			t.Fatalf("reencoding %q changed nothing", name)
		}
	}
	return map[string][]byte{
		"indented":            indent(body),
		"members reversed":    []byte("{" + strings.Join(members, ",") + "}"),
		"integers as floats":  floats,
		"created_at exponent": exponent,
		"address injected":    injected,
		"all of it at once":   indent(bytes.Replace(floats, []byte(`"decision":{`), []byte(`"decision":{"contact_details":{"email":"mallory@example.com"},`), 1)),
	}
}

// TestReencodedDeliveryReadsAsSigned: a re-encoded delivery that verifies
// under X-Signature-V2 is read as what the signature covered, never as its
// own bytes would read: the genuine timestamps (not 0 for 1767225600.0), no
// injected address, every AML hit; and every encoding has the digest of
// the genuine delivery, so a replay cache keyed on it sees one delivery.
func TestReencodedDeliveryReadsAsSigned(t *testing.T) {
	raw := readFixture(t, "status-updated-declined-aml-hit.json")
	// The genuine decision has contact details without an address.
	body := bytes.Replace(raw, []byte(`"contact_details":null`), []byte(`"contact_details":{"phone":"+34600000000"}`), 1)
	if bytes.Equal(body, raw) {
		t.Fatal("fixture has no contact_details:null")
	}
	h, err := Signer{Secret: fixtureSecret}.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	v := fixtureVerifier()
	want, wantProof, err := v.ConstructEvent(body, h)
	if err != nil {
		t.Fatal(err)
	}
	if want.Timestamp != 1767225600 || want.CreatedAt != 1767225391 || want.Decision.ContactEmail() != "" || len(want.Decision.AMLHits()) == 0 {
		t.Fatalf("genuine delivery read as %+v", want)
	}
	for name, variant := range reencodings(t, body) {
		t.Run(name, func(t *testing.T) {
			got, proof, err := v.ConstructEvent(variant, h)
			if err != nil {
				t.Fatal(err)
			}
			if proof.Scheme != SchemeV2 {
				t.Fatalf("verified by %s, want v2 (the raw bytes differ)", proof.Scheme)
			}
			if proof.Digest != wantProof.Digest {
				t.Error("a re-encoding has another digest: a replay cache would take it for a new delivery")
			}
			if got.Timestamp != want.Timestamp || got.CreatedAt != want.CreatedAt || got.EventID != want.EventID {
				t.Errorf("timestamp %d, created_at %d, event %q; want %d, %d, %q", got.Timestamp, got.CreatedAt, got.EventID,
					want.Timestamp, want.CreatedAt, want.EventID)
			}
			if email := got.Decision.ContactEmail(); email != "" {
				t.Errorf("contact address %q read from outside the signature", email)
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(want)
			if !bytes.Equal(gotJSON, wantJSON) {
				t.Errorf("event differs from the genuine one:\n got %s\nwant %s", gotJSON, wantJSON)
			}
		})
	}
}

// TestSimpleSignatureReadsTheSignedEnvelope: after X-Signature-Simple only
// the four envelope fields are authentic, and they are read as signed: a
// timestamp re-encoded as a float is still the signed integer.
func TestSimpleSignatureReadsTheSignedEnvelope(t *testing.T) {
	body := readFixture(t, "status-updated-approved.json")
	h, err := Signer{Secret: fixtureSecret}.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	variant := bytes.Replace(body, []byte(`"timestamp":1767225600`), []byte(`"timestamp":1767225600.0`), 1)
	v := fixtureVerifier()
	v.AllowSimple = true
	ev, proof, err := v.ConstructEvent(variant, Headers{SignatureSimple: h.SignatureSimple, Timestamp: h.Timestamp})
	if err != nil {
		t.Fatal(err)
	}
	if !proof.EnvelopeOnly || ev.Timestamp != 1767225600 {
		t.Fatalf("envelope-only %v, timestamp %d; want true, 1767225600", proof.EnvelopeOnly, ev.Timestamp)
	}
}

func TestValidSessionID(t *testing.T) {
	for id, want := range map[string]bool{
		"9b2f4c1e-6d3a-4e8b-a5f0-1c7d2e9b8a64": true,
		"session_01":                           true,
		strings.Repeat("a", MaxSessionIDLen):   true,
		strings.Repeat("a", MaxSessionIDLen+1): false,
		"":                                     false,
		`a" OR WorkflowId != "`:                false,
		"a b":                                  false,
		"a/b":                                  false,
		"a\x00b":                               false,
		"é":                                    false,
	} {
		if got := ValidSessionID(id); got != want {
			t.Errorf("ValidSessionID(%q) = %v, want %v", id, got, want)
		}
	}
	// At ingestion: an authentic body naming a session Didit cannot have
	// named is not a Didit event.
	body := []byte(`{"session_id":"a\" OR WorkflowId STARTS_WITH \"","status":"Approved","webhook_type":"status.updated","timestamp":1}`)
	if _, err := ParseEvent(body); !errors.Is(err, ErrNotDiditEvent) {
		t.Fatalf("ParseEvent: %v, want ErrNotDiditEvent", err)
	}
}

// TestRawSignedBodyWithoutCanonicalForm: a body X-Signature authenticated
// byte for byte is Didit's even when it has no canonical form (nested past
// MaxDepth, or a lone surrogate, which Python's ensure_ascii=True writes as
// an escape): it is read from those bytes, never refused as not an event,
// which would lose it (Didit does not retry a 400).
func TestRawSignedBodyWithoutCanonicalForm(t *testing.T) {
	fixture := readFixture(t, "status-updated-approved.json")
	deep := strings.Repeat(`{"a":`, MaxDepth+10) + "1" + strings.Repeat("}", MaxDepth+10)
	for name, body := range map[string][]byte{
		"lone surrogate": bytes.Replace(fixture, []byte(`"vendor_data":"`), []byte(`"vendor_data":"\ud83d`), 1),
		"deep metadata":  bytes.Replace(fixture, []byte(`"metadata":{`), []byte(`"metadata":{"deep":`+deep+`,`), 1),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Canonical(body); err == nil {
				t.Fatal("the body has a canonical form: not the case under test")
			}
			raw := hex.EncodeToString(sum(fixtureSecret, body))
			ev, proof, err := fixtureVerifier().ConstructEvent(body, Headers{Signature: raw, Timestamp: "1767225600"})
			if err != nil {
				t.Fatal(err)
			}
			if proof.Scheme != SchemeRaw || ev.Status != StatusApproved || ev.Timestamp != 1767225600 || proof.Digest == ([32]byte{}) {
				t.Fatalf("read as %s %d by %s", ev.Status, ev.Timestamp, proof.Scheme)
			}
			// Not under X-Signature-V2, which covers the canonical form.
			if _, _, err := fixtureVerifier().ConstructEvent(body, Headers{SignatureV2: raw, Timestamp: "1767225600"}); !errors.Is(err, ErrSignatureMismatch) {
				t.Fatalf("V2: %v, want ErrSignatureMismatch", err)
			}
		})
	}
}

// TestScreenedHitsAndReviewer: every hit, false positives included, with its
// review status; the reviewer is the latest review's user.
func TestScreenedHitsAndReviewer(t *testing.T) {
	ev, err := ParseEvent(readFixture(t, "status-updated-declined-aml-hit.json"))
	if err != nil {
		t.Fatal(err)
	}
	hits := ev.Decision.ScreenedHits()
	if len(hits) != 1 || hits[0].ReviewStatus != ReviewConfirmedMatch || hits[0].NodeID != "feature_aml_1" {
		t.Fatalf("hits = %+v", hits)
	}
	if got := ev.Decision.Reviewer(); got != "compliance.officer@example.com" {
		t.Fatalf("reviewer = %q", got)
	}
	d := &Decision{
		AMLScreenings: []AMLScreening{{Hits: []AMLHit{{ID: "a", ReviewStatus: ReviewFalsePositive}, {ID: "b"}}}},
		Reviews: []Review{{User: "later@example.com", CreatedAt: "2026-01-02T00:00:00Z"},
			{User: "earlier@example.com", CreatedAt: "2026-01-01T00:00:00Z"}},
	}
	if hits := d.ScreenedHits(); len(hits) != 2 || len(d.AMLHits()) != 1 {
		t.Fatalf("screened %+v, AML hits %+v: want the false positive among the screened only", hits, d.AMLHits())
	}
	if got := d.Reviewer(); got != "later@example.com" {
		t.Fatalf("reviewer = %q, want the latest review's", got)
	}
	var none *Decision
	if none.ScreenedHits() != nil || none.Reviewer() != "" || (&Decision{}).Reviewer() != "" {
		t.Fatal("no decision, no reviews: no hits, no reviewer")
	}
}
