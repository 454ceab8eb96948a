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
