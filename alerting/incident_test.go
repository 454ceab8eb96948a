package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/store"
)

// alarmAt is a smoke alarm of device dev at a position in village v1.
func alarmAt(dev string, lat, lon float64, event string) ingest.Reading {
	return ingest.Reading{DeviceID: dev, Class: ingest.ClassSmoke, Kind: ingest.KindEvent, Zone: "v1", Lat: lat, Lon: lon,
		Fields: map[string]any{"event": event}}
}

func (h *harness) incidents(t *testing.T) []Incident {
	t.Helper()
	list, err := h.e.Incidents(context.Background(), IncidentFilter{Since: t0.Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(list) // oldest first
	return list
}

// closedEvents returns the incidents carried by the logged incident.closed events.
func (h *harness) closedEvents(t *testing.T) []Incident {
	t.Helper()
	rows, err := h.db.Query(`SELECT data FROM event_log WHERE type = 'incident.closed' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []Incident
	for rows.Next() {
		var data string
		var in Incident
		if err := rows.Scan(&data); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(data), &in); err != nil {
			t.Fatal(err)
		}
		out = append(out, in)
	}
	return out
}

func TestIncidentClosesWhenLastAlertClears(t *testing.T) {
	tests := []struct {
		name string
		// clear ends the alarm of dev: by the device's event (a rule) or by an operator.
		clear func(h *harness, dev string) error
	}{
		{"device reports alarm_cleared", func(h *harness, dev string) error {
			return h.e.Evaluate(context.Background(), alarmAt(dev, 0, 0, "alarm_cleared"))
		}},
		{"operator clears", func(h *harness, dev string) error {
			a, ok, err := h.e.st.active(context.Background(), dev, TypeSmokeAlarm)
			if err != nil || !ok {
				return err
			}
			_, err = h.e.Clear(context.Background(), a.ID, "duty", "put out")
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			ctx := context.Background()
			h.eval(t, alarmAt("smk-a", 30.100, 120.100, "alarm"))
			h.clk.Advance(time.Minute)
			h.eval(t, alarmAt("smk-b", 30.105, 120.100, "alarm")) // 556 m away: same incident
			inc := h.incidents(t)
			if len(inc) != 1 || len(inc[0].Evidence) != 2 || inc[0].ClosedAt != nil {
				t.Fatalf("incidents = %+v, want one open with both alarms", inc)
			}
			a, _ := h.active(t, "smk-a", TypeSmokeAlarm)
			if _, err := h.e.Ack(ctx, a.ID, "duty", "on the way"); err != nil {
				t.Fatal(err)
			}

			h.clk.Advance(time.Minute)
			if err := tc.clear(h, "smk-a"); err != nil {
				t.Fatal(err)
			}
			if inc := h.incidents(t); inc[0].ClosedAt != nil || len(h.closedEvents(t)) != 0 {
				t.Fatalf("closed with smk-b still active: %+v", inc[0])
			}

			closeAt := h.clk.Advance(time.Minute)
			if err := tc.clear(h, "smk-b"); err != nil {
				t.Fatal(err)
			}
			inc = h.incidents(t)
			if len(inc) != 1 || inc[0].ClosedAt == nil || !inc[0].ClosedAt.Equal(closeAt) || inc[0].CloseReason != IncidentAllCleared {
				t.Fatalf("incident = %+v, want closed at %v (%s)", inc[0], closeAt, IncidentAllCleared)
			}
			ev := h.closedEvents(t)
			if len(ev) != 1 || ev[0].ID != inc[0].ID || ev[0].ClosedAt == nil || len(ev[0].Evidence) != 2 {
				t.Fatalf("incident.closed events = %+v, want one for incident %d with its evidence", ev, inc[0].ID)
			}

			// Later steps on its alerts do not close it again.
			b, err := h.e.List(ctx, Filter{States: []State{ClearedUnack}})
			if err != nil || len(b) != 1 {
				t.Fatalf("cleared_unack alerts = %v (%v)", b, err)
			}
			if _, err := h.e.Ack(ctx, b[0].ID, "duty", "late ack"); err != nil {
				t.Fatal(err)
			}

			// A new alarm at the same place opens a new incident.
			h.clk.Advance(time.Minute)
			h.eval(t, alarmAt("smk-a", 30.100, 120.100, "alarm"))
			inc = h.incidents(t)
			if len(inc) != 2 || len(inc[0].Evidence) != 2 || inc[0].ClosedAt == nil ||
				len(inc[1].Evidence) != 1 || inc[1].ClosedAt != nil || inc[1].Evidence[0].Source != "smk-a" {
				t.Fatalf("incidents = %+v, want the closed one untouched and a new open one", inc)
			}
			if n := len(h.closedEvents(t)); n != 1 {
				t.Errorf("incident.closed events = %d, want 1", n)
			}
			if n := h.countEvents(t, "incident.opened"); n != 2 {
				t.Errorf("incident.opened events = %d, want 2", n)
			}
		})
	}
}

// Acknowledged alerts keep their incident open, however long it stays quiet.
func TestAckedIncidentStaysOpen(t *testing.T) {
	h := newHarness(t, nil)
	h.eval(t, alarmAt("smk-a", 30.1, 120.1, "alarm"))
	a, _ := h.active(t, "smk-a", TypeSmokeAlarm)
	if _, err := h.e.Ack(context.Background(), a.ID, "duty", ""); err != nil {
		t.Fatal(err)
	}
	if err := h.e.RunDue(context.Background(), h.clk.Advance(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if inc := h.incidents(t); len(inc) != 1 || inc[0].ClosedAt != nil {
		t.Fatalf("incidents = %+v, want one open", inc)
	}
	if n := h.countEvents(t, "incident.closed"); n != 0 {
		t.Errorf("incident.closed events = %d, want 0", n)
	}
}

// Alerts of one incident cleared at once close it exactly once.
func TestConcurrentClearsCloseOnce(t *testing.T) {
	h := newHarness(t, nil)
	const n = 8
	var ids []int64
	for i := range n {
		h.eval(t, alarmAt("smk-"+string(rune('a'+i)), 30.1+float64(i)*0.001, 120.1, "alarm"))
		a, ok := h.active(t, "smk-"+string(rune('a'+i)), TypeSmokeAlarm)
		if !ok {
			t.Fatal("alarm not raised")
		}
		ids = append(ids, a.ID)
	}
	if inc := h.incidents(t); len(inc) != 1 || len(inc[0].Evidence) != n {
		t.Fatalf("incidents = %+v, want one with %d alarms", inc, n)
	}
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.e.Clear(context.Background(), id, "duty", ""); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if inc := h.incidents(t); inc[0].ClosedAt == nil {
		t.Fatalf("incident open after all clears: %+v", inc[0])
	}
	if ev := h.closedEvents(t); len(ev) != 1 {
		t.Fatalf("incident.closed events = %d, want 1", len(ev))
	}
}

// An alert cleared before it joined (a clear racing the raise) settles the
// incident it joins: here the one it opens.
func TestClearedAlertJoiningClosesIncident(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	a, _, err := h.e.st.upsert(ctx, Raise{Source: "smk-x", Type: TypeSmokeAlarm, Severity: Critical, Zone: "v1",
		Lat: 30.1, Lon: 120.1, At: h.clk.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, closed, err := h.e.st.clear(ctx, a.ID, h.clk.Now(), "rule", ""); err != nil || closed != 0 {
		t.Fatalf("clear: closed %d, err %v", closed, err)
	}
	id, err := h.e.joinIncident(ctx, a, h.clk.Now())
	if err != nil || id == 0 {
		t.Fatalf("join: %d %v", id, err)
	}
	if inc := h.incidents(t); len(inc) != 1 || inc[0].ClosedAt == nil {
		t.Fatalf("incidents = %+v, want the new one closed", inc)
	}
	if h.countEvents(t, "incident.opened") != 1 || h.countEvents(t, "incident.closed") != 1 {
		t.Errorf("events: opened %d, closed %d; want 1 each", h.countEvents(t, "incident.opened"), h.countEvents(t, "incident.closed"))
	}
}

func TestClosedIncidentSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	clk := clock.NewFake(t0)
	h := openHarness(t, path, clk, nil)
	h.eval(t, alarmAt("smk-a", 30.1, 120.1, "alarm"))
	h.eval(t, alarmAt("smk-b", 30.101, 120.1, "alarm"))
	h.clk.Advance(time.Minute)
	h.eval(t, alarmAt("smk-a", 0, 0, "alarm_cleared"))
	h.eval(t, alarmAt("smk-b", 0, 0, "alarm_cleared"))
	before := h.incidents(t)
	if len(before) != 1 || before[0].ClosedAt == nil {
		t.Fatalf("incidents = %+v, want one closed", before)
	}
	h.db.Close()

	h2 := openHarness(t, path, clk, nil)
	after := h2.incidents(t)
	if len(after) != 1 || after[0].ClosedAt == nil || !after[0].ClosedAt.Equal(*before[0].ClosedAt) || after[0].CloseReason != IncidentAllCleared {
		t.Fatalf("after restart: %+v, want %+v", after, before)
	}
	h2.clk.Advance(time.Minute)
	h2.eval(t, alarmAt("smk-c", 30.1005, 120.1, "alarm")) // 55 m from the closed incident
	after = h2.incidents(t)
	if len(after) != 2 || after[1].ID == before[0].ID || after[1].ClosedAt != nil || len(after[0].Evidence) != 2 {
		t.Fatalf("incidents = %+v, want the closed one untouched and a new open one", after)
	}
	if n := h2.countEvents(t, "incident.closed"); n != 1 {
		t.Errorf("incident.closed events = %d, want 1 (none on restart)", n)
	}
}

// A database from before closing existed: incidents whose alerts are all
// cleared close at their last clear when the gateway is upgraded; the others stay open.
func TestIncidentCloseMigrationBackfills(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	old := slices.Index(schema, `ALTER TABLE incident ADD COLUMN closed_at INTEGER`)
	if old < 0 {
		t.Fatal("closed_at migration not found")
	}
	if err := store.Migrate(ctx, db, "alerting", schema[:old]); err != nil {
		t.Fatal(err)
	}
	lastClear := t0.Add(20 * time.Minute)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`INSERT INTO alert (id, source, type, severity, sev_rank, cleared, cleared_at, first_seen, last_seen, incident_id)
		VALUES (1, 'a', 'smoke_alarm', 'critical', 5, 1, ?, ?, ?, 1), (2, 'b', 'smoke_alarm', 'critical', 5, 1, ?, ?, ?, 1),
		       (3, 'c', 'smoke_alarm', 'critical', 5, 0, NULL, ?, ?, 2)`,
		ms(t0.Add(10*time.Minute)), ms(t0), ms(t0), ms(lastClear), ms(t0), ms(t0), ms(t0), ms(t0))
	exec(`INSERT INTO incident (id, opened_at, last_at, lat, lon, severity) VALUES (1, ?, ?, 30.1, 120.1, 'critical'), (2, ?, ?, 31, 121, 'critical')`,
		ms(t0), ms(t0), ms(t0), ms(t0))
	exec(`INSERT INTO incident_alert (incident_id, alert_id, at) VALUES (1, 1, ?), (1, 2, ?), (2, 3, ?)`, ms(t0), ms(t0), ms(t0))

	if err := store.Migrate(ctx, db, "alerting", schema); err != nil {
		t.Fatal(err)
	}
	var closed1, closed2 *int64
	if err := db.QueryRow(`SELECT closed_at FROM incident WHERE id = 1`).Scan(&closed1); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT closed_at FROM incident WHERE id = 2`).Scan(&closed2); err != nil {
		t.Fatal(err)
	}
	if closed1 == nil || *closed1 != ms(lastClear) {
		t.Errorf("settled incident closed_at = %v, want %d (its last clear)", closed1, ms(lastClear))
	}
	if closed2 != nil {
		t.Errorf("incident with an active alert closed at %d", *closed2)
	}
}

// twoIncidents makes incident 1 near (30.1, 120.1) from smk-a and smk-b, and
// incident 2 far away from smk-far, all alarms active; it returns their ids.
func twoIncidents(t *testing.T, h *harness) (near, far int64) {
	t.Helper()
	h.eval(t, alarmAt("smk-a", 30.100, 120.100, "alarm"))
	h.eval(t, alarmAt("smk-b", 30.101, 120.100, "alarm"))
	h.clk.Advance(time.Minute)
	h.eval(t, alarmAt("smk-far", 31.000, 121.000, "alarm"))
	inc := h.incidents(t)
	if len(inc) != 2 || len(inc[0].Evidence) != 2 || len(inc[1].Evidence) != 1 {
		t.Fatalf("incidents = %+v, want one of two alarms and one of one", inc)
	}
	return inc[0].ID, inc[1].ID
}

// An operator close clears every active alert of the incident as a clear by
// hand would, and closes it once with the operator's reason and name.
func TestOperatorClosesIncident(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	near, far := twoIncidents(t, h)
	a, _ := h.active(t, "smk-a", TypeSmokeAlarm)
	b, _ := h.active(t, "smk-b", TypeSmokeAlarm)
	if _, err := h.e.Ack(ctx, a.ID, "duty", "on the way"); err != nil { // acked alerts are cleared too
		t.Fatal(err)
	}
	clearedBefore := h.countEvents(t, "alert.cleared")

	closeAt := h.clk.Advance(time.Minute)
	inc, err := h.e.CloseIncident(ctx, near, "li", "put out, crew on site")
	if err != nil {
		t.Fatal(err)
	}
	if inc.ID != near || inc.ClosedAt == nil || !inc.ClosedAt.Equal(closeAt) ||
		inc.CloseReason != IncidentClosedByOperator || inc.ClosedBy != "li" || len(inc.Evidence) != 2 {
		t.Fatalf("closed incident = %+v, want %d closed at %v by li (%s)", inc, near, closeAt, IncidentClosedByOperator)
	}
	for _, al := range []struct {
		Alert
		stopped string // why its 叫应 chain ended
	}{{a, "acked"}, {b, "cleared"}} {
		v, err := h.e.Get(ctx, al.ID)
		if err != nil {
			t.Fatal(err)
		}
		last := v.Audit[len(v.Audit)-1]
		if v.Active() || v.ClearedBy != "li" || last.Action != "cleared" || last.User != "li" || last.Note != "put out, crew on site" {
			t.Errorf("alert %d = %+v, last audit %+v; want cleared by li with the note", al.ID, v.Alert, last)
		}
		if v.Escalation == nil || !v.Escalation.Done || v.Escalation.Reason != al.stopped {
			t.Errorf("alert %d escalation = %+v, want stopped as %s", al.ID, v.Escalation, al.stopped)
		}
		if _, ok := h.active(t, al.Source, al.Type); ok {
			t.Errorf("alert %d still in the active index", al.ID)
		}
	}
	if n := h.countEvents(t, "alert.cleared") - clearedBefore; n != 2 {
		t.Errorf("alert.cleared events = %d, want 2", n)
	}
	ev := h.closedEvents(t)
	if len(ev) != 1 || ev[0].ID != near || ev[0].CloseReason != IncidentClosedByOperator || ev[0].ClosedBy != "li" {
		t.Fatalf("incident.closed events = %+v, want one for %d by li", ev, near)
	}
	if far, _ := h.active(t, "smk-far", TypeSmokeAlarm); !far.Active() {
		t.Errorf("another incident's alarm was cleared: %+v", far)
	}

	// The device's own alarm_cleared later changes nothing.
	h.eval(t, alarmAt("smk-a", 0, 0, "alarm_cleared"))
	if n := len(h.closedEvents(t)); n != 1 {
		t.Errorf("incident.closed events = %d after a late device clear, want 1", n)
	}

	tests := []struct {
		name    string
		id      int64
		want    error
		wantMsg string
	}{
		{"again", near, ErrIncidentClosed, "closed_by_operator by li"},
		{"unknown", 999, ErrIncidentNotFound, "999"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.e.CloseIncident(ctx, tc.id, "wang", "again")
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tc.want, tc.wantMsg)
			}
		})
	}
	if n := len(h.closedEvents(t)); n != 1 {
		t.Errorf("incident.closed events = %d, want 1", n)
	}
	if inc := h.incidents(t); inc[1].ID != far || inc[1].ClosedAt != nil {
		t.Errorf("incident %d = %+v, want open", far, inc[1])
	}
}

// The automatic close keeps its reason and names nobody.
func TestAllClearedNamesNoOperator(t *testing.T) {
	h := newHarness(t, nil)
	near, _ := twoIncidents(t, h)
	h.eval(t, alarmAt("smk-a", 0, 0, "alarm_cleared"))
	h.eval(t, alarmAt("smk-b", 0, 0, "alarm_cleared"))
	inc := h.incidents(t)
	if inc[0].ID != near || inc[0].ClosedAt == nil || inc[0].CloseReason != IncidentAllCleared || inc[0].ClosedBy != "" {
		t.Fatalf("incident = %+v, want closed %s by nobody", inc[0], IncidentAllCleared)
	}
}

// Only one of concurrent operator closes closes the incident; the others are
// told it is closed.
func TestConcurrentOperatorClosesCloseOnce(t *testing.T) {
	h := newHarness(t, nil)
	near, _ := twoIncidents(t, h)
	const n = 6
	errc := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.e.CloseIncident(context.Background(), near, "op"+string(rune('a'+i)), "out")
			errc <- err
		}()
	}
	wg.Wait()
	close(errc)
	var ok, conflict int
	for err := range errc {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrIncidentClosed):
			conflict++
		default:
			t.Fatal(err)
		}
	}
	if ok != 1 || conflict != n-1 {
		t.Fatalf("closes: %d ok, %d conflict; want 1 and %d", ok, conflict, n-1)
	}
	if ev := h.closedEvents(t); len(ev) != 1 {
		t.Fatalf("incident.closed events = %d, want 1", len(ev))
	}
	if c := h.countEvents(t, "alert.cleared"); c != 2 {
		t.Errorf("alert.cleared events = %d, want 2", c)
	}
}

// The open listing reads the incident_open partial index.
func TestOpenIncidentsUseIndex(t *testing.T) {
	h := newHarness(t, nil)
	q, err := incidentsQuery(IncidentOpen)
	if err != nil {
		t.Fatal(err)
	}
	if p := queryPlan(t, h.db, q, 0, 10); !strings.Contains(p, "incident_open") || strings.Contains(p, "TEMP B-TREE") {
		t.Errorf("plan %q: want the incident_open index and no sort", p)
	}
}

func TestHTTPIncidents(t *testing.T) {
	h := newHarness(t, nil)
	near, far := twoIncidents(t, h)
	srv := httptest.NewServer(routes(h.e))
	defer srv.Close()
	do := func(method, path, user, body string) (int, string) {
		t.Helper()
		code, b := httpDo(t, srv, method, path, user, body)
		return code, string(b)
	}
	ids := func(q string) []int64 {
		t.Helper()
		code, b := do("GET", "/api/v1/incidents"+q, "", "")
		var out struct{ Incidents []Incident }
		if code != 200 || json.Unmarshal([]byte(b), &out) != nil {
			t.Fatalf("GET %s: %d %s", q, code, b)
		}
		var got []int64
		for _, in := range out.Incidents {
			got = append(got, in.ID)
		}
		return got
	}
	p := fmt.Sprintf("/api/v1/incidents/%d/close", near)
	steps := []struct {
		name         string
		method, path string
		user, body   string
		wantCode     int
		wantInBody   string
		open, closed []int64 // listings after the step (newest first)
	}{
		{"lists before", "GET", "/api/v1/incidents", "", "", 200, "", []int64{far, near}, nil},
		{"bad state", "GET", "/api/v1/incidents?state=burning", "", "", 400, "state", nil, nil},
		{"no note", "POST", p, "li", `{}`, 400, "note", []int64{far, near}, nil},
		{"blank note", "POST", p, "li", `{"note":"  "}`, 400, "note", nil, nil},
		{"empty body", "POST", p, "li", ``, 400, "note", nil, nil},
		{"unknown field", "POST", p, "li", `{"note":"x","why":1}`, 400, "why", nil, nil},
		{"trailing data", "POST", p, "li", `{"note":"x"}{}`, 400, "trailing", nil, nil},
		{"long note", "POST", p, "li", `{"note":"` + strings.Repeat("x", 2001) + `"}`, 400, "2000", nil, nil},
		{"no user", "POST", p, "", `{"note":"x"}`, 400, "user", nil, nil},
		{"bad id", "POST", "/api/v1/incidents/abc/close", "li", `{"note":"x"}`, 400, "incident id", nil, nil},
		{"unknown", "POST", "/api/v1/incidents/999/close", "li", `{"note":"x"}`, 404, "999", nil, nil},
		{"close", "POST", p, "li", `{"note":"false alarm: stubble burning"}`, 200, `"closed_by":"li"`, []int64{far}, []int64{near}},
		{"close again", "POST", p, "wang", `{"note":"x"}`, 409, "already closed", []int64{far}, []int64{near}},
	}
	for _, st := range steps {
		code, b := do(st.method, st.path, st.user, st.body)
		if code != st.wantCode || !strings.Contains(b, st.wantInBody) {
			t.Fatalf("%s: %d %s; want %d with %q", st.name, code, b, st.wantCode, st.wantInBody)
		}
		if st.open == nil && st.closed == nil {
			continue
		}
		if got := ids("?state=open"); !slices.Equal(got, st.open) {
			t.Errorf("%s: open = %v, want %v", st.name, got, st.open)
		}
		if got := ids("?state=closed"); !slices.Equal(got, st.closed) {
			t.Errorf("%s: closed = %v, want %v", st.name, got, st.closed)
		}
		all := append(slices.Clone(st.open), st.closed...)
		slices.Sort(all)
		for _, q := range []string{"", "?state=all"} {
			got := ids(q)
			slices.Sort(got)
			if !slices.Equal(got, all) {
				t.Errorf("%s: GET %q = %v, want %v", st.name, q, got, all)
			}
		}
	}
	code, b := do("POST", p, "wang", `{"note":"x"}`)
	if code != 409 || !strings.Contains(b, "closed_by_operator by li") {
		t.Errorf("second close: %d %s, want 409 naming the first close", code, b)
	}
	if ev := h.closedEvents(t); len(ev) != 1 || ev[0].ClosedBy != "li" {
		t.Errorf("incident.closed events = %+v, want one by li", ev)
	}
	// Eight quiet days later the still-open incident is listed as open; the
	// default (all states) and closed listings cover the last 7 days only.
	h.clk.Advance(8 * 24 * time.Hour)
	if got := ids("?state=open"); !slices.Equal(got, []int64{far}) {
		t.Errorf("8 days on: open = %v, want [%d]", got, far)
	}
	for _, q := range []string{"", "?state=all", "?state=closed"} {
		if got := ids(q); len(got) != 0 {
			t.Errorf("8 days on: GET %q = %v, want none", q, got)
		}
	}
	if got := ids("?state=all&since=0"); len(got) != 2 {
		t.Errorf("8 days on: since=0 lists %v, want both", got)
	}
}
