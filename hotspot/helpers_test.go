package hotspot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/store"
)

// The test county: 25.0–25.5°N, 100.0–100.5°E (where the FIRMS fixtures in testdata/ lie).
// Town T1 (west half, nobody on duty) holds village V11 (on duty: Li Wei) and forest F1;
// town T2 (east half, on duty: Zhao Min). Mask M1 is a brick kiln in T1.

type rect struct {
	id, name, level, parent string
	minLat, maxLat          float64
	minLon, maxLon          float64
	duty                    []Contact
}

func (r rect) contains(lat, lon float64) bool {
	return lat >= r.minLat && lat <= r.maxLat && lon >= r.minLon && lon <= r.maxLon
}

// distanceM is the distance from a point to the rectangle (0 inside), on a local plane.
func (r rect) distanceM(lat, lon float64) float64 {
	cl := math.Max(r.minLat, math.Min(lat, r.maxLat))
	co := math.Max(r.minLon, math.Min(lon, r.maxLon))
	return haversineM(lat, lon, cl, co)
}

// fakeLocator is a Locator over rectangles; zones are listed outermost first.
type fakeLocator struct {
	zones, forests, masks []rect
	searchM               float64
}

func (f *fakeLocator) Locate(lat, lon float64) Place {
	p := Place{DistanceM: -1}
	for i := len(f.zones) - 1; i >= 0; i-- {
		z := f.zones[i]
		if z.contains(lat, lon) {
			p.Zones = append(p.Zones, Zone{ID: z.id, Name: z.name, Level: z.level, Parent: z.parent, Duty: z.duty})
		}
	}
	best := math.Inf(1)
	for _, fo := range f.forests {
		d := fo.distanceM(lat, lon)
		if d == 0 {
			p.Forests = append(p.Forests, fo.id)
		}
		if d < best && d <= f.searchM {
			best, p.NearestForest, p.DistanceM = d, fo.id, d
		}
	}
	for _, m := range f.masks {
		if m.contains(lat, lon) {
			p.Mask = m.id
		}
	}
	return p
}

func (f *fakeLocator) Within(lat, lon, metres float64) bool {
	for _, z := range f.zones {
		if z.distanceM(lat, lon) <= metres {
			return true
		}
	}
	return false
}

func testLocator() *fakeLocator {
	return &fakeLocator{
		searchM: 5000,
		zones: []rect{
			{id: "c", name: "County", level: "county", minLat: 25.0, maxLat: 25.5, minLon: 100.0, maxLon: 100.5,
				duty: []Contact{{Name: "Chen Jun", Phone: "100", Role: "county"}}},
			{id: "t1", name: "T1", level: "town", parent: "c", minLat: 25.0, maxLat: 25.5, minLon: 100.0, maxLon: 100.25},
			{id: "t2", name: "T2", level: "town", parent: "c", minLat: 25.0, maxLat: 25.5, minLon: 100.25, maxLon: 100.5,
				duty: []Contact{{Name: "Zhao Min", Phone: "200", Role: "town"}}},
			{id: "v11", name: "V11", level: "village", parent: "t1", minLat: 25.1, maxLat: 25.3, minLon: 100.1, maxLon: 100.25,
				duty: []Contact{{Name: "Li Wei", Phone: "300", Role: "village"}, {Name: "Wang Fang", Phone: "301"}}},
		},
		forests: []rect{{id: "F1", minLat: 25.2, maxLat: 25.25, minLon: 100.15, maxLon: 100.25}},
		masks:   []rect{{id: "M1", minLat: 25.395, maxLat: 25.405, minLon: 100.005, maxLon: 100.015}},
	}
}

// recEscalator records raised and resolved alerts; failN makes the next n Raise
// calls fail, failResolveN the next n Resolve calls.
type recEscalator struct {
	mu           sync.Mutex
	alerts       []OverdueAlert
	resolves     []int64
	active       map[int64]bool // reports whose alert is raised and not resolved
	failN        int
	failResolveN int
	onRaise      func(OverdueAlert) // run before a Raise is recorded, outside the lock
}

func (e *recEscalator) Resolve(_ context.Context, reportID int64, note string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if note == "" {
		panic("resolve without a note")
	}
	if e.failResolveN > 0 {
		e.failResolveN--
		return errors.New("alerting down")
	}
	e.resolves = append(e.resolves, reportID)
	delete(e.active, reportID)
	return nil
}

// standing returns the reports whose alert is raised and not resolved, sorted.
func (e *recEscalator) standing() []int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []int64
	for id := range e.active {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func (e *recEscalator) resolved() []int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int64(nil), e.resolves...)
}

func (e *recEscalator) Raise(_ context.Context, a OverdueAlert) error {
	e.mu.Lock()
	hook := e.onRaise
	e.mu.Unlock()
	if hook != nil {
		hook(a)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failN > 0 {
		e.failN--
		return errors.New("alerting down")
	}
	e.alerts = append(e.alerts, a)
	if e.active == nil {
		e.active = map[int64]bool{}
	}
	e.active[a.ReportID] = true
	return nil
}

func (e *recEscalator) raised() []OverdueAlert {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]OverdueAlert(nil), e.alerts...)
}

// recEvents records published events.
type recEvents struct {
	mu   sync.Mutex
	evts []Report
}

func (r *recEvents) Publish(typ string, data any) {
	if typ != EventType {
		panic("unexpected event type " + typ)
	}
	r.mu.Lock()
	r.evts = append(r.evts, data.(Report))
	r.mu.Unlock()
}

func (r *recEvents) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evts)
}

type fakeCameras []Camera

func (c fakeCameras) Cameras() []Camera { return c }

// fakeEvidence returns its items, filtered as a real source would by time only (the
// service must apply the radius itself), and records the query.
type fakeEvidence struct {
	items            []Item
	lastLat, lastLon float64
	lastR            float64
	lastFrom, lastTo time.Time
	err              error
}

func (f *fakeEvidence) Near(_ context.Context, lat, lon, radiusM float64, from, to time.Time) ([]Item, error) {
	f.lastLat, f.lastLon, f.lastR, f.lastFrom, f.lastTo = lat, lon, radiusM, from, to
	return f.items, f.err
}

var t0 = time.Date(2026, 3, 14, 8, 0, 0, 0, time.UTC)

type testEnv struct {
	svc  *Service
	clk  *clock.Fake
	esc  *recEscalator
	ev   *recEvents
	cfg  Config
	dir  string
	reg  *prometheus.Registry
	deps Deps
}

// newEnv builds a Service on a fresh SQLite file; mod may change config and deps.
func newEnv(t testing.TB, mod func(*Config, *Deps)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "lookout.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &testEnv{clk: clock.NewFake(t0), esc: &recEscalator{}, ev: &recEvents{}, dir: dir, reg: prometheus.NewRegistry()}
	cfg := DefaultConfig()
	cfg.PhotoDir = filepath.Join(dir, "photos")
	d := Deps{DB: db, Locator: testLocator(), Escalator: e.esc, Events: e.ev, Clock: e.clk, Registerer: e.reg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mod != nil {
		mod(&cfg, &d)
	}
	svc, err := New(context.Background(), cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	e.svc, e.cfg, e.deps = svc, cfg, d
	return e
}

// importString imports a CSV text and fails the test on error.
func (e *testEnv) importString(t testing.TB, csv string) ImportResult {
	t.Helper()
	res, err := e.svc.Import(context.Background(), "test", strings.NewReader(csv), nil)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return res
}

const viirsHeader = "latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,bright_ti5,frp,daynight\n"

// viirsRow formats one VIIRS row.
func viirsRow(lat, lon float64, at time.Time, sat string, frp float64) string {
	return fmt.Sprintf("%.5f,%.5f,330.5,0.39,0.36,%s,%s,%s,VIIRS,n,2.0NRT,290.1,%.2f,N\n",
		lat, lon, at.Format("2006-01-02"), at.Format("1504"), sat, frp)
}

// sharedFIRMS returns the path of ../shared/testdata/firms beside the repository
// (the module root's parent), failing the test clearly when it is missing.
func sharedFIRMS(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := wd
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			t.Fatalf("no go.mod above %s", wd)
		}
		root = parent
	}
	dir := filepath.Join(filepath.Dir(root), "shared", "testdata", "firms")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("real FIRMS rows missing: %v (the shared/ folder must sit beside the repository, as in CI)", err)
	}
	return dir
}
