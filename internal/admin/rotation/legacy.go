package rotation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/admin"
	"github.com/diditflow/diditflow/internal/contract"
)

// The legacy procedure (SPEC §4.1): Didit's rotation kills the old secret at
// once, so until every starter has the new one, deliveries signed with it
// are answered 401, which Didit never retries (SPEC §3.1). The worker's
// reconcile run, triggered once the starters have both secrets, feeds them
// again.

const (
	cmdAfterDeploy = "diditflow-admin rotate-secret --after-deploy"
	cmdFinish      = "diditflow-admin rotate-secret --finish"
)

// readBackTimeout bounds the read of the config after a rotation whose
// answer was lost.
const readBackTimeout = 10 * time.Second

// rotateLegacy is legacy step 1: it checks that the reconcile schedule is
// there to cover the gap (unless told not to), rotates, and shows the new
// secret.
func (r *Rotator) rotateLegacy(ctx context.Context, reconcile bool) (Outcome, error) {
	c, err := r.didit()
	if err != nil {
		return Outcome{}, err
	}
	if reconcile {
		if err := r.checkSchedule(ctx); err != nil {
			return Outcome{}, fmt.Errorf("nothing rotated: %w", err)
		}
	}
	before, err := c.WebhookConfig(ctx)
	if err != nil {
		return Outcome{}, admin.DiditFailure("nothing rotated: reading the legacy webhook config", err)
	}
	secret, lost, err := rotateLegacySecret(ctx, c, before.Secret)
	if err != nil {
		return Outcome{}, err
	}
	if lost != nil {
		r.log().Warn("the answer to the rotation was lost; the new secret was read back", "error", lost.Error())
	}
	r.log().Info("rotated the legacy webhook secret")

	out := Outcome{
		Summary: "Rotated the legacy webhook secret. Didit signs every delivery with the new secret from now on; " +
			"the old one stopped working at once (Didit keeps no overlap).",
		Secret:      secret,
		SecretTitle: "New webhook secret, shown only this once (store it now):",
		Notes: []string{"Until a starter has the new secret, it answers Didit's deliveries 401, and Didit " +
			"never retries a 401. The steps below feed those deliveries again, so none is lost."},
	}
	if lost != nil {
		out.Notes = append(out.Notes, "Didit's answer to the rotation was lost; the secret above was read back from Didit.")
	}
	if before.URL == nil {
		out.Notes = append(out.Notes, "The legacy config has no webhook URL, so Didit sends nothing through it. "+
			"If your deliveries go through webhook destinations, rotate each with --destination <uuid> instead.")
	}
	deploy := Step{
		Do: "Deploy to every starter, and restart it, with the new secret first and the current one kept " +
			"(<current value> is what DIDIT_WEBHOOK_SECRETS holds now; this command never prints it):",
		Command: "DIDIT_WEBHOOK_SECRETS=<new secret>,<current value>",
		Why:     "The old secret signs nothing new, but Didit may still retry deliveries it signed before the rotation.",
	}
	if !reconcile {
		out.Notes[0] = "Until a starter has the new secret, it answers Didit's deliveries 401, and Didit never " +
			"retries a 401. No reconcile run will feed them again (--without-reconcile): step 2 does it by hand."
		out.Steps = []Step{deploy, {
			Do: "Once every starter runs with both secrets, resend from Didit's console the deliveries that failed " +
				"since the rotation. A resend is signed with the new secret and keeps its event_id, so a copy that " +
				"did get through is dropped.",
		}, {
			Do:      "At least 10 minutes after the rotation, drop the old secret:",
			Command: cmdFinish,
		}}
		return out, nil
	}
	out.Steps = []Step{deploy, {
		Do:      "Once every starter runs with both secrets, feed again what was refused in between:",
		Command: cmdAfterDeploy,
		Why: "It triggers the worker's reconcile schedule (" + contract.ReconcileScheduleID + "); the run looks " +
			"back RECONCILE_LOOKBACK (default 24h) at the deliveries Didit logged as failed. Run it after the " +
			"deploy: a run feeds only the deliveries that had failed when it started.",
	}, {
		Do:      "When that run has completed, and at least 10 minutes after the rotation, drop the old secret:",
		Command: cmdFinish,
	}}
	return out, nil
}

// rotateLegacySecret rotates the legacy secret and returns the new one.
// When the answer is lost (a timeout, a 5xx, an unreadable body) Didit may
// or may not have rotated: the config, read back, tells, and lost is the
// failure that was overcome.
func rotateLegacySecret(ctx context.Context, c *api.Client, old string) (secret string, lost, err error) {
	after, err := c.PatchWebhookConfig(ctx, api.WebhookPatch{RotateSecret: true})
	switch {
	case err == nil && after.Secret == old:
		return "", nil, errors.New("nothing rotated: Didit answered the rotation with the old secret; " +
			"check the webhook settings in Didit's console (API & Webhooks)")
	case err == nil && after.Secret != "":
		return after.Secret, nil, nil
	case err != nil && !ambiguous(err):
		return "", nil, admin.DiditFailure("nothing rotated", err)
	case err == nil:
		err = errors.New("no secret in Didit's answer")
	}
	// Read back even if the operator interrupted the rotation: it may have
	// happened, and then only this read tells the new secret.
	readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readBackTimeout)
	defer cancel()
	now, readErr := c.WebhookConfig(readCtx)
	switch {
	case readErr != nil:
		return "", nil, fmt.Errorf("the secret may have been rotated: the rotation got no usable answer (%v), "+
			"and reading the config back failed (%v). Read the current secret in Didit's console (API & Webhooks) "+
			"and continue from step 1's instructions with it; running rotate-secret again would rotate again", err, readErr)
	case now.Secret == old || now.Secret == "":
		return "", nil, admin.DiditFailure("nothing rotated (the secret is unchanged, so running this again is safe)", err)
	}
	return now.Secret, err, nil
}

// ambiguous reports whether a failed call may have taken effect: no
// answer, a 5xx, or a 2xx that could not be read.
func ambiguous(err error) bool {
	switch api.KindOf(err) {
	case api.KindServer, api.KindMalformed, 0:
		return true
	}
	return false
}

// checkSchedule fails unless the worker's reconcile schedule exists.
func (r *Rotator) checkSchedule(ctx context.Context) error {
	s, closeSchedule, err := r.openSchedule(ctx)
	if err != nil {
		return fmt.Errorf("%w. Step 2 needs Temporal to cover the gap; to rotate anyway, pass --without-reconcile", err)
	}
	defer closeSchedule()
	switch err := s.Check(ctx); {
	case errors.Is(err, ErrNoSchedule):
		return fmt.Errorf("%w. Without it nothing feeds again the deliveries Didit signs with the new secret "+
			"before every starter has it: they are answered 401, which Didit never retries. The worker creates "+
			"that schedule when it starts with DIDIT_API_KEY: set it on the worker, restart the worker, and run "+
			"this again. To rotate anyway (say the secret leaked), pass --without-reconcile and resend the failed "+
			"deliveries from Didit's console afterwards", err)
	case err != nil:
		return fmt.Errorf("%w. Step 2 needs it to cover the gap; to rotate anyway, pass --without-reconcile", err)
	}
	return nil
}

// afterDeploy is legacy step 2: trigger a reconcile run now that every
// starter verifies the new secret.
func (r *Rotator) afterDeploy(ctx context.Context) (Outcome, error) {
	s, closeSchedule, err := r.openSchedule(ctx)
	if err != nil {
		return Outcome{}, fmt.Errorf("no reconcile run triggered: %w. Run this again once Temporal is reachable", err)
	}
	defer closeSchedule()
	switch err := s.Trigger(ctx); {
	case errors.Is(err, ErrNoSchedule):
		return Outcome{}, fmt.Errorf("no reconcile run triggered: %w. The worker creates that schedule when it "+
			"starts with DIDIT_API_KEY: set it on the worker, restart the worker and run this again (a run looks back "+
			"RECONCILE_LOOKBACK, default 24h, so it still covers the rotation within that time); or resend the "+
			"deliveries that failed since the rotation from Didit's console", err)
	case err != nil:
		return Outcome{}, fmt.Errorf("no reconcile run triggered: %w. Run this again once Temporal answers", err)
	}
	r.log().Info("triggered the reconcile schedule", "schedule_id", contract.ReconcileScheduleID)
	return Outcome{
		Summary: "Triggered a run of the reconcile schedule " + contract.ReconcileScheduleID + ".",
		Notes: []string{"The run looks back RECONCILE_LOOKBACK (default 24h) at the deliveries Didit logged as " +
			"failed and feeds them again, the ones answered 401 during the rotation among them; a copy of a " +
			"delivery that did get through is dropped by its event_id. Follow the run in the Temporal UI: its " +
			"workflow ID starts with " + contract.ReconcileWorkflowID + ". A run that ends as off means the " +
			"worker has no DIDIT_API_KEY: set it there, restart the worker and run this again."},
		Steps: []Step{{
			Do:      "When that run has completed, and at least 10 minutes after the rotation, drop the old secret:",
			Command: cmdFinish,
		}},
	}, nil
}

// finishLegacy is legacy step 3. It knows no secret and calls nothing.
func finishLegacy() Outcome {
	return Outcome{
		Summary: "Last step of the rotation: drop the old secret.",
		Steps: []Step{{
			Do:      "Deploy to every starter, and restart it, with only the new secret (the one rotate-secret printed):",
			Command: "DIDIT_WEBHOOK_SECRETS=<new secret>",
			Why: "Do it once the reconcile run of --after-deploy has completed, and at least 10 minutes after the " +
				"rotation: Didit's last retry of a delivery signed with the old secret comes about 5 minutes after " +
				"its first attempt, and a starter accepts a signature for 300 s.",
		}},
	}
}
