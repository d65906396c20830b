package workflows

import (
	"testing"
	"time"
)

// TestNoVendorDataInSearchAttributes: search attributes are indexed in
// clear, outside the payload codec, so vendor_data (the business's
// reference to its user) never goes there; the records map it instead.
func TestNoVendorDataInSearchAttributes(t *testing.T) {
	h := newHarness(t, nil)
	ev := fixtureEvent(t, "status-updated-approved.json")
	if ev.Event.VendorData == "" {
		t.Fatal("the fixture has no vendor_data to leak")
	}
	h.deliverAt(time.Second, ev)
	h.run(s1)
	if len(h.searched) == 0 {
		t.Fatal("no search attributes upserted")
	}
	for _, sa := range h.searched {
		for key, v := range sa.GetUntypedValues() {
			if v == ev.Event.VendorData {
				t.Fatalf("vendor_data upserted as %s", key.GetName())
			}
		}
	}
	if h.record(s1).VendorData != ev.Event.VendorData {
		t.Fatal("the records lost vendor_data")
	}
}
