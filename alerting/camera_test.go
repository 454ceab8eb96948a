package alerting

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/ingest"
)

func TestBearing(t *testing.T) {
	tests := []struct {
		pan, hfov, xmin, xmax float64
		az, cone              float64
	}{
		{0, 60, 0.45, 0.55, 0, 6},
		{90, 60, 0, 0.1, 63, 6},   // left edge: 90 + 60·(0.05−0.5)
		{350, 60, 0.9, 1, 17, 6},  // wraps past north
		{10, 90, 0, 0.2, 334, 18}, // wraps below 0
		{180, 54.2, 0.5, 0.5, 180, 0},
	}
	for _, tc := range tests {
		az, cone := Bearing(tc.pan, tc.hfov, tc.xmin, tc.xmax)
		if math.Abs(az-tc.az) > 1e-9 || math.Abs(cone-tc.cone) > 1e-9 {
			t.Errorf("Bearing(%v,%v,%v,%v) = %v,%v want %v,%v", tc.pan, tc.hfov, tc.xmin, tc.xmax, az, cone, tc.az, tc.cone)
		}
	}
}

func TestIntersect(t *testing.T) {
	// Two towers 5 km apart east-west, both looking at a point 4 km north of the midpoint.
	a := Sighting{Lat: 30, Lon: 120}
	b := Sighting{Lat: 30, Lon: 120 + 5000/(earthR*math.Cos(30*math.Pi/180))*180/math.Pi}
	target := struct{ lat, lon float64 }{30 + 4000/earthR*180/math.Pi, (a.Lon + b.Lon) / 2}
	a.BearingDeg = math.Atan2(2500, 4000) * 180 / math.Pi
	b.BearingDeg = 360 - a.BearingDeg
	fix, err := Intersect(a, b, 100, 10)
	if err != nil {
		t.Fatal(err)
	}
	if d := distanceM(fix.Lat, fix.Lon, target.lat, target.lon); d > 5 {
		t.Errorf("fix off by %.1f m", d)
	}
	if fix.ErrorM <= 0 || fix.ErrorM > 500 {
		t.Errorf("error estimate %v", fix.ErrorM)
	}
	for name, c := range map[string][2]Sighting{
		"short baseline": {{Lat: 30, Lon: 120, BearingDeg: 10}, {Lat: 30, Lon: 120.0005, BearingDeg: 350}},
		"parallel":       {{Lat: 30, Lon: 120, BearingDeg: 0}, {Lat: 30, Lon: 120.05, BearingDeg: 5}},
		"behind":         {{Lat: 30, Lon: 120, BearingDeg: 200}, {Lat: 30, Lon: 120.05, BearingDeg: 160}},
	} {
		if _, err := Intersect(c[0], c[1], 100, 10); !errors.Is(err, ErrNoFix) {
			t.Errorf("%s: err = %v, want ErrNoFix", name, err)
		}
	}
}

type fakeGeo struct{}

func (fakeGeo) RayForests(lat, lon, az, rangeM float64) []string {
	if az > 0 && az < 90 {
		return []string{"forest-ne"}
	}
	return nil
}

func (fakeGeo) Triangulate(s []Sighting, minBaselineM, minAngleDeg float64) (Fix, error) {
	return Intersect(s[0], s[1], minBaselineM, minAngleDeg)
}

func detection(cam string, lat, lon, pan, score float64, at time.Time) ingest.Reading {
	return ingest.Reading{DeviceID: cam, Class: ingest.ClassCamera, Kind: ingest.KindDetection, Time: at, Zone: "v1",
		Lat: lat, Lon: lon, Fields: map[string]any{"label": "smoke", "score": score, "box": []float64{0.45, 0.4, 0.55, 0.5},
			"pan_deg": pan, "hfov_deg": 60.0}}
}

func TestCameraConfirmation(t *testing.T) {
	type det struct {
		dt    time.Duration
		pan   float64
		score float64
	}
	tests := []struct {
		name      string
		dets      []det
		confirmed bool
	}{
		{"two are not enough", []det{{0, 45, 0.9}, {60 * time.Second, 45, 0.9}}, false},
		{"three within 300 s", []det{{0, 45, 0.9}, {100 * time.Second, 45, 0.8}, {300 * time.Second, 45, 0.5}}, true},
		{"third after window", []det{{0, 45, 0.9}, {100 * time.Second, 45, 0.9}, {301 * time.Second, 45, 0.9}}, false},
		{"low score ignored", []det{{0, 45, 0.9}, {10 * time.Second, 45, 0.49}, {20 * time.Second, 45, 0.9}}, false},
		{"different directions", []det{{0, 45, 0.9}, {10 * time.Second, 125, 0.9}, {20 * time.Second, 45, 0.9}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.e.geo = fakeGeo{}
			for _, d := range tc.dets {
				h.eval(t, detection("cam-a", 30, 120, d.pan, d.score, t0.Add(d.dt)))
			}
			n := h.countAlerts(t, "source = 'cam-a'")
			if (n == 1) != tc.confirmed || n > 1 {
				t.Fatalf("alerts = %d, confirmed want %v", n, tc.confirmed)
			}
			if !tc.confirmed {
				return
			}
			a, _ := h.active(t, "cam-a", "camera_fire/040")
			if a.Severity != Critical || a.Details["bearing_deg"] != 45.0 {
				t.Fatalf("alert = %+v", a)
			}
			if f, _ := a.Details["forests"].([]any); len(f) != 1 || f[0] != "forest-ne" {
				t.Errorf("forests = %v", a.Details["forests"])
			}
		})
	}
}

func TestSecondCameraTriangulatesAndOpensIncident(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	// Fire at 4 km north of the midpoint of two towers 5 km apart.
	lonB := 120 + 5000/(earthR*math.Cos(30*math.Pi/180))*180/math.Pi
	azA := math.Atan2(2500, 4000) * 180 / math.Pi
	for i := 0; i < 3; i++ {
		h.eval(t, detection("cam-a", 30, 120, azA, 0.9, t0.Add(time.Duration(i)*30*time.Second)))
	}
	if inc, _ := h.e.Incidents(ctx, IncidentFilter{Since: t0.Add(-time.Hour)}); len(inc) != 0 {
		t.Fatalf("an unfixed bearing opened an incident: %+v", inc)
	}
	for i := 0; i < 3; i++ {
		h.eval(t, detection("cam-b", 30, lonB, 360-azA, 0.9, t0.Add(time.Duration(100+i*30)*time.Second)))
	}
	list, err := h.e.List(ctx, Filter{States: []State{ActiveUnack}})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("alerts = %d, want one per camera", len(list))
	}
	wantLat := 30 + 4000/earthR*180/math.Pi
	for _, a := range list {
		if d := distanceM(a.Lat, a.Lon, wantLat, (120+lonB)/2); d > 10 {
			t.Errorf("%s position off by %.0f m (%v,%v)", a.Source, d, a.Lat, a.Lon)
		}
		if !strings.Contains(a.Message, "cross-bearing") && a.Source == "cam-b" {
			t.Errorf("message %q", a.Message)
		}
	}
	inc, err := h.e.Incidents(ctx, IncidentFilter{Since: t0.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(inc) != 1 || len(inc[0].Evidence) != 2 {
		t.Fatalf("incidents = %+v, want one with both cameras", inc)
	}
	// A smoke alarm 1 km away within 30 min joins; one 3 km away opens another.
	h.clk.Advance(10 * time.Minute)
	near := ingest.Reading{DeviceID: "smk-n", Class: ingest.ClassSmoke, Zone: "v1", Lat: wantLat + 0.009, Lon: (120 + lonB) / 2,
		Fields: map[string]any{"alarm": true}}
	far := near
	far.DeviceID, far.Lat = "smk-f", wantLat+0.027
	h.eval(t, near)
	h.eval(t, far)
	inc, _ = h.e.Incidents(ctx, IncidentFilter{Since: t0.Add(-time.Hour)})
	if len(inc) != 2 {
		t.Fatalf("incidents = %d, want 2", len(inc))
	}
	var big Incident
	for _, in := range inc {
		if len(in.Evidence) > len(big.Evidence) {
			big = in
		}
	}
	if len(big.Evidence) != 3 || big.Evidence[2].Source != "smk-n" {
		t.Errorf("evidence = %+v", big.Evidence)
	}
}

// recGeo records what reaches Triangulate and answers like Intersect.
type recGeo struct{ calls [][]Sighting }

func (*recGeo) RayForests(lat, lon, az, rangeM float64) []string { return nil }

func (g *recGeo) Triangulate(s []Sighting, minBaselineM, minAngleDeg float64) (Fix, error) {
	g.calls = append(g.calls, slices.Clone(s))
	return Intersect(s[0], s[1], minBaselineM, minAngleDeg)
}

// TestCameraWithoutPositionNotTriangulated: a camera the registry has no
// position for reads as 0,0; its bearing must not be crossed with another
// camera's (that gave a "fix" thousands of kilometres away).
func TestCameraWithoutPositionNotTriangulated(t *testing.T) {
	lonB := 120 + 5000/(earthR*math.Cos(30*math.Pi/180))*180/math.Pi
	azA := math.Atan2(2500, 4000) * 180 / math.Pi
	type cam struct {
		id       string
		lat, lon float64
		pan      float64
	}
	a, b := cam{"cam-a", 30, 120, azA}, cam{"cam-b", 30, lonB, 360 - azA}
	tests := []struct {
		name  string
		cams  []cam    // confirmed in this order, three detections each
		pairs []string // the cameras of each Triangulate call, "x+y"
	}{
		{"both located", []cam{a, b}, []string{"cam-a+cam-b"}},
		{"first without position", []cam{{"cam-a", 0, 0, azA}, b}, nil},
		{"second without position", []cam{a, {"cam-b", 0, 0, 360 - azA}}, nil},
		{"one without position in between", []cam{a, {"cam-c", 0, 0, 90}, b}, []string{"cam-a+cam-b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			g := &recGeo{}
			h.e.geo = g
			at := time.Duration(0)
			for _, c := range tc.cams {
				for i := 0; i < 3; i++ {
					h.eval(t, detection(c.id, c.lat, c.lon, c.pan, 0.9, t0.Add(at)))
					at += 20 * time.Second
				}
			}
			var pairs []string
			for _, call := range g.calls {
				var ids []string
				for _, s := range call {
					if s.Lat == 0 && s.Lon == 0 {
						t.Errorf("Triangulate got a camera at 0,0: %+v", call)
					}
					for _, c := range tc.cams {
						if c.lat == s.Lat && c.lon == s.Lon {
							ids = append(ids, c.id)
							break
						}
					}
				}
				pairs = append(pairs, strings.Join(ids, "+"))
			}
			if !slices.Equal(pairs, tc.pairs) {
				t.Errorf("Triangulate calls %v, want %v", pairs, tc.pairs)
			}
			last := tc.cams[len(tc.cams)-1]
			al, ok := h.active(t, last.id, fmt.Sprintf("%s/%03d", TypeCameraFire, int(last.pan/10)*10))
			if !ok {
				t.Fatalf("no alert for %s", last.id)
			}
			if _, fixed := al.Details["fix"]; fixed != (len(tc.pairs) > 0) {
				t.Errorf("%s alert details %v: fix present %v, want %v", last.id, al.Details, fixed, len(tc.pairs) > 0)
			}
			if len(tc.pairs) == 0 && (al.Lat != 0 || al.Lon != 0) {
				t.Errorf("%s alert positioned at %v,%v without a fix", last.id, al.Lat, al.Lon)
			}
		})
	}
}
