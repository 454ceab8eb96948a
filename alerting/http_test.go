package alerting

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/ingest"
)

func TestHTTPAlerts(t *testing.T) {
	h := newHarness(t, nil)
	h.eval(t, ingest.Reading{DeviceID: "smk-h", Class: ingest.ClassSmoke, Zone: "v1", Fields: map[string]any{"alarm": true}})
	h.clk.Advance(time.Minute)
	h.eval(t, ingest.Reading{DeviceID: "smk-h", Class: ingest.ClassSmoke, Zone: "t1", Fields: map[string]any{"battery_pct": 5.0}})
	h.clk.Advance(time.Minute)
	h.eval(t, elec("residual_current_ma", 400))
	crit, _ := h.active(t, "smk-h", TypeSmokeAlarm)
	srv := httptest.NewServer(routes(h.e))
	defer srv.Close()

	do := func(method, path, user, body string) (int, []byte) {
		t.Helper()
		return httpDo(t, srv, method, path, user, body)
	}
	list := func(q string) []Alert {
		t.Helper()
		code, b := do("GET", "/api/v1/alerts"+q, "", "")
		if code != 200 {
			t.Fatalf("%s: %d %s", q, code, b)
		}
		var out struct{ Alerts []Alert }
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out.Alerts
	}
	tests := []struct {
		q    string
		want int
	}{
		{"", 3}, {"?severity=critical", 1}, {"?severity=major,warning", 2}, {"?zone=v1", 2}, {"?state=active_unack", 3},
		{"?since=" + t0.Add(90*time.Second).Format(time.RFC3339), 1},
		{fmt.Sprintf("?until=%d", t0.Add(30*time.Second).Unix()), 1}, {"?limit=2", 2},
	}
	for _, tc := range tests {
		if got := list(tc.q); len(got) != tc.want {
			t.Errorf("GET /alerts%s: %d alerts, want %d", tc.q, len(got), tc.want)
		}
	}
	for _, q := range []string{"?state=burning", "?severity=huge", "?since=yesterday", "?limit=0"} {
		if code, _ := do("GET", "/api/v1/alerts"+q, "", ""); code != 400 {
			t.Errorf("%s: %d, want 400", q, code)
		}
	}
	id := fmt.Sprint(crit.ID)
	if code, _ := do("POST", "/api/v1/alerts/"+id+"/ack", "", `{"note":"x"}`); code != 400 {
		t.Errorf("ack without user: %d, want 400", code)
	}
	if code, _ := do("POST", "/api/v1/alerts/"+id+"/ack", "li", `{"note":"x","extra":1}`); code != 400 {
		t.Errorf("unknown field: %d, want 400", code)
	}
	if code, b := do("POST", "/api/v1/alerts/"+id+"/ack", "", `{"user":"li","note":"on my way"}`); code != 200 {
		t.Fatalf("ack: %d %s", code, b)
	}
	if code, _ := do("POST", "/api/v1/alerts/"+id+"/ack", "li", `{"note":""}`); code != 409 {
		t.Errorf("second ack: %d, want 409", code)
	}
	if code, _ := do("POST", "/api/v1/alerts/999/clear", "li", ""); code != 404 {
		t.Errorf("clear missing: %d, want 404", code)
	}
	if code, _ := do("GET", "/api/v1/alerts/abc", "", ""); code != 400 {
		t.Errorf("bad id: %d, want 400", code)
	}
	if code, b := do("POST", "/api/v1/alerts/"+id+"/clear", "wang", `{"note":"kitchen smoke"}`); code != 200 {
		t.Fatalf("clear: %d %s", code, b)
	}
	code, b := do("GET", "/api/v1/alerts/"+id, "", "")
	var v AlertView
	if code != 200 || json.Unmarshal(b, &v) != nil {
		t.Fatalf("get: %d %s", code, b)
	}
	if v.State != ClearedAck || v.AckedBy != "li" || v.ClearedBy != "wang" || len(v.Calls) != 1 || v.Escalation == nil {
		t.Errorf("view = %s", b)
	}
	if got := list("?state=cleared"); len(got) != 1 || got[0].ID != crit.ID {
		t.Errorf("cleared list = %+v", got)
	}

	// The Atom feed lists the two still-active alerts with links to their CAP documents.
	code, b = do("GET", "/api/v1/cap/feed", "", "")
	var feed struct {
		Entries []struct {
			Link struct {
				Href string `xml:"href,attr"`
			} `xml:"link"`
		} `xml:"entry"`
	}
	if code != 200 || xml.Unmarshal(b, &feed) != nil || len(feed.Entries) != 2 {
		t.Fatalf("feed: %d %s", code, b)
	}
	if !strings.HasSuffix(feed.Entries[0].Link.Href, "/cap") {
		t.Errorf("entry link %q", feed.Entries[0].Link.Href)
	}
	if code, b := do("GET", "/api/v1/incidents", "", ""); code != 200 || !strings.Contains(string(b), `"incidents"`) {
		t.Errorf("incidents: %d %s", code, b)
	}
}
