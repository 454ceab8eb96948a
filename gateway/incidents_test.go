package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/alerting"
	"github.com/lookoutfire/lookout/auth"
)

// An operator closes an incident through the real route table and guard: the
// authenticated user (not a header) closes it and clears its alerts, the
// security audit log has one incident.close, and the state filter follows.
func TestOperatorClosesIncidentThroughGuard(t *testing.T) {
	a := testApp(t)
	c := makeCreds(t, a)
	h := apiMux(a.routes(), a.guard)
	ctx := context.Background()
	var alertIDs []int64
	for i, lat := range []float64{30.100, 30.101} {
		al, err := a.alerts.Raise(ctx, alerting.Raise{Source: fmt.Sprintf("smk-%d", i), Type: alerting.TypeSmokeAlarm,
			Severity: alerting.Critical, Lat: lat, Lon: 120.1, Message: "smoke", At: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if al.Incident == 0 {
			t.Fatalf("alert %+v joined no incident", al)
		}
		alertIDs = append(alertIDs, al.ID)
	}
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+c[auth.RoleOperator])
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(alerting.UserHeader, "mallory") // ignored: auth names the user
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	list := func(state string) []alerting.Incident {
		t.Helper()
		code, b := call("GET", "/api/v1/incidents?state="+state, "")
		var out struct{ Incidents []alerting.Incident }
		if code != http.StatusOK || json.Unmarshal([]byte(b), &out) != nil {
			t.Fatalf("list %s: %d %s", state, code, b)
		}
		return out.Incidents
	}
	open := list("open")
	if len(open) != 1 || len(open[0].Evidence) != 2 {
		t.Fatalf("open incidents = %+v, want one with both alarms", open)
	}
	id := open[0].ID
	closePath := fmt.Sprintf("/api/v1/incidents/%d/close", id)

	steps := []struct {
		name, method, path, body string
		want                     int
		wantInBody               string
	}{
		{"bad state", "GET", "/api/v1/incidents?state=opened", "", http.StatusBadRequest, "state"},
		{"no note", "POST", closePath, `{}`, http.StatusBadRequest, "note"},
		{"unknown", "POST", "/api/v1/incidents/99999/close", `{"note":"x"}`, http.StatusNotFound, "99999"},
		{"close", "POST", closePath, `{"note":"crew reports it out"}`, http.StatusOK, `"close_reason":"closed_by_operator","closed_by":"u-operator"`},
		{"again", "POST", closePath, `{"note":"x"}`, http.StatusConflict, "already closed"},
	}
	for _, st := range steps {
		if code, b := call(st.method, st.path, st.body); code != st.want || !strings.Contains(b, st.wantInBody) {
			t.Fatalf("%s: %d %s; want %d with %q", st.name, code, b, st.want, st.wantInBody)
		}
	}
	if got := list("open"); len(got) != 0 {
		t.Errorf("open after close = %+v", got)
	}
	if got := list("closed"); len(got) != 1 || got[0].ID != id || got[0].ClosedBy != "u-operator" {
		t.Errorf("closed = %+v, want %d by u-operator", got, id)
	}
	for _, aid := range alertIDs {
		v, err := a.alerts.Get(ctx, aid)
		if err != nil {
			t.Fatal(err)
		}
		if v.Active() || v.ClearedBy != "u-operator" {
			t.Errorf("alert %d: state %s cleared by %q, want cleared by u-operator", aid, v.State, v.ClearedBy)
		}
	}
	entries, err := a.sec.store.AuditList(ctx, auth.AuditQuery{Action: "incident.close", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Actor != "u-operator" || entries[0].Target["id"] != fmt.Sprint(id) || entries[0].Status != http.StatusOK {
		t.Errorf("audit entries = %+v, want one 200 incident.close of %d by u-operator", entries, id)
	}
}
