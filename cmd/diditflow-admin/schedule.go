package main

import (
	"context"
	"errors"
	"fmt"
	enumspb "go.temporal.io/api/enums/v1"
	"log/slog"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/diditflow/diditflow/internal/config"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/temporalclient"
)

// reconcileSchedule is the worker's reconcile schedule
// (contract.ReconcileScheduleID), as rotate-secret uses it.
type reconcileSchedule interface {
	// Check returns an error wrapping errNoSchedule when the schedule does
	// not exist.
	Check(ctx context.Context) error
	// Trigger starts a run now; like Check, it wraps errNoSchedule.
	Trigger(ctx context.Context) error
}

// errNoSchedule is a reconcile schedule that does not exist: the worker
// creates it when it starts with DIDIT_API_KEY. Errors that say where are
// scheduleNotFound.
var errNoSchedule = errors.New("the worker's reconcile schedule " + contract.ReconcileScheduleID + " does not exist")

// scheduleNotFound is errNoSchedule in a given namespace.
type scheduleNotFound struct{ where string }

func (e scheduleNotFound) Error() string { return errNoSchedule.Error() + " in " + e.where }

func (e scheduleNotFound) Is(target error) bool { return target == errNoSchedule }

// temporalTimeout bounds each call to Temporal, the dial included.
const temporalTimeout = 15 * time.Second

// dialReconcileSchedule connects to Temporal as the worker does (see
// internal/temporalclient) and returns the reconcile schedule there.
func dialReconcileSchedule(ctx context.Context, log *slog.Logger) (reconcileSchedule, func(), error) {
	enc, err := config.LoadEncryption()
	if err != nil {
		return nil, nil, err
	}
	opts, err := temporalclient.Options(log, enc)
	if err != nil {
		return nil, nil, err
	}
	namespace := opts.Namespace
	if namespace == "" {
		namespace = client.DefaultNamespace
	}
	where := fmt.Sprintf("Temporal namespace %q at %s", namespace, opts.HostPort)
	dialCtx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()
	c, err := client.DialContext(dialCtx, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("dial temporal at %s: %w (set TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE as for the worker)", opts.HostPort, err)
	}
	handle := c.ScheduleClient().GetHandle(ctx, contract.ReconcileScheduleID)
	return temporalSchedule{handle: handle, where: where}, c.Close, nil
}

// temporalSchedule is a reconcileSchedule on a Temporal schedule handle.
type temporalSchedule struct {
	handle client.ScheduleHandle
	// where names the namespace and server, for messages.
	where string
}

func (s temporalSchedule) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()
	_, err := s.handle.Describe(ctx)
	return s.classify("describe", err)
}

func (s temporalSchedule) Trigger(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, temporalTimeout)
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
