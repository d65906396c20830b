package contract

import "testing"

func TestIsAMLCaseOf(t *testing.T) {
	const s = "9b2f4c1e-0d7a-4b8e-9c35-2f1e6d7a8a64"
	for id, want := range map[string]bool{
		AMLCaseWorkflowID(s):         true,
		FollowUpCaseID(s, 2):         true,
		FollowUpCaseID(s, 12):        true,
		AMLCaseWorkflowID(s) + "-1":  false, // follow-ups start at 2
		AMLCaseWorkflowID(s) + "-02": false,
		AMLCaseWorkflowID(s) + "-x":  false,
		AMLCaseWorkflowID(s) + "2":   false,
		AMLCaseWorkflowID(s + "0"):   false,
		SessionWorkflowID(s):         false,
		"aml-case-other":             false,
	} {
		if got := IsAMLCaseOf(s, id); got != want {
			t.Errorf("IsAMLCaseOf(%q) = %v, want %v", id, got, want)
		}
	}
}
