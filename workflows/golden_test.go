package workflows

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/codec"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/harness/business"
	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/kyc"
)

// Where a payload sits in a history event. Together with a name (workflow
// type, signal, activity type, search attribute) a site identifies a kind of
// payload; see classify.
const (
	siteWorkflowInput   = "workflow input"        // workflowExecutionStarted input
	siteContinueAsNew   = "continue-as-new input" // workflowExecutionContinuedAsNew input
	siteChildInput      = "child workflow input"  // startChildWorkflowExecutionInitiated input
	siteWorkflowResult  = "workflow result"       // workflowExecutionCompleted result
	siteChildResult     = "child workflow result" // childWorkflowExecutionCompleted result
	siteSignal          = "signal"                // workflowExecutionSignaled input
	siteUpdateInput     = "update input"          // workflowExecutionUpdateAccepted: the request's input
	siteUpdateResult    = "update result"         // workflowExecutionUpdateCompleted: the outcome's success
	siteActivityInput   = "activity input"        // activityTaskScheduled input
	siteActivityResult  = "activity result"       // activityTaskCompleted result
	siteSideEffect      = "side effect"           // SideEffect marker: the recorded value
	siteSideEffectID    = "side-effect id"        // SideEffect marker: the SDK's sequence number
	siteSearchAttribute = "search attribute"      // searchAttributes.indexedFields of any event
	siteSummary         = "user metadata summary" // userMetadata.summary of any event
	siteMarker          = "marker"                // marker details not covered above
	siteLocalData       = "local activity data"   // LocalActivity marker: the SDK's record of the call
	siteLocalResult     = "local activity result" // LocalActivity marker: the activity's result
	siteFailure         = "failure attributes"    // failure.encodedAttributes of any event, at any depth
)

// goldenKinds maps every kind of payload the recorded histories hold to the
// Go type that decodes it in production. It is the one place to touch when a
// Go type is renamed; the JSON the type reads must not change, because
// running workflows carry it in their histories (replay cannot tell: an
// unknown JSON field is ignored, a missing one becomes a zero value).
//
// A kind whose exempt is set never occurs in the recorded histories; the
// test does not demand one, and fails once one shows up, so the exemption
// is dropped and the kind checked from then on.
var goldenKinds = []payloadKind{
	// Workflow inputs and results.
	{site: siteWorkflowInput, name: contract.SessionWorkflowType, typ: reflect.TypeFor[SessionInput]()},
	{site: siteWorkflowInput, name: contract.AMLCaseWorkflowType, typ: reflect.TypeFor[AMLCaseInput]()},
	{site: siteContinueAsNew, name: contract.SessionWorkflowType, typ: reflect.TypeFor[SessionInput](),
		// So SessionInput.State and .Pending (SessionState, HandledEvent,
		// ParkedStep, OperatorDecision) are not covered by this test.
		exempt: "no recorded session ran long enough to continue as new"},
	{site: siteContinueAsNew, name: contract.AMLCaseWorkflowType, typ: reflect.TypeFor[AMLCaseInput](),
		exempt: "no recorded AML case waited long enough to continue as new; workflows/aml_test.go covers its state"},
	{site: siteChildInput, name: contract.AMLCaseWorkflowType, typ: reflect.TypeFor[AMLCaseInput]()},
	{site: siteWorkflowResult, name: contract.AMLCaseWorkflowType, typ: reflect.TypeFor[contract.Resolution]()},
	{site: siteChildResult, name: contract.AMLCaseWorkflowType, typ: reflect.TypeFor[contract.Resolution](),
		exempt: "the session waits only for its case to start; in aml-disorder.json it completed before the case was resolved"},

	// Signals.
	{site: siteSignal, name: contract.EventSignal, typ: reflect.TypeFor[contract.SessionEvent]()},
	{site: siteSignal, name: contract.RetrySignal, typ: reflect.TypeFor[contract.OperatorAction]()},
	{site: siteSignal, name: contract.SkipSignal, typ: reflect.TypeFor[contract.OperatorAction](),
		exempt: "no recorded history has an operator skip (parked-retry.json retries); same type as retry, which is covered"},
	{site: siteSignal, name: contract.ResolveSignal, typ: reflect.TypeFor[contract.Resolution]()},
	// What businesses' workflows send a session (package kyc).
	{site: siteSignal, name: contract.SubscribeSignal, typ: reflect.TypeFor[kyc.Subscription]()},
	{site: siteSignal, name: contract.UnsubscribeSignal, typ: reflect.TypeFor[kyc.Subscription](),
		exempt: "the recorded waits end told a decided status, which needs no unsubscription; same type as kyc-subscribe, which is covered"},

	// Activities, by the names the worker registers them under. Those
	// without a result entry return only an error: a result payload for
	// them is unmapped. Records and user notices run as local activities
	// (below), whose input no history holds.
	{site: siteActivityInput, name: "NotifyCompliance", typ: reflect.TypeFor[activities.ComplianceNotice]()},
	{site: siteActivityResult, name: "NotifyCompliance", typ: reflect.TypeFor[activities.NoticeResult]()},
	{site: siteActivityInput, name: "OpenAMLCase", typ: reflect.TypeFor[activities.AMLCase]()},
	{site: siteActivityResult, name: "OpenAMLCase", typ: reflect.TypeFor[bool]()},
	{site: siteActivityInput, name: "RecordAMLReminder", typ: reflect.TypeFor[activities.ReminderInput](),
		exempt: "no recorded AML case stayed open for a reminder interval (24h)"},
	{site: siteActivityInput, name: "ResolveAMLCase", typ: reflect.TypeFor[activities.ResolveInput]()},
	{site: siteActivityInput, name: "FlagSession", typ: reflect.TypeFor[activities.FlagInput]()},
	{site: siteActivityInput, name: "SessionCases", typ: reflect.TypeFor[string]()},
	{site: siteActivityResult, name: "SessionCases", typ: reflect.TypeFor[[]activities.CaseHits]()},
	{site: siteActivityInput, name: "FetchDecision", typ: reflect.TypeFor[string]()},
	{site: siteActivityResult, name: "FetchDecision", typ: reflect.TypeFor[activities.FetchedDecision]()},
	{site: siteActivityInput, name: "StartCaseHooks", typ: reflect.TypeFor[activities.CaseHooks]()},
	{site: siteActivityInput, name: "WriteHitReviews", typ: reflect.TypeFor[activities.NodeReviews]()},
	{site: siteActivityResult, name: "WriteHitReviews", typ: reflect.TypeFor[bool]()},
	// Reconciliation (the Reconcile workflow, started by its schedule).
	{site: siteWorkflowInput, name: contract.ReconcileWorkflowType, typ: reflect.TypeFor[ReconcileInput]()},
	{site: siteWorkflowResult, name: contract.ReconcileWorkflowType, typ: reflect.TypeFor[activities.ReconcileSummary]()},
	{site: siteContinueAsNew, name: contract.ReconcileWorkflowType, typ: reflect.TypeFor[ReconcileInput](),
		exempt: "no recorded reconcile run reached the history limit; workflows/reconcile_test.go covers its state"},
	{site: siteActivityInput, name: "ReconcileTargets", typ: reflect.TypeFor[string]()},
	{site: siteActivityResult, name: "ReconcileTargets", typ: reflect.TypeFor[activities.ReconcileTargets]()},
	{site: siteActivityInput, name: "ReconcileDeliveries", typ: reflect.TypeFor[activities.DeliveriesStep]()},
	{site: siteActivityResult, name: "ReconcileDeliveries", typ: reflect.TypeFor[activities.StepResult]()},
	{site: siteActivityInput, name: "ReconcileSessions", typ: reflect.TypeFor[activities.SessionsStep]()},
	{site: siteActivityResult, name: "ReconcileSessions", typ: reflect.TypeFor[activities.StepResult]()},
	{site: siteActivityInput, name: "ReconcileStale", typ: reflect.TypeFor[activities.StaleStep]()},
	{site: siteActivityResult, name: "ReconcileStale", typ: reflect.TypeFor[activities.StepResult]()},
	{site: siteActivityInput, name: "ReconcileFinished", typ: reflect.TypeFor[activities.ReconcileFinish]()},
	// The retention purge (the Purge workflow, started by its schedule).
	{site: siteWorkflowInput, name: contract.PurgeWorkflowType, typ: reflect.TypeFor[PurgeInput]()},
	{site: siteWorkflowResult, name: contract.PurgeWorkflowType, typ: reflect.TypeFor[PurgeSummary]()},
	{site: siteContinueAsNew, name: contract.PurgeWorkflowType, typ: reflect.TypeFor[PurgeInput](),
		exempt: "no recorded purge run reached the history limit; workflows/purge_test.go covers its progress"},
	{site: siteActivityInput, name: "PurgeSessions", typ: reflect.TypeFor[activities.PurgeStep]()},
	{site: siteActivityResult, name: "PurgeSessions", typ: reflect.TypeFor[activities.PurgeCounts]()},
	{site: siteActivityInput, name: "PurgeAMLCases", typ: reflect.TypeFor[activities.PurgeStep]()},
	{site: siteActivityResult, name: "PurgeAMLCases", typ: reflect.TypeFor[activities.PurgeCounts]()},
	// A scheduled run's search attributes, set by the schedule.
	{site: siteSearchAttribute, name: "TemporalScheduledById", typ: reflect.TypeFor[string]()},
	{site: siteSearchAttribute, name: "TemporalScheduledStartTime", typ: reflect.TypeFor[string]()},
	{site: siteActivityInput, name: "FlagAMLCase", typ: reflect.TypeFor[activities.FlagInput](),
		exempt: "no recorded AML case was flagged"},
	{site: siteSignal, name: contract.AcknowledgeSignal, typ: reflect.TypeFor[contract.OperatorAction](),
		exempt: "no recorded history has an acknowledgement; same type as retry, which is covered"},

	// A business's workflows (kyc/testdata/replay, recorded from the
	// harness's, internal/harness/business): kyc's wire contract, the
	// activities it runs on diditflow's queues and the updates a session
	// signals, which are part of kyc's public API.
	{site: siteActivityInput, name: contract.CreateSessionActivity, typ: reflect.TypeFor[kyc.Request]()},
	{site: siteActivityResult, name: contract.CreateSessionActivity, typ: reflect.TypeFor[kyc.Verification]()},
	{site: siteActivityInput, name: contract.SubscribeActivity, typ: reflect.TypeFor[kyc.Subscription]()},
	{site: siteActivityInput, name: contract.UnsubscribeActivity, typ: reflect.TypeFor[kyc.Subscription]()},
	{site: siteActivityInput, name: contract.DecisionActivity, typ: reflect.TypeFor[kyc.DecisionRequest]()},
	{site: siteActivityResult, name: contract.DecisionActivity, typ: reflect.TypeFor[kyc.SessionDecision]()},
	{site: siteSignal, name: contract.UpdateSignal("<session_id>"), typ: reflect.TypeFor[kyc.Update]()},
	{site: siteWorkflowInput, name: business.AwaitType, typ: reflect.TypeFor[business.AwaitInput]()},
	{site: siteWorkflowResult, name: business.AwaitType, typ: reflect.TypeFor[string]()},
	{site: siteWorkflowInput, name: business.OnboardType, typ: reflect.TypeFor[business.OnboardInput]()},
	{site: siteWorkflowResult, name: business.OnboardType, typ: reflect.TypeFor[business.Onboarding]()},

	// Operators' Updates: the signals' input, and what they answer.
	{site: siteUpdateInput, name: contract.RetrySignal, typ: reflect.TypeFor[contract.OperatorAction]()},
	{site: siteUpdateInput, name: contract.SkipSignal, typ: reflect.TypeFor[contract.OperatorAction](),
		exempt: "no recorded history has a skip Update; same type as retry, which is covered"},
	{site: siteUpdateInput, name: contract.AcknowledgeSignal, typ: reflect.TypeFor[contract.OperatorAction](),
		exempt: "no recorded history has an acknowledge Update; same type as retry, which is covered"},
	{site: siteUpdateInput, name: contract.ResolveSignal, typ: reflect.TypeFor[contract.Resolution]()},
	{site: siteUpdateResult, name: contract.RetrySignal, typ: reflect.TypeFor[contract.ActionResult]()},
	{site: siteUpdateResult, name: contract.SkipSignal, typ: reflect.TypeFor[contract.ActionResult](),
		exempt: "no recorded history has a skip Update; same type as retry, which is covered"},
	{site: siteUpdateResult, name: contract.AcknowledgeSignal, typ: reflect.TypeFor[contract.ActionResult](),
		exempt: "no recorded history has an acknowledge Update; same type as retry, which is covered"},
	{site: siteUpdateResult, name: contract.ResolveSignal, typ: reflect.TypeFor[contract.ResolveResult]()},

	// Workflows.settings records the worker's Settings with
	// workflow.SideEffect, once a run; an Update's handler records its
	// caller (Workflows.callerIdentity), named here by its shape.
	{site: siteSideEffect, typ: reflect.TypeFor[Settings]()},
	{site: siteSideEffect, name: updateCallerSideEffect, typ: reflect.TypeFor[updateCaller]()},

	// The SDK's own payloads, and the search attributes diditflow upserts:
	// mapped rather than ignored, so that nothing in a history goes
	// unchecked, and so that a renamed search attribute shows up here as an
	// unmapped one.
	{site: siteSideEffectID, typ: reflect.TypeFor[int64]()},
	// A LocalActivity marker's data is the SDK's record of the call (its
	// activity ID and type, the attempt, the time), keyed here by the
	// activity type it names; its result is the activity's result.
	{site: siteLocalData, name: "RecordEvents", typ: reflect.TypeFor[localActivityMarkerData]()},
	{site: siteLocalData, name: "NotifyUser", typ: reflect.TypeFor[localActivityMarkerData]()},
	{site: siteLocalData, name: "RecordVerification", typ: reflect.TypeFor[localActivityMarkerData](),
		exempt: "no recorded batch was given up and recorded event by event"},
	{site: siteLocalData, name: "Announce", typ: reflect.TypeFor[localActivityMarkerData]()},
	{site: siteLocalResult, name: "Announce", typ: reflect.TypeFor[activities.AnnounceResult]()},
	{site: siteLocalResult, name: "RecordEvents", typ: reflect.TypeFor[[]activities.RecordResult]()},
	{site: siteLocalResult, name: "NotifyUser", typ: reflect.TypeFor[activities.NoticeResult]()},
	{site: siteLocalResult, name: "RecordVerification", typ: reflect.TypeFor[activities.RecordResult](),
		exempt: "no recorded batch was given up and recorded event by event"},
	{site: siteSummary, name: enums.EVENT_TYPE_TIMER_STARTED.String(), typ: reflect.TypeFor[string]()}, // "AwaitWithTimeout"
	// A failure's message and stack trace, which the failure converter
	// encrypts into one payload (codec.FailureConverter).
	{site: siteFailure, typ: reflect.TypeFor[failureAttributes]()},
	{site: siteSearchAttribute, name: contract.StatusKey.GetName(), typ: reflect.TypeFor[string]()},
	{site: siteSearchAttribute, name: contract.AMLHitKey.GetName(), typ: reflect.TypeFor[bool]()},
	{site: siteSearchAttribute, name: contract.NeedsAttentionKey.GetName(), typ: reflect.TypeFor[bool]()},
	// workflow.GetVersion upserts the versions a run took.
	{site: siteSearchAttribute, name: "TemporalChangeVersion", typ: reflect.TypeFor[[]string](),
		exempt: "no workflow calls GetVersion before the first release (docs/VERSIONS.md)"},
}

// skippedMarkers are markers whose payloads are the SDK's bookkeeping, not
// values of diditflow's types. Any other marker but SideEffect and
// LocalActivity is unmapped.
var skippedMarkers = map[string]string{
	"Version": "workflow.GetVersion's change ID and version number",
}

const (
	sideEffectMarker    = "SideEffect"
	localActivityMarker = "LocalActivity"
)

// localActivityMarkerData mirrors the SDK's own (unexported) record of a
// local activity call in its marker.
type localActivityMarkerData struct {
	ActivityID   string
	ActivityType string
	ReplayTime   time.Time
	Attempt      int32
	Backoff      time.Duration
}

// failureAttributes mirrors the SDK's encoding of a failure's message and
// stack trace into its encodedAttributes.
type failureAttributes struct {
	Message    string `json:"message"`
	StackTrace string `json:"stack_trace"`
}

// localActivityType is the activity type a LocalActivity marker names.
func localActivityType(ev *historypb.HistoryEvent) string {
	var d localActivityMarkerData
	if json.Unmarshal(markerData(ev), &d) != nil {
		return ""
	}
	return d.ActivityType
}

// updateCallerSideEffect names the side effect that records an Update's
// caller: the one whose value holds an update_id.
const updateCallerSideEffect = "update caller"

// sideEffectName tells the side effects apart by their value's shape.
func sideEffectName(ev *historypb.HistoryEvent) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(markerData(ev), &fields) == nil && fields["update_id"] != nil {
		return updateCallerSideEffect
	}
	return ""
}

// markerData is a marker's data payload, decrypted.
func markerData(ev *historypb.HistoryEvent) []byte {
	p := ev.GetMarkerRecordedEventAttributes().GetDetails()["data"].GetPayloads()
	if len(p) == 0 {
		return nil
	}
	plain := p[0]
	if string(plain.GetMetadata()[converter.MetadataEncoding]) == codec.Encoding {
		out, err := launch.Codec().Decode(p[:1])
		if err != nil || len(out) == 0 {
			return nil
		}
		plain = out[0]
	}
	return plain.GetData()
}

// payloadKind is one entry of goldenKinds.
type payloadKind struct {
	site, name string
	typ        reflect.Type
	exempt     string
}

func (k payloadKind) key() kindKey { return kindKey{k.site, k.name} }

// kindKey identifies a kind of payload: its site and name.
type kindKey struct{ site, name string }

func (k kindKey) String() string {
	if k.name == "" {
		return k.site
	}
	return k.site + " " + k.name
}

// TestGoldenPayloads decodes every payload recorded in the replay histories
// into the Go type production decodes it into, re-encodes it, and requires
// every recorded field back with its value: a renamed json tag or a dropped
// field strands the data running workflows carry, and replay does not
// notice.
func TestGoldenPayloads(t *testing.T) {
	kinds := map[kindKey]payloadKind{}
	for _, k := range goldenKinds {
		if _, dup := kinds[k.key()]; dup {
			t.Fatalf("goldenKinds lists %s twice", k.key())
		}
		kinds[k.key()] = k
	}
	files, err := filepath.Glob(filepath.Join("testdata", "replay", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded histories: %v", err)
	}
	businesses, err := filepath.Glob(filepath.Join("..", "kyc", "testdata", "replay", "*.json"))
	if err != nil || len(businesses) == 0 {
		t.Fatalf("no recorded histories of businesses' workflows: %v", err)
	}
	files = append(files, businesses...)
	found := map[kindKey]int{}
	for _, f := range files {
		hist := loadHistory(t, f)
		for _, err := range checkHistory(filepath.Base(f), hist, kinds, found) {
			t.Error(err)
		}
	}
	for _, k := range goldenKinds {
		n := found[k.key()]
		t.Logf("%-45s %3d payloads  (%v)", k.key(), n, k.typ)
		switch {
		case n == 0 && k.exempt == "":
			t.Errorf("no %s payload in any recorded history: record one, or exempt the kind and say why", k.key())
		case n > 0 && k.exempt != "":
			t.Errorf("%s is exempt (%s), yet %d were recorded: drop the exemption", k.key(), k.exempt, n)
		}
	}
}

// loadHistory reads a history as the SDK's replayer does, except that
// unknown fields are an error: a payload in a field this API version does
// not know would escape the check.
func loadHistory(t *testing.T, file string) *historypb.History {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var hist historypb.History
	if err := (temporalproto.CustomJSONUnmarshalOptions{}).Unmarshal(b, &hist); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(hist.GetEvents()) == 0 {
		t.Fatalf("%s: no events", file)
	}
	return &hist
}

// checkHistory checks every payload of hist, wherever it sits in an event,
// against kinds, and counts what it checked in found. It returns one error
// for each payload that is unmapped or does not survive the round trip.
func checkHistory(file string, hist *historypb.History, kinds map[kindKey]payloadKind, found map[kindKey]int) []error {
	workflowType := hist.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName()
	activityTypes := map[int64]string{} // scheduled event ID → activity type
	updateNames := map[string]string{}  // update ID → name
	var errs []error
	for _, ev := range hist.GetEvents() {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			activityTypes[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes(); a != nil {
			updateNames[a.GetAcceptedRequest().GetMeta().GetUpdateId()] = a.GetAcceptedRequest().GetInput().GetName()
		}
		if _, skip := skippedMarkers[ev.GetMarkerRecordedEventAttributes().GetMarkerName()]; skip {
			continue
		}
		where := fmt.Sprintf("%s event %d", file, ev.GetEventId())
		walkPayloads(ev.ProtoReflect(), "", func(path string, p *commonpb.Payload) {
			key := classify(ev, path, workflowType, activityTypes, updateNames)
			kind, ok := kinds[key]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: unmapped payload: %v at %s: %s", where, key, path, abbreviate(p.GetData())))
				return
			}
			found[key]++
			if diff := roundTrip(kind.typ, p); diff != "" {
				errs = append(errs, fmt.Errorf("%s %v: %s", where, key, diff))
			}
		})
	}
	return errs
}

var payloadMessage = (&commonpb.Payload{}).ProtoReflect().Descriptor().FullName()

// walkPayloads calls found for every Payload in m, at any depth, with its
// path in protojson field names (map keys in brackets, in sorted order).
// Walking the message, rather than reading the fields known to hold
// payloads, is what lets a payload in an unexpected place fail the test.
func walkPayloads(m protoreflect.Message, path string, found func(path string, p *commonpb.Payload)) {
	if m.Descriptor().FullName() == payloadMessage {
		found(path, m.Interface().(*commonpb.Payload))
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := fd.JSONName()
		if path != "" {
			name = path + "." + name
		}
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() == nil {
				break
			}
			entries := v.Map()
			var keys []protoreflect.MapKey
			entries.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool { keys = append(keys, k); return true })
			slices.SortFunc(keys, func(a, b protoreflect.MapKey) int { return strings.Compare(a.String(), b.String()) })
			for _, k := range keys {
				walkPayloads(entries.Get(k).Message(), fmt.Sprintf("%s[%s]", name, k.String()), found)
			}
		case fd.IsList():
			if fd.Message() == nil {
				break
			}
			for i := range v.List().Len() {
				walkPayloads(v.List().Get(i).Message(), fmt.Sprintf("%s[%d]", name, i), found)
			}
		case fd.Message() != nil:
			walkPayloads(v.Message(), name, found)
		}
		return true
	})
}

// classify names the kind of the payload at path in ev. A payload it does
// not recognise gets a key no goldenKinds entry has.
func classify(ev *historypb.HistoryEvent, path, workflowType string, activityTypes map[int64]string, updateNames map[string]string) kindKey {
	if _, rest, ok := strings.Cut(path, ".searchAttributes.indexedFields["); ok && strings.HasSuffix(rest, "]") {
		return kindKey{siteSearchAttribute, strings.TrimSuffix(rest, "]")}
	}
	if strings.HasSuffix(path, "failure.encodedAttributes") || strings.HasSuffix(path, "cause.encodedAttributes") {
		return kindKey{siteFailure, ""}
	}
	// Only the first payload of an input or result: each workflow, signal
	// and activity takes one argument and returns at most one value.
	switch path {
	case "workflowExecutionStartedEventAttributes.input.payloads[0]":
		return kindKey{siteWorkflowInput, ev.GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName()}
	case "workflowExecutionContinuedAsNewEventAttributes.input.payloads[0]":
		return kindKey{siteContinueAsNew, ev.GetWorkflowExecutionContinuedAsNewEventAttributes().GetWorkflowType().GetName()}
	case "startChildWorkflowExecutionInitiatedEventAttributes.input.payloads[0]":
		return kindKey{siteChildInput, ev.GetStartChildWorkflowExecutionInitiatedEventAttributes().GetWorkflowType().GetName()}
	case "workflowExecutionCompletedEventAttributes.result.payloads[0]":
		return kindKey{siteWorkflowResult, workflowType}
	case "childWorkflowExecutionCompletedEventAttributes.result.payloads[0]":
		return kindKey{siteChildResult, ev.GetChildWorkflowExecutionCompletedEventAttributes().GetWorkflowType().GetName()}
	case "workflowExecutionSignaledEventAttributes.input.payloads[0]":
		name := ev.GetWorkflowExecutionSignaledEventAttributes().GetSignalName()
		if strings.HasPrefix(name, contract.UpdateSignal("")) {
			// One name per session.
			name = contract.UpdateSignal("<session_id>")
		}
		return kindKey{siteSignal, name}
	case "workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest.input.args.payloads[0]":
		return kindKey{siteUpdateInput, ev.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest().GetInput().GetName()}
	case "workflowExecutionUpdateCompletedEventAttributes.outcome.success.payloads[0]":
		return kindKey{siteUpdateResult, updateNames[ev.GetWorkflowExecutionUpdateCompletedEventAttributes().GetMeta().GetUpdateId()]}
	case "activityTaskScheduledEventAttributes.input.payloads[0]":
		return kindKey{siteActivityInput, ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()}
	case "activityTaskCompletedEventAttributes.result.payloads[0]":
		return kindKey{siteActivityResult, activityTypes[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()]}
	case "userMetadata.summary":
		return kindKey{siteSummary, ev.GetEventType().String()}
	}
	if marker := ev.GetMarkerRecordedEventAttributes().GetMarkerName(); marker != "" {
		switch {
		case marker == localActivityMarker && path == "markerRecordedEventAttributes.details[data].payloads[0]":
			return kindKey{siteLocalData, localActivityType(ev)}
		case marker == localActivityMarker && path == "markerRecordedEventAttributes.details[result].payloads[0]":
			return kindKey{siteLocalResult, localActivityType(ev)}
		case marker != sideEffectMarker:
			return kindKey{siteMarker, marker}
		case path == "markerRecordedEventAttributes.details[data].payloads[0]":
			return kindKey{siteSideEffect, sideEffectName(ev)}
		case path == "markerRecordedEventAttributes.details[side-effect-id].payloads[0]":
			return kindKey{siteSideEffectID, ""}
		}
	}
	return kindKey{"unknown site", ev.GetEventType().String()}
}

// roundTrip decodes p into a new value of typ with the SDK's default data
// converter, as the worker does, re-encodes it with encoding/json and
// returns the first place where the result lacks or changes what p holds,
// or "" if it keeps all of it. Fields the type has and p lacks are fine:
// they are new, and decode to zero values from old histories.
func roundTrip(typ reflect.Type, p *commonpb.Payload) string {
	if string(p.GetMetadata()[converter.MetadataEncoding]) == codec.Encoding {
		plain, err := launch.Codec().Decode([]*commonpb.Payload{p})
		if err != nil {
			return fmt.Sprintf("does not decrypt with launch.PayloadKeys: %v", err)
		}
		p = plain[0]
	}
	if enc := string(p.GetMetadata()[converter.MetadataEncoding]); enc != converter.MetadataEncodingJSON {
		return fmt.Sprintf("encoding %q, want %q", enc, converter.MetadataEncodingJSON)
	}
	v := reflect.New(typ)
	if err := converter.GetDefaultDataConverter().FromPayload(p, v.Interface()); err != nil {
		return fmt.Sprintf("does not decode into %v: %v", typ, err)
	}
	again, err := json.Marshal(v.Interface())
	if err != nil {
		return fmt.Sprintf("%v does not re-encode: %v", typ, err)
	}
	recorded, err := genericJSON(p.GetData())
	if err != nil {
		return fmt.Sprintf("recorded payload: %v", err)
	}
	reencoded, err := genericJSON(again)
	if err != nil {
		return fmt.Sprintf("re-encoded payload: %v", err)
	}
	return firstDifference("$", recorded, reencoded)
}

// genericJSON decodes b keeping numbers as written, so that no integer loses
// precision on the way.
func genericJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("trailing data after the JSON value")
	}
	return v, nil
}

// firstDifference returns "" if every key of recorded, recursively through
// objects and arrays, is in got with an equal value; otherwise the path of
// the first key that is missing or differs (object keys in sorted order).
func firstDifference(path string, recorded, got any) string {
	switch r := recorded.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: recorded an object, re-encoded %s", path, abbreviateValue(got))
		}
		for _, k := range slices.Sorted(maps.Keys(r)) {
			gv, ok := g[k]
			if !ok {
				return path + "." + k + " missing"
			}
			if d := firstDifference(path+"."+k, r[k], gv); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(r) {
			return fmt.Sprintf("%s: recorded %d elements, re-encoded %s", path, len(r), abbreviateValue(got))
		}
		for i := range r {
			if d := firstDifference(fmt.Sprintf("%s[%d]", path, i), r[i], g[i]); d != "" {
				return d
			}
		}
		return ""
	case json.Number:
		if g, ok := got.(json.Number); ok && sameNumber(r, g) {
			return ""
		}
	default: // string, bool or nil
		if recorded == got {
			return ""
		}
	}
	return fmt.Sprintf("%s: recorded %s, re-encoded %s", path, abbreviateValue(recorded), abbreviateValue(got))
}

// sameNumber compares numbers by value, so 86 and 86.0 are equal.
func sameNumber(a, b json.Number) bool {
	if a == b {
		return true
	}
	x, okX := new(big.Rat).SetString(string(a))
	y, okY := new(big.Rat).SetString(string(b))
	return okX && okY && x.Cmp(y) == 0
}

func abbreviateValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return abbreviate(b)
}

func abbreviate(b []byte) string {
	const max = 120
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// TestGoldenCheckerCatchesRenames shows the check fails the way it must: a
// recorded didit-event payload read by types whose json tags have drifted
// from what the history holds.
func TestGoldenCheckerCatchesRenames(t *testing.T) {
	hist := loadHistory(t, filepath.Join("testdata", "replay", "approved.json"))
	var event *commonpb.Payload
	for _, ev := range hist.GetEvents() {
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil && a.GetSignalName() == contract.EventSignal {
			event = a.GetInput().GetPayloads()[0]
			break
		}
	}
	if event == nil {
		t.Fatal("no didit-event signal in approved.json")
	}
	if diff := roundTrip(reflect.TypeFor[contract.SessionEvent](), event); diff != "" {
		t.Fatalf("the real type must pass: %s", diff)
	}

	// Proof's tag renamed from "verification".
	type renamedTag struct {
		Event      didit.Event `json:"event"`
		Proof      didit.Proof `json:"proof"`
		ReceivedAt time.Time   `json:"received_at"`
	}
	// ReceivedAt dropped.
	type droppedField struct {
		Event didit.Event `json:"event"`
		Proof didit.Proof `json:"verification"`
	}
	// Proof.Timestamp's tag renamed, one level down.
	type renamedNested struct {
		Event didit.Event `json:"event"`
		Proof struct {
			Scheme    didit.Scheme `json:"scheme"`
			Timestamp int64        `json:"ts"`
		} `json:"verification"`
		ReceivedAt time.Time `json:"received_at"`
	}
	for _, tc := range []struct {
		typ  reflect.Type
		want string
	}{
		{reflect.TypeFor[renamedTag](), "$.verification missing"},
		{reflect.TypeFor[droppedField](), "$.received_at missing"},
		{reflect.TypeFor[renamedNested](), "$.verification.timestamp missing"},
	} {
		if got := roundTrip(tc.typ, event); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.typ, got, tc.want)
		}
	}
}

// TestGoldenFirstDifference pins how differences are reported: through
// arrays, by value, and with extra re-encoded keys allowed.
func TestGoldenFirstDifference(t *testing.T) {
	for _, tc := range []struct{ recorded, got, want string }{
		{`{"a":{"b":[{"c":1}]}}`, `{"a":{"b":[{"c":1,"d":2}]},"e":3}`, ""},
		{`{"a":{"b":[{"c":1}]}}`, `{"a":{"b":[{"c":2}]}}`, "$.a.b[0].c: recorded 1, re-encoded 2"},
		{`{"a":{"b":[{"c":1}]}}`, `{"a":{"b":[{}]}}`, "$.a.b[0].c missing"},
		{`{"a":[1,2]}`, `{"a":[1]}`, "$.a: recorded 2 elements, re-encoded [1]"},
		{`{"a":86}`, `{"a":86.0}`, ""},
		{`{"a":null}`, `{"a":0}`, "$.a: recorded null, re-encoded 0"},
		{`"sent"`, `"in_doubt"`, `$: recorded "sent", re-encoded "in_doubt"`},
	} {
		r, err := genericJSON([]byte(tc.recorded))
		if err != nil {
			t.Fatal(err)
		}
		g, err := genericJSON([]byte(tc.got))
		if err != nil {
			t.Fatal(err)
		}
		if got := firstDifference("$", r, g); got != tc.want {
			t.Errorf("%s vs %s: got %q, want %q", tc.recorded, tc.got, got, tc.want)
		}
	}
}

// TestGoldenUnmappedPayload shows that a payload of a kind goldenKinds does
// not list fails the check instead of passing unchecked.
func TestGoldenUnmappedPayload(t *testing.T) {
	payload := &commonpb.Payload{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte(converter.MetadataEncodingJSON)},
		Data:     []byte(`{"x":1}`),
	}
	input := &commonpb.Payloads{Payloads: []*commonpb.Payload{payload}}
	hist := &historypb.History{Events: []*historypb.HistoryEvent{
		{
			EventId:   1,
			EventType: enums.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
			Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{
				WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
					WorkflowType: &commonpb.WorkflowType{Name: contract.SessionWorkflowType},
				},
			},
		},
		{
			EventId:   2,
			EventType: enums.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
			Attributes: &historypb.HistoryEvent_WorkflowExecutionSignaledEventAttributes{
				WorkflowExecutionSignaledEventAttributes: &historypb.WorkflowExecutionSignaledEventAttributes{
					SignalName: "pause", Input: input,
				},
			},
		},
	}}
	kinds := map[kindKey]payloadKind{}
	for _, k := range goldenKinds {
		kinds[k.key()] = k
	}
	errs := checkHistory("synthetic.json", hist, kinds, map[kindKey]int{})
	want := `synthetic.json event 2: unmapped payload: signal pause at workflowExecutionSignaledEventAttributes.input.payloads[0]: {"x":1}`
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("got %v, want [%s]", errs, want)
	}
}
