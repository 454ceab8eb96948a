package geo

import (
	"fmt"
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
	for i := range l.ids {
		bb := l.bound(i)
		l.tree.Insert([2]float64{bb.minX, bb.minY}, [2]float64{bb.maxX, bb.maxY}, int32(i))
	}
	ix := newIndex(DefaultConfig(), l, nil, nil)
	pts := make([]orb.Point, 1<<16)
	for i := range pts {
		pts[i] = orb.Point{origin[0] + rng.Float64()*100000/kx, origin[1] + rng.Float64()*100000/ky}
	}
	return ix, polys, pts
}

// BenchmarkLocate compares Locate on the index with a loop over
// planar.PolygonContains on 10,000 compartments, and prints the ratio and the
// points per second on one core. Targets: ratio ≥ 200, ≥ 1M points/s.
func BenchmarkLocate(b *testing.B) {
	t0 := time.Now()
	ix, polys, pts := county(b, 10000)
	verts := 0
	for _, p := range polys {
		verts += len(p[0])
	}
	b.Logf("fixture: %d polygons, %d vertices, built in %v", len(polys), verts, time.Since(t0).Round(time.Millisecond))
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)

	var indexNs, loopNs, indexCPU, loopCPU float64
	inside := 0
	b.Run("index", func(b *testing.B) {
		in := 0
		c0 := cpuTime()
		for i := 0; b.Loop(); i++ {
			if loc := ix.Locate(pts[i&(len(pts)-1)]); len(loc.Forests) > 0 {
				in++
			}
		}
		indexNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		indexCPU = float64(cpuTime()-c0) / float64(b.N)
		b.ReportMetric(1e9/indexNs, "points/s")
		b.ReportMetric(indexCPU, "cpu-ns/op")
		inside = in * 100 / b.N
	})
	b.Run("loop", func(b *testing.B) {
		c0 := cpuTime()
		for i := 0; b.Loop(); i++ {
			p := pts[i&(len(pts)-1)]
			for _, pg := range polys {
				if planar.PolygonContains(pg, p) {
					break
				}
			}
		}
		loopNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		loopCPU = float64(cpuTime()-c0) / float64(b.N)
		b.ReportMetric(loopCPU, "cpu-ns/op")
	})
	if indexNs > 0 && loopNs > 0 {
		// Wall-clock and process CPU time per point: on a shared machine the
		// CPU figures are the ones that measure the code, not the neighbours.
		b.Logf("Locate: %.0f ns/point wall, %.0f ns/point CPU = %.2fM points/s on one core (%d%% of points inside a forest)",
			indexNs, indexCPU, 1e3/indexCPU, inside)
		b.Logf("loop over planar.PolygonContains: %.0f ns/point wall, %.0f ns/point CPU; ratio %.0f× wall, %.0f× CPU (targets ≥ 200×, ≥ 1M points/s)",
			loopNs, loopCPU, loopNs/indexNs, loopCPU/indexCPU)
		fmt.Printf("geo bench: ratio %.0fx (CPU %.0fx), %.2fM Locate/s on one core (CPU time)\n", loopNs/indexNs, loopCPU/indexCPU, 1e3/indexCPU)
		b.ReportMetric(loopNs/indexNs, "ratio")
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
