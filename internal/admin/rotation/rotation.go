// Package rotation rotates Didit's webhook secret without losing a
// delivery: the procedure behind diditflow-admin rotate-secret, one step per
// run, each saying what the operator does next.
//
// Didit's legacy webhook config rotates its secret at once, with no overlap
// (SPEC §4.1): the deliveries refused meanwhile are fed again by a run of
// the worker's reconcile schedule. A webhook destination cannot rotate its
// secret at all (SPEC §4.2), but a copy of it with its own secret can
// deliver beside it until the starters have the new secret: no gap.
package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/admin"
	"github.com/diditflow/diditflow/internal/config"
)

// Settings are rotate-secret's environment. The Temporal connection is
// read by internal/temporalclient, as the worker reads it.
type Settings struct {
	DiditAPIURL string `envconfig:"DIDIT_API_URL" default:"https://verification.didit.me"`
	DiditAPIKey string `envconfig:"DIDIT_API_KEY" secret:"true"`
	Log         config.Log
}

// Request is the step a rotate-secret command line asks for.
type Request struct {
	// AfterDeploy is legacy step 2: trigger a reconcile run.
	AfterDeploy bool
	// Finish is legacy step 3: say how to drop the old secret.
	Finish bool
	// WithoutReconcile is legacy step 1 without the reconcile schedule.
	WithoutReconcile bool
	// Destination is the destination to rotate (destination step 1), or
	// the old one (step 2).
	Destination string
	// FinishDestination is destination step 2: the new destination, which
	// takes over from Destination.
	FinishDestination string
}

// Check says why the request's steps do not fit together (a usage error),
// and writes its UUIDs in lower case, as Didit does.
func (r *Request) Check() error {
	modes := 0
	for _, on := range []bool{r.AfterDeploy, r.Finish, r.Destination != "" || r.FinishDestination != ""} {
		if on {
			modes++
		}
	}
	switch {
	case modes > 1:
		return errors.New("--after-deploy, --finish and --destination are separate steps; give one")
	case r.WithoutReconcile && modes > 0:
		return errors.New("--without-reconcile belongs to the first legacy step (rotate-secret alone)")
	case r.FinishDestination != "" && r.Destination == "":
		return errors.New("--finish-destination needs --destination <old-uuid>, the destination to disable")
	}
	for _, id := range []struct {
		flag  string
		value *string
	}{{"--destination", &r.Destination}, {"--finish-destination", &r.FinishDestination}} {
		if *id.value == "" {
			continue
		}
		if !isUUID(*id.value) {
			return fmt.Errorf("%s %q is not a UUID (Didit's console shows each destination's)", id.flag, *id.value)
		}
		*id.value = strings.ToLower(*id.value)
	}
	if r.FinishDestination != "" && r.FinishDestination == r.Destination {
		return errors.New("--finish-destination must name the new destination, not the old one again")
	}
	return nil
}

// isUUID reports whether s is a hyphenated UUID, in either case.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range []byte(s) {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F'):
			return false
		}
	}
	return true
}

// Rotator runs the steps of a rotation.
type Rotator struct {
	Settings Settings
	// OpenSchedule connects to the worker's reconcile schedule; close
	// releases the connection. Nil dials it as the worker does
	// (DialSchedule).
	OpenSchedule func(ctx context.Context, log *slog.Logger) (s Schedule, close func(), err error)
	Log          *slog.Logger
}

// Run runs the step req asks for (req.Check has passed) and returns what
// the operator does next.
func (r *Rotator) Run(ctx context.Context, req Request) (Outcome, error) {
	switch {
	case req.FinishDestination != "":
		return r.finishDestination(ctx, req.Destination, req.FinishDestination)
	case req.Destination != "":
		return r.rotateDestination(ctx, req.Destination)
	case req.AfterDeploy:
		return r.afterDeploy(ctx)
	case req.Finish:
		return finishLegacy(), nil
	}
	return r.rotateLegacy(ctx, !req.WithoutReconcile)
}

func (r *Rotator) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

// didit returns the client of Didit's API, or why there is none.
func (r *Rotator) didit() (*api.Client, error) {
	return admin.DiditClient(r.Settings.DiditAPIURL, r.Settings.DiditAPIKey)
}

func (r *Rotator) openSchedule(ctx context.Context) (Schedule, func(), error) {
	if r.OpenSchedule != nil {
		return r.OpenSchedule(ctx, r.log())
	}
	return DialSchedule(ctx, r.log())
}
