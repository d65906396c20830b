package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
)

// Caps a session's runs stay under whatever arrives (docs/DESIGN.md,
// invariant 8). A run continues as new at 2,000 history events
// (workflows.maxHistoryLength) plus what arrives while its last task runs;
// its state, the continue-as-new input, is bounded by maxSeen keys,
// maxHistory entries and maxCarried events.
const (
	floodMaxRunEvents = 4000
	floodMaxStateSize = 512 << 10
)

// TestFloodOfOneSessionStaysBounded sends 2,000 distinct events and 20,000
// redeliveries of them to one session through the receiver, as a stuck or
// hostile sender would: 18,000 exact replays (byte for byte), which the
// receiver answers from its replay cache, and 2,000 re-signed copies (a new
// X-Timestamp, so a new body), which reach the workflow and are dropped
// there. Every distinct event is recorded once, and each run's history and
// carried state stay under their caps.
func TestFloodOfOneSessionStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("a flood of 22,000 deliveries")
	}
	s := newStack(t)
	session := "e2e-flood-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	const distinct, duplicates = 2000, 20000
	now := time.Now().Unix()
	bodies := make([][]byte, distinct)
	for i := range bodies {
		bodies[i] = deliveryOf(t, "data-updated.json", session, fmt.Sprintf("%s/flood-%d", session, i), now, now-3600+int64(i))
	}
	resigned := func(i int) []byte {
		return deliveryOf(t, "data-updated.json", session, fmt.Sprintf("%s/flood-%d", session, i), now+1, now-3600+int64(i))
	}
	var plan [][]byte
	for i := range distinct {
		plan = append(plan, bodies[i])
		for d := range duplicates / distinct {
			j := (i*7 + d) % (i + 1) // an event sent before
			if d == 0 {
				plan = append(plan, resigned(j))
			} else {
				plan = append(plan, bodies[j])
			}
		}
	}

	var answered, replays atomic.Int64
	work := make(chan []byte)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for body := range work {
				replay, err := s.post(body)
				if err != nil {
					t.Error(err)
					continue
				}
				answered.Add(1)
				if replay {
					replays.Add(1)
				}
			}
		})
	}
	start := time.Now()
	for _, body := range plan {
		work <- body
	}
	close(work)
	wg.Wait()
	t.Logf("%d deliveries answered 200 in %s, %d of them from the replay cache",
		answered.Load(), time.Since(start).Round(time.Millisecond), replays.Load())

	s.waitFor("every distinct event recorded", func() bool {
		evs, err := s.store.Events(context.Background(), session)
		return err == nil && len(evs) >= distinct
	})
	evs, err := s.store.Events(context.Background(), session)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]int{}
	for _, e := range evs {
		keys[e.EventKey]++
	}
	if len(evs) != distinct || len(keys) != distinct {
		t.Fatalf("%d events recorded under %d keys, want each of the %d distinct events once", len(evs), len(keys), distinct)
	}

	id := contract.SessionWorkflowID(session)
	s.waitFor("the session's last run to settle", func() bool { return s.completed(id) })
	runs := s.runsOf(id)
	var most, largest, signals int
	for i, r := range runs {
		most, largest, signals = max(most, r.events), max(largest, r.stateBytes), signals+r.signals
		t.Logf("run %d: %d history events (%d signals), carried state %d bytes, failed tasks %v",
			i+1, r.events, r.signals, r.stateBytes, r.failedTasks)
	}
	if most > floodMaxRunEvents || largest > floodMaxStateSize {
		t.Fatalf("largest run %d events (cap %d), largest carried state %d bytes (cap %d)", most, floodMaxRunEvents, largest, floodMaxStateSize)
	}
	if want := int(answered.Load() - replays.Load()); signals != want {
		t.Fatalf("%d signals in the runs, want one per delivery not answered from the cache (%d)", signals, want)
	}
}

// post delivers a signed body; replay is whether the receiver answered it
// from its replay cache.
func (s *stack) post(body []byte) (replay bool, err error) {
	h, err := didit.Signer{Secret: secret}.Sign(body)
	if err != nil {
		return false, err
	}
	req, err := http.NewRequest(http.MethodPost, s.receiver.URL+"/webhooks/didit", bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	h.Set(req.Header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var answer struct {
		Replay bool `json:"replay"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("delivery answered %d (%v)", resp.StatusCode, err)
	}
	return answer.Replay, nil
}

type run struct {
	events, stateBytes, signals int
	// failedTasks counts workflow tasks the server failed, by cause.
	failedTasks map[string]int
}

// runsOf follows a workflow's chain of runs from the first, through each
// continue-as-new.
func (s *stack) runsOf(id string) []run {
	s.t.Helper()
	var out []run
	s.eachRunEvent(id, func() { out = append(out, run{}) }, func(e *historypb.HistoryEvent) {
		r := &out[len(out)-1]
		r.events++
		if a := e.GetWorkflowTaskFailedEventAttributes(); a != nil {
			if r.failedTasks == nil {
				r.failedTasks = map[string]int{}
			}
			r.failedTasks[a.GetCause().String()]++
		}
		if e.GetWorkflowExecutionSignaledEventAttributes() != nil {
			r.signals++
		}
		for _, p := range e.GetWorkflowExecutionContinuedAsNewEventAttributes().GetInput().GetPayloads() {
			r.stateBytes += len(p.GetData())
		}
	})
	return out
}

// eachRunEvent calls event with every history event of the workflow's
// runs, from the first through each continue-as-new, and newRun before
// each run's events.
func (s *stack) eachRunEvent(id string, newRun func(), event func(*historypb.HistoryEvent)) {
	s.t.Helper()
	ctx := context.Background()
	for runID := s.firstRun(id); runID != ""; {
		newRun()
		next := ""
		it := s.temporal.GetWorkflowHistory(ctx, id, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				s.t.Fatal(err)
			}
			event(e)
			if a := e.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
				next = a.GetNewExecutionRunId()
			}
		}
		runID = next
	}
}

// firstRun walks back from the latest run, through the run each continued
// from, to the first.
func (s *stack) firstRun(id string) string {
	s.t.Helper()
	ctx := context.Background()
	desc, err := s.temporal.DescribeWorkflow(ctx, id, "")
	if err != nil {
		s.t.Fatal(err)
	}
	runID := desc.WorkflowExecution.RunID
	for {
		it := s.temporal.GetWorkflowHistory(ctx, id, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		if !it.HasNext() {
			return runID
		}
		e, err := it.Next()
		if err != nil {
			s.t.Fatal(err)
		}
		prev := startedFrom(e)
		if prev == "" {
			return runID
		}
		runID = prev
	}
}

func startedFrom(e *historypb.HistoryEvent) string {
	return e.GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
}
