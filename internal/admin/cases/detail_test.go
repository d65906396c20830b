package cases

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diditflow/diditflow/didit/api"
	"github.com/diditflow/diditflow/internal/harness/fakedidit"
	"github.com/diditflow/diditflow/internal/store"
)

const (
	apiKey  = "sk_test_cases_key"
	session = "e1c7a3d5-4b92-4f0e-8d61-3a5b9c2f7e18"
	hitID   = "NK-4fTq8Xw2bLmZpR7cVd3sYe"
	// What Didit's decision holds of the user, which case never prints.
	vendorData, fullName, documentNumber = "user_01HZX4M2RT", "Daniel Navarro Ruiz", "CBX482917"
)

// didit is a fake Didit holding the session of the In Review fixture (one
// PEP hit, whose caption is the user's namesake's name), and a client of it
// with key.
func fakeDidit(t *testing.T, key string) (*fakedidit.Server, *api.Client) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "didit", "testdata", "fixtures", "status-updated-in-review.json"))
	if err != nil {
		t.Fatal(err)
	}
	var event struct {
		Decision json.RawMessage `json:"decision"`
	}
	if err := json.Unmarshal(raw, &event); err != nil {
		t.Fatal(err)
	}
	fake := fakedidit.New(fakedidit.Options{Key: apiKey})
	fake.PutSession(session, "In Review", event.Decision, vendorData, time.Now().Add(-time.Hour))
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = fake.Close()
	})
	c, err := api.New(api.Config{BaseURL: srv.URL, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return fake, c
}

func decisionReads(fake *fakedidit.Server) int {
	return fake.Calls(http.MethodGet, "/v3/session/{id}/decision/")
}

// caseOfTheFixture records the fixture's case: its hit, and one Didit's
// decision does not hold (a hit found by a later screening, say).
func caseOfTheFixture(t *testing.T) (*store.Store, string) {
	t.Helper()
	st := openStore(t, filepath.Join(t.TempDir(), "records.db"))
	caseID := "aml-case-" + session
	if _, err := st.OpenAMLCase(t.Context(), store.AMLCase{CaseID: caseID, SessionID: session, OpenedAt: opened, Hits: []store.AMLHit{
		{ID: hitID, Datasets: []string{"PEP Level 2"}, MatchScore: 95, RiskScore: 86, ReviewStatus: "Unreviewed"},
		{ID: "h-later", Datasets: []string{"Sanctions", "Adverse Media"}, MatchScore: 93.5, RiskScore: 40},
	}}); err != nil {
		t.Fatal(err)
	}
	return st, caseID
}

func show(t *testing.T, st Store, names Names, caseID string) (Detail, string) {
	t.Helper()
	d, err := Show(t.Context(), st, names, caseID)
	if err != nil {
		t.Fatal(err)
	}
	var text, js bytes.Buffer
	if err := d.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	t.Logf("case:\n%s\n%s", text.String(), js.String())
	out := text.String() + js.String()
	for _, personal := range []string{vendorData, documentNumber, "1968-02-23"} {
		if strings.Contains(out, personal) {
			t.Errorf("the case shows %q, personal data beyond the hit's name", personal)
		}
	}
	return d, out
}

// With a key, each hit the decision holds is shown with its name, and
// nothing else of the decision; a hit it does not hold has none.
func TestShowNamesFromDidit(t *testing.T) {
	fake, c := fakeDidit(t, apiKey)
	st, caseID := caseOfTheFixture(t)
	d, out := show(t, st, c, caseID)
	if len(d.Hits) != 2 || d.Hits[0].Name != fullName || d.Hits[1].Name != "" || d.NamesNote != "" {
		t.Fatalf("hits %+v, note %q", d.Hits, d.NamesNote)
	}
	if h := d.Hits[1]; h.ReviewStatus != "Unreviewed" || h.MatchScore != 93.5 || strings.Join(h.Datasets, ",") != "Sanctions,Adverse Media" {
		t.Errorf("the records' facts of a hit: %+v", h)
	}
	if !strings.Contains(strings.Join(strings.Fields(out), " "), hitID+" "+fullName+" PEP Level 2 95 86 Unreviewed") ||
		strings.Contains(out, "Names not shown") {
		t.Errorf("the text lacks the named hit")
	}
	if n := decisionReads(fake); n != 1 {
		t.Errorf("%d reads of the decision, want 1", n)
	}
}

// Without a key, with a key Didit refuses, and for an erased session, the
// records' view is shown with a note that says why there are no names; an
// erased session's names are not asked for.
func TestShowWithoutNames(t *testing.T) {
	fake, refused := fakeDidit(t, "sk_test_revoked")
	st, caseID := caseOfTheFixture(t)

	d, out := show(t, st, nil, caseID)
	if d.NamesNote != NoKeyNote || !strings.Contains(out, "Names not shown: the records keep none") || len(d.Hits) != 2 {
		t.Errorf("without a key: note %q", d.NamesNote)
	}
	d, _ = show(t, st, refused, caseID)
	if !strings.Contains(d.NamesNote, "Didit refused DIDIT_API_KEY (401)") || d.Hits[0].Name != "" || len(d.Hits) != 2 {
		t.Errorf("a refused key: note %q", d.NamesNote)
	}

	_, named := fakeDidit(t, apiKey)
	if _, err := st.EraseSession(t.Context(), session); err != nil {
		t.Fatal(err)
	}
	before := decisionReads(fake)
	d, _ = show(t, st, named, caseID)
	if !strings.Contains(d.NamesNote, "erased") || d.Hits[0].Name != "" || decisionReads(fake) != before {
		t.Errorf("an erased session: note %q", d.NamesNote)
	}
}

func TestShowUnknownCase(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "records.db"))
	if _, err := Show(t.Context(), st, nil, "aml-case-nobody"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("an unknown case: %v", err)
	}
}
