package alerting

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/errs"
	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/store"
)

var t0 = time.Date(2025, 4, 13, 2, 0, 0, 0, time.UTC) // 10:00 in Asia/Shanghai

// fakeDir is a four-level zone tree: grid g1 → village v1 → town t1 → county c1.
type fakeDir map[string][]Zone

func testDir() fakeDir {
	county := Zone{ID: "c1", Name: "青山县", Level: "county", Duty: []Contact{{Name: "County Duty", Phone: "+86-100", Role: "duty officer"}}}
	town := Zone{ID: "t1", Name: "松林镇", Level: "town", Parent: "c1", Duty: []Contact{{Name: "Town Duty", Phone: "+86-200"}}}
	village := Zone{ID: "v1", Name: "东坡村", Level: "village", Parent: "t1", Duty: []Contact{{Name: "Ranger Li", Phone: "+86-300", Role: "ranger"}}}
	grid := Zone{ID: "g1", Name: "北坡网格", Level: "grid", Parent: "v1", Duty: []Contact{{Name: "Grid Wang", Phone: "+86-400", Role: "grid member"}}}
	return fakeDir{"g1": {grid, village, town, county}, "v1": {village, town, county}, "t1": {town, county}, "c1": {county}}
}

func (d fakeDir) ZonePath(id string) []Zone { return d[id] }

type recCaller struct {
	mu    sync.Mutex
	calls []Call
}

func (c *recCaller) Call(_ context.Context, call Call) error {
	c.mu.Lock()
	c.calls = append(c.calls, call)
	c.mu.Unlock()
	return nil
}

func (c *recCaller) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, x := range c.calls {
		out = append(out, x.Contact.Name)
	}
	return out
}

// recMQTT records acknowledged publishes; the first fails publishes fail, as a
// broker that is down would.
type recMQTT struct {
	mu       sync.Mutex
	fails    int
	attempts int
	topics   []string
	payloads [][]byte
}

var errBrokerDown = errors.New("broker down")

func (m *recMQTT) PublishAlert(_ context.Context, topic string, payload []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts++
	if m.attempts <= m.fails {
		return errBrokerDown
	}
	m.topics = append(m.topics, topic)
	m.payloads = append(m.payloads, payload)
	return nil
}

type recPoints struct {
	mu  sync.Mutex
	pts []map[string]any
}

func (p *recPoints) WritePoint(_ context.Context, m string, tags map[string]string, f map[string]any, _ time.Time) error {
	p.mu.Lock()
	p.pts = append(p.pts, f)
	p.mu.Unlock()
	return nil
}

type harness struct {
	e      *Engine
	db     *sql.DB
	clk    *clock.Fake
	caller *recCaller
	mqtt   *recMQTT
	points *recPoints
	path   string
	dir    *swapDir // the zones layer the engine sees; tests may swap it
}

// swapDir is a Directory whose zones a test replaces mid-run, as
// PUT /api/v1/geo/zones does.
type swapDir struct {
	mu sync.Mutex
	d  fakeDir
}

func (s *swapDir) ZonePath(id string) []Zone {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.d[id]
}

func (s *swapDir) set(d fakeDir) {
	s.mu.Lock()
	s.d = d
	s.mu.Unlock()
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	return openHarness(t, filepath.Join(t.TempDir(), "state.db"), clock.NewFake(t0), mod)
}

func openHarness(t *testing.T, path string, clk *clock.Fake, mod func(*Config)) *harness {
	t.Helper()
	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	h := &harness{db: db, clk: clk, caller: &recCaller{}, mqtt: &recMQTT{}, points: &recPoints{}, path: path, dir: &swapDir{d: testDir()}}
	h.e, err = New(context.Background(), Options{Config: cfg, DB: db, Clock: clk, Directory: h.dir, Caller: h.caller,
		MQTT: h.mqtt, Points: h.points, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) eval(t *testing.T, r ingest.Reading) {
	t.Helper()
	if r.Time.IsZero() {
		r.Time = h.clk.Now()
	}
	if err := h.e.Evaluate(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) active(t *testing.T, source, typ string) (Alert, bool) {
	t.Helper()
	a, ok, err := h.e.st.active(context.Background(), source, typ)
	if err != nil {
		t.Fatal(err)
	}
	return a, ok
}

func (h *harness) countAlerts(t *testing.T, where string, args ...any) int {
	t.Helper()
	var n int
	if err := h.db.QueryRow(`SELECT COUNT(*) FROM alert WHERE `+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (h *harness) countEvents(t *testing.T, typ string) int {
	t.Helper()
	var n int
	if err := h.db.QueryRow(`SELECT COUNT(*) FROM event_log WHERE type = ?`, typ).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConcurrentRaisesMakeOneAlert(t *testing.T) {
	h := newHarness(t, nil)
	const publishers, each = 8, 25
	var wg sync.WaitGroup
	start := make(chan struct{})
	errc := make(chan error, publishers*each)
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < each; i++ {
				r := ingest.Reading{DeviceID: "smk-1", Class: ingest.ClassSmoke, Kind: ingest.KindEvent, Time: t0,
					Zone: "v1", Lat: 30.1, Lon: 120.1, Fields: map[string]any{"event": "alarm"}}
				if err := h.e.Evaluate(context.Background(), r); err != nil {
					errc <- err
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if n := h.countAlerts(t, "source = 'smk-1'"); n != 1 {
		t.Fatalf("alerts = %d, want exactly 1", n)
	}
	a, ok := h.active(t, "smk-1", TypeSmokeAlarm)
	if !ok || a.Count != publishers*each || a.Severity != Critical || a.State != ActiveUnack {
		t.Fatalf("alert = %+v (ok %v), want count %d critical active_unack", a, ok, publishers*each)
	}
	if n := h.countEvents(t, "alert.raised"); n != 1 {
		t.Errorf("alert.raised events = %d, want 1", n)
	}
	if got := h.caller.names(); len(got) != 1 || got[0] != "Ranger Li" {
		t.Errorf("calls = %v, want exactly one call to the village ranger", got)
	}
	if _, err := h.e.mq.deliver(context.Background(), h.clk.Now()); err != nil {
		t.Fatal(err)
	}
	h.mqtt.mu.Lock()
	defer h.mqtt.mu.Unlock()
	if len(h.mqtt.topics) != 1 || h.mqtt.topics[0] != "fire/alerts/critical/v1" {
		t.Errorf("mqtt topics = %v", h.mqtt.topics)
	}
}

func smoke(fields map[string]any) ingest.Reading {
	return ingest.Reading{DeviceID: "smk-2", Class: ingest.ClassSmoke, Kind: ingest.KindEvent, Zone: "v1", Fields: fields}
}

func TestSmokeRules(t *testing.T) {
	type want struct {
		typ    string
		active bool
		sev    Severity
	}
	tests := []struct {
		name  string
		steps []map[string]any
		want  []want
	}{
		{"alarm event is critical", []map[string]any{{"event": "alarm"}}, []want{{TypeSmokeAlarm, true, Critical}}},
		{"alarm telemetry is critical", []map[string]any{{"alarm": true}}, []want{{TypeSmokeAlarm, true, Critical}}},
		{"alarm false does not raise", []map[string]any{{"alarm": false}}, []want{{TypeSmokeAlarm, false, ""}}},
		{"alarm_cleared clears", []map[string]any{{"event": "alarm"}, {"event": "alarm_cleared"}}, []want{{TypeSmokeAlarm, false, ""}}},
		{"heartbeat alarm=false keeps it", []map[string]any{{"event": "alarm"}, {"alarm": false}}, []want{{TypeSmokeAlarm, true, Critical}}},
		{"tamper is warning, restore clears", []map[string]any{{"tamper": true}, {"event": "fault"}, {"event": "restore"}},
			[]want{{TypeTamper, false, ""}, {TypeFault, false, ""}}},
		{"tamper event", []map[string]any{{"event": "tamper"}}, []want{{TypeTamper, true, Warning}}},
		{"fault event", []map[string]any{{"event": "fault"}}, []want{{TypeFault, true, Warning}}},
		{"battery at threshold", []map[string]any{{"battery_pct": 20.0}}, []want{{TypeLowBattery, true, Warning}}},
		{"battery above threshold", []map[string]any{{"battery_pct": 20.5}}, []want{{TypeLowBattery, false, ""}}},
		{"battery inside margin stays", []map[string]any{{"battery_pct": 19.0}, {"battery_pct": 25.0}}, []want{{TypeLowBattery, true, Warning}}},
		{"battery above margin clears", []map[string]any{{"battery_pct": 19.0}, {"battery_pct": 25.1}}, []want{{TypeLowBattery, false, ""}}},
		{"low_battery event", []map[string]any{{"event": "low_battery"}}, []want{{TypeLowBattery, true, Warning}}},
		{"test event does nothing", []map[string]any{{"event": "test"}}, []want{{TypeSmokeAlarm, false, ""}, {TypeFault, false, ""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			for _, f := range tc.steps {
				h.eval(t, smoke(f))
				h.clk.Advance(time.Second)
			}
			for _, w := range tc.want {
				a, ok := h.active(t, "smk-2", w.typ)
				if ok != w.active || (ok && a.Severity != w.sev) {
					t.Errorf("%s: active=%v severity=%s, want active=%v severity=%s", w.typ, ok, a.Severity, w.active, w.sev)
				}
			}
		})
	}
}

func elec(field string, vals ...float64) ingest.Reading {
	return ingest.Reading{DeviceID: "elec-1", Class: ingest.ClassElec, Kind: ingest.KindTelemetry, Zone: "v1",
		Fields: map[string]any{field: vals}}
}

func TestElecThresholdAndHysteresis(t *testing.T) {
	tests := []struct {
		name   string
		field  string
		typ    string
		series [][]float64
		active []bool // after each reading
		alerts int    // alerts ever created
	}{
		{"residual below", "residual_current_ma", TypeResidual, [][]float64{{120, 299.9, 50}}, []bool{false}, 0},
		{"residual at threshold on channel 2", "residual_current_ma", TypeResidual, [][]float64{{120, 300, 50}}, []bool{true}, 1},
		{"residual hovering does not flap", "residual_current_ma", TypeResidual,
			[][]float64{{310}, {295}, {301}, {271}, {300}, {270}, {269.9}, {305}},
			[]bool{true, true, true, true, true, true, false, true}, 2},
		{"cable temp with margin", "cable_temp_c", TypeCableTemp,
			[][]float64{{69.9, 20}, {70, 20}, {66, 20}, {65, 20}, {64.9, 20}},
			[]bool{false, true, true, true, false}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			for i, vals := range tc.series {
				h.eval(t, elec(tc.field, vals...))
				h.clk.Advance(time.Second)
				if _, ok := h.active(t, "elec-1", tc.typ); ok != tc.active[i] {
					t.Fatalf("after %v: active = %v, want %v", vals, ok, tc.active[i])
				}
			}
			if n := h.countAlerts(t, "source = 'elec-1' AND type = ?", tc.typ); n != tc.alerts {
				t.Errorf("alerts created = %d, want %d", n, tc.alerts)
			}
		})
	}
	t.Run("arc fault latches", func(t *testing.T) {
		h := newHarness(t, nil)
		h.eval(t, ingest.Reading{DeviceID: "elec-1", Class: ingest.ClassElec, Fields: map[string]any{"arc_fault": true}})
		h.eval(t, ingest.Reading{DeviceID: "elec-1", Class: ingest.ClassElec, Fields: map[string]any{"arc_fault": false}})
		if a, ok := h.active(t, "elec-1", TypeArcFault); !ok || a.Severity != Critical {
			t.Fatalf("arc fault: %+v %v", a, ok)
		}
	})
}

func TestHealthOneAlertPerOutage(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	ev := func(from, to string) {
		if err := h.e.EvaluateHealth(ctx, HealthEvent{DeviceID: "st-1", Class: "station", Zone: "v1", From: from, To: to, At: h.clk.Now()}); err != nil {
			t.Fatal(err)
		}
		h.clk.Advance(time.Minute)
	}
	ev("online", "late")
	if h.countAlerts(t, "type = ?", TypeOffline) != 0 {
		t.Fatal("late must not alert")
	}
	ev("late", "offline")
	ev("offline", "offline") // duplicate notification
	if n := h.countAlerts(t, "type = ?", TypeOffline); n != 1 {
		t.Fatalf("offline alerts = %d, want 1", n)
	}
	ev("offline", "online")
	if _, ok := h.active(t, "st-1", TypeOffline); ok {
		t.Fatal("alert still active after the device came back")
	}
	ev("online", "offline") // second outage: a new alert
	if n := h.countAlerts(t, "type = ?", TypeOffline); n != 2 {
		t.Fatalf("alerts after second outage = %d, want 2", n)
	}
	if a, _ := h.active(t, "st-1", TypeOffline); a.Severity != Minor {
		t.Errorf("severity = %s, want minor (below escalation)", a.Severity)
	}
	if len(h.caller.names()) != 0 {
		t.Errorf("offline alerts were called: %v", h.caller.names())
	}
}

func TestEscalationThroughZonesAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	clk := clock.NewFake(t0)
	h := openHarness(t, path, clk, nil)
	ctx := context.Background()
	h.eval(t, ingest.Reading{DeviceID: "smk-9", Class: ingest.ClassSmoke, Zone: "v1", Fields: map[string]any{"event": "alarm"}})
	a, _ := h.active(t, "smk-9", TypeSmokeAlarm)
	if got := h.caller.names(); len(got) != 1 || got[0] != "Ranger Li" {
		t.Fatalf("first call = %v, want Ranger Li (village)", got)
	}
	// Just before the 5 min critical deadline nothing happens.
	if err := h.e.RunDue(ctx, clk.Advance(5*time.Minute-time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := len(h.caller.names()); n != 1 {
		t.Fatalf("calls before deadline = %d", n)
	}
	if err := h.e.RunDue(ctx, clk.Advance(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := h.caller.names(); len(got) != 2 || got[1] != "Town Duty" {
		t.Fatalf("calls after deadline = %v, want town next", got)
	}

	// Restart: a new engine on the same database file.
	h.db.Close()
	h2 := openHarness(t, path, clk, nil)
	if err := h2.e.RunDue(ctx, clk.Advance(4*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := len(h2.caller.names()); n != 0 {
		t.Fatalf("restarted engine called early: %v", h2.caller.names())
	}
	if err := h2.e.RunDue(ctx, clk.Advance(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := h2.caller.names(); len(got) != 1 || got[0] != "County Duty" {
		t.Fatalf("after restart calls = %v, want county", got)
	}
	// Past the county: the chain is exhausted, nobody else is called.
	if err := h2.e.RunDue(ctx, clk.Advance(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	v, err := h2.e.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Calls) != 3 || v.Calls[0].Level != "village" || v.Calls[1].Level != "town" || v.Calls[2].Level != "county" {
		t.Fatalf("chain = %+v", v.Calls)
	}
	if v.Escalation == nil || !v.Escalation.Done || v.Escalation.Reason != "exhausted" {
		t.Fatalf("escalation = %+v", v.Escalation)
	}
	if h2.countEvents(t, "alert.unanswered") != 1 {
		t.Error("no alert.unanswered event")
	}
}

func TestAckStopsEscalation(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	h.eval(t, elec("residual_current_ma", 450)) // major: 30 min deadline
	a, _ := h.active(t, "elec-1", TypeResidual)
	if err := h.e.RunDue(ctx, h.clk.Advance(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := h.caller.names(); len(got) != 2 {
		t.Fatalf("calls = %v, want village then town", got)
	}
	if _, err := h.e.Ack(ctx, a.ID, "town-duty", "patrol sent"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.e.Ack(ctx, a.ID, "someone", ""); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("second ack: %v, want conflict", err)
	}
	if err := h.e.RunDue(ctx, h.clk.Advance(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := h.caller.names(); len(got) != 2 {
		t.Fatalf("calls after ack = %v, want no more", got)
	}
	v, _ := h.e.Get(ctx, a.ID)
	if v.State != ActiveAck || v.AckedBy != "town-duty" || v.Escalation.Reason != "acked" {
		t.Fatalf("view = %+v / %+v", v.Alert, v.Escalation)
	}
	if last := v.Calls[len(v.Calls)-1]; last.Answered == nil || last.AnswerBy != "town-duty" {
		t.Errorf("last call not answered: %+v", last)
	}
	actions := ""
	for _, x := range v.Audit {
		actions += x.Action + ","
	}
	if actions != "raised,called,escalated,acked," {
		t.Errorf("audit = %s", actions)
	}
	// Clear after ack: cleared_ack; a new occurrence then opens a new alert.
	if _, err := h.e.Clear(ctx, a.ID, "town-duty", "repaired"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.e.Clear(ctx, 9999, "x", ""); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("clear missing: %v", err)
	}
	h.eval(t, elec("residual_current_ma", 450))
	if n := h.countAlerts(t, "source = 'elec-1'"); n != 2 {
		t.Errorf("alerts = %d, want 2 after clear + repeat", n)
	}
}

func TestNoDutyContactSkipsToParent(t *testing.T) {
	h := newHarness(t, nil)
	dir := testDir()
	dir["v1"][0].Duty = nil
	h.e.dir = dir
	h.eval(t, ingest.Reading{DeviceID: "smk-3", Class: ingest.ClassSmoke, Zone: "v1", Fields: map[string]any{"alarm": true}})
	if got := h.caller.names(); len(got) != 1 || got[0] != "Town Duty" {
		t.Fatalf("calls = %v, want town (village has nobody on duty)", got)
	}
}

func TestObserveNeverBlocks(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.QueueSize = 4 })
	done := make(chan struct{})
	go func() {
		for i := 0; i < 100; i++ {
			h.e.Observe(ingest.Reading{DeviceID: fmt.Sprint(i), Class: ingest.ClassSmoke})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Observe blocked with no worker running")
	}
	if got := testCounter(t, h.e.dropped.WithLabelValues("reading")); got != 96 {
		t.Errorf("dropped = %v, want 96", got)
	}
	// Run drains the queue.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- h.e.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(h.e.queue) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-errc
	if len(h.e.queue) != 0 {
		t.Errorf("queue not drained: %d", len(h.e.queue))
	}
}

func TestPublisherBridgesHealthEvents(t *testing.T) {
	h := newHarness(t, nil)
	// The registry's event value, as a foreign struct with the same JSON shape.
	type regEvent struct {
		DeviceID string    `json:"device_id"`
		Class    string    `json:"class"`
		Zone     string    `json:"zone"`
		From     string    `json:"from"`
		To       string    `json:"to"`
		At       time.Time `json:"at"`
	}
	h.e.Publisher().Publish("device.offline", regEvent{DeviceID: "cam-7", Class: "camera", Zone: "v1", From: "late", To: "offline", At: t0})
	if h.countEvents(t, "device.offline") != 1 {
		t.Fatal("event not on the hub")
	}
	if err := h.e.EvaluateHealth(context.Background(), <-h.e.healthQ); err != nil {
		t.Fatal(err)
	}
	if a, ok := h.active(t, "cam-7", TypeOffline); !ok || a.Zone != "v1" {
		t.Fatalf("offline alert = %+v %v", a, ok)
	}
}

// Readings still queued when Run is stopped are evaluated before it returns:
// every stored alarm is also judged.
func TestRunEvaluatesTheQueueWhenStopped(t *testing.T) {
	h := newHarness(t, nil)
	const n = 40
	for i := range n {
		h.e.Observe(ingest.Reading{DeviceID: fmt.Sprintf("smk-q%02d", i), Class: ingest.ClassSmoke, Zone: "g1",
			Time: h.clk.Now(), Fields: map[string]any{"event": "alarm"}})
	}
	h.e.DeviceHealth(HealthEvent{DeviceID: "smk-gone", Class: string(ingest.ClassSmoke), Zone: "g1", From: "online", To: "offline", At: h.clk.Now()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // stopped before it ever ran: only the drain can evaluate
	if err := h.e.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	var got int
	if err := h.db.QueryRow(`SELECT COUNT(*) FROM alert WHERE type = ?`, TypeSmokeAlarm).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Fatalf("%d smoke alarms raised, want %d", got, n)
	}
	if _, ok := h.active(t, "smk-gone", TypeOffline); !ok {
		t.Error("the queued health event raised no offline alert")
	}
	if q := len(h.e.queue) + len(h.e.healthQ); q != 0 {
		t.Fatalf("%d inputs left queued", q)
	}
}
