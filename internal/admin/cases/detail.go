package cases

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/admin"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/store"
)

// Names reads the names of a session's AML hits from Didit
// (api.Client.AMLHitNames).
type Names interface {
	AMLHitNames(ctx context.Context, sessionID string) (map[string]string, error)
}

// Hit is one hit of a case: the records' facts and, from Didit, its name.
type Hit struct {
	ID string `json:"id"`
	// Name is the list entry's name (a hit's caption in Didit), when Didit
	// was asked and named it.
	Name         string   `json:"name,omitempty"`
	Datasets     []string `json:"datasets"`
	MatchScore   float64  `json:"match_score"`
	RiskScore    float64  `json:"risk_score"`
	ReviewStatus string   `json:"review_status"`
}

// Decided is how a resolved case was decided. The reviewer and the note
// are left to diditflow-records: the note may describe the user.
type Decided struct {
	Outcome    contract.Outcome `json:"outcome"`
	ResolvedAt time.Time        `json:"resolved_at"`
}

// Detail is one case and its hits.
type Detail struct {
	CaseID         string             `json:"case_id"`
	SessionID      string             `json:"session_id"`
	FollowUpOf     string             `json:"follow_up_of,omitempty"`
	State          store.AMLCaseState `json:"state"`
	OpenedAt       time.Time          `json:"opened_at"`
	Reminders      int                `json:"reminders"`
	Escalated      bool               `json:"escalated"`
	NeedsAttention bool               `json:"needs_attention"`
	Resolution     *Decided           `json:"resolution,omitempty"`
	Hits           []Hit              `json:"hits"`
	// NamesNote says why the hits have no names: no API key, an erased
	// session, Didit's failure. Empty when Didit was asked and answered.
	NamesNote string `json:"names_note,omitempty"`
}

// NoKeyNote is the note of a case shown without DIDIT_API_KEY.
const NoKeyNote = "the records keep none (docs/PRIVACY.md); set DIDIT_API_KEY to read them from Didit's API"

// Show reads a case from the records and, with names (nil without an API
// key), its hits' names from Didit. When Didit cannot name them the
// records' view is still shown, with a note saying why. An erased
// session's names are not asked for: nothing is fetched for it.
func Show(ctx context.Context, st Store, names Names, caseID string) (Detail, error) {
	c, err := st.AMLCase(ctx, caseID)
	if err != nil {
		return Detail{}, err
	}
	d := Detail{CaseID: c.CaseID, SessionID: c.SessionID, FollowUpOf: c.FollowUpOf, State: c.State, OpenedAt: c.OpenedAt.UTC(),
		Reminders: c.RemindersSent, Escalated: c.Escalated, NeedsAttention: c.NeedsAttention, Hits: make([]Hit, 0, len(c.Hits))}
	if r := c.Resolution; r != nil {
		d.Resolution = &Decided{Outcome: r.Outcome, ResolvedAt: r.ResolvedAt.UTC()}
	}
	for _, h := range c.Hits {
		status := h.ReviewStatus
		if status == "" {
			status = didit.ReviewUnreviewed
		}
		d.Hits = append(d.Hits, Hit{ID: h.ID, Datasets: h.Datasets, MatchScore: h.MatchScore, RiskScore: h.RiskScore, ReviewStatus: status})
	}
	switch erased, err := sessionErased(ctx, st, c.SessionID); {
	case err != nil:
		return Detail{}, err
	case erased:
		d.NamesNote = "the session was erased, and nothing is fetched from Didit for it"
	case names == nil:
		d.NamesNote = NoKeyNote
	default:
		byID, err := names.AMLHitNames(ctx, c.SessionID)
		if err != nil {
			d.NamesNote = admin.DiditFailure("reading them from Didit's API", err).Error()
			break
		}
		for i := range d.Hits {
			d.Hits[i].Name = byID[d.Hits[i].ID]
		}
	}
	return d, nil
}

func sessionErased(ctx context.Context, st Store, sessionID string) (bool, error) {
	v, err := st.Session(ctx, sessionID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return !v.ErasedAt.IsZero(), err
}

// WriteText writes the case, then a line per hit, then the note on names.
func (d Detail) WriteText(out io.Writer) error {
	fmt.Fprintf(out, "AML case %s, session %s\n", d.CaseID, d.SessionID)
	if d.FollowUpOf != "" {
		fmt.Fprintf(out, "  follow-up of %s\n", d.FollowUpOf)
	}
	opened := d.OpenedAt.Format(time.RFC3339)
	if r := d.Resolution; r != nil {
		fmt.Fprintf(out, "  opened %s, resolved %s: %s\n", opened, r.ResolvedAt.Format(time.RFC3339), r.Outcome)
	} else {
		escalated := ""
		if d.Escalated {
			escalated = ", escalated"
		}
		fmt.Fprintf(out, "  open since %s, %s%s\n", opened, admin.Plural(d.Reminders, "reminder"), escalated)
	}
	if d.NeedsAttention {
		fmt.Fprintln(out, "  needs attention: its state query says why")
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nHIT\tNAME\tDATASETS\tMATCH\tRISK\tREVIEW STATUS")
	for _, h := range d.Hits {
		name := h.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%g\t%g\t%s\n", h.ID, name, strings.Join(h.Datasets, ", "), h.MatchScore, h.RiskScore, h.ReviewStatus)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if d.NamesNote != "" {
		b := bufio.NewWriter(out)
		b.WriteString("\n")
		admin.WriteWrapped(b, d.NamesNote, "Names not shown: ", "  ")
		return b.Flush()
	}
	return nil
}

// WriteJSON writes the case as one JSON object.
func (d Detail) WriteJSON(out io.Writer) error { return writeJSON(out, d) }
