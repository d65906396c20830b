// Package untrusted keeps a worker from acting on what reaches Temporal
// unencrypted once payload keys are configured. Anyone who can reach the
// frontend can start a workflow, signal it or send it an Update; only
// diditflow's own clients hold the keys, so an unencrypted workflow input,
// signal or Update argument is refused, counted and logged (without its
// data).
//
// The Temporal Go SDK (v1.51) shows worker code a payload before decoding it
// in one place only: a workflow interceptor's HandleSignal receives the
// signal's payloads as recorded in the history. A workflow's input and an
// Update's arguments are decoded by the data converter before any
// interceptor is called. So a Guard has two parts:
//
//   - Its data converter decodes with codec.Strict: a workflow whose input is
//     not encrypted fails its run (the SDK fails a run whose input does not
//     decode, with a workflow failure, so the workflow ID is free again for
//     the genuine start), an Update is rejected before its validator runs,
//     and a result completed from outside (an activity completed by ID) is
//     an error to the workflow, never a value.
//   - Its workflow interceptor drops a signal whose payloads are not
//     encrypted (or do not decrypt) before it reaches the workflow's
//     channel. A channel would refuse to decode it too, but the SDK then
//     drops it inside Receive, which blocks a Selector's callback until the
//     next signal and panics ReceiveWithTimeout. A signal without payload
//     is taken only for retry (running a parked step again is safe whoever
//     asks): a bare skip or acknowledge would give up every parked step or
//     clear every flag. An Update without payload is refused the same way,
//     before its validator: with nothing to decode, the codec never sees
//     it, and its handler would see zero values.
//
// Memos and search attributes are not decoded by the workflows; histories
// replayed by a worker.WorkflowReplayer (the replay tests) use whatever
// converter the replayer is given.
package untrusted

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"

	"github.com/prometheus/client_golang/prometheus"
	commonpb "go.temporal.io/api/common/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/internal/codec"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/lograte"
)

// Kinds of refused payload, the kind label of the counter.
const (
	// KindStart is a workflow's input: the run fails.
	KindStart = "start"
	// KindSignal is a signal's: it is dropped.
	KindSignal = "signal"
	// KindUpdate is an Update's arguments: the Update is rejected. The SDK
	// decodes them before it tells an interceptor the Update's name, so
	// their name label is empty.
	KindUpdate = "update"
	// KindOther is any other payload a workflow or activity decodes (a
	// result completed from outside, a query's arguments).
	KindOther = "other"
)

// unknownSignal is the name label of a signal (or Update) diditflow does
// not define: a name is the sender's to choose, and a label of each would
// let anyone grow the registry without bound.
const unknownSignal = "unknown"

// knownSignals are diditflow's signals; the operators' among them are
// Updates too.
var knownSignals = map[string]bool{
	contract.EventSignal: true, contract.RetrySignal: true, contract.SkipSignal: true,
	contract.AcknowledgeSignal: true, contract.ResolveSignal: true,
	contract.SubscribeSignal: true, contract.UnsubscribeSignal: true,
}

// Guard refuses unencrypted payloads on a worker: its DataConverter and its
// interceptor go together into the worker's client.Options (a client
// interceptor that is also a worker interceptor applies to every worker
// built on the client). Use one only with keys configured: without them
// every payload is unencrypted.
type Guard struct {
	interceptor.InterceptorBase
	codec   converter.PayloadCodec
	log     *slog.Logger
	refused *prometheus.CounterVec
	// unknownKey counts the decodes held for a key this worker lacks.
	unknownKey *prometheus.CounterVec
}

// New returns the Guard of the codec c's keys, counting into reg (if not
// nil) as diditflow_untrusted_payloads_total.
func New(c *codec.Codec, log *slog.Logger, reg prometheus.Registerer) *Guard {
	g := &Guard{
		codec: codec.Strict(c),
		// A flood of unencrypted signals from whoever reaches the frontend
		// must not cost a log write each: the counter counts every one, the
		// log keeps a line a second past a burst (and says how many it
		// left out).
		log: slog.New(lograte.New(log.Handler(), 1, 20, nil)),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "diditflow_untrusted_payloads_total",
			Help: "Payloads that reached the worker unencrypted although keys are configured, refused: " +
				"by kind (start, signal, update, other) and name (the workflow type of a start, the signal's name, " +
				"the name of an Update without input; empty for an Update's unencrypted input).",
		}, []string{"kind", "name"}),
		unknownKey: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "diditflow_payloads_unknown_key_total",
			Help: "Workflow tasks failed, to be retried, on a payload encrypted under a key id this worker does not have, " +
				"by kind (start, signal, update, other): a key deployed to the starters but not the workers, or a forged payload.",
		}, []string{"kind"}),
	}
	// At zero from the start, so that increase() sees a first refusal.
	for name := range knownSignals {
		g.refused.WithLabelValues(KindSignal, name)
	}
	g.refused.WithLabelValues(KindUpdate, "")
	for _, name := range []string{contract.SessionWorkflowType, contract.AMLCaseWorkflowType} {
		g.refused.WithLabelValues(KindStart, name)
	}
	for _, kind := range []string{KindStart, KindSignal, KindUpdate, KindOther} {
		g.unknownKey.WithLabelValues(kind)
	}
	if reg != nil {
		reg.MustRegister(g.refused, g.unknownKey)
	}
	return g
}

// DataConverter is Temporal's default data converter with the strict codec,
// counting and logging what it refuses.
func (g *Guard) DataConverter() converter.DataConverter {
	return &guardedConverter{DataConverter: converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), g.codec), guard: g}
}

// FailureConverter is codec.FailureConverter of dc (the guard's
// DataConverter), and marks a failure caused by a refused payload
// non-retryable: a retry policy chosen by the sender would otherwise run the
// refused workflow again and again, keeping its ID taken.
func (g *Guard) FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return nonRetryable{codec.FailureConverter(dc)}
}

type nonRetryable struct{ converter.FailureConverter }

func (n nonRetryable) ErrorToFailure(err error) *failurepb.Failure {
	f := n.FailureConverter.ErrorToFailure(err)
	if info := f.GetApplicationFailureInfo(); info != nil && errors.Is(err, codec.ErrPlaintext) {
		info.NonRetryable = true
	}
	return f
}

// held counts and logs a payload under a key this worker lacks: its
// workflow task fails and is retried until a worker with the key takes it,
// so nothing genuine is lost, but operators must see it (the key may never
// come: a forged key id holds the session's run until they act).
func (g *Guard) held(kind string, err error, attrs ...any) {
	g.unknownKey.WithLabelValues(kind).Inc()
	g.log.Error("payload under a key this worker lacks: its workflow task waits for a worker with the key",
		append([]any{"kind", kind, "error", err}, attrs...)...)
}

func (g *Guard) refuse(kind, name string, err error, attrs ...any) {
	g.refused.WithLabelValues(kind, name).Inc()
	g.log.Error("unencrypted payload refused: a client without the payload keys reached Temporal",
		append([]any{"kind", kind, "name", name, "error", err}, attrs...)...)
}

// InterceptWorkflow puts the guard in front of every workflow the worker runs.
func (g *Guard) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &inbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, guard: g}
}

type inbound struct {
	interceptor.WorkflowInboundInterceptorBase
	guard *Guard
}

// runningKey marks the contexts of a workflow function that has started:
// the converter tells a refused input (decoded before) from anything the
// workflow decodes later.
type runningKey struct{}

// ValidateUpdate refuses an Update that came without payload, as
// HandleSignal drops such a signal, but for retry. Its arguments are decoded
// by then: an argument absent from the request decodes to its zero value,
// which no encrypted payload of diditflow's Updates (JSON objects) does.
func (i *inbound) ValidateUpdate(ctx workflow.Context, in *interceptor.UpdateInput) error {
	if in.Name != contract.RetrySignal && bare(in.Args) {
		name := in.Name
		if !knownSignals[name] {
			name = unknownSignal
		}
		info := workflow.GetInfo(ctx)
		err := fmt.Errorf("update %s without input: %w", in.Name, codec.ErrPlaintext)
		i.guard.refuse(KindUpdate, name, err, "workflow_type", info.WorkflowType.Name,
			"workflow_id", info.WorkflowExecution.ID, "run_id", info.WorkflowExecution.RunID)
		return err
	}
	return i.Next.ValidateUpdate(ctx, in)
}

// bare reports whether every argument is its type's zero value: what the
// SDK decodes for an argument the request did not carry.
func bare(args []any) bool {
	for _, a := range args {
		if a != nil && !reflect.ValueOf(a).IsZero() {
			return false
		}
	}
	return true
}

func (i *inbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	return i.Next.ExecuteWorkflow(workflow.WithValue(ctx, runningKey{}, true), in)
}

// HandleSignal drops a signal whose payloads are not encrypted, or do not
// decrypt (forged to look encrypted); dropping is deterministic, a replay
// drops it again. A payload under a key this worker does not have is
// another matter: a new key deployed to the starters before the workers.
// That fails the workflow task, which Temporal retries until a worker with
// the key takes it, rather than losing a genuine event.
func (i *inbound) HandleSignal(ctx workflow.Context, in *interceptor.HandleSignalInput) error {
	payloads := in.Arg.GetPayloads()
	if len(payloads) == 0 && in.SignalName != contract.RetrySignal {
		// Nothing encrypted proves the sender holds the keys. A bare retry
		// only runs a parked step again, whoever asks; a bare skip gives up
		// every parked step and a bare acknowledge clears every flag, so
		// they, like every other signal, must come with an encrypted input.
		payloads = []*commonpb.Payload{{}}
	}
	if _, err := i.guard.codec.Decode(payloads); err != nil {
		if errors.Is(err, codec.ErrUnknownKey) {
			info := workflow.GetInfo(ctx)
			i.guard.held(KindSignal, err, "workflow_id", info.WorkflowExecution.ID, "run_id", info.WorkflowExecution.RunID)
			return fmt.Errorf("signal %s: %w", in.SignalName, err)
		}
		if !workflow.IsReplaying(ctx) {
			name := in.SignalName
			if !knownSignals[name] {
				name = unknownSignal
			}
			info := workflow.GetInfo(ctx)
			i.guard.refuse(KindSignal, name, err, "workflow_type", info.WorkflowType.Name,
				"workflow_id", info.WorkflowExecution.ID, "run_id", info.WorkflowExecution.RunID)
		}
		return nil
	}
	return i.Next.HandleSignal(ctx, in)
}

// guardedConverter counts what the strict codec refuses, labelled with what
// the SDK tells a converter about where a payload goes: a workflow context
// (WithWorkflowContext) for what workflow code decodes, its input first; a
// workflow serialization context alone for an Update's arguments.
type guardedConverter struct {
	converter.DataConverter
	guard *Guard
	wf    workflow.Context
	sc    converter.SerializationContext
}

var (
	_ workflow.ContextAware                           = (*guardedConverter)(nil)
	_ converter.DataConverterWithSerializationContext = (*guardedConverter)(nil)
)

func (c *guardedConverter) FromPayload(p *commonpb.Payload, valuePtr any) error {
	return c.check(c.DataConverter.FromPayload(p, valuePtr))
}

func (c *guardedConverter) FromPayloads(ps *commonpb.Payloads, valuePtrs ...any) error {
	return c.check(c.DataConverter.FromPayloads(ps, valuePtrs...))
}

func (c *guardedConverter) check(err error) error {
	unknownKey := errors.Is(err, codec.ErrUnknownKey)
	if !unknownKey && !errors.Is(err, codec.ErrPlaintext) {
		return err
	}
	kind, name, attrs, replaying := c.where()
	switch {
	case replaying:
		// A replay decodes the input again; it was counted the first time.
	case unknownKey:
		c.guard.held(kind, err, attrs...)
	default:
		c.guard.refuse(kind, name, err, attrs...)
	}
	return err
}

// where tells what the payload being decoded is for, as far as the SDK
// says: a workflow context (WithWorkflowContext) for what workflow code
// decodes, its input first; a workflow serialization context alone for an
// Update's arguments.
func (c *guardedConverter) where() (kind, name string, attrs []any, replaying bool) {
	if c.wf == nil {
		if sc, ok := c.sc.(converter.WorkflowSerializationContext); ok {
			return KindUpdate, "", []any{"workflow_id", sc.WorkflowID}, false
		}
		return KindOther, "", nil, false
	}
	kind = KindOther
	if c.wf.Value(runningKey{}) == nil {
		kind = KindStart
	}
	info := workflow.GetInfo(c.wf)
	return kind, info.WorkflowType.Name, []any{"workflow_id", info.WorkflowExecution.ID, "run_id", info.WorkflowExecution.RunID},
		workflow.IsReplaying(c.wf)
}

func (c *guardedConverter) WithWorkflowContext(ctx workflow.Context) converter.DataConverter {
	bound := *c
	bound.wf = ctx
	return &bound
}

func (c *guardedConverter) WithContext(context.Context) converter.DataConverter { return c }

func (c *guardedConverter) WithSerializationContext(sc converter.SerializationContext) converter.DataConverter {
	bound := *c
	bound.sc = sc
	bound.DataConverter = converter.WithDataConverterSerializationContext(c.DataConverter, sc)
	return &bound
}
