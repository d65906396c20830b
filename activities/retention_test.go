package activities

import (
	"context"
	"errors"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/temporal"

	"github.com/diditflow/diditflow/didit"
	"github.com/diditflow/diditflow/internal/contract"
	"github.com/diditflow/diditflow/internal/notify"
)

// TestPurgeActivities: a page of closed sessions and one of resolved AML
// cases lose their personal fields, the counts come back and are counted.
func TestPurgeActivities(t *testing.T) {
	outbox, err := notify.NewOutbox(t.TempDir(), "diditflow <no-reply@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	a, st := newActivities(t, outbox)
	reg := prometheus.NewRegistry()
	a.Metrics = NewMetrics(reg)
	ctx := context.Background()
	for _, session := range []string{"s-1", "s-2"} {
		in := RecordInput{SessionID: session, EventKey: "k", WebhookType: didit.WebhookStatusUpdated, Status: didit.StatusApproved,
			EventCreatedAt: 100, VendorData: "customer-" + session, ContactEmail: "user@example.com"}
		if _, err := a.RecordVerification(ctx, in); err != nil {
			t.Fatal(err)
		}
		if _, err := a.NotifyUser(ctx, UserNotice{SessionID: session, Kind: NoticeApproved, FromRecords: true}); err != nil {
			t.Fatal(err)
		}
	}
	c := AMLCase{SessionID: "s-2", Status: didit.StatusApproved, Hits: []didit.AMLHit{{ID: "h-1"}}}
	if _, err := a.OpenAMLCase(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := a.ResolveAMLCase(ctx, ResolveInput{SessionID: "s-2", Resolution: contract.Resolution{
		Outcome: contract.FalsePositive, Reviewer: "officer@example.com", Note: "namesake"}}); err != nil {
		t.Fatal(err)
	}

	page := PurgeStep{ClosedBefore: time.Now().Add(time.Minute), Limit: 1}
	var pages []PurgeCounts
	for {
		got, err := a.PurgeSessions(ctx, page)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, got)
		if got.Records < page.Limit {
			break
		}
	}
	if want := []PurgeCounts{{Records: 1, Notifications: 1}, {Records: 1, Notifications: 1, VendorDataHeld: 1}, {}}; !slices.Equal(pages, want) {
		t.Fatalf("pages %+v, want %+v", pages, want)
	}
	if got, err := a.PurgeAMLCases(ctx, PurgeStep{ClosedBefore: time.Now().Add(time.Minute), Limit: 10}); err != nil ||
		got != (PurgeCounts{Records: 1, VendorDataReleased: 1}) {
		t.Fatalf("PurgeAMLCases = %+v, %v", got, err)
	}
	for _, session := range []string{"s-1", "s-2"} {
		if v, err := st.Session(ctx, session); err != nil || v.VendorData != "" || v.Status != string(didit.StatusApproved) {
			t.Errorf("%s after the purge: %+v, %v", session, v, err)
		}
		if email, err := st.ContactAddress(ctx, session); err != nil || email != "" {
			t.Errorf("%s: address %q, %v", session, email, err)
		}
	}
	for record, want := range map[string]float64{"session": 2, "notification": 2, "aml_case": 1} {
		if v := counter(t, reg, "diditflow_records_purged_total", map[string]string{"record": record}); v != want {
			t.Errorf("diditflow_records_purged_total{record=%q} = %v, want %v", record, v, want)
		}
	}

	// A purged session that Didit writes to again still works: the
	// notice its event calls for has no address, and is undeliverable.
	kyc := RecordInput{SessionID: "s-1", EventKey: "k-2", WebhookType: didit.WebhookStatusUpdated, Status: didit.StatusKycExpired, EventCreatedAt: 200}
	if res, err := a.RecordVerification(ctx, kyc); err != nil || !res.Applied {
		t.Fatalf("event after the purge = %+v, %v", res, err)
	}
	got, err := a.NotifyUser(ctx, UserNotice{SessionID: "s-1", Kind: NoticeKycExpired, Key: "kyc_expired:k-2", FromRecords: true})
	if err != nil || got != Undeliverable {
		t.Fatalf("notice after the purge = %q, %v; want undeliverable", got, err)
	}
}

// TestPurgeActivityErrorsAreClassified: a bad page is not retried.
func TestPurgeActivityErrorsAreClassified(t *testing.T) {
	a, _ := newActivities(t, nil)
	_, err := a.PurgeSessions(context.Background(), PurgeStep{ClosedBefore: time.Now(), Limit: 0})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() {
		t.Fatalf("limit 0: %v, want a non-retryable error", err)
	}
}

// TestNotificationMessageIDIsTheMails: the IDs NotificationMessageID
// derives from the recorded kinds are those of the mails the activities
// sent, user and compliance notices, first and follow-up cases alike.
func TestNotificationMessageIDIsTheMails(t *testing.T) {
	dir := t.TempDir()
	outbox, err := notify.NewOutbox(dir, "diditflow <no-reply@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	a, st := newActivities(t, outbox)
	ctx := context.Background()
	const session = "9b2f4c1e-0d7a-4b8e-9c35-2f1e6d7a8a64"
	notices := []UserNotice{
		{SessionID: session, Kind: NoticeApproved, Email: "user@example.com"},
		{SessionID: session, Kind: NoticeKycExpired, Key: "kyc_expired:" + contract.DecisionEventID(session, 1700000000), Email: "user@example.com"},
	}
	for _, n := range notices {
		if got, err := a.NotifyUser(ctx, n); err != nil || got != Sent {
			t.Fatalf("NotifyUser = %q, %v", got, err)
		}
	}
	first := AMLCase{SessionID: session, Status: didit.StatusInReview, Hits: []didit.AMLHit{{ID: "h-1"}}}
	followUp := first
	followUp.CaseID, followUp.FollowUpOf = contract.FollowUpCaseID(session, 2), contract.AMLCaseWorkflowID(session)
	for _, in := range []ComplianceNotice{{Case: first}, {Case: first, Reminder: 1}, {Case: followUp}} {
		if got, err := a.NotifyCompliance(ctx, in); err != nil || got != Sent {
			t.Fatalf("NotifyCompliance = %q, %v", got, err)
		}
	}

	ns, err := st.Notifications(ctx, session)
	if err != nil {
		t.Fatal(err)
	}
	var derived []string
	for _, n := range ns {
		if id, ok := NotificationMessageID(session, n.Kind); ok {
			derived = append(derived, notify.MessageID(id, "no-reply@example.com"))
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	var sent []string
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(r)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m.Header.Get("Message-ID"))
		r.Close()
	}
	slices.Sort(derived)
	slices.Sort(sent)
	if len(sent) != 5 || !slices.Equal(derived, sent) {
		t.Fatalf("Message-IDs derived from the kinds %q, of the mails %q", derived, sent)
	}
	if _, ok := NotificationMessageID(session, "compliance:opened:webhook"); ok {
		t.Fatal("the compliance webhook's kind has a mail")
	}
}
