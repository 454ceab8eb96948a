package geo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// propertyMap is a forest layer exercising every case the index must get
// right: small rings (linear scan) and rings above the index threshold (slab
// index), holes, MultiPolygon islands (one with a hole), overlapping forests,
// axis-aligned rings whose edges hold exactly representable points, and two
// rectangles sharing an edge.
func propertyMap(rng *rand.Rand) (ids []string, geoms []orb.MultiPolygon) {
	add := func(mp orb.MultiPolygon) {
		ids = append(ids, fmt.Sprintf("f%02d", len(ids)))
		geoms = append(geoms, mp)
	}
	c0 := orb.Point{107.0, 31.0}
	at := func() orb.Point {
		return orb.Point{c0[0] + rng.Float64()*0.2, c0[1] + rng.Float64()*0.2}
	}
	for _, n := range []int{8, 20, 63, 64, 65, 150, 300, 700, 1200, 90, 2000, 33} {
		add(orb.MultiPolygon{{blob(rng, at(), 800+rng.Float64()*1500, n)}})
	}
	for i := 0; i < 4; i++ { // polygons with one or two holes
		c := at()
		outer := blob(rng, c, 2000, 300)
		kx, _ := metresPerDegree(c[1])
		pg := orb.Polygon{outer, blob(rng, orb.Point{c[0] - 600/kx, c[1]}, 300, 80+i*40)}
		if i%2 == 1 {
			pg = append(pg, blob(rng, orb.Point{c[0] + 700/kx, c[1]}, 250, 12))
		}
		add(orb.MultiPolygon{pg})
	}
	for i := 0; i < 3; i++ { // islands
		c := at()
		kx, _ := metresPerDegree(c[1])
		mp := orb.MultiPolygon{
			{blob(rng, c, 700, 100+i*200)},
			{blob(rng, orb.Point{c[0] + 3000/kx, c[1]}, 500, 40)},
			{blob(rng, orb.Point{c[0] - 3500/kx, c[1]}, 900, 500), blob(rng, orb.Point{c[0] - 3500/kx, c[1]}, 200, 70)},
		}
		add(mp)
	}
	// axis-aligned: a square with a square hole, and two squares sharing an edge
	add(orb.MultiPolygon{{rect(107.05, 31.05, 107.07, 31.07), rect(107.055, 31.055, 107.06, 31.06)}})
	add(orb.MultiPolygon{{rect(107.12, 31.02, 107.14, 31.04)}, {rect(107.14, 31.02, 107.16, 31.03)}})
	// a large axis-aligned ring densified above the index threshold
	big := orb.Ring{}
	for i := 0; i <= 100; i++ {
		big = append(big, orb.Point{107.10 + 0.0005*float64(i), 31.15})
	}
	for i := 1; i <= 100; i++ {
		big = append(big, orb.Point{107.15, 31.15 + 0.0005*float64(i)})
	}
	big = append(big, orb.Point{107.10, 31.20}, orb.Point{107.10, 31.15})
	add(orb.MultiPolygon{{big, rect(107.12, 31.17, 107.13, 31.18)}})
	return ids, geoms
}

func loadForests(t testing.TB, ids []string, geoms []orb.MultiPolygon) *Layers {
	t.Helper()
	var feats []*geojson.Feature
	for i, g := range geoms {
		var geom orb.Geometry = g
		if len(g) == 1 {
			geom = g[0]
		}
		feats = append(feats, feat(ids[i], geom, nil))
	}
	l := mustLayers(t, DefaultConfig())
	if err := l.Replace(LayerForests, fc(t, feats...), "wgs84"); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestLocateMatchesBruteForce is the property test: for 100k points inside,
// outside, on edges, on vertices, in holes and on islands, the index answers
// exactly what orb's planar predicates answer feature by feature.
func TestLocateMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	ids, geoms := propertyMap(rng)
	ix := loadForests(t, ids, geoms).Current()

	var rings []orb.Ring
	var axis []orb.Ring
	var holes []orb.Ring
	for _, mp := range geoms {
		for _, pg := range mp {
			rings = append(rings, pg...)
			holes = append(holes, pg[1:]...)
		}
	}
	for _, r := range rings {
		if r[0][0] == r[1][0] || r[0][1] == r[1][1] {
			axis = append(axis, r)
		}
	}
	bounds := make([]orb.Bound, len(geoms))
	for i, mp := range geoms {
		bounds[i] = mp.Bound()
	}
	const n = 100000
	counts := map[string]int{}
	inside := 0
	for k := 0; k < n; k++ {
		var p orb.Point
		var kind string
		switch k % 10 {
		case 0, 1, 2, 3:
			kind = "uniform"
			p = orb.Point{106.97 + rng.Float64()*0.26, 30.97 + rng.Float64()*0.26}
		case 4, 5:
			kind = "vertex"
			r := rings[rng.IntN(len(rings))]
			p = r[rng.IntN(len(r))]
		case 6:
			kind = "edge"
			r := rings[rng.IntN(len(rings))]
			i := rng.IntN(len(r) - 1)
			tt := rng.Float64()
			p = orb.Point{r[i][0] + tt*(r[i+1][0]-r[i][0]), r[i][1] + tt*(r[i+1][1]-r[i][1])}
		case 7:
			kind = "axis-edge" // exactly on an axis-aligned edge
			r := axis[rng.IntN(len(axis))]
			i := rng.IntN(len(r) - 1)
			a, b := r[i], r[i+1]
			if a[0] == b[0] {
				p = orb.Point{a[0], math.Min(a[1], b[1]) + rng.Float64()*math.Abs(b[1]-a[1])}
			} else {
				p = orb.Point{math.Min(a[0], b[0]) + rng.Float64()*math.Abs(b[0]-a[0]), a[1]}
			}
		case 8:
			kind = "hole"
			h := holes[rng.IntN(len(holes))]
			bd := h.Bound()
			p = orb.Point{bd.Min[0] + rng.Float64()*(bd.Max[0]-bd.Min[0]), bd.Min[1] + rng.Float64()*(bd.Max[1]-bd.Min[1])}
		case 9:
			kind = "island"
			mp := geoms[16+rng.IntN(3)]
			bd := mp[rng.IntN(len(mp))][0].Bound()
			p = orb.Point{bd.Min[0] + rng.Float64()*(bd.Max[0]-bd.Min[0]), bd.Min[1] + rng.Float64()*(bd.Max[1]-bd.Min[1])}
		}
		var want []string
		for i, mp := range geoms {
			// orb's RingContains starts with the same bound test; doing it
			// once here only saves time, never changes an answer.
			if !bounds[i].Contains(p) {
				continue
			}
			if bruteContains(mp, p) {
				want = append(want, ids[i])
			}
		}
		got := ix.Locate(p).Forests
		if !slices.Equal(got, want) {
			t.Fatalf("point %d (%s) %v: index says %v, brute force says %v", k, kind, p, got, want)
		}
		if len(want) > 0 {
			inside++
			counts[kind]++
		}
	}
	t.Logf("%d points, %d inside some forest; inside by kind: %v", n, inside, counts)
	// Guard against a degenerate generator: every kind must have produced hits and misses.
	for _, kind := range []string{"uniform", "vertex", "edge", "axis-edge", "hole", "island"} {
		if counts[kind] == 0 {
			t.Errorf("no %s point landed inside a forest: the generator is broken", kind)
		}
	}
	if inside == n || inside < n/10 {
		t.Errorf("inside %d of %d: the mix of inside and outside points is off", inside, n)
	}
}

// TestBoundarySemantics pins the promises on exact boundaries: on an edge or a
// vertex is inside, on a hole's edge is inside, strictly in a hole is outside.
func TestBoundarySemantics(t *testing.T) {
	outer := rect(107.0, 31.0, 107.1, 31.1)
	hole := rect(107.04, 31.04, 107.06, 31.06)
	// a densified copy to exercise the slab index on the same shape
	dense := orb.Ring{}
	for i := 0; i < 100; i++ {
		dense = append(dense, orb.Point{107.2 + 0.001*float64(i), 31.0})
	}
	dense = append(dense, orb.Point{107.3, 31.0}, orb.Point{107.3, 31.1}, orb.Point{107.2, 31.1}, orb.Point{107.2, 31.0})
	l := loadForests(t, []string{"sq", "dense"}, []orb.MultiPolygon{{{outer, hole}}, {{dense}}})
	ix := l.Current()
	cases := []struct {
		name string
		p    orb.Point
		want []string
	}{
		{"interior", orb.Point{107.01, 31.01}, []string{"sq"}},
		{"on bottom edge", orb.Point{107.05, 31.0}, []string{"sq"}},
		{"on left edge", orb.Point{107.0, 31.03}, []string{"sq"}},
		{"on top edge", orb.Point{107.07, 31.1}, []string{"sq"}},
		{"on vertex", orb.Point{107.1, 31.1}, []string{"sq"}},
		{"on first vertex", orb.Point{107.0, 31.0}, []string{"sq"}},
		{"in hole", orb.Point{107.05, 31.05}, nil},
		{"on hole edge", orb.Point{107.04, 31.05}, []string{"sq"}},
		{"on hole vertex", orb.Point{107.06, 31.06}, []string{"sq"}},
		{"just outside", orb.Point{107.1000001, 31.05}, nil},
		{"dense on edge", orb.Point{107.2345, 31.0}, []string{"dense"}},
		{"dense on vertex", orb.Point{107.25, 31.0}, []string{"dense"}},
		{"dense inside", orb.Point{107.25, 31.05}, []string{"dense"}},
		{"dense below", orb.Point{107.25, 30.9999999}, nil},
		{"between", orb.Point{107.15, 31.05}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ix.Locate(c.p).Forests; !slices.Equal(got, c.want) {
				t.Errorf("Locate(%v).Forests = %v, want %v", c.p, got, c.want)
			}
		})
	}
}

// TestDistanceHandComputed checks geodesic distances to known shapes against
// values worked out by hand (meridian arc by Simpson's rule over the WGS84
// meridional radius; parallel arc N·cosφ·Δλ).
func TestDistanceHandComputed(t *testing.T) {
	l := loadForests(t, []string{"sq"}, []orb.MultiPolygon{{{
		rect(107.0, 31.0, 107.1, 31.1),
		rect(107.04, 31.04, 107.06, 31.06),
	}}})
	ix := l.Current()
	cases := []struct {
		name string
		p    orb.Point
		want float64 // metres; -1 = none within the 5 km radius
		tol  float64
	}{
		{"north of top edge by 0.01° lat", orb.Point{107.05, 31.11}, 1108.7127, 0.02},
		{"east of right edge by 0.01° lon", orb.Point{107.11, 31.05}, 954.5440, 0.02},
		{"inside", orb.Point{107.02, 31.02}, 0, 0},
		{"in the hole, 0.01° lon from its side", orb.Point{107.05, 31.05}, 954.5440, 0.02},
		{"in the hole, nearer its top", orb.Point{107.05, 31.059}, 110.8705, 0.02},
		{"beyond the search radius", orb.Point{107.05, 31.2}, -1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			loc := ix.Locate(c.p)
			if math.Abs(loc.DistanceM-c.want) > c.tol {
				t.Errorf("DistanceM = %.4f, want %.4f ± %v", loc.DistanceM, c.want, c.tol)
			}
			if (c.want >= 0) != (loc.NearestForest == "sq") {
				t.Errorf("NearestForest = %q with distance %v", loc.NearestForest, loc.DistanceM)
			}
		})
	}
	// Within: the 500 m buffer and a custom one.
	if ix.Within(orb.Point{107.05, 31.11}, 500) {
		t.Error("Within(1108 m away, 500) = true")
	}
	if !ix.Within(orb.Point{107.05, 31.11}, 1200) {
		t.Error("Within(1108 m away, 1200) = false")
	}
	if !ix.Within(orb.Point{107.02, 31.02}, 0) {
		t.Error("Within(inside, 0) = false")
	}
	if ix.Locate(orb.Point{107.05, 31.11}).NearForest {
		t.Error("NearForest true at 1108 m with a 500 m buffer")
	}
}

// TestNearestMatchesBruteForce: the pruned nearest-edge search returns the
// same distance as scanning every edge of every forest.
func TestNearestMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	ids, geoms := propertyMap(rng)
	ix := loadForests(t, ids, geoms).Current()
	checked := 0
	for k := 0; k < 2000; k++ {
		p := orb.Point{106.95 + rng.Float64()*0.3, 30.95 + rng.Float64()*0.3}
		loc := ix.Locate(p)
		if len(loc.Forests) > 0 {
			continue
		}
		// every edge of every forest, closest point in the local plane, then
		// the winner measured with Vincenty
		best2, bestID, bestQ := math.Inf(1), "", orb.Point{}
		kx, ky := metresPerDegree(p[1])
		for i, mp := range geoms {
			for _, pg := range mp {
				for _, r := range pg {
					for j := 0; j+1 < len(r); j++ {
						q := closestOnSegment(p, r[j], r[j+1], kx, ky)
						dx, dy := (q[0]-p[0])*kx, (q[1]-p[1])*ky
						if d2 := dx*dx + dy*dy; d2 < best2 {
							best2, bestID, bestQ = d2, ids[i], q
						}
					}
				}
			}
		}
		bestD := Distance(p, bestQ)
		if bestD > 5000 {
			if loc.DistanceM != -1 || loc.NearestForest != "" {
				t.Fatalf("%v: nearest %q at %v, brute force finds none within 5 km", p, loc.NearestForest, loc.DistanceM)
			}
			continue
		}
		checked++
		if math.Abs(loc.DistanceM-bestD) > 0.01 {
			t.Fatalf("%v: index distance %.3f m (%s), brute force %.3f m (%s)", p, loc.DistanceM, loc.NearestForest, bestD, bestID)
		}
	}
	if checked < 300 {
		t.Fatalf("only %d outside points within range: generator off", checked)
	}
}

func closestOnSegment(p, a, b orb.Point, kx, ky float64) orb.Point {
	ax, ay := (a[0]-p[0])*kx, (a[1]-p[1])*ky
	bx, by := (b[0]-p[0])*kx, (b[1]-p[1])*ky
	dx, dy := bx-ax, by-ay
	l := dx*dx + dy*dy
	if l == 0 {
		return a
	}
	t := math.Max(0, math.Min(1, -(ax*dx+ay*dy)/l))
	return orb.Point{a[0] + t*(b[0]-a[0]), a[1] + t*(b[1]-a[1])}
}

func testZones(t testing.TB) []byte {
	duty := func(name, phone string) []any {
		return []any{map[string]any{"name": name, "phone": phone, "role": "护林员"}}
	}
	return fc(t,
		feat("c1", orb.Polygon{rect(107.0, 31.0, 107.4, 31.4)}, map[string]any{"name": "县", "level": "county", "duty": duty("张", "13800000001")}),
		feat("t1", orb.Polygon{rect(107.0, 31.0, 107.2, 31.2)}, map[string]any{"name": "镇一", "level": "town", "parent": "c1", "duty": duty("李", "13800000002")}),
		feat("t2", orb.Polygon{rect(107.2, 31.0, 107.4, 31.2)}, map[string]any{"name": "镇二", "level": "town", "parent": "c1"}),
		feat("v1", orb.Polygon{rect(107.0, 31.0, 107.1, 31.1)}, map[string]any{"name": "村一", "level": "village", "parent": "t1", "duty": duty("王", "13800000003")}),
		feat("g1", orb.Polygon{rect(107.0, 31.0, 107.05, 31.05)}, map[string]any{"name": "网格一", "level": "grid", "parent": "v1"}),
	)
}

func TestZonesAndMasks(t *testing.T) {
	l := mustLayers(t, DefaultConfig())
	if err := l.Replace(LayerZones, testZones(t), ""); err != nil {
		t.Fatal(err)
	}
	masks := fc(t,
		feat("kiln", orb.Point{107.3, 31.1}, map[string]any{"radius_m": 200.0}),
		feat("plant", orb.Polygon{rect(107.01, 31.01, 107.02, 31.02)}, nil),
	)
	if err := l.Replace(LayerMasks, masks, ""); err != nil {
		t.Fatal(err)
	}
	ix := l.Current()
	path := func(zs []Zone) []string {
		var out []string
		for _, z := range zs {
			out = append(out, z.ID)
		}
		return out
	}
	cases := []struct {
		p    orb.Point
		zone []string
		mask string
	}{
		{orb.Point{107.005, 31.005}, []string{"g1", "v1", "t1", "c1"}, ""},
		{orb.Point{107.01, 31.01}, []string{"g1", "v1", "t1", "c1"}, "plant"}, // on the mask's corner
		{orb.Point{107.015, 31.015}, []string{"g1", "v1", "t1", "c1"}, "plant"},
		{orb.Point{107.07, 31.07}, []string{"v1", "t1", "c1"}, ""},
		{orb.Point{107.15, 31.15}, []string{"t1", "c1"}, ""},
		{orb.Point{107.3, 31.1}, []string{"t2", "c1"}, "kiln"},
		{orb.Point{107.3, 31.1015}, []string{"t2", "c1"}, "kiln"}, // ~166 m north: inside the 200 m disc
		{orb.Point{107.3, 31.1025}, []string{"t2", "c1"}, ""},     // ~277 m north: outside
		{orb.Point{107.3, 31.3}, []string{"c1"}, ""},
		{orb.Point{108, 31.3}, nil, ""},
	}
	for _, c := range cases {
		loc := ix.Locate(c.p)
		if got := path(loc.Zones); !slices.Equal(got, c.zone) {
			t.Errorf("%v: zone path %v, want %v", c.p, got, c.zone)
		}
		if loc.Mask != c.mask {
			t.Errorf("%v: mask %q, want %q", c.p, loc.Mask, c.mask)
		}
	}
	z, ok := ix.Zone("v1")
	if !ok || z.Name != "村一" || z.Parent != "t1" || len(z.Duty) != 1 || z.Duty[0].Phone != "13800000003" {
		t.Errorf("Zone(v1) = %+v, %v", z, ok)
	}
	if _, ok := ix.Zone("nope"); ok {
		t.Error("Zone(nope) found")
	}
	if got := path(ix.ZonePath("g1")); !slices.Equal(got, []string{"g1", "v1", "t1", "c1"}) {
		t.Errorf("ZonePath(g1) = %v", got)
	}
	if ix.ZonePath("nope") != nil {
		t.Error("ZonePath(nope) not nil")
	}
}

func TestRayForests(t *testing.T) {
	// Three compartments east of a camera, one north, one beyond range.
	l := loadForests(t, []string{"near", "mid", "north", "far", "home"}, []orb.MultiPolygon{
		{{rect(107.02, 30.99, 107.03, 31.01)}},
		{{blob(rand.New(rand.NewPCG(1, 1)), orb.Point{107.08, 31.0}, 800, 300)}},
		{{rect(106.99, 31.05, 107.01, 31.06)}},
		{{rect(107.3, 30.99, 107.31, 31.01)}},
		{{rect(106.995, 30.995, 107.005, 31.005)}},
	})
	ix := l.Current()
	cam := orb.Point{107.0, 31.0}
	cases := []struct {
		az   float64
		want []string
	}{
		{90, []string{"home", "near", "mid"}}, // far is ~29 km east: beyond 20 km
		{0, []string{"home", "north"}},
		{180, []string{"home"}},
		{450, []string{"home", "near", "mid"}},
	}
	for _, c := range cases {
		if got := ix.RayForests(cam, c.az, 20000); !slices.Equal(got, c.want) {
			t.Errorf("RayForests(az %v) = %v, want %v", c.az, got, c.want)
		}
	}
	if got := ix.RayForests(orb.Point{107.025, 31.05}, 180, 20000); !slices.Equal(got, []string{"near"}) {
		t.Errorf("ray south through near: %v, want [near]", got)
	}
	if got := ix.RayForests(cam, 90, 5000); !slices.Equal(got, []string{"home", "near"}) {
		t.Errorf("5 km ray east: %v, want [home near]", got)
	}
}

func TestLocateRejectsBadPoints(t *testing.T) {
	ix := loadForests(t, []string{"a"}, []orb.MultiPolygon{{{rect(0, 0, 1, 1)}}}).Current()
	for _, p := range []orb.Point{{math.NaN(), 0}, {0, math.Inf(1)}, {200, 0}, {0, -91}} {
		loc := ix.Locate(p)
		if loc.Forests != nil || loc.DistanceM != -1 {
			t.Errorf("Locate(%v) = %+v", p, loc)
		}
		if ix.Within(p, 1000) {
			t.Errorf("Within(%v) = true", p)
		}
	}
}

// TestNearZoneMatchesBruteForce: "in a zone or within metres of one" (the
// hotspot area buffer) agrees with orb containment plus a scan of every zone
// edge, around the seed county, for buffers from 0 to 2 km.
func TestNearZoneMatchesBruteForce(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Zones = LayerFile{Path: "../seeds/zones.geojson"}
	ix := mustLayers(t, cfg).Current()
	data, err := os.ReadFile(cfg.Zones.Path)
	if err != nil {
		t.Fatal(err)
	}
	coll, err := geojson.UnmarshalFeatureCollection(data)
	if err != nil {
		t.Fatal(err)
	}
	var zones []orb.MultiPolygon
	all := orb.Bound{Min: orb.Point{180, 90}, Max: orb.Point{-180, -90}}
	for _, f := range coll.Features {
		switch g := f.Geometry.(type) {
		case orb.Polygon:
			zones = append(zones, orb.MultiPolygon{g})
		case orb.MultiPolygon:
			zones = append(zones, g)
		}
		all = all.Union(f.Geometry.Bound())
	}
	if len(zones) < 10 {
		t.Fatalf("%d zones in the seeds", len(zones))
	}
	rng := rand.New(rand.NewPCG(9, 1))
	var inside, near, far int
	for k := 0; k < 3000; k++ {
		// the county's bound widened by ~3 km on every side
		p := orb.Point{all.Min[0] - 0.03 + rng.Float64()*(all.Max[0]-all.Min[0]+0.06),
			all.Min[1] - 0.03 + rng.Float64()*(all.Max[1]-all.Min[1]+0.06)}
		in := false
		bestD := math.Inf(1)
		kx, ky := metresPerDegree(p[1])
		for _, mp := range zones {
			in = in || bruteContains(mp, p)
			for _, pg := range mp {
				for _, r := range pg {
					for j := 0; j+1 < len(r); j++ {
						bestD = math.Min(bestD, Distance(p, closestOnSegment(p, r[j], r[j+1], kx, ky)))
					}
				}
			}
		}
		for _, m := range []float64{0, 300, 2000} {
			want := in || bestD <= m
			if !in && math.Abs(bestD-m) < 0.05 {
				continue // on the buffer's edge: rounding decides
			}
			if got := ix.NearZone(p, m); got != want {
				t.Fatalf("%v within %v m: NearZone %v; brute force inside=%v, edge at %.2f m", p, m, got, in, bestD)
			}
			switch {
			case in:
				inside++
			case want:
				near++
			default:
				far++
			}
		}
	}
	if inside == 0 || near < 100 || far < 100 {
		t.Fatalf("inside %d, near %d, far %d: the sample misses a case", inside, near, far)
	}
	if empty := newIndex(DefaultConfig(), nil, nil, nil); empty.NearZone(orb.Point{107, 31}, 5000) {
		t.Error("no zone layer: NearZone true")
	}
}
