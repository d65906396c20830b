package activities

import (
	"context"
	"strings"
	"time"

	"github.com/diditflow/diditflow/internal/store"
)

// PurgeStep is one page of the retention purge: records closed before
// ClosedBefore (a session's last event, an AML case's resolution) lose
// their personal fields, at most Limit of them.
type PurgeStep struct {
	ClosedBefore time.Time `json:"closed_before"`
	Limit        int       `json:"limit"`
}

// PurgeCounts is what one page purged: counts only, never what the fields
// held.
type PurgeCounts struct {
	// Records counts the sessions or AML cases purged; fewer than the
	// step's Limit means none is left.
	Records       int `json:"records"`
	Notifications int `json:"notifications,omitempty"`
	// VendorDataHeld counts sessions whose vendor_data stays for an AML case
	// within its own retention; VendorDataReleased those whose vendor_data
	// went with their last such case.
	VendorDataHeld     int `json:"vendor_data_held,omitempty"`
	VendorDataReleased int `json:"vendor_data_released,omitempty"`
}

// PurgeSessions blanks the personal fields of a page of closed sessions
// (store.PurgeClosedSessions): in a final status, with no event since
// ClosedBefore. Running it again changes nothing.
func (a *Activities) PurgeSessions(ctx context.Context, in PurgeStep) (PurgeCounts, error) {
	res, err := a.Store.PurgeClosedSessions(ctx, in.ClosedBefore, in.Limit)
	if err != nil {
		return PurgeCounts{}, classify("purge closed sessions", err)
	}
	a.Metrics.purged("session", res.Records)
	a.Metrics.purged("notification", res.Notifications)
	return purgeCounts(res), nil
}

// PurgeAMLCases blanks the personal fields of a page of AML cases resolved
// before ClosedBefore (store.PurgeClosedAMLCases), which keep their own,
// longer retention. Running it again changes nothing.
func (a *Activities) PurgeAMLCases(ctx context.Context, in PurgeStep) (PurgeCounts, error) {
	res, err := a.Store.PurgeClosedAMLCases(ctx, in.ClosedBefore, in.Limit)
	if err != nil {
		return PurgeCounts{}, classify("purge closed aml cases", err)
	}
	a.Metrics.purged("aml_case", res.Records)
	return purgeCounts(res), nil
}

func purgeCounts(r store.PurgeResult) PurgeCounts {
	return PurgeCounts{Records: r.Records, Notifications: r.Notifications,
		VendorDataHeld: r.VendorDataHeld, VendorDataReleased: r.VendorDataReleased}
}

func (m *Metrics) purged(record string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.purgedRecords.WithLabelValues(record).Add(float64(n))
}

// NotificationMessageID is the ID (notify.Message.ID) of the mail sent for
// a session's notification kind, as NotifyUser and NotifyCompliance build
// it; the outbox file name and the Message-ID header derive from it, so
// the erasure command finds a session's mails by it. ok is false for a kind
// that sends no mail (the compliance webhook's).
func NotificationMessageID(sessionID, kind string) (id string, ok bool) {
	if rest, found := strings.CutPrefix(kind, "compliance:"); found {
		if rest, found = strings.CutSuffix(rest, ":email"); !found {
			return "", false
		}
		return sessionID + "/compliance/" + strings.ReplaceAll(rest, ":", "/"), true
	}
	return sessionID + "/" + strings.Replace(kind, ":", "/", 1), true
}
