package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/internal/admin"
	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/contract"
)

// Schedule is the worker's reconcile schedule (contract.ReconcileScheduleID),
// as a rotation uses it.
type Schedule interface {
	// Check returns an error wrapping ErrNoSchedule when the schedule does
	// not exist.
	Check(ctx context.Context) error
	// Trigger starts a run now; like Check, it wraps ErrNoSchedule.
	Trigger(ctx context.Context) error
}

// ErrNoSchedule is a reconcile schedule that does not exist: the worker
// creates it when it starts with DIDIT_API_KEY. Errors that say where are
// scheduleNotFound.
var ErrNoSchedule = errors.New("the worker's reconcile schedule " + contract.ReconcileScheduleID + " does not exist")

// scheduleNotFound is ErrNoSchedule in a given namespace.
type scheduleNotFound struct{ where string }

func (e scheduleNotFound) Error() string { return ErrNoSchedule.Error() + " in " + e.where }

func (e scheduleNotFound) Is(target error) bool { return target == ErrNoSchedule }

// DialSchedule connects to Temporal as the worker does and returns the
// reconcile schedule there.
func DialSchedule(ctx context.Context, log *slog.Logger) (Schedule, func(), error) {
	enc, err := config.LoadEncryption()
	if err != nil {
		return nil, nil, err
	}
	t, err := admin.DialTemporal(ctx, log, enc)
	if err != nil {
		return nil, nil, err
	}
	handle := t.Client.ScheduleClient().GetHandle(ctx, contract.ReconcileScheduleID)
	return temporalSchedule{handle: handle, where: t.Where}, t.Client.Close, nil
}

// temporalSchedule is a Schedule on a Temporal schedule handle.
type temporalSchedule struct {
	handle client.ScheduleHandle
	// where names the namespace and server, for messages.
	where string
}

func (s temporalSchedule) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, admin.TemporalTimeout)
	defer cancel()
	_, err := s.handle.Describe(ctx)
	return s.classify("describe", err)
}

func (s temporalSchedule) Trigger(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, admin.TemporalTimeout)
	defer cancel()
	// A run still going would make the schedule's own policy (skip) drop
	// the trigger: buffer one run after it, whose window covers the gap.
	return s.classify("trigger", s.handle.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE}))
}

func (s temporalSchedule) classify(op string, err error) error {
	var notFound *serviceerror.NotFound
	switch {
	case err == nil:
		return nil
	case errors.As(err, &notFound):
		return scheduleNotFound{where: s.where}
	}
	return fmt.Errorf("%s schedule %s in %s: %w", op, contract.ReconcileScheduleID, s.where, err)
}
