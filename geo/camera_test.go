package geo

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/paulmach/orb"

	"github.com/lookoutfire/lookout/errs"
)

func TestBearing(t *testing.T) {
	cases := []struct {
		pan, hfov, xmin, xmax float64
		az, cone              float64
	}{
		{90, 60, 0.4, 0.6, 90, 12},
		{350, 90, 0.9, 1.0, 30.5, 9},    // wraps past north
		{10, 60, 0.0, 0.1, 343, 6},      // wraps below zero
		{10, 60, 0.1, 0.0, 343, 6},      // swapped box edges
		{0, 54, 0.5, 0.5, 0, 0},         // zero-width box at the centre
		{-90, 100, 0.25, 0.75, 270, 50}, // negative pan
	}
	for _, c := range cases {
		az, cone := Bearing(c.pan, c.hfov, c.xmin, c.xmax)
		if math.Abs(az-c.az) > 1e-9 || math.Abs(cone-c.cone) > 1e-9 {
			t.Errorf("Bearing(%v, %v, %v, %v) = %v, %v; want %v, %v", c.pan, c.hfov, c.xmin, c.xmax, az, cone, c.az, c.cone)
		}
	}
}

// sight returns the sighting from cam to fire with the exact geodesic bearing plus noise.
func sight(cam, fire orb.Point, noise float64) Sighting {
	_, az := inverse(cam, fire)
	return Sighting{Lat: cam[1], Lon: cam[0], BearingDeg: az + noise}
}

func TestTriangulateSyntheticFires(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	type setup struct {
		name string
		cams []orb.Point
	}
	fire := orb.Point{107.2, 31.3}
	setups := []setup{
		{"two towers, right angle", []orb.Point{destination(fire, 180, 9000), destination(fire, 270, 12000)}},
		{"two towers, 40°", []orb.Point{destination(fire, 200, 8000), destination(fire, 240, 15000)}},
		{"three towers", []orb.Point{destination(fire, 10, 7000), destination(fire, 130, 11000), destination(fire, 250, 14000)}},
		{"four towers, one far", []orb.Point{destination(fire, 0, 5000), destination(fire, 90, 6000), destination(fire, 180, 7000), destination(fire, 300, 19000)}},
	}
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			var exact []Sighting
			for _, c := range s.cams {
				exact = append(exact, sight(c, fire, 0))
			}
			fix, err := Triangulate(exact, 100, 10)
			if err != nil {
				t.Fatal(err)
			}
			if d := Distance(orb.Point{fix.Lon, fix.Lat}, fire); d > 2 {
				t.Errorf("exact bearings: fix %.1f m from the fire", d)
			}
			if !(fix.ErrorM > 10 && fix.ErrorM < 1000) {
				t.Errorf("exact bearings: error estimate %.1f m (1° at these ranges is ~100–300 m)", fix.ErrorM)
			}
			// ±1° uniform noise: the estimate (which assumes σ = 1°) must
			// cover the actual error nearly always and not be wildly pessimistic.
			const trials = 300
			covered := 0
			var actual, est []float64
			for k := 0; k < trials; k++ {
				var noisy []Sighting
				for _, c := range s.cams {
					noisy = append(noisy, sight(c, fire, rng.Float64()*2-1))
				}
				f, err := Triangulate(noisy, 100, 10)
				if err != nil {
					t.Fatal(err)
				}
				d := Distance(orb.Point{f.Lon, f.Lat}, fire)
				actual = append(actual, d)
				est = append(est, f.ErrorM)
				if d <= 2.5*f.ErrorM {
					covered++
				}
			}
			slices.Sort(actual)
			slices.Sort(est)
			ratio := est[trials/2] / actual[trials/2]
			t.Logf("±1°: median actual error %.0f m, median estimate %.0f m, covered %d/%d", actual[trials/2], est[trials/2], covered, trials)
			if covered < trials*95/100 {
				t.Errorf("estimate covers the actual error in only %d of %d trials", covered, trials)
			}
			if ratio < 0.7 || ratio > 6 {
				t.Errorf("median estimate / median actual error = %.2f: not a sane estimate", ratio)
			}
		})
	}
}

func TestTriangulateRefusals(t *testing.T) {
	fire := orb.Point{107.2, 31.3}
	a := destination(fire, 180, 9000)
	cases := []struct {
		name string
		s    []Sighting
		want error
		msg  string
	}{
		{"one sighting", []Sighting{sight(a, fire, 0)}, errs.ErrInvalid, "at least 2"},
		{"cameras 50 m apart", []Sighting{sight(a, fire, 0), sight(destination(a, 90, 50), fire, 0)}, ErrBaselineTooShort, "50 m apart"},
		{"rays cross at ~2°", []Sighting{sight(destination(fire, 180, 30000), fire, 0), sight(destination(destination(fire, 180, 30000), 90, 1000), fire, 0)},
			ErrAngleTooNarrow, "need 10.0°"},
		{"parallel rays", []Sighting{{Lat: 31, Lon: 107, BearingDeg: 45}, {Lat: 31, Lon: 107.1, BearingDeg: 225}}, ErrAngleTooNarrow, ""},
		{"rays meet behind the cameras", []Sighting{{Lat: 31, Lon: 107, BearingDeg: 300}, {Lat: 31, Lon: 107.01, BearingDeg: 60}}, ErrNoIntersection, "behind camera"},
		{"NaN bearing", []Sighting{{Lat: 31, Lon: 107, BearingDeg: math.NaN()}, sight(a, fire, 0)}, errs.ErrInvalid, "sighting 1"},
		{"bad latitude", []Sighting{{Lat: 95, Lon: 107, BearingDeg: 10}, sight(a, fire, 0)}, errs.ErrInvalid, "sighting 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Triangulate(c.s, 100, 10)
			if !errors.Is(err, c.want) || !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("err = %v, want %v (wrapping errs.ErrInvalid)", err, c.want)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err %q does not say %q", err, c.msg)
			}
		})
	}
	// A close pair is fine when a third camera gives a long baseline.
	b := destination(fire, 270, 12000)
	s := []Sighting{sight(a, fire, 0), sight(destination(a, 90, 50), fire, 0), sight(b, fire, 0)}
	if f, err := Triangulate(s, 100, 10); err != nil || Distance(orb.Point{f.Lon, f.Lat}, fire) > 2 {
		t.Errorf("three cameras with one close pair: %+v, %v", f, err)
	}
}

func TestGeodesic(t *testing.T) {
	// Vincenty's own test line (Flinders Peak → Buninyong), published distance
	// 54 972.271 m and initial azimuth 306°52′05.37″.
	dms := func(d, m, s float64) float64 { return math.Copysign(math.Abs(d)+m/60+s/3600, d) }
	fp := orb.Point{dms(144, 25, 29.52440), dms(-37, 57, 3.72030)}
	bu := orb.Point{dms(143, 55, 35.38390), dms(-37, 39, 10.15610)}
	d, az := inverse(fp, bu)
	if math.Abs(d-54972.271) > 0.001 {
		t.Errorf("distance %.4f m, want 54972.271", d)
	}
	if math.Abs(az-dms(306, 52, 5.37)) > 0.5/3600 {
		t.Errorf("azimuth %.6f°, want 306°52′05.37″", az)
	}
	if got := destination(fp, dms(306, 52, 5.37), 54972.271); Distance(got, bu) > 0.01 {
		t.Errorf("destination misses Buninyong by %.3f m", Distance(got, bu))
	}
	// shortDistance agrees with Vincenty within millimetres up to the 5 km
	// search radius and centimetres up to 20 km.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		a := orb.Point{100 + rng.Float64()*20, 20 + rng.Float64()*30}
		r := rng.Float64() * 20000
		b := destination(a, rng.Float64()*360, r)
		tol := 0.05
		if r <= 5000 {
			tol = 0.002
		}
		if diff := math.Abs(shortDistance(a, b) - Distance(a, b)); diff > tol {
			t.Fatalf("shortDistance(%v, %v) off by %.4f m", a, b, diff)
		}
	}
	// ECEF round trip.
	p := orb.Point{107.123456, 31.654321}
	if q := fromECEF(toECEF(p)); math.Abs(q[0]-p[0]) > 1e-10 || math.Abs(q[1]-p[1]) > 1e-10 {
		t.Errorf("ECEF round trip %v → %v", p, q)
	}
}

func TestGCJ02(t *testing.T) {
	// Published test vectors of the GCJ-02 forward transform (eviltransform,
	// coordtransform): WGS84 → GCJ-02, lon/lat.
	cases := []struct{ wgs, gcj orb.Point }{
		{orb.Point{116.404, 39.915}, orb.Point{116.41024449916938, 39.91640428150164}},
		{orb.Point{121.5272106, 31.1774276}, orb.Point{121.531541859215, 31.17530398364597}},
		{orb.Point{113.912316, 22.543847}, orb.Point{113.9171764808363, 22.540796131694766}},
		{orb.Point{116.377817, 39.911954}, orb.Point{116.38404722455657, 39.91334545536069}},
	}
	for _, c := range cases {
		g := WGS84ToGCJ02(c.wgs)
		if math.Abs(g[0]-c.gcj[0]) > 1e-9 || math.Abs(g[1]-c.gcj[1]) > 1e-9 {
			t.Errorf("WGS84ToGCJ02(%v) = %v, want %v", c.wgs, g, c.gcj)
		}
		w := GCJ02ToWGS84(c.gcj)
		if math.Abs(w[0]-c.wgs[0]) > 1e-8 || math.Abs(w[1]-c.wgs[1]) > 1e-8 {
			t.Errorf("GCJ02ToWGS84(%v) = %v, want %v", c.gcj, w, c.wgs)
		}
	}
	for _, p := range []orb.Point{{2.35, 48.85}, {-74, 40.7}, {150, -33.9}} {
		if GCJ02ToWGS84(p) != p || WGS84ToGCJ02(p) != p {
			t.Errorf("%v outside China changed", p)
		}
	}
}
