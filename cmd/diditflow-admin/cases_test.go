package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/internal/admin/cases"
	"github.com/diditflow/diditflow/internal/contract"
)

// refusing is a case whose validator refuses every resolution.
type refusing struct{}

func (refusing) UpdateWorkflow(context.Context, client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	return nil, temporal.NewApplicationError("the case holds no hit h-9", contract.RefusedErrorType)
}

// cases, case and resolve: usage errors exit 2 and reach nothing (resolve
// without a reviewer is never sent), a listing prints as asked, an unknown
// case and a case's refusal exit 1 and say why.
func TestComplianceCommands(t *testing.T) {
	c := newCommand(t)
	c.updater = refusing{}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"resolve", "aml-case-s-1", "--outcome", "false_positive"}, "--reviewer is required"},
		{[]string{"resolve", "aml-case-s-1", "--reviewer", "ada", "--outcome", "cleared"}, `--outcome "cleared"`},
		{[]string{"resolve", "--outcome", "false_positive", "--reviewer", "ada"}, "give the case ID first"},
		{[]string{"resolve", "aml-case-s-1", "--outcome", "false_positive", "--reviewer", "ada", "--hit", "h-1"}, "is not <hit id>=<outcome>"},
		{[]string{"case"}, "give the case ID first"},
		{[]string{"case", "aml-case-s-1", "aml-case-s-2"}, `unexpected argument "aml-case-s-2"`},
		{[]string{"cases", "--limit", "0"}, "--limit must be at least 1"},
		{[]string{"cases", "aml-case-s-1"}, `unexpected argument "aml-case-s-1"`},
	} {
		r := c.run(t, tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "diditflow-admin "+tc.args[0]+" -h") {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, r.code, r.stderr, exitUsage, tc.want)
		}
	}
	if c.opens != 0 {
		t.Fatal("a usage error connected to Temporal")
	}
	for _, cmd := range []string{"cases", "case", "resolve"} {
		if r := c.run(t, cmd, "-h"); r.code != exitOK || !strings.Contains(r.stdout, "Usage: diditflow-admin cases") {
			t.Errorf("%s -h: exit %d", cmd, r.code)
		}
	}
	if r := c.run(t, "resolve", "-h"); !strings.Contains(r.stdout, "-reviewer who") || !strings.Contains(r.stdout, "-hit id=outcome") {
		t.Errorf("resolve -h lacks its flags:\n%s", r.stdout)
	}

	r := c.run(t, "cases", "--json")
	var l cases.Listing
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &l) != nil || l.Open != 0 || l.Cases == nil {
		t.Errorf("cases --json: exit %d, stdout %q", r.code, r.stdout)
	}
	if r := c.run(t, "case", "aml-case-s-1"); r.code != exitFailure || !strings.Contains(r.stderr, "not found") {
		t.Errorf("an unknown case: exit %d, stderr %q", r.code, r.stderr)
	}
	r = c.run(t, "resolve", "aml-case-s-1", "--outcome", "false_positive", "--hit", "h-9=confirmed_match", "--reviewer", "ada")
	if r.code != exitFailure || r.stdout != "" || c.opens != 1 ||
		!strings.Contains(r.stderr, "diditflow-admin resolve: aml-case-s-1 refused the resolution: the case holds no hit h-9") {
		t.Errorf("a refusal: exit %d, stderr %q", r.code, r.stderr)
	}
}
