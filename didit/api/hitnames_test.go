package api

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The names of a session's hits are their captions, by hit ID, from the
// decision's screenings; nothing else of the decision comes with them, and
// an answer that is not a decision is malformed without quoting it.
func TestAMLHitNames(t *testing.T) {
	var path string
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.EscapedPath()
		_, _ = io.WriteString(w, `{
			"session_id": "s1", "vendor_data": "user-1",
			"aml_screenings": [
				{"node_id": "feature_aml_1", "screened_data": {"full_name": "Ada Lovelace"},
				 "hits": [{"id": "h1", "caption": "Ada King"}, {"id": "h2", "caption": null}]},
				{"node_id": "feature_aml_2", "hits": [{"id": "h3", "caption": "A. Lovelace"}]}]
		}`)
	})
	names, err := c.AMLHitNames(context.Background(), "s1")
	if err != nil {
		t.Fatal(err)
	}
	if path != "/v3/session/s1/decision/" {
		t.Errorf("path = %q", path)
	}
	if len(names) != 2 || names["h1"] != "Ada King" || names["h3"] != "A. Lovelace" {
		t.Errorf("names = %v", names)
	}

	c, _ = newTestClient(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"aml_screenings": [{"hits": [{"id": "h1", "caption": ["`+bodySecret+`"]}]}]}`)
	})
	_, err = c.AMLHitNames(context.Background(), "s1")
	if e := requireKind(t, err, KindMalformed); !strings.Contains(e.Error(), "aml hit names") {
		t.Errorf("error %q does not name the call", e)
	}
}
