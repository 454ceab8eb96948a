package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/errs"
	"github.com/lookoutfire/lookout/events"
	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/store"
)

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

// env is a registry on a real SQLite file with a fake clock and recorded events.
type env struct {
	g    *Registry
	clk  *clock.Fake
	path string
	reg  *prometheus.Registry

	mu     sync.Mutex
	health []HealthEvent
	pubs   []string
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	e := &env{clk: clock.NewFake(t0), path: filepath.Join(t.TempDir(), "state.db")}
	e.open(t, cfg)
	return e
}

func (e *env) open(t testing.TB, cfg Config) {
	t.Helper()
	db, err := store.Open(e.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.reg = prometheus.NewRegistry()
	pub := events.Func(func(typ string, data any) {
		e.mu.Lock()
		e.pubs = append(e.pubs, typ+":"+data.(HealthEvent).DeviceID)
		e.mu.Unlock()
	})
	g, err := Open(context.Background(), db, cfg, e.clk, pub, e.reg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	g.SetHealthSink(func(ev HealthEvent) {
		e.mu.Lock()
		e.health = append(e.health, ev)
		e.mu.Unlock()
	})
	e.g = g
}

// take returns and clears the recorded health events as "id:from>to".
func (e *env) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.health {
		out = append(out, fmt.Sprintf("%s:%s>%s", ev.DeviceID, ev.From, ev.To))
	}
	e.health, e.pubs = nil, nil
	return out
}

func mustCreate(t testing.TB, g *Registry, id string, class ingest.Class, iv time.Duration) {
	t.Helper()
	if err := g.Create(context.Background(), Device{ID: id, Class: class, Name: "dev " + id, Lat: 31.5, Lon: 107.0,
		Zone: "zone-" + string(class), Interval: iv}); err != nil {
		t.Fatal(err)
	}
}

func reading(id string, class ingest.Class, at time.Time) *ingest.Reading {
	return &ingest.Reading{DeviceID: id, Class: class, Kind: ingest.KindHeartbeat, Time: at, Received: at,
		Fields: map[string]any{"uptime_s": 10.0, "fw": "fw-1.2", "battery_pct": 87.0, "rssi_dbm": -71.0}}
}

func TestStateTransitions(t *testing.T) {
	const iv = time.Minute // tolerance 6 s; offline after 3 intervals
	type step struct {
		at     time.Duration // since t0
		admit  bool          // a message arrives at this time (before the check)
		state  string
		events []string
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"never stays never without messages", []step{
			{at: 0, state: StateNever},
			{at: time.Hour, state: StateNever},
		}},
		{"online, late, offline, online: one event each", []step{
			{at: 0, admit: true, state: StateOnline, events: []string{"d:never>online"}},
			{at: 30 * time.Second, state: StateOnline},
			{at: 66 * time.Second, state: StateOnline}, // exactly interval + tolerance
			{at: 67 * time.Second, state: StateLate, events: []string{"d:online>late"}},
			{at: 90 * time.Second, state: StateLate},
			{at: 186 * time.Second, state: StateLate},
			{at: 187 * time.Second, state: StateOffline, events: []string{"d:late>offline"}},
			{at: 10 * time.Minute, state: StateOffline},
			{at: 11 * time.Minute, state: StateOffline},
			{at: 12 * time.Minute, admit: true, state: StateOnline, events: []string{"d:offline>online"}},
			{at: 12*time.Minute + 30*time.Second, state: StateOnline},
		}},
		{"heartbeats on time keep it online", []step{
			{at: 0, admit: true, state: StateOnline, events: []string{"d:never>online"}},
			{at: 60 * time.Second, admit: true, state: StateOnline},
			{at: 121 * time.Second, admit: true, state: StateOnline},
			{at: 183 * time.Second, admit: true, state: StateOnline},
		}},
		{"late then recovered", []step{
			{at: 0, admit: true, state: StateOnline, events: []string{"d:never>online"}},
			{at: 100 * time.Second, state: StateLate, events: []string{"d:online>late"}},
			{at: 110 * time.Second, admit: true, state: StateOnline, events: []string{"d:late>online"}},
		}},
		{"straight to offline when checks are sparse", []step{
			{at: 0, admit: true, state: StateOnline, events: []string{"d:never>online"}},
			{at: time.Hour, state: StateOffline, events: []string{"d:online>offline"}},
		}},
	}
	// The steps are checks at irregular times up to an hour apart; check_every
	// says so, so that no gap between them reads as a wall-clock jump.
	cfg := DefaultConfig()
	cfg.CheckEvery = time.Hour
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, cfg)
			mustCreate(t, e.g, "d", ingest.ClassSmoke, iv)
			for i, s := range tc.steps {
				e.clk.Set(t0.Add(s.at))
				if s.admit {
					if err := e.g.Admit(reading("d", ingest.ClassSmoke, e.clk.Now())); err != nil {
						t.Fatal(err)
					}
				}
				if err := e.g.RunDue(context.Background(), e.clk.Now()); err != nil {
					t.Fatal(err)
				}
				d, _ := e.g.Get("d")
				if d.State != s.state {
					t.Fatalf("step %d (+%v): state %s, want %s", i, s.at, d.State, s.state)
				}
				if got := e.take(); strings.Join(got, ",") != strings.Join(s.events, ",") {
					t.Fatalf("step %d (+%v): events %v, want %v", i, s.at, got, s.events)
				}
			}
		})
	}
}

// metric reads one sample (gauge or counter) from the env's registry.
func (e *env) metric(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			if m.Gauge != nil {
				return m.Gauge.GetValue()
			}
			return m.Counter.GetValue()
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

func TestEventsPublishedOncePerTransition(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	mustCreate(t, e.g, "a", ingest.ClassElec, time.Minute)
	mustCreate(t, e.g, "b", ingest.ClassElec, time.Minute)
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if err := e.g.Admit(reading(id, ingest.ClassElec, t0)); err != nil {
			t.Fatal(err)
		}
	}
	// many checks while offline must not repeat the offline event
	for i := 0; i <= 60; i++ {
		if err := e.g.RunDue(ctx, t0.Add(time.Duration(i)*10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	e.mu.Lock()
	pubs := strings.Join(e.pubs, ",")
	e.mu.Unlock()
	for _, want := range []string{"device.online:a", "device.late:a", "device.offline:a", "device.offline:b"} {
		if strings.Count(pubs+",", want+",") != 1 {
			t.Errorf("published %q %d times, want once: %s", want, strings.Count(pubs+",", want+","), pubs)
		}
	}
	if got := e.metric(t, "lookout_devices", map[string]string{"class": "elec", "state": "offline"}); got != 2 {
		t.Errorf("lookout_devices{elec,offline} = %v, want 2", got)
	}
	if got := e.metric(t, "lookout_device_messages_total", map[string]string{"class": "elec"}); got != 2 {
		t.Errorf("lookout_device_messages_total{elec} = %v, want 2", got)
	}
}

func TestUnknownDevicePolicies(t *testing.T) {
	ctx := context.Background()
	t.Run("reject", func(t *testing.T) {
		e := newEnv(t, DefaultConfig())
		err := e.g.Admit(reading("ghost", ingest.ClassSmoke, t0))
		if ingest.ReasonOf(err) != ingest.ReasonUnknownDevice {
			t.Fatalf("err %v, want reason unknown_device", err)
		}
		if _, ok := e.g.Get("ghost"); ok {
			t.Fatal("rejected device was registered")
		}
		if got := e.metric(t, "lookout_device_unknown_total", map[string]string{"action": "rejected"}); got != 1 {
			t.Errorf("unknown{rejected} = %v", got)
		}
	})
	t.Run("register persists asynchronously", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.UnknownDevices = "register"
		e := newEnv(t, cfg)
		r := reading("newbie", ingest.ClassStation, t0)
		if err := e.g.Admit(r); err != nil {
			t.Fatal(err)
		}
		d, ok := e.g.Get("newbie")
		if !ok || d.Class != ingest.ClassStation || !d.AutoRegistered || d.State != StateOnline || d.Interval != cfg.DefaultInterval {
			t.Fatalf("auto-registered device = %+v, %v", d, ok)
		}
		var n int
		if err := e.g.db.QueryRow(`SELECT COUNT(*) FROM registry_devices WHERE id='newbie'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("written before the flush: n=%d err=%v", n, err)
		}
		if err := e.g.RunDue(ctx, t0); err != nil {
			t.Fatal(err)
		}
		e.open(t, cfg) // reopen from SQLite
		d, ok = e.g.Get("newbie")
		if !ok || !d.AutoRegistered || d.State != StateOnline || !d.LastSeen.Equal(t0) || d.Firmware != "fw-1.2" {
			t.Fatalf("after reopen = %+v, %v", d, ok)
		}
	})
	t.Run("register refuses past max_devices", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.UnknownDevices, cfg.MaxDevices = "register", 2
		e := newEnv(t, cfg)
		for i, want := range []ingest.Reason{"", "", ingest.ReasonUnknownDevice} {
			err := e.g.Admit(reading(fmt.Sprintf("n%d", i), ingest.ClassSmoke, t0))
			if ingest.ReasonOf(err) != want {
				t.Fatalf("device %d: err %v, want %q", i, err, want)
			}
		}
		if e.g.Len() != 2 {
			t.Fatalf("len %d", e.g.Len())
		}
	})
}

func TestClassMismatch(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	mustCreate(t, e.g, "s1", ingest.ClassSmoke, time.Minute)
	err := e.g.Admit(reading("s1", ingest.ClassCamera, t0))
	if ingest.ReasonOf(err) != ingest.ReasonClassMismatch {
		t.Fatalf("err %v, want class_mismatch", err)
	}
	if d, _ := e.g.Get("s1"); d.State != StateNever || !d.LastSeen.IsZero() {
		t.Fatalf("mismatched message updated health: %+v", d)
	}
}

func TestAdmitFillsReadingAndHealth(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	if err := e.g.Create(context.Background(), Device{ID: "c1", Class: ingest.ClassCamera, Name: "tower",
		Lat: 31.51, Lon: 107.02, Zone: "grid-1", Forest: "F-9", Interval: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	r := reading("c1", ingest.ClassCamera, t0.Add(time.Second))
	if err := e.g.Admit(r); err != nil {
		t.Fatal(err)
	}
	if r.Lat != 31.51 || r.Lon != 107.02 || r.Zone != "grid-1" || r.Forest != "F-9" {
		t.Fatalf("reading not tagged: %+v", r)
	}
	// an older message (out of order) must not move last seen back
	if err := e.g.Admit(reading("c1", ingest.ClassCamera, t0)); err != nil {
		t.Fatal(err)
	}
	d, _ := e.g.Get("c1")
	if !d.LastSeen.Equal(t0.Add(time.Second)) || d.Battery == nil || *d.Battery != 87 || d.RSSI == nil || *d.RSSI != -71 || d.Firmware != "fw-1.2" {
		t.Fatalf("health = %+v", d)
	}
}

func TestSetLocator(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	mustCreate(t, e.g, "x", ingest.ClassStation, time.Minute) // zone "zone-station"
	e.g.SetLocator(func(lat, lon float64) (string, string) {
		if lat > 31 {
			return "grid-7", "F-3"
		}
		return "", ""
	})
	if d, _ := e.g.Get("x"); d.Zone != "grid-7" || d.Forest != "F-3" {
		t.Fatalf("not re-located: %+v", d)
	}
	// a device outside every zone keeps its configured zone
	if err := e.g.Create(context.Background(), Device{ID: "y", Class: ingest.ClassStation, Name: "south",
		Lat: 20, Lon: 107, Zone: "manual"}); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.g.Get("y"); d.Zone != "manual" || d.Forest != "" {
		t.Fatalf("configured zone lost: %+v", d)
	}
	// zone changes are persisted by the next flush
	if err := e.g.RunDue(context.Background(), t0); err != nil {
		t.Fatal(err)
	}
	e.open(t, DefaultConfig())
	if d, _ := e.g.Get("x"); d.Zone != "grid-7" {
		t.Fatalf("after reopen: %+v", d)
	}
}

// A zone derived from one zones layer must not outlive it: when a new layer
// finds no zone at the device's position, the configured zone applies again
// (or none), never the old layer's zone. The configured zone survives a
// restart, and readings, health events and the API follow the zone in effect.
func TestLocatorFallsBackToConfiguredZone(t *testing.T) {
	layer := func(zone string) Locator { return func(lat, lon float64) (string, string) { return zone, "" } }
	cases := []struct {
		name       string
		configured string
		layers     []string // zone each successive layer finds at the device
		want       string   // zone in effect after the last layer
	}{
		{"configured, then outside the new layer", "manual", []string{"old-grid", ""}, "manual"},
		{"unconfigured, then outside the new layer", "", []string{"old-grid", ""}, ""},
		{"configured, moved to another grid", "manual", []string{"old-grid", "new-grid"}, "new-grid"},
		{"unconfigured, inside the new layer", "", []string{"old-grid", "new-grid"}, "new-grid"},
		{"configured, back inside after a gap", "manual", []string{"old-grid", "", "old-grid"}, "old-grid"},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, DefaultConfig())
			if err := e.g.Create(ctx, Device{ID: "s1", Class: ingest.ClassSmoke, Name: "ridge", Lat: 31.5, Lon: 107,
				Zone: tc.configured, Interval: time.Minute}); err != nil {
				t.Fatal(err)
			}
			for _, z := range tc.layers {
				e.g.SetLocator(layer(z)) // as after each PUT /api/v1/geo/zones
			}
			check := func(step string) {
				t.Helper()
				d, _ := e.g.Get("s1")
				if d.Zone != tc.want || d.ConfiguredZone != tc.configured {
					t.Fatalf("%s: zone %q configured %q, want %q and %q", step, d.Zone, d.ConfiguredZone, tc.want, tc.configured)
				}
			}
			check("after the layers")
			r := reading("s1", ingest.ClassSmoke, t0)
			if err := e.g.Admit(r); err != nil {
				t.Fatal(err)
			}
			if r.Zone != tc.want {
				t.Fatalf("reading tagged with zone %q, want %q", r.Zone, tc.want)
			}
			if err := e.g.RunDue(ctx, t0.Add(time.Hour)); err != nil { // never>online, online>offline
				t.Fatal(err)
			}
			e.mu.Lock()
			for _, ev := range e.health {
				if ev.Zone != tc.want {
					t.Errorf("health event %s>%s zone %q, want %q", ev.From, ev.To, ev.Zone, tc.want)
				}
			}
			e.mu.Unlock()
			// A device read back and written again keeps its configured zone
			// (or its lack of one): the derived zone is not pinned.
			d, _ := e.g.Get("s1")
			d.Name = "renamed"
			if err := e.g.Update(ctx, d); err != nil {
				t.Fatal(err)
			}
			check("after Get and Update")
			e.g.SetLocator(layer(""))
			if d, _ := e.g.Get("s1"); d.Zone != tc.configured {
				t.Fatalf("outside every zone after Get and Update: zone %q, want the configured %q", d.Zone, tc.configured)
			}
			e.g.SetLocator(layer(tc.layers[len(tc.layers)-1]))
			check("after Get, Update and two more layers")
			// Restart: both are persisted; the last layer re-derives the same.
			e.open(t, DefaultConfig())
			check("after reopen")
			e.g.SetLocator(layer(tc.layers[len(tc.layers)-1]))
			check("after reopen and relocate")
		})
	}
}

// The API shows the zone in effect as "zone" and the configured one as
// "configured_zone"; a client writes "zone", which sets the configured one.
func TestHTTPZoneFields(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	e.g.SetLocator(func(lat, lon float64) (string, string) {
		if lon > 107 {
			return "grid-east", ""
		}
		return "", ""
	})
	srv := server(t, e.g)
	steps := []struct {
		method, path, body string
		zone, configured   string
	}{
		{"POST", "/api/v1/devices", `{"id":"smk-1","class":"smoke","name":"n","lat":31.5,"lon":107.5,"zone":"vil-1"}`, "grid-east", "vil-1"},
		{"PUT", "/api/v1/devices/smk-1", `{"class":"smoke","name":"n","lat":31.5,"lon":106.5,"zone":"vil-1"}`, "vil-1", "vil-1"},
		{"PUT", "/api/v1/devices/smk-1", `{"class":"smoke","name":"n","lat":31.5,"lon":106.5}`, "", ""},
		{"GET", "/api/v1/devices/smk-1", "", "", ""},
	}
	for i, s := range steps {
		code, body := do(t, srv, s.method, s.path, s.body)
		var d struct {
			Zone       *string `json:"zone"`
			Configured *string `json:"configured_zone"`
		}
		if code/100 != 2 || json.Unmarshal(body, &d) != nil || d.Zone == nil || d.Configured == nil ||
			*d.Zone != s.zone || *d.Configured != s.configured {
			t.Fatalf("step %d %s %s: %d %s, want zone %q configured_zone %q", i, s.method, s.path, code, body, s.zone, s.configured)
		}
	}
}

// A database from before configured_zone existed keeps its stored zone as
// the configured one (the best it knows).
func TestMigrateConfiguredZone(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := store.Migrate(ctx, db, "registry", schema[:2]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO registry_devices (id, class, name, lat, lon, zone, interval_ms, updated)
		VALUES ('old-1', 'smoke', 'old', 20, 107, 'manual', 60000, 0)`); err != nil {
		t.Fatal(err)
	}
	g, err := Open(ctx, db, DefaultConfig(), clock.NewFake(t0), nil, nil, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	g.SetLocator(func(lat, lon float64) (string, string) { return "", "" })
	if d, _ := g.Get("old-1"); d.Zone != "manual" || d.ConfiguredZone != "manual" {
		t.Fatalf("migrated device: zone %q configured %q", d.Zone, d.ConfiguredZone)
	}
}

func TestPersistenceAndRestartGrace(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.CheckEvery = time.Minute // the checks below come 2 min apart: not a clock jump
	e := newEnv(t, cfg)
	mustCreate(t, e.g, "on", ingest.ClassSmoke, time.Minute)
	mustCreate(t, e.g, "off", ingest.ClassSmoke, time.Minute)
	mustCreate(t, e.g, "nv", ingest.ClassSmoke, time.Minute)
	if err := e.g.Admit(reading("off", ingest.ClassSmoke, t0)); err != nil {
		t.Fatal(err)
	}
	if err := e.g.RunDue(ctx, t0.Add(time.Hour)); err != nil { // "off" goes offline
		t.Fatal(err)
	}
	if err := e.g.Admit(reading("on", ingest.ClassSmoke, t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := e.g.RunDue(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.take()

	// The gateway is down for two hours, then restarts.
	e.clk.Set(t0.Add(3 * time.Hour))
	e.open(t, cfg)
	want := map[string]string{"on": StateOnline, "off": StateOffline, "nv": StateNever}
	for id, st := range want {
		d, ok := e.g.Get(id)
		if !ok || d.State != st {
			t.Fatalf("%s after reopen: %+v, want %s", id, d, st)
		}
	}
	if d, _ := e.g.Get("on"); !d.LastSeen.Equal(t0.Add(time.Hour)) || d.Battery == nil || *d.Battery != 87 {
		t.Fatalf("health not restored: %+v", d)
	}
	// First check after restart: no offline storm, no invented recovery.
	if err := e.g.RunDue(ctx, e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	if got := e.take(); len(got) != 0 {
		t.Fatalf("events at restart: %v", got)
	}
	// Silent for its allowance counted from the restart: late, then offline.
	if err := e.g.RunDue(ctx, e.clk.Now().Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := e.g.RunDue(ctx, e.clk.Now().Add(4*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(e.take(), ","); got != "on:online>late,on:late>offline" {
		t.Fatalf("events after restart grace: %s", got)
	}
}

// The registry's clock is the wall clock, which NTP or an operator can step.
// A backward step must not leave a device online until the clock catches up
// with a last seen in the future; a forward step must not mark every device
// offline at once (it is handled like a restart: silence counts from the step).
// Checks run every check_every (5 s), as Run does, around one step.
func TestClockSteps(t *testing.T) {
	const iv = time.Minute // late after 66 s of silence, offline after 186 s
	type check struct {
		at     time.Duration // check time, since the step
		events []string
	}
	cases := []struct {
		name   string
		step   time.Duration // the clock moves by this at the step, 1 min after both devices spoke
		checks []check
	}{
		{"backward one hour", -time.Hour, []check{
			{at: 0},
			{at: 60 * time.Second},
			{at: 70 * time.Second, events: []string{"quiet:online>late"}},
			{at: 190 * time.Second, events: []string{"quiet:late>offline"}},
		}},
		{"forward two hours", 2 * time.Hour, []check{
			{at: 0}, // before the fix: quiet and talker online>offline at once
			{at: 60 * time.Second},
			{at: 70 * time.Second, events: []string{"quiet:online>late"}},
			{at: 190 * time.Second, events: []string{"quiet:late>offline"}},
		}},
		{"forward within the check gap", 40 * time.Second, []check{ // a 40 s gap is a late tick, not a jump
			{at: 0, events: []string{"quiet:online>late"}}, // silent for 100 s
			{at: 90 * time.Second, events: []string{"quiet:late>offline"}},
		}},
	}
	const every = 5 * time.Second
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, DefaultConfig()) // check_every 5 s
			mustCreate(t, e.g, "quiet", ingest.ClassSmoke, iv)
			mustCreate(t, e.g, "talker", ingest.ClassSmoke, iv)
			// Before the step: both speak at t0, checks every 5 s for a minute.
			for at := time.Duration(0); at <= time.Minute; at += every {
				now := t0.Add(at)
				if at == 0 {
					for _, id := range []string{"quiet", "talker"} {
						if err := e.g.Admit(reading(id, ingest.ClassSmoke, now)); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := e.g.RunDue(ctx, now); err != nil {
					t.Fatal(err)
				}
			}
			if got := sorted(e.take()); got != "quiet:never>online,talker:never>online" {
				t.Fatalf("before the step: %s", got)
			}
			// The step, then checks every 5 s; talker speaks every 30 s.
			stepAt := t0.Add(time.Minute + tc.step)
			last := tc.checks[len(tc.checks)-1].at
			want := map[time.Duration][]string{}
			for _, c := range tc.checks {
				want[c.at] = c.events
			}
			for at := time.Duration(0); at <= last; at += every {
				now := stepAt.Add(at)
				e.clk.Set(now)
				if at%(30*time.Second) == 0 {
					if err := e.g.Admit(reading("talker", ingest.ClassSmoke, now)); err != nil {
						t.Fatal(err)
					}
				}
				if err := e.g.RunDue(ctx, now); err != nil {
					t.Fatal(err)
				}
				if got := sorted(e.take()); got != strings.Join(want[at], ",") {
					t.Fatalf("check %v after the step: events %q, want %q", at, got, want[at])
				}
			}
			if d, _ := e.g.Get("talker"); d.State != StateOnline || d.LastSeen.After(e.clk.Now()) {
				t.Fatalf("talker: %+v at %v", d, e.clk.Now())
			}
			if d, _ := e.g.Get("quiet"); d.LastSeen.After(e.clk.Now()) {
				t.Fatalf("quiet: last seen %v ahead of now %v", d.LastSeen, e.clk.Now())
			}
		})
	}
}

func sorted(evs []string) string {
	slices.Sort(evs)
	return strings.Join(evs, ",")
}

// A restart while the clock is behind the registry's last run (last seen and
// the restart itself ahead of the first checks): devices still go late after
// their allowance, counted from the first check.
func TestClockBehindAtRestart(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, DefaultConfig())
	mustCreate(t, e.g, "d", ingest.ClassSmoke, time.Minute)
	e.clk.Set(t0.Add(time.Hour))
	if err := e.g.Admit(reading("d", ingest.ClassSmoke, e.clk.Now())); err != nil {
		t.Fatal(err)
	}
	if err := e.g.RunDue(ctx, e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	e.take()
	e.open(t, DefaultConfig()) // restarted at t0+1h; then the clock is stepped back to t0
	var got []string
	for at := time.Duration(0); at <= 70*time.Second; at += 5 * time.Second {
		if err := e.g.RunDue(ctx, t0.Add(at)); err != nil {
			t.Fatal(err)
		}
		got = append(got, e.take()...)
	}
	if strings.Join(got, ",") != "d:online>late" {
		t.Fatalf("events %v, want d:online>late", got)
	}
}

func TestCRUD(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, DefaultConfig())
	d := Device{ID: "e1", Class: ingest.ClassElec, Name: "panel", Lat: 31.4, Lon: 106.9}
	if err := e.g.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := e.g.Create(ctx, d); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("duplicate create: %v", err)
	}
	if err := e.g.Update(ctx, Device{ID: "nope", Class: ingest.ClassElec, Name: "x"}); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	if err := e.g.Create(ctx, Device{ID: "bad/id", Class: ingest.ClassElec, Name: "x"}); !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("bad id: %v", err)
	}
	if err := e.g.Admit(reading("e1", ingest.ClassElec, t0)); err != nil {
		t.Fatal(err)
	}
	d.Name, d.Interval = "main panel", 2*time.Minute
	if err := e.g.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, _ := e.g.Get("e1")
	if got.Name != "main panel" || got.Interval != 2*time.Minute || got.State != StateOnline || got.Firmware != "fw-1.2" {
		t.Fatalf("update lost health or fields: %+v", got)
	}
	if err := e.g.Delete(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	if err := e.g.Delete(ctx, "e1"); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := e.g.RunDue(ctx, t0); err != nil { // flush must not resurrect it
		t.Fatal(err)
	}
	e.open(t, DefaultConfig())
	if _, ok := e.g.Get("e1"); ok {
		t.Fatal("deleted device came back")
	}
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		file    string
		n       int
		errSubs []string // each must appear in the error
		noSubs  []string // none may appear
	}{
		{file: "good.yaml", n: 2},
		{file: "good.csv", n: 2},
		{file: "bad.yaml", errSubs: []string{"bad.yaml:7: lat", "bad.yaml:12: class", "bad.yaml:17: id \"ok-1\": duplicate of line 2",
			"bad.yaml:22:", "colour", "bad.yaml:28: lon: required", "5 bad row"}, noSubs: []string{"bad.yaml:2:"}},
		{file: "bad.csv", errSubs: []string{"bad.csv:3: lat", "bad.csv:4: interval", "bad.csv:5: id: required", "3 bad row"},
			noSubs: []string{"bad.csv:2:"}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			e := newEnv(t, DefaultConfig())
			n, err := e.g.ImportFile(ctx, filepath.Join("testdata", tc.file))
			if tc.errSubs == nil {
				if err != nil || n != tc.n || e.g.Len() != tc.n {
					t.Fatalf("n=%d len=%d err=%v", n, e.g.Len(), err)
				}
				return
			}
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", err)
			}
			for _, s := range tc.errSubs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q:\n%v", s, err)
				}
			}
			for _, s := range tc.noSubs {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error names good row %q:\n%v", s, err)
				}
			}
			if e.g.Len() != 0 {
				t.Errorf("a bad file imported %d devices", e.g.Len())
			}
		})
	}
	t.Run("fields and re-import keep health", func(t *testing.T) {
		e := newEnv(t, DefaultConfig())
		if _, err := e.g.ImportFile(ctx, "testdata/good.yaml"); err != nil {
			t.Fatal(err)
		}
		c, _ := e.g.Get("cam-t1")
		if c.Interval != 30*time.Second || c.Zone != "grid-x" || c.PanDeg == nil || *c.PanDeg != 120 || *c.HFOVDeg != 58 ||
			c.RTSPURL == "" || !c.Installed.Equal(time.Date(2023, 11, 20, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("camera = %+v", c)
		}
		if s, _ := e.g.Get("smoke-t1"); s.Interval != 10*time.Minute {
			t.Fatalf("smoke = %+v", s)
		}
		if err := e.g.Admit(reading("cam-t1", ingest.ClassCamera, t0)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.g.ImportFile(ctx, "testdata/good.yaml"); err != nil {
			t.Fatal(err)
		}
		// health survives, and the firmware the device reported beats the seed's
		if c, _ := e.g.Get("cam-t1"); c.State != StateOnline || c.Firmware != "fw-1.2" {
			t.Fatalf("re-import: %+v", c)
		}
	})
}

// Spreadsheet programs save "CSV UTF-8" with a byte order mark, and some quote
// every field: the header must be read either way.
func TestParseCSVByteOrderMark(t *testing.T) {
	const row = "elec-t1,elec,Test elec monitor,31.45,106.98\n"
	cases := []struct{ name, header string }{
		{"plain", "id,class,name,lat,lon\n"},
		{"BOM", "\ufeffid,class,name,lat,lon\n"},
		{"BOM, quoted header", "\ufeff\"id\",\"class\",\"name\",\"lat\",\"lon\"\n"},
		{"BOM, quoted header and row", "\ufeff\"id\",\"class\",\"name\",\"lat\",\"lon\"\n\"elec-t0\",\"elec\",\"x\",\"31\",\"107\"\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			devs, err := ParseCSV([]byte(tc.header+row), "bom.csv", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if last := devs[len(devs)-1]; last.ID != "elec-t1" || last.Class != ingest.ClassElec || last.Lat != 31.45 {
				t.Fatalf("devices %+v", devs)
			}
		})
	}
	// Only a leading mark is skipped: one inside the header is still an unknown column.
	if _, err := ParseCSV([]byte("id,\ufeffclass,name,lat,lon\n"+row), "bom.csv", time.Minute); !errors.Is(err, ErrBadSeed) {
		t.Fatalf("inner BOM: err %v, want ErrBadSeed", err)
	}
}

// The start-up seed is initial data: across restarts it creates only what is
// missing, so edits made through the API stay and deleted devices stay
// deleted. The explicit import (ImportFile) still upserts.
func TestSeedFileCreatesOnlyMissing(t *testing.T) {
	ctx := context.Background()
	const seed = "testdata/good.yaml" // smoke-t1 and cam-t1
	e := newEnv(t, DefaultConfig())
	if n, err := e.g.SeedFile(ctx, seed); err != nil || n != 2 {
		t.Fatalf("first seed: n=%d err=%v", n, err)
	}
	cam, _ := e.g.Get("cam-t1")
	cam.Name, cam.Lat, cam.Interval = "renamed tower", 31.6, 45*time.Second
	if err := e.g.Update(ctx, cam); err != nil {
		t.Fatal(err)
	}
	if err := e.g.Delete(ctx, "smoke-t1"); err != nil {
		t.Fatal(err)
	}
	wantEdit := func(step string) {
		t.Helper()
		c, ok := e.g.Get("cam-t1")
		if !ok || c.Name != "renamed tower" || c.Lat != 31.6 || c.Interval != 45*time.Second || c.ConfiguredZone != "grid-x" {
			t.Fatalf("%s: cam-t1 = %+v, %v (edit reverted)", step, c, ok)
		}
		if _, ok := e.g.Get("smoke-t1"); ok {
			t.Fatalf("%s: deleted smoke-t1 came back", step)
		}
	}
	for restart := range 2 { // the gateway restarts and seeds again, twice
		e.open(t, DefaultConfig())
		if n, err := e.g.SeedFile(ctx, seed); err != nil || n != 0 {
			t.Fatalf("restart %d: seed created %d, err %v", restart, n, err)
		}
		wantEdit(fmt.Sprintf("restart %d", restart))
	}
	// A device added to the file later is created at the next start.
	more := filepath.Join(t.TempDir(), "more.csv")
	if err := os.WriteFile(more, []byte("id,class,name,lat,lon\nsmoke-t2,smoke,new alarm,31.5,107\nsmoke-t1,smoke,deleted,31.5,107\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := e.g.SeedFile(ctx, more); err != nil || n != 1 {
		t.Fatalf("seed with a new device: created %d, err %v", n, err)
	}
	if _, ok := e.g.Get("smoke-t2"); !ok {
		t.Fatal("new seed device not created")
	}
	wantEdit("new seed device")
	// Re-created through the API, a deleted id is an ordinary device again:
	// deleted once more, it stays deleted; kept, the seed leaves it alone.
	if err := e.g.Create(ctx, Device{ID: "smoke-t1", Class: ingest.ClassSmoke, Name: "back", Lat: 31.5, Lon: 107}); err != nil {
		t.Fatal(err)
	}
	if ids, err := e.g.deletedIDs(ctx); err != nil || ids["smoke-t1"] {
		t.Fatalf("re-created id still remembered as deleted: %v %v", ids, err)
	}
	if n, err := e.g.SeedFile(ctx, seed); err != nil || n != 0 {
		t.Fatalf("seed after re-create: created %d, err %v", n, err)
	}
	if d, _ := e.g.Get("smoke-t1"); d.Name != "back" {
		t.Fatalf("seed replaced the re-created device: %+v", d)
	}
	// The explicit import is an upsert: it reverts the edit and re-creates.
	if err := e.g.Delete(ctx, "smoke-t1"); err != nil {
		t.Fatal(err)
	}
	if n, err := e.g.ImportFile(ctx, seed); err != nil || n != 2 {
		t.Fatalf("import: n=%d err=%v", n, err)
	}
	if c, _ := e.g.Get("cam-t1"); c.Name != "Test tower camera" || c.Interval != 30*time.Second {
		t.Fatalf("import did not replace cam-t1: %+v", c)
	}
	if _, ok := e.g.Get("smoke-t1"); !ok {
		t.Fatal("import did not re-create smoke-t1")
	}
}

func TestConcurrentAdmit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.UnknownDevices = "register"
	e := newEnv(t, cfg)
	ctx := context.Background()
	for i := range 50 {
		mustCreate(t, e.g, fmt.Sprintf("d%02d", i), ingest.ClassSmoke, time.Minute)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				id := fmt.Sprintf("d%02d", i%50)
				if i%97 == 0 {
					id = fmt.Sprintf("auto-%d-%d", w, i) // auto-registers
				}
				if err := e.g.Admit(reading(id, ingest.ClassSmoke, t0.Add(time.Duration(i)*time.Millisecond))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // checks, edits and reads race with admits
		defer wg.Done()
		for i := range 20 {
			if err := e.g.RunDue(ctx, t0.Add(time.Duration(i)*time.Second)); err != nil {
				t.Error(err)
			}
			if err := e.g.Update(ctx, Device{ID: "d07", Class: ingest.ClassSmoke, Name: fmt.Sprint("n", i), Lat: 31.5, Lon: 107}); err != nil {
				t.Error(err)
			}
			_ = e.g.List(Filter{State: StateOnline})
			_ = e.g.ZoneHealth()
		}
	}()
	wg.Wait()
	if err := e.g.RunDue(ctx, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := e.metric(t, "lookout_device_messages_total", map[string]string{"class": "smoke"}); got != 8000 {
		t.Fatalf("messages %v, want 8000", got)
	}
	e.open(t, cfg)
	if n := e.g.Len(); n != 50+4*21 {
		t.Fatalf("after reopen %d devices, want %d", n, 50+4*21)
	}
}

// BenchmarkAdmit measures the ingest hot path against its 1 µs budget
// (budget_ratio = 1000 ns / ns per Admit; > 1 is within budget).
func BenchmarkAdmit(b *testing.B) {
	e := newEnv(b, DefaultConfig())
	const n = 1000
	rs := make([]*ingest.Reading, n)
	for i := range n {
		id := fmt.Sprintf("dev-%04d", i)
		mustCreate(b, e.g, id, ingest.ClassSmoke, time.Minute)
		rs[i] = reading(id, ingest.ClassSmoke, t0)
	}
	for _, par := range []bool{false, true} {
		name := "serial"
		if par {
			name = "parallel"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			start := time.Now()
			if par {
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						r := *rs[i%n]
						if err := e.g.Admit(&r); err != nil {
							b.Error(err)
							return
						}
						i++
					}
				})
			} else {
				for i := 0; b.Loop(); i++ {
					r := *rs[i%n]
					if err := e.g.Admit(&r); err != nil {
						b.Fatal(err)
					}
				}
			}
			per := float64(time.Since(start).Nanoseconds()) / float64(b.N)
			b.ReportMetric(1000/per, "budget_ratio")
		})
	}
}

// More dirty devices than one flush transaction holds: every chunk is written.
func TestFlushWritesEveryChunk(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, DefaultConfig())
	const n = flushChunk*2 + 57
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("sm-%04d", i)
		mustCreate(t, e.g, id, ingest.ClassSmoke, time.Minute)
		if err := e.g.Admit(reading(id, ingest.ClassSmoke, t0.Add(time.Duration(i)*time.Millisecond))); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.g.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.open(t, DefaultConfig())
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("sm-%04d", i)
		d, ok := e.g.Get(id)
		if !ok || !d.LastSeen.Equal(t0.Add(time.Duration(i)*time.Millisecond)) {
			t.Fatalf("%s after reopen: %+v (last seen not flushed)", id, d)
		}
	}
}
