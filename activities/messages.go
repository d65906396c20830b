package activities

import (
	"fmt"
	"strings"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/notice"
	"github.com/diditflow/diditflow/internal/notify"
)

// userMessage is the notice a user receives, written by its template
// (internal/notice). It names no personal data: the user knows who they
// are, and the mail may sit in outboxes and logs.
func userMessage(t *notice.Templates, in UserNotice) (notify.Message, error) {
	subject, text, err := t.Render(notice.NewVars(string(in.Kind), in.SessionID, in.Redo))
	if err != nil {
		return notify.Message{}, fmt.Errorf("%w: %w", notify.ErrInvalidMessage, err)
	}
	return notify.Message{
		// One ID per notice: the outbox file and the Message-ID derive from
		// it, so two notices of one kind must not share it.
		ID:       in.SessionID + "/" + strings.Replace(in.notificationKind(), ":", "/", 1),
		To:       []string{in.Email},
		Subject:  subject,
		TextBody: text,
	}, nil
}

// caseScope tells a session's cases apart in notification kinds and message
// IDs: "" for its first case, whose notices keep the names recorded before
// follow-up cases existed, else the case ID and a colon.
func caseScope(c AMLCase) string {
	if id := c.ID(); id != contract.AMLCaseWorkflowID(c.SessionID) {
		return id + ":"
	}
	return ""
}

// complianceMessage tells compliance about a case: identifiers and scores
// only, and the exact command that resolves it.
func complianceMessage(in ComplianceNotice, name string, to []string) notify.Message {
	c := in.Case
	session := c.SessionID
	if caseScope(c) != "" {
		session += " (case " + c.ID() + ")"
	}
	subject := "AML case opened: session " + session
	if in.Reminder > 0 {
		subject = fmt.Sprintf("AML case unresolved (reminder %d): session %s", in.Reminder, session)
		if in.Escalate {
			subject = "ESCALATED " + subject
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Didit session %s (status %s, vendor reference %q) has %d AML hit(s) that need a compliance decision.\n\n",
		c.SessionID, c.Status, c.VendorData, len(c.Hits))
	for _, h := range c.Hits {
		fmt.Fprintf(&b, "  - hit %s: datasets %s, match score %s, risk score %s, review status %s\n",
			h.ID, strings.Join(h.Datasets, ", "), score(h.MatchScore), score(h.RiskScore), h.ReviewStatus)
	}
	if n := len(in.Unreviewed); n > 0 {
		fmt.Fprintf(&b, "\nDidit's console has reviewed %d of the %d hit(s); still unreviewed: hit %s.\n",
			len(c.Hits)-n, len(c.Hits), strings.Join(in.Unreviewed, ", hit "))
	}
	fmt.Fprintf(&b, "\nReview every hit in Didit's console, which resolves the case here too, or resolve it here:\n\n"+
		"  diditflow-admin resolve %s --outcome false_positive --note \"why\" --reviewer you@example.com\n\n"+
		"outcome is one of confirmed_match, false_positive, inconclusive; --hit <id>=<outcome> gives a hit its own.\n", c.ID())
	return notify.Message{
		ID:       c.SessionID + "/compliance/" + strings.ReplaceAll(caseScope(c), ":", "/") + name,
		To:       to,
		Subject:  subject,
		TextBody: b.String(),
	}
}

func score(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%g", *p)
}

// complianceDocument is the JSON posted to COMPLIANCE_WEBHOOK_URL.
func complianceDocument(in ComplianceNotice, name string) map[string]any {
	kind := "aml_case.opened"
	if in.Reminder > 0 {
		kind = "aml_case.reminder"
	}
	hits, unreviewed := in.Case.Hits, in.Unreviewed
	if hits == nil {
		hits = []didit.AMLHit{}
	}
	if unreviewed == nil {
		unreviewed = []string{}
	}
	return map[string]any{
		"type":        kind,
		"notice":      name,
		"session_id":  in.Case.SessionID,
		"status":      in.Case.Status,
		"vendor_data": in.Case.VendorData,
		"case_id":     in.Case.ID(),
		"reminder":    in.Reminder,
		"escalated":   in.Escalate,
		"hits":        hits,
		"unreviewed":  unreviewed,
	}
}
