package alerting

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
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
	list, err := h.e.Incidents(context.Background(), t0.Add(-24*time.Hour), 0)
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
