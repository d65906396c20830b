package workflows

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/diditflow/diditflow/activities"
	"github.com/diditflow/diditflow/didit"
)

// TestErasedSessionStaysErased: diditflow-admin erase blanked a session
// under review and deleted its runs. Months later Didit sends Kyc Expired
// (no decision) and then the manual review's Declined, with the user's
// address, vendor_data and an AML hit. A new run records both, asks Didit
// for nothing, mails the user nothing and flags nothing, and holds neither
// the address nor the vendor_data; the hit still opens a case, which
// names no one.
func TestErasedSessionStaysErased(t *testing.T) {
	h := newHarness(t, nil)
	stub := &stubDidit{key: true, answers: []stubAnswer{{decision: didit.Decision{Status: didit.StatusKycExpired,
		Email: "fetched@example.com", VendorData: "user_01HZX4M2RT"}, date: time.Unix(1767300000, 0)}}}
	h.acts.Didit = stub
	ctx := context.Background()
	if _, err := h.acts.RecordVerification(ctx, activities.RecordInput{SessionID: s2, EventKey: "e-review",
		WebhookType: didit.WebhookStatusUpdated, Status: didit.StatusInReview, EventCreatedAt: 1767225000,
		VendorData: "user_01HZX4M2RT", ContactEmail: userEmail}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.EraseSession(ctx, s2); err != nil {
		t.Fatal(err)
	}

	expired := noDecision(t, didit.StatusKycExpired, 1767225100)
	expired.Event.SessionID, expired.Event.VendorData = s2, "user_01HZX4M2RT"
	declined := fixtureEvent(t, "status-updated-declined-aml-hit.json")
	h.deliverAt(time.Second, expired)
	h.deliverAt(time.Minute, declined)
	var st SessionState
	h.env.RegisterDelayedCallback(func() { st = h.state() }, 5*time.Minute)
	h.run(s2)

	if stub.calls != 0 {
		t.Errorf("%d decision fetches, want none for an erased session", stub.calls)
	}
	if got := outcomes(st); !slices.Equal(got, []string{"Kyc Expired:applied", "Declined:applied"}) {
		t.Errorf("history = %v, want both events recorded", got)
	}
	if !st.Erased || st.VendorData != "" || st.ContactEmail != "" || len(st.Flags) != 0 || len(st.Parked) != 0 {
		t.Errorf("state: erased %t, vendor_data %q, address %q, flags %v, parked %v; want erased, holding nothing, flagging nothing",
			st.Erased, st.VendorData, st.ContactEmail, flagKinds(st), st.Parked)
	}
	rec := h.record(s2)
	if rec.Status != string(didit.StatusDeclined) || rec.VendorData != "" || rec.ErasedAt.IsZero() {
		t.Errorf("record = %+v; want Declined, without vendor_data, still erased", rec)
	}
	if email, err := h.store.ContactAddress(ctx, s2); err != nil || email != "" {
		t.Errorf("address on record = %q, %v; want none", email, err)
	}
	ns, err := h.store.Notifications(ctx, s2)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if strings.HasPrefix(n.Kind, "user:") {
			t.Errorf("notification %s (%s) recorded for an erased session's user", n.Kind, n.State)
		}
	}
	mails := h.mails()
	if len(mails) != 1 || mails[0].Subject != "AML case opened: session "+s2 || mails[0].To != "<compliance@example.com>" {
		t.Fatalf("mails = %+v, want only compliance's notice of the case", mails)
	}
	if strings.Contains(mails[0].Body, "user_01HZX4M2RT") {
		t.Errorf("compliance's notice names the user's vendor_data:\n%s", mails[0].Body)
	}
}
