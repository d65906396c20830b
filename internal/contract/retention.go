package contract

import (
	"strconv"
	"strings"
)

// PurgeWorkflowType removes the personal fields of records past their
// retention; PurgeScheduleID starts it every PURGE_INTERVAL.
const PurgeWorkflowType = "Purge"

// PurgeScheduleID is the Temporal Schedule the worker keeps, beside
// ReconcileScheduleID, for the retention purge; `temporal schedule trigger
// --schedule-id diditflow-purge` starts a run by hand.
const PurgeScheduleID = "diditflow-purge"

// PurgeWorkflowID is the ID of the purge schedule's runs (the schedule
// appends the time of each).
const PurgeWorkflowID = "diditflow-purge-run"

// IsAMLCaseOf reports whether workflowID is the ID of an AML case of the
// session: its first case (AMLCaseWorkflowID) or a follow-up
// (FollowUpCaseID). The IDs of another session whose ID is this one's and
// a "-<n>" also pass: callers that hold the records tell those apart.
func IsAMLCaseOf(sessionID, workflowID string) bool {
	first := AMLCaseWorkflowID(sessionID)
	if workflowID == first {
		return true
	}
	suffix, ok := strings.CutPrefix(workflowID, first+"-")
	if !ok {
		return false
	}
	n, err := strconv.Atoi(suffix)
	return err == nil && n >= 2 && strconv.Itoa(n) == suffix
}
