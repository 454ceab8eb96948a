package geo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

// county builds the benchmark fixture: n forest compartments of 200–5,000
// vertices (uniform) over a 100 km × 100 km county, on a jittered 1 km grid so
// that roughly a third of the area is forest. Seeded: every run sees the same map.
func county(b *testing.B, n int) (*Index, []orb.Polygon, []orb.Point) {
	b.Helper()
	rng := rand.New(rand.NewPCG(42, 1))
	origin := orb.Point{106.9, 31.3}
	kx, ky := metresPerDegree(origin[1] + 0.45)
	side := 1
	for side*side < n {
		side++
	}
	cell := 100000.0 / float64(side)
	polys := make([]orb.Polygon, 0, n)
	for i := 0; i < n; i++ {
		cx := (float64(i%side) + 0.3 + 0.4*rng.Float64()) * cell
		cy := (float64(i/side) + 0.3 + 0.4*rng.Float64()) * cell
		c := orb.Point{origin[0] + cx/kx, origin[1] + cy/ky}
		nv := 200 + rng.IntN(4801)
		pg := orb.Polygon{blob(rng, c, cell*(0.25+0.15*rng.Float64()), nv)}
		polys = append(polys, pg)
	}
	// Build the layer directly from geometry (parsing 26M coordinates of JSON
	// would only time encoding/json).
	l := &layer{name: LayerForests, byID: map[string]int32{}}
	for i, pg := range polys {
		l.ids = append(l.ids, fmt.Sprintf("f%d", i))
		l.shapes = append(l.shapes, newShape(orb.MultiPolygon{pg}))
	}
	l.buildIndex(DefaultConfig().SearchRadiusM)
	ix := newIndex(DefaultConfig(), l, nil, nil)
	pts := make([]orb.Point, 1<<16)
	for i := range pts {
		pts[i] = orb.Point{origin[0] + rng.Float64()*100000/kx, origin[1] + rng.Float64()*100000/ky}
	}
	return ix, polys, pts
}

// BenchmarkLocate compares, on 10,000 compartments, a loop over
// planar.PolygonContains with the two index paths: the full Locate
// (containment, zone path, nearest forest and its geodesic distance, as the
// alert and hotspot paths use it) and the containment-only TagPoint (zone and
// forest ids, what ingest stores with every reading). It prints both ratios
// and points per second on one core. Targets: ratio ≥ 200, ≥ 1M points/s.
func BenchmarkLocate(b *testing.B) {
	t0 := time.Now()
	ix, polys, pts := county(b, 10000)
	verts := 0
	for _, p := range polys {
		verts += len(p[0])
	}
	b.Logf("fixture: %d polygons, %d vertices, built and indexed in %v", len(polys), verts, time.Since(t0).Round(time.Millisecond))
	ls := &Layers{cfg: DefaultConfig()}
	ls.cur.Store(ix)
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)

	// per path: wall ns/point, CPU ns/point, % of points inside a forest
	type result struct {
		wall, cpu float64
		inside    int
	}
	res := map[string]result{}
	// the same points squeezed into a 3 km × 3 km corner of the county: the
	// working set (≈ 9 compartments) stays in cache, which shows how much of
	// the county-wide cost is memory latency rather than computation
	corner := orb.Point{math.Inf(1), math.Inf(1)}
	for _, p := range pts {
		corner = orb.Point{math.Min(corner[0], p[0]), math.Min(corner[1], p[1])}
	}
	local := make([]orb.Point, len(pts))
	for i, p := range pts {
		local[i] = orb.Point{corner[0] + (p[0]-corner[0])*0.03, corner[1] + (p[1]-corner[1])*0.03}
	}
	run := func(name string, pts []orb.Point, query func(p orb.Point) bool) {
		b.Run(name, func(b *testing.B) {
			in := 0
			c0 := cpuTime()
			for i := 0; b.Loop(); i++ {
				if query(pts[i&(len(pts)-1)]) {
					in++
				}
			}
			r := result{float64(b.Elapsed().Nanoseconds()) / float64(b.N), float64(cpuTime()-c0) / float64(b.N), in * 100 / b.N}
			res[name] = r
			b.ReportMetric(1e9/r.cpu, "points/s")
			b.ReportMetric(r.cpu, "cpu-ns/op")
		})
	}
	run("locate", pts, func(p orb.Point) bool { return len(ix.Locate(p).Forests) > 0 })
	// each point located twice in a row: the second call finds everything in
	// cache, so (twice − once) is Locate's cost without memory latency
	run("locate-twice", pts, func(p orb.Point) bool { ix.Locate(p); return len(ix.Locate(p).Forests) > 0 })
	run("tag", pts, func(p orb.Point) bool { _, f := ls.TagPoint(p[1], p[0]); return f != "" })
	run("locate-3km", local, func(p orb.Point) bool { return len(ix.Locate(p).Forests) > 0 })
	run("loop", pts, func(p orb.Point) bool {
		for _, pg := range polys {
			if planar.PolygonContains(pg, p) {
				return true
			}
		}
		return false
	})
	loop, ok := res["loop"]
	if !ok {
		return // a -bench filter skipped the baseline
	}
	b.Logf("loop over planar.PolygonContains: %.0f ns/point wall, %.0f ns/point CPU", loop.wall, loop.cpu)
	for _, name := range []string{"locate", "tag"} {
		r, ok := res[name]
		if !ok {
			continue
		}
		// Wall-clock and process CPU time per point: on a shared machine the
		// CPU figures are the ones that measure the code, not the neighbours.
		b.Logf("%s: %.0f ns/point wall, %.0f ns/point CPU = %.2fM points/s on one core (%d%% inside a forest); ratio %.0f× wall, %.0f× CPU (targets ≥ 200×, ≥ 1M points/s)",
			name, r.wall, r.cpu, 1e3/r.cpu, r.inside, loop.wall/r.wall, loop.cpu/r.cpu)
		fmt.Printf("geo bench %s: ratio %.0fx (CPU %.0fx), %.2fM points/s on one core (CPU time)\n",
			name, loop.wall/r.wall, loop.cpu/r.cpu, 1e3/r.cpu)
	}
	if once, ok := res["locate"]; ok {
		if twice, ok := res["locate-twice"]; ok {
			b.Logf("locate with its data in cache (second of two calls on the same point): %.0f ns/point CPU; memory latency: %.0f ns/point",
				twice.cpu-once.cpu, 2*once.cpu-twice.cpu)
		}
	}
	if r, ok := res["locate-3km"]; ok {
		// no ratio: the loop was timed on the county-wide points
		b.Logf("locate-3km (working set in cache): %.0f ns/point CPU = %.2fM points/s on one core (%d%% inside a forest)",
			r.cpu, 1e3/r.cpu, r.inside)
	}
}

// cpuTime is the process's user+system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
