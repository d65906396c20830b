// Package kyc makes diditflow the KYC step of a business's own Temporal
// workflows: start a Didit verification, wait for its outcome, fetch its
// decision, and react to every later event of the session in a workflow of
// the business's own (a hook).
//
// The business's worker runs in the same Temporal namespace as diditflow and
// registers only its own workflows: the calls below run activities on
// diditflow's task queue (DefaultTaskQueue, or WithTaskQueue's), where
// diditflow's worker holds Didit's API key and rate budgets. Build its client
// with ConfigureClient, so that the payloads the two exchange are encrypted
// with the keys diditflow has (PAYLOAD_ENCRYPTION_KEYS).
//
//	func Onboarding(ctx workflow.Context, userID string) error {
//		v, err := kyc.StartVerification(ctx, kyc.Request{VendorData: userID})
//		if err != nil {
//			return err
//		}
//		// send v.URL to the user
//		out, err := kyc.AwaitOutcome(ctx, v.SessionID, 7*24*time.Hour)
//		if errors.Is(err, kyc.ErrTimeout) {
//			return remind(ctx, userID)
//		}
//		if err != nil {
//			return err
//		}
//		// out.Status: kyc.Approved, kyc.Declined, kyc.Abandoned or kyc.Expired
//		return settle(ctx, userID, out.Status)
//	}
//
// # Waiting without missing anything
//
// Didit sends a webhook at a session's creation, and the user may finish
// before the workflow waits; webhooks come twice and out of order;
// diditflow's worker may crash in between. AwaitOutcome misses none of it,
// because the session's own workflow, which already orders and dedupes every
// event, keeps the list of its subscribers: a subscriber is told where the
// session stands when it subscribes, and every status change after, once,
// each with the session's Sequence so the waiting side drops what it has
// seen. The subscription survives the session workflow's continue-as-new;
// a session whose runs have all completed (decided last month) is reopened
// by the subscription and answers from its records at once.
//
// # Hooks
//
// For what no workflow waits for (a manual review months later, Kyc
// Expired, a resolved AML case) diditflow's worker starts the business's
// workflow named in HOOK_WORKFLOWS (WorkflowType@task-queue) with one
// Event: once per status change (StatusChanged), per AML case resolved in
// diditflow or in Didit's console (AMLCaseResolved), and per review of a
// hit that changed in Didit after its case was resolved (AMLReviewChanged),
// never for a redelivery or a stale event. An AML event names hits by ID,
// with their outcomes, never whom they match. Hooks run independently and may run out of
// order: order them by Event.Sequence, and pass Event.Key downstream as the
// idempotency key of what they do.
//
// # Testing
//
// Package kyctest stands in for diditflow in Temporal's testsuite, without
// a server; its Replay runs a business's recorded histories through its
// current code, which is how kyc's own workflow-side code is held to what
// the histories recorded (docs/VERSIONS.md).
package kyc
