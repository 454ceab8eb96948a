package alerting

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/ingest"
)

// callOffsets are the minutes after t0 at which the calls were placed.
func (c *recCaller) callOffsets() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Duration
	for _, x := range c.calls {
		out = append(out, x.At.Sub(t0))
	}
	return out
}

func minutes(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Minute
	}
	return out
}

// stepMinutes runs the timer step once a minute for n minutes, so a call can
// only happen on the minute its deadline falls on and an early one shows.
func stepMinutes(t *testing.T, e *Engine, clk *clock.Fake, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := e.RunDue(context.Background(), clk.Advance(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEscalationDeadlinesPerLevel(t *testing.T) {
	smokeAlarm := ingest.Reading{DeviceID: "smk-g", Class: ingest.ClassSmoke, Zone: "g1", Fields: map[string]any{"event": "alarm"}}
	residual := ingest.Reading{DeviceID: "elec-g", Class: ingest.ClassElec, Zone: "g1", Fields: map[string]any{"residual_current_ma": []float64{450}}}
	fieldPractice := map[string]map[string]time.Duration{
		"grid":    {"critical": 2 * time.Minute},
		"Village": {"CRITICAL": 3 * time.Minute}, // keys are case-insensitive
		"county":  {"critical": 10 * time.Minute, "major": 60 * time.Minute},
	}
	tests := []struct {
		name      string
		levels    map[string]map[string]time.Duration
		reading   ingest.Reading
		run       int             // minutes to step
		calls     []time.Duration // grid, village, town, county
		exhausted time.Duration   // when the chain ends
		firstNote string          // in the "called" audit entry
	}{
		{"unset: 5 min at every level", nil, smokeAlarm, 25, minutes(0, 5, 10, 15), 20 * time.Minute, "5m0s to acknowledge"},
		{"per level, town falls back to critical_deadline", fieldPractice, smokeAlarm, 25, minutes(0, 2, 5, 10), 20 * time.Minute, "step 0: grid 北坡网格 (g1), 2m0s to acknowledge"},
		{"per level for major: only county is set", fieldPractice, residual, 160, minutes(0, 30, 60, 90), 150 * time.Minute, "30m0s to acknowledge"},
		{"unset major: 30 min at every level", nil, residual, 130, minutes(0, 30, 60, 90), 120 * time.Minute, "30m0s to acknowledge"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Escalation.LevelDeadlines = tc.levels })
			h.eval(t, tc.reading)
			stepMinutes(t, h.e, h.clk, tc.run)
			if got := h.caller.callOffsets(); !reflect.DeepEqual(got, tc.calls) {
				t.Fatalf("calls at %v, want %v", got, tc.calls)
			}
			var typ string
			if tc.reading.Class == ingest.ClassSmoke {
				typ = TypeSmokeAlarm
			} else {
				typ = TypeResidual
			}
			var id int64
			if err := h.db.QueryRow(`SELECT id FROM alert WHERE source = ? AND type = ?`, tc.reading.DeviceID, typ).Scan(&id); err != nil {
				t.Fatal(err)
			}
			v, err := h.e.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			levels := []string{}
			for _, c := range v.Calls {
				levels = append(levels, c.Level)
			}
			if !reflect.DeepEqual(levels, []string{"grid", "village", "town", "county"}) {
				t.Errorf("levels called = %v", levels)
			}
			var exhaustedAt time.Duration = -1
			for _, a := range v.Audit {
				if a.Action == "exhausted" {
					exhaustedAt = a.At.Sub(t0)
				}
			}
			if exhaustedAt != tc.exhausted {
				t.Errorf("exhausted at %v, want %v", exhaustedAt, tc.exhausted)
			}
			if len(v.Audit) < 2 || v.Audit[1].Action != "called" || !strings.Contains(v.Audit[1].Note, tc.firstNote) {
				t.Errorf("first call audit = %+v, want note with %q", v.Audit, tc.firstNote)
			}
		})
	}
}

// The deadline of a zone is fixed when its call is placed (next_at in SQLite):
// a restart keeps it, even when the restarted gateway's configuration differs;
// the next zone gets the deadline the running configuration gives its level.
func TestLevelDeadlineSurvivesRestart(t *testing.T) {
	before := map[string]map[string]time.Duration{"grid": {"critical": 2 * time.Minute}, "village": {"critical": 8 * time.Minute}}
	tests := []struct {
		name  string
		after map[string]map[string]time.Duration
		calls []time.Duration // grid, village (before restart), town, county (after)
	}{
		{"same config", before, minutes(0, 2, 10, 15)},
		{"level deadlines removed", nil, minutes(0, 2, 10, 15)},
		{"town shortened", map[string]map[string]time.Duration{"town": {"critical": time.Minute}}, minutes(0, 2, 10, 11)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			clk := clock.NewFake(t0)
			h := openHarness(t, path, clk, func(c *Config) { c.Escalation.LevelDeadlines = before })
			h.eval(t, ingest.Reading{DeviceID: "smk-r", Class: ingest.ClassSmoke, Zone: "g1", Fields: map[string]any{"event": "alarm"}})
			stepMinutes(t, h.e, clk, 3) // grid at 0, village at 2 (8 min to answer)
			if got := h.caller.callOffsets(); !reflect.DeepEqual(got, tc.calls[:2]) {
				t.Fatalf("before restart: calls at %v, want %v", got, tc.calls[:2])
			}
			h.db.Close()
			h2 := openHarness(t, path, clk, func(c *Config) { c.Escalation.LevelDeadlines = tc.after })
			stepMinutes(t, h2.e, clk, 17)
			if got := h2.caller.callOffsets(); !reflect.DeepEqual(got, tc.calls[2:]) {
				t.Fatalf("after restart: calls at %v, want %v", got, tc.calls[2:])
			}
			if n := h2.countEvents(t, "alert.unanswered"); n != 1 {
				t.Errorf("alert.unanswered events = %d, want 1", n)
			}
		})
	}
}

// A zones layer swapped while a chain runs: the chain keeps the zones it had
// when the alert was raised (no level skipped or called twice), takes each
// zone's duty contacts from the layer as it is when the zone is called, and
// passes over a zone that has gone, saying so.
func TestEscalationChainSurvivesZonesSwap(t *testing.T) {
	base := testDir()
	county, town, village, grid := base["c1"][0], base["t1"][0], base["v1"][0], base["g1"][0]
	withoutVillage := func() fakeDir { // v1 dissolved: g1 now reports to t1 directly
		g := grid
		g.Parent = "t1"
		return fakeDir{"g1": {g, town, county}, "t1": {town, county}, "c1": {county}}
	}
	withNewLevel := func() fakeDir { // a new zone y1 between the grid and the village
		y := Zone{ID: "y1", Name: "新片区", Level: "village", Parent: "v1", Duty: []Contact{{Name: "Area Zhao", Phone: "+86-350"}}}
		g := grid
		g.Parent = "y1"
		return fakeDir{"g1": {g, y, village, town, county}, "y1": {y, village, town, county}, "v1": {village, town, county}, "t1": {town, county}, "c1": {county}}
	}
	newRota := func() fakeDir {
		tw := town
		tw.Duty = []Contact{{Name: "Town Night Duty", Phone: "+86-201"}}
		return fakeDir{"g1": {grid, village, tw, county}, "v1": {village, tw, county}, "t1": {tw, county}, "c1": {county}}
	}
	tests := []struct {
		name    string
		swapAt  int // minutes after the alert
		swap    func() fakeDir
		names   []string
		at      []time.Duration
		noteFor string // a no_contact audit note that must appear ("" none)
	}{
		{"village removed after its call", 6, withoutVillage,
			[]string{"Grid Wang", "Ranger Li", "Town Duty", "County Duty"}, minutes(0, 5, 10, 15), ""},
		{"level inserted after the village's call", 6, withNewLevel,
			[]string{"Grid Wang", "Ranger Li", "Town Duty", "County Duty"}, minutes(0, 5, 10, 15), ""},
		{"village removed before its call", 2, withoutVillage,
			[]string{"Grid Wang", "Town Duty", "County Duty"}, minutes(0, 5, 10), "zone v1 (village) is no longer in the zones layer"},
		{"town rota changed before its call", 6, newRota,
			[]string{"Grid Wang", "Ranger Li", "Town Night Duty", "County Duty"}, minutes(0, 5, 10, 15), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.eval(t, ingest.Reading{DeviceID: "smk-s", Class: ingest.ClassSmoke, Zone: "g1", Fields: map[string]any{"event": "alarm"}})
			stepMinutes(t, h.e, h.clk, tc.swapAt)
			h.dir.set(tc.swap())
			stepMinutes(t, h.e, h.clk, 25-tc.swapAt)
			if got := h.caller.names(); !reflect.DeepEqual(got, tc.names) {
				t.Fatalf("called %v, want %v", got, tc.names)
			}
			if got := h.caller.callOffsets(); !reflect.DeepEqual(got, tc.at) {
				t.Fatalf("calls at %v, want %v", got, tc.at)
			}
			a, ok := h.active(t, "smk-s", TypeSmokeAlarm)
			if !ok {
				t.Fatal("alert not active")
			}
			v, err := h.e.Get(context.Background(), a.ID)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, x := range v.Audit {
				if x.Action == "no_contact" && x.Note == tc.noteFor {
					found = true
				}
			}
			if tc.noteFor != "" && !found {
				t.Errorf("no no_contact audit %q in %+v", tc.noteFor, v.Audit)
			}
			if v.Escalation == nil || !v.Escalation.Done || v.Escalation.Reason != "exhausted" {
				t.Fatalf("escalation = %+v, want done (exhausted)", v.Escalation)
			}
			// operators see the chain as it was fixed, whatever the layer says now
			wantChain := []ChainZone{{"g1", "北坡网格", "grid"}, {"v1", "东坡村", "village"}, {"t1", "松林镇", "town"}, {"c1", "青山县", "county"}}
			if !reflect.DeepEqual(v.Escalation.Chain, wantChain) {
				t.Errorf("chain = %+v, want %+v", v.Escalation.Chain, wantChain)
			}
		})
	}
}

// An escalation row from before chains were stored (an empty path) follows the live
// zone path, as it did then.
func TestEscalationLegacyRowFollowsLivePath(t *testing.T) {
	h := newHarness(t, nil)
	h.eval(t, ingest.Reading{DeviceID: "smk-l", Class: ingest.ClassSmoke, Zone: "g1", Fields: map[string]any{"event": "alarm"}})
	if res, err := h.db.Exec(`UPDATE escalation SET path = ''`); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%d escalation rows, want 1", n)
	}
	base := testDir()
	g := base["g1"][0]
	h.dir.set(fakeDir{"g1": {g, base["t1"][0], base["c1"][0]}, "t1": base["t1"], "c1": base["c1"]})
	stepMinutes(t, h.e, h.clk, 20)
	if got, want := h.caller.names(), []string{"Grid Wang", "Town Duty", "County Duty"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("called %v, want %v (the live path from step 1 on)", got, want)
	}
}
