package hotspot

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

// offset returns the point d metres from (lat, lon) towards bearing (degrees).
func offset(lat, lon, d, bearing float64) (float64, float64) {
	a := bearing * math.Pi / 180
	return unproject(d/1000*math.Sin(a), d/1000*math.Cos(a), lat, lon)
}

func TestCorroboration(t *testing.T) {
	const hlat, hlon = 25.22, 100.2
	acq := t0.Add(-2 * time.Hour)
	at := func(d time.Duration) time.Time { return acq.Add(d) }
	dLat, dLon := offset(hlat, hlon, 1000, 0)     // 1 km north
	fLat, fLon := offset(hlat, hlon, 3000, 90)    // 3 km east
	sLat, sLon := offset(hlat, hlon, 7000, 180)   // 7 km south
	cLat, cLon := offset(hlat, hlon, 10000, 270)  // camera 10 km west
	c2Lat, c2Lon := offset(hlat, hlon, 3000, 180) // camera 3 km south
	c3Lat, c3Lon := offset(hlat, hlon, 20000, 0)  // camera 20 km north
	ev := &fakeEvidence{items: []Item{
		{Kind: KindCameraDetection, Source: "cam-a", At: at(-10 * time.Minute), Lat: dLat, Lon: dLon, Score: 0.8},
		{Kind: KindSmokeAlert, Source: "smoke-1", At: at(30 * time.Minute), Lat: fLat, Lon: fLon, Level: "critical"},
		{Kind: KindFireDanger, Source: "st-1", At: at(-90 * time.Minute), Lat: fLat, Lon: fLon, Level: "high"},
		{Kind: KindSmokeAlert, Source: "smoke-far", At: at(0), Lat: sLat, Lon: sLon},               // outside 5 km
		{Kind: KindElecAlert, Source: "elec-old", At: at(-3 * time.Hour), Lat: hlat, Lon: hlon},    // outside ±2 h
		{Kind: KindCameraDetection, Source: "fix-far", At: at(0), Lat: fLat, Lon: fLon, Fix: true}, // fix 3 km off: shown, no confirmation
		{Kind: KindCameraDetection, Source: "cam-west-miss", At: at(5 * time.Minute), Lat: cLat, Lon: cLon, CameraID: "cam-west",
			HasBearing: true, CamLat: cLat, CamLon: cLon, Bearing: 0, ConeDeg: 4}, // looks north: misses, 10 km away: dropped
	}}
	cams := fakeCameras{
		{ID: "cam-south", Lat: c2Lat, Lon: c2Lon, RangeM: 10000},
		{ID: "cam-west", Lat: cLat, Lon: cLon, RangeM: 15000},
		{ID: "cam-north-far", Lat: c3Lat, Lon: c3Lon, RangeM: 10000},
	}
	e := newEnv(t, func(_ *Config, d *Deps) { d.Evidence, d.Cameras = ev, cams })
	r := forestReport(t, e)
	ctx := context.Background()

	d, err := e.svc.Detail(ctx, r.ID)
	if err != nil || d.Corroboration == nil {
		t.Fatalf("detail: %v %+v", err, d)
	}
	c := d.Corroboration
	if ev.lastR != 5000 || !ev.lastFrom.Equal(acq.Add(-2*time.Hour)) || !ev.lastTo.Equal(acq.Add(2*time.Hour)) {
		t.Errorf("evidence query r=%v %v–%v", ev.lastR, ev.lastFrom, ev.lastTo)
	}
	if len(c.Cameras) != 2 || c.Cameras[0].ID != "cam-south" || c.Cameras[1].ID != "cam-west" {
		t.Fatalf("cameras %+v", c.Cameras)
	}
	if b := c.Cameras[0].BearingDeg; b > 0.5 && b < 359.5 {
		t.Errorf("bearing from the south camera %v, want ≈0", b)
	}
	if b := c.Cameras[1].BearingDeg; math.Abs(b-90) > 0.5 {
		t.Errorf("bearing from the west camera %v, want ≈90", b)
	}
	if math.Abs(c.Cameras[0].DistanceM-3000) > 30 {
		t.Errorf("distance %v", c.Cameras[0].DistanceM)
	}
	var got []string
	for _, it := range c.Evidence {
		got = append(got, it.Source)
	}
	want := []string{"st-1", "cam-a", "fix-far", "smoke-1"} // by time
	if len(got) != len(want) {
		t.Fatalf("evidence %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("evidence %v, want %v", got, want)
		}
	}
	// The camera detection placed 1 km away 10 min earlier is found, with its distance.
	if it := c.Evidence[1]; math.Abs(it.DistanceM-1000) > 15 || !it.At.Equal(acq.Add(-10*time.Minute)) || it.Confirms {
		t.Errorf("camera detection %+v", it)
	}
	if c.ConfirmedByCamera || d.ConfirmedByCamera {
		t.Fatal("confirmed without a fix or bearing on the pixel")
	}

	// A cross-bearing fix 300 m from the pixel centre confirms the report.
	xLat, xLon := offset(hlat, hlon, 300, 45)
	ev.items = append(ev.items, Item{Kind: KindCameraDetection, Source: "fix-near", At: at(20 * time.Minute), Lat: xLat, Lon: xLon, Fix: true})
	nBefore := e.ev.count()
	d, err = e.svc.Detail(ctx, r.ID)
	if err != nil || !d.Corroboration.ConfirmedByCamera || !d.ConfirmedByCamera {
		t.Fatalf("fix near the pixel: %+v %v", d.Corroboration, err)
	}
	stored, _ := e.svc.Report(ctx, r.ID)
	if !stored.ConfirmedByCamera || e.ev.count() != nBefore+1 {
		t.Fatalf("flag not stored/announced: %+v events %d→%d", stored, nBefore, e.ev.count())
	}
	if last := d.History[len(d.History)-1]; last.Action != "confirmed_by_camera" {
		// History was loaded before the flag was written: read it again.
		h, _ := e.svc.History(ctx, r.ID)
		if h[len(h)-1].Action != "confirmed_by_camera" {
			t.Fatalf("history %+v", h)
		}
	}
	// Reading again neither re-flags nor re-announces.
	e.svc.Detail(ctx, r.ID)
	if e.ev.count() != nBefore+1 {
		t.Fatal("confirmation announced twice")
	}
}

func TestCorroborationBearingConfirms(t *testing.T) {
	const hlat, hlon = 25.22, 100.2
	acq := t0.Add(-2 * time.Hour)
	cLat, cLon := offset(hlat, hlon, 10000, 270) // camera 10 km west, looking east
	tests := []struct {
		name     string
		bearing  float64
		cone     float64
		rangeM   float64
		confirms bool
	}{
		{"cone on the pixel", 90, 4, 15000, true},
		{"cone 5° off still grazes the grown footprint", 95, 4, 15000, true},
		{"cone 20° off misses", 110, 4, 15000, false},
		{"pixel beyond the camera's range", 90, 4, 5000, false},
	}
	for _, tc := range tests {
		ev := &fakeEvidence{items: []Item{{Kind: KindCameraDetection, Source: "cam-west", At: acq, Lat: cLat, Lon: cLon,
			CameraID: "cam-west", HasBearing: true, CamLat: cLat, CamLon: cLon, Bearing: tc.bearing, ConeDeg: tc.cone}}}
		cams := fakeCameras{{ID: "cam-west", Lat: cLat, Lon: cLon, RangeM: tc.rangeM}}
		e := newEnv(t, func(_ *Config, d *Deps) { d.Evidence, d.Cameras = ev, cams })
		r := forestReport(t, e)
		d, err := e.svc.Detail(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.ConfirmedByCamera != tc.confirms {
			t.Errorf("%s: confirmed %v, want %v (%+v)", tc.name, d.ConfirmedByCamera, tc.confirms, d.Corroboration)
		}
		// A bearing from a camera beyond the radius is shown only when it confirms.
		if n := len(d.Corroboration.Evidence); (n == 1) != tc.confirms {
			t.Errorf("%s: %d evidence items", tc.name, n)
		}
	}
}

func TestCorroborationEvidenceErrorStillShowsReport(t *testing.T) {
	ev := &fakeEvidence{err: errors.New("alerting store locked")}
	e := newEnv(t, func(_ *Config, d *Deps) { d.Evidence = ev })
	r := forestReport(t, e)
	d, err := e.svc.Detail(context.Background(), r.ID)
	if err != nil || d.Corroboration != nil || d.CorroborationErr == "" || d.ID != r.ID || len(d.HotspotList) != 1 {
		t.Fatalf("%+v %v", d, err)
	}
}
