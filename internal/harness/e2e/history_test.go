package e2e

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	historypb "go.temporal.io/api/history/v1"

	"github.com/diditflow/diditflow/internal/contract"
)

// maxApprovedEvents is the budget of an approved session without hooks or
// subscribers (docs/DESIGN.md): every history event of every run, as
// configured by default.
const maxApprovedEvents = 20

// TestApprovedSessionHistoryEvents counts the history of the common session:
// In Progress, then Approved once the first is recorded (two signals, two
// workflow tasks of work), the approval mailed, the idle window, done.
func TestApprovedSessionHistoryEvents(t *testing.T) {
	s := newStack(t)
	session := "e2e-lean-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	s.deliver(delivery(t, "status-updated-in-progress.json", session))
	s.waitFor("In Progress recorded", func() bool { return s.status(session) == "In Progress" })
	s.deliver(delivery(t, "status-updated-approved.json", session))
	id := contract.SessionWorkflowID(session)
	s.waitFor("the session to complete", func() bool { return s.completed(id) })
	if n := s.sink.Count("approved"); n != 1 {
		t.Fatalf("%d approval mails, want 1", n)
	}

	n, breakdown := s.countEvents(id)
	t.Logf("history events of an approved session: %d: %s", n, breakdown)
	if n > maxApprovedEvents {
		t.Errorf("%d history events, want at most %d: %s", n, maxApprovedEvents, breakdown)
	}
}

// countEvents counts every history event of every run, and names them by
// type (markers by name).
func (s *stack) countEvents(id string) (n int, breakdown string) {
	s.t.Helper()
	byType := map[string]int{}
	s.eachRunEvent(id, func() {}, func(e *historypb.HistoryEvent) {
		n++
		name := strings.TrimPrefix(e.GetEventType().String(), "EVENT_TYPE_")
		if m := e.GetMarkerRecordedEventAttributes(); m != nil {
			name += " " + m.GetMarkerName()
		}
		byType[strings.ToLower(name)]++
	})
	var parts []string
	for k, v := range byType {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return n, strings.Join(parts, ", ")
}
