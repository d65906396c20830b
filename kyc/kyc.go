package kyc

import (
	"cmp"
	"errors"

	"go.temporal.io/sdk/workflow"

	"github.com/diditflow/diditflow/didit"
)

// Status is a session's status, spelled as Didit sends it ("Approved",
// "In Review", ...).
type Status = didit.Status

// The statuses of a Didit session.
const (
	NotStarted   Status = didit.StatusNotStarted
	InProgress   Status = didit.StatusInProgress
	AwaitingUser Status = didit.StatusAwaitingUser
	InReview     Status = didit.StatusInReview
	Resubmitted  Status = didit.StatusResubmitted
	Approved     Status = didit.StatusApproved
	Declined     Status = didit.StatusDeclined
	Expired      Status = didit.StatusExpired
	KycExpired   Status = didit.StatusKycExpired
	Abandoned    Status = didit.StatusAbandoned
)

// Decided reports whether s decides a verification: Approved, Declined,
// Abandoned or Expired, the statuses AwaitOutcome returns at. In Review
// waits for a person; Kyc Expired comes after a decision, when an approved
// verification has expired.
func Decided(s Status) bool {
	switch s {
	case Approved, Declined, Abandoned, Expired:
		return true
	}
	return false
}

// DefaultTaskQueue is diditflow's task queue unless TEMPORAL_TASK_QUEUE
// says otherwise.
const DefaultTaskQueue = "diditflow"

// ErrTimeout is the error of an AwaitOutcome whose timeout passed before
// the session was decided; compare with errors.Is.
var ErrTimeout = errors.New("kyc: timed out waiting for the verification's outcome")

// ErrTooManySubscribers is the error of an AwaitOutcome the session refused:
// MaxSubscribers workflows wait for it already.
var ErrTooManySubscribers = errors.New("kyc: too many workflows wait for this session")

// MaxSubscribers is how many workflows may wait for one session at once.
const MaxSubscribers = 100

type taskQueueKey struct{}

// WithTaskQueue names diditflow's task queue for the kyc calls made with
// ctx (AwaitOutcome, Decision; StartVerification's Request.TaskQueue
// overrides it): only when diditflow does not run on DefaultTaskQueue.
func WithTaskQueue(ctx workflow.Context, queue string) workflow.Context {
	return workflow.WithValue(ctx, taskQueueKey{}, queue)
}

// taskQueue is diditflow's task queue for calls made with ctx.
func taskQueue(ctx workflow.Context) string {
	q, _ := ctx.Value(taskQueueKey{}).(string)
	return cmp.Or(q, DefaultTaskQueue)
}
