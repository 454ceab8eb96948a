package alerting

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/ingest"
)

// hookDir is testDir with a hook run on every ZonePath, i.e. inside an
// escalation step before its calls: what a concurrent ack or shutdown would
// do at the worst moment.
type hookDir struct {
	fakeDir
	hook func()
}

func (d hookDir) ZonePath(id string) []Zone {
	if d.hook != nil {
		d.hook()
	}
	return d.fakeDir[id]
}

func (h *harness) escalation(t *testing.T, id int64) (step int, done bool, reason string, due bool) {
	t.Helper()
	var next *int64
	if err := h.db.QueryRow(`SELECT step, done, reason, next_at FROM escalation WHERE alert_id = ?`, id).Scan(&step, &done, &reason, &next); err != nil {
		t.Fatal(err)
	}
	return step, done, reason, next != nil
}

func TestInterruptedStartIsResumed(t *testing.T) {
	h := newHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	// The gateway shuts down just as the first step begins.
	h.e.dir = hookDir{testDir(), cancel}
	r := ingest.Reading{DeviceID: "smk-i", Class: ingest.ClassSmoke, Zone: "g1", Time: h.clk.Now(), Fields: map[string]any{"event": "alarm"}}
	if err := h.e.Evaluate(ctx, r); err == nil {
		t.Fatal("evaluate with a cancelled step: no error")
	}
	a, ok := h.active(t, "smk-i", TypeSmokeAlarm)
	if !ok || len(h.caller.names()) != 0 {
		t.Fatalf("alert %v, calls %v: want the alert stored and nobody called yet", ok, h.caller.names())
	}
	if step, done, _, due := h.escalation(t, a.ID); step != -1 || done || !due {
		t.Fatalf("escalation step %d done %v due %v: want a due, unstarted timer", step, done, due)
	}
	// After a restart the next step places the first calls.
	h.e.dir = testDir()
	if err := h.e.RunDue(context.Background(), h.clk.Advance(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := h.caller.names(); len(got) != 1 || got[0] != "Grid Wang" {
		t.Fatalf("calls after resume = %v, want the grid", got)
	}
	// and the chain goes on from there.
	stepMinutes(t, h.e, h.clk, 5)
	if got := h.caller.names(); len(got) != 2 || got[1] != "Ranger Li" {
		t.Fatalf("calls = %v, want grid then village", got)
	}
}

func TestAckDuringAStepCallsNobody(t *testing.T) {
	for _, tc := range []struct {
		name  string
		zone  string
		steps int    // minutes stepped before the racing ack
		calls int    // calls placed before it
		want  string // escalation reason afterwards
	}{
		{"at raise", "g1", 0, 0, "acked"},
		{"mid chain", "g1", 4, 1, "acked"},
		{"last step", "c1", 4, 1, "acked"}, // the county is the only zone: the next step would exhaust the chain
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			ctx := context.Background()
			var id int64
			armed := tc.steps == 0
			dir := hookDir{fakeDir: testDir()}
			dir.hook = func() {
				if !armed {
					return
				}
				armed = false
				if id == 0 {
					a, ok := h.active(t, "smk-a", TypeSmokeAlarm)
					if !ok {
						t.Fatal("no alert at the first step")
					}
					id = a.ID
				}
				if _, err := h.e.Ack(ctx, id, "duty", "on my way"); err != nil {
					t.Errorf("ack: %v", err)
				}
			}
			h.e.dir = dir
			h.eval(t, ingest.Reading{DeviceID: "smk-a", Class: ingest.ClassSmoke, Zone: tc.zone, Fields: map[string]any{"event": "alarm"}})
			a, _ := h.active(t, "smk-a", TypeSmokeAlarm)
			id = a.ID
			stepMinutes(t, h.e, h.clk, tc.steps)
			armed = true
			stepMinutes(t, h.e, h.clk, 30)
			if got := h.caller.names(); len(got) != tc.calls {
				t.Errorf("calls = %v, want %d (none after the ack)", got, tc.calls)
			}
			if _, done, reason, _ := h.escalation(t, a.ID); !done || reason != tc.want {
				t.Errorf("escalation done %v reason %q, want %q", done, reason, tc.want)
			}
			if n := h.countEvents(t, "alert.unanswered"); n != 0 {
				t.Errorf("alert.unanswered events = %d for an acknowledged alert", n)
			}
		})
	}
}

func TestSeverityRiseOfAnAckedAlertIsNotCalled(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	a, err := h.e.Raise(ctx, Raise{Source: "op", Type: "report", Severity: Minor, Zone: "g1", Message: "smell of smoke"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.e.Ack(ctx, a.ID, "duty", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.e.Raise(ctx, Raise{Source: "op", Type: "report", Severity: Critical, Zone: "g1", Message: "flames"}); err != nil {
		t.Fatal(err)
	}
	stepMinutes(t, h.e, h.clk, 30)
	if got := h.caller.names(); len(got) != 0 {
		t.Errorf("calls = %v, want none: the alert is acknowledged", got)
	}
	if n := h.countEvents(t, "alert.updated"); n != 1 {
		t.Errorf("alert.updated events = %d, want 1 (the rise)", n)
	}
	// Unacknowledged, the same rise is called.
	if _, err := h.e.Raise(ctx, Raise{Source: "op2", Type: "report", Severity: Minor, Zone: "g1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.e.Raise(ctx, Raise{Source: "op2", Type: "report", Severity: Critical, Zone: "g1"}); err != nil {
		t.Fatal(err)
	}
	if got := h.caller.names(); len(got) != 1 || got[0] != "Grid Wang" {
		t.Errorf("calls for the unacknowledged rise = %v, want the grid", got)
	}
}

func TestAckAnswersEveryCallOfTheZone(t *testing.T) {
	h := newHarness(t, nil)
	dir := testDir()
	dir["g1"][0].Duty = append(dir["g1"][0].Duty, Contact{Name: "Grid Zhao", Phone: "+86-401"})
	h.e.dir = dir
	ctx := context.Background()
	h.eval(t, ingest.Reading{DeviceID: "smk-z", Class: ingest.ClassSmoke, Zone: "g1", Fields: map[string]any{"event": "alarm"}})
	a, _ := h.active(t, "smk-z", TypeSmokeAlarm)
	stepMinutes(t, h.e, h.clk, 2) // the grid's deadline is 5 min: still the grid's turn
	if got := h.caller.names(); strings.Join(got, ",") != "Grid Wang,Grid Zhao" {
		t.Fatalf("calls = %v, want both grid contacts in list order", got)
	}
	if _, err := h.e.Ack(ctx, a.ID, "zhao", ""); err != nil {
		t.Fatal(err)
	}
	v, err := h.e.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range v.Calls {
		if c.Answered == nil || c.AnswerBy != "zhao" {
			t.Errorf("call to %s not answered by zhao: %+v", c.Name, c)
		}
	}
}

// A webhook receiver that accepts and never answers must not hold up the
// escalation timers: Run delivers webhooks in a loop of their own.
func TestHangingWebhookDoesNotDelayEscalation(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	h := newHarness(t, func(c *Config) {
		c.RunEvery = 10 * time.Millisecond
		c.Retry.Timeout = time.Minute
		c.Webhooks = []WebhookConfig{{Name: "hq", URL: srv.URL, Secret: "s", Events: []string{"alert.", "incident."}}}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.e.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	h.eval(t, ingest.Reading{DeviceID: "smk-h", Class: ingest.ClassSmoke, Zone: "g1", Fields: map[string]any{"event": "alarm"}})
	time.Sleep(50 * time.Millisecond) // the webhook loop is now stuck in its first POST
	h.clk.Advance(5 * time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for len(h.caller.names()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := h.caller.names(); len(got) != 2 || got[1] != "Ranger Li" {
		t.Fatalf("calls = %v, want the village called at the grid's deadline while the webhook hangs", got)
	}
}

func TestWebhookOutboxIsPruned(t *testing.T) {
	ok := &flakyReceiver{}
	up := httptest.NewServer(ok)
	defer up.Close()
	down := &flakyReceiver{fails: 1 << 20}
	bad := httptest.NewServer(down)
	defer bad.Close()
	h := newHarness(t, func(c *Config) {
		c.Webhooks = []WebhookConfig{
			{Name: "up", URL: up.URL, Secret: "s3cret", Events: []string{"alert.raised"}},
			{Name: "down", URL: bad.URL, Secret: "s3cret", Events: []string{"alert.raised"}},
		}
		c.Retry.MaxAttempts = 2
	})
	ctx := context.Background()
	h.eval(t, ingest.Reading{DeviceID: "smk-p", Class: ingest.ClassSmoke, Fields: map[string]any{"alarm": true}})
	count := func(where string) int {
		var n int
		if err := h.db.QueryRow(`SELECT COUNT(*) FROM webhook_outbox WHERE ` + where).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := 0; i < 3; i++ {
		if err := h.e.RunDue(ctx, h.clk.Advance(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if d, x := count("delivered_at IS NOT NULL"), count("dead = 1"); d != 1 || x != 1 {
		t.Fatalf("delivered %d dead %d, want 1 and 1", d, x)
	}
	if err := h.e.RunDue(ctx, h.clk.Advance(23*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := count("1"); n != 2 {
		t.Fatalf("rows after 23 h = %d, want both kept", n)
	}
	if err := h.e.RunDue(ctx, h.clk.Advance(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d, x := count("delivered_at IS NOT NULL"), count("dead = 1"); d != 0 || x != 1 {
		t.Fatalf("after 25 h: delivered %d dead %d, want 0 and 1 (dead rows are kept a week)", d, x)
	}
	if err := h.e.RunDue(ctx, h.clk.Advance(7*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := count("1"); n != 0 {
		t.Fatalf("rows after a week = %d, want 0", n)
	}
}

// An alert outside every zone (no zone, or one the layer does not know) is
// called to escalation.fallback_zone and up from there; without one, nobody.
func TestAlertWithoutZoneCallsTheFallback(t *testing.T) {
	for _, tc := range []struct {
		name, zone, fallback string
		want                 string
	}{
		{"no zone", "", "t1", "Town Duty,County Duty"},
		{"unknown zone", "gone-village", "t1", "Town Duty,County Duty"},
		{"known zone ignores the fallback", "v1", "t1", "Ranger Li,Town Duty,County Duty"},
		{"no fallback", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Escalation.FallbackZone = tc.fallback })
			h.eval(t, ingest.Reading{DeviceID: "smk-f", Class: ingest.ClassSmoke, Zone: tc.zone, Fields: map[string]any{"event": "alarm"}})
			stepMinutes(t, h.e, h.clk, 20)
			if got := strings.Join(h.caller.names(), ","); got != tc.want {
				t.Errorf("calls = %q, want %q", got, tc.want)
			}
		})
	}
}

// hookCaller records calls like recCaller and runs hook before each.
type hookCaller struct {
	recCaller
	hook func(n int)
}

func (c *hookCaller) Call(ctx context.Context, call Call) error {
	c.hook(len(c.names()))
	return c.recCaller.Call(ctx, call)
}

// Once a step is claimed every contact of its zone is called, even when a call
// cannot be recorded: the error is returned after the last call.
func TestEveryContactCalledWhenARecordFails(t *testing.T) {
	h := newHarness(t, nil)
	dir := testDir()
	dir["g1"][0].Duty = append(dir["g1"][0].Duty, Contact{Name: "Grid Zhao", Phone: "+86-401"})
	h.e.dir = dir
	hc := &hookCaller{hook: func(n int) {
		q := map[int]string{0: `ALTER TABLE alert_call RENAME TO alert_call_away`, 1: `ALTER TABLE alert_call_away RENAME TO alert_call`}[n]
		if q != "" {
			if _, err := h.db.Exec(q); err != nil {
				t.Error(err)
			}
		}
	}}
	h.e.caller = hc
	r := ingest.Reading{DeviceID: "smk-r", Class: ingest.ClassSmoke, Zone: "g1", Time: h.clk.Now(), Fields: map[string]any{"event": "alarm"}}
	err := h.e.Evaluate(context.Background(), r)
	if err == nil || !strings.Contains(err.Error(), "record call to Grid Wang") {
		t.Fatalf("evaluate: %v, want the failed record of the first call", err)
	}
	if got := strings.Join(hc.names(), ","); got != "Grid Wang,Grid Zhao" {
		t.Fatalf("calls = %q, want both grid contacts despite the failed record", got)
	}
	var n int
	if err := h.db.QueryRow(`SELECT COUNT(*) FROM alert_call WHERE name = 'Grid Zhao'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("Grid Zhao's call recorded %d times (%v), want 1", n, err)
	}
}

// The webhook prune runs every minute: it must search the index, not scan the table.
func TestWebhookPruneUsesTheIndex(t *testing.T) {
	h := newHarness(t, nil)
	got := queryPlan(t, h.db, pruneWebhooks, 1, 1)
	if strings.Contains(got, "SCAN webhook_outbox") || !strings.Contains(got, "webhook_outbox_due") {
		t.Fatalf("prune plan %q, want index searches only", got)
	}
}

// An ack that lands while a step is placing its calls answers every call of
// that step, recorded before or after it, and no call of an earlier step.
func TestAckDuringCallPlacementAnswersThatStep(t *testing.T) {
	for _, tc := range []struct {
		name     string
		minutes  int      // stepped before arming: 0 = the ack lands in the grid's calls
		answered []string // contacts whose calls show the ack
		open     []string // contacts whose calls stay unanswered
	}{
		{"first zone", 0, []string{"Grid Wang", "Grid Zhou"}, nil},
		{"parent zone", 4, []string{"Ranger Li", "Ranger Sun"}, []string{"Grid Wang", "Grid Zhou"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			d := testDir()
			grid, village := d["g1"][0], d["v1"][0]
			grid.Duty = append(grid.Duty, Contact{Name: "Grid Zhou", Phone: "+86-401"})
			village.Duty = append(village.Duty, Contact{Name: "Ranger Sun", Phone: "+86-301"})
			h.dir.set(fakeDir{"g1": {grid, village, d["t1"][0], d["c1"][0]}, "v1": {village, d["t1"][0], d["c1"][0]}, "t1": d["t1"], "c1": d["c1"]})
			ctx := context.Background()
			armed := tc.minutes == 0
			hc := &hookCaller{}
			hc.hook = func(int) {
				if !armed {
					return
				}
				armed = false
				a, ok := h.active(t, "smk-c", TypeSmokeAlarm)
				if !ok {
					t.Fatal("no active alert during the calls")
				}
				if _, err := h.e.Ack(ctx, a.ID, "duty", ""); err != nil {
					t.Errorf("ack: %v", err)
				}
			}
			h.e.caller = hc
			h.eval(t, ingest.Reading{DeviceID: "smk-c", Class: ingest.ClassSmoke, Zone: "g1", Fields: map[string]any{"event": "alarm"}})
			stepMinutes(t, h.e, h.clk, tc.minutes)
			armed = true
			stepMinutes(t, h.e, h.clk, 10)
			a, ok := h.active(t, "smk-c", TypeSmokeAlarm) // acked stays active
			if !ok {
				t.Fatal("alert gone")
			}
			v, err := h.e.Get(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, c := range v.Calls {
				got[c.Name] = c.AnswerBy
				if (c.Answered != nil) != (c.AnswerBy != "") {
					t.Errorf("call to %s: answered_at %v but answered_by %q", c.Name, c.Answered, c.AnswerBy)
				}
			}
			if len(got) != len(tc.answered)+len(tc.open) {
				t.Fatalf("calls %v, want %v then %v", got, tc.open, tc.answered)
			}
			for _, n := range tc.answered {
				if got[n] != "duty" {
					t.Errorf("call to %s answered by %q, want duty", n, got[n])
				}
			}
			for _, n := range tc.open {
				if got[n] != "" {
					t.Errorf("call to %s (an earlier zone) answered by %q, want unanswered", n, got[n])
				}
			}
		})
	}
}

// Acking an alert after it cleared answers none of its calls: nobody answered
// them while it was on. Acking an exhausted, still active alert answers the
// calls of the zone called last.
func TestAckAfterClearAnswersNoCall(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		clear    bool
		answered []string
	}{
		{"cleared, then acked", true, nil},
		{"exhausted, then acked", false, []string{"County Duty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.eval(t, ingest.Reading{DeviceID: "smk-x", Class: ingest.ClassSmoke, Zone: "g1", Fields: map[string]any{"event": "alarm"}})
			stepMinutes(t, h.e, h.clk, 25) // every zone called, chain exhausted
			a, ok := h.active(t, "smk-x", TypeSmokeAlarm)
			if !ok {
				t.Fatal("no alert")
			}
			if tc.clear {
				if _, err := h.e.Clear(ctx, a.ID, "op", "false alarm"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := h.e.Ack(ctx, a.ID, "duty", ""); err != nil {
				t.Fatal(err)
			}
			v, err := h.e.Get(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range v.Calls {
				if c.Answered != nil {
					got = append(got, c.Name)
				}
			}
			if !slices.Equal(got, tc.answered) {
				t.Errorf("answered calls %v, want %v", got, tc.answered)
			}
		})
	}
}
