package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/diditflow/diditflow/internal/harness/launch"
	"github.com/diditflow/diditflow/internal/notice"
)

// noticesDoc documents the notices' templates, under noticesHeading.
const (
	noticesDoc     = "docs/WORKFLOWS.md"
	noticesHeading = "### The notices' text"
)

// documentedVariables reads the variable table of the notices' section:
// the first backticked name of each row's first cell (".Name").
func documentedVariables(t *testing.T, doc []byte) []string {
	t.Helper()
	var names []string
	inSection, inTable := false, false
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == noticesHeading:
			inSection = true
		case inSection && strings.HasPrefix(line, "#"):
			return names
		case !inSection:
		case strings.HasPrefix(line, "| variable |"):
			inTable = true
		case inTable && strings.HasPrefix(line, "|---"):
		case inTable && strings.HasPrefix(line, "|"):
			m := backticked.FindStringSubmatch(splitRow(line)[0])
			if m == nil {
				t.Fatalf("%s: a variable row without a `.Name`: %q", noticesDoc, line)
			}
			names = append(names, m[1])
		case inTable:
			return names
		}
	}
	if !inSection {
		t.Fatalf("%s has no section %q", noticesDoc, noticesHeading)
	}
	return names
}

// The variables the docs promise a template are the fields of notice.Vars
// and of its steps, no more and no fewer.
func TestNoticeVariablesDocIsTheCode(t *testing.T) {
	doc, err := os.ReadFile(launch.Path(t, noticesDoc))
	if err != nil {
		t.Fatal(err)
	}
	var code []string
	for _, typ := range []reflect.Type{reflect.TypeFor[notice.Vars](), reflect.TypeFor[notice.Step]()} {
		for f := range typ.Fields() {
			code = append(code, "."+f.Name)
		}
	}
	documented := documentedVariables(t, doc)
	for _, problem := range compareVariables(documented, code) {
		t.Error(problem)
	}
}

func compareVariables(documented, code []string) []string {
	var problems []string
	for _, v := range code {
		if !slices.Contains(documented, v) {
			problems = append(problems, fmt.Sprintf("%s (%s) does not document the template variable %s", noticesDoc, noticesHeading, v))
		}
	}
	for _, v := range documented {
		if !slices.Contains(code, v) {
			problems = append(problems, fmt.Sprintf("%s (%s) documents %s, which notice.Vars does not have", noticesDoc, noticesHeading, v))
		}
	}
	return problems
}

func TestNoticeVariablesCheckCatchesDrift(t *testing.T) {
	doc := []byte(noticesHeading + "\n\n| variable | holds |\n|---|---|\n| `.Notice` | x |\n| `.Email` | y |\n\n## Next\n")
	got := compareVariables(documentedVariables(t, doc), []string{".Notice", ".Status"})
	if len(got) != 2 || !strings.Contains(got[0], ".Status") || !strings.Contains(got[1], ".Email") {
		t.Fatalf("problems = %q, want .Status undocumented and .Email not in the code", got)
	}
}
