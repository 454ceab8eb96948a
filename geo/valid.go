package geo

import (
	"fmt"
	"math"
	"slices"

	"github.com/paulmach/orb"
)

// Polygon validity.
//
// A ring that crosses itself (a bow-tie from a digitising slip) or a hole that
// pokes out of its shell has no single inside: the even-odd rule still gives
// an answer, but not the one the person who drew it meant, and every alert and
// hotspot in that area would be tagged by accident. Layers are refused when a
// polygon's rings cross or overlap one another or themselves, when a ring
// doubles back on itself (a spike of zero width), when a hole lies outside its
// shell, when a hole lies inside another hole, or when polygons of one
// MultiPolygon cross or lie inside one another. Rings may touch at a point (a
// hole meeting the shell at a vertex is common in forest inventories),
// polygons of one MultiPolygon may share stretches of border (administrative
// outlines do), and repeated consecutive positions are allowed.
//
// The crossing test buckets the polygon's edges in a uniform grid of cells
// about twice the mean edge long and compares only edges that share a cell
// (each pair once, in the cell where their bounds' overlap begins): a few
// comparisons per edge, however jagged the outline.

// crossings returns the first crossing or overlap among edges, in grid order.
func crossings(edges []vedge, ringName func(int32) string) error {
	if len(edges) < 2 {
		return nil
	}
	all := box{edges[0].minX, edges[0].minY, edges[0].maxX, edges[0].maxY}
	mean := 0.0
	for i := range edges {
		e := &edges[i]
		all.minX, all.minY = min(all.minX, e.minX), min(all.minY, e.minY)
		all.maxX, all.maxY = max(all.maxX, e.maxX), max(all.maxY, e.maxY)
		mean += max(e.maxX-e.minX, e.maxY-e.minY)
	}
	mean /= float64(len(edges))
	w, h := all.maxX-all.minX, all.maxY-all.minY
	cell := 2 * mean
	if maxCells := 16 * float64(len(edges)); (w/cell+1)*(h/cell+1) > maxCells {
		cell = max((w+h)/maxCells, math.Sqrt(w*h/maxCells))
	}
	if !(cell > 0) {
		cell = 1 // every edge is a point: nothing can cross
	}
	nx, ny := int(w/cell)+1, int(h/cell)+1
	col := func(x float64) int { return min(int((x-all.minX)/cell), nx-1) }
	row := func(y float64) int { return min(int((y-all.minY)/cell), ny-1) }
	start := make([]int32, nx*ny+1)
	for i := range edges {
		e := &edges[i]
		for r := row(e.minY); r <= row(e.maxY); r++ {
			for c := col(e.minX); c <= col(e.maxX); c++ {
				start[r*nx+c+1]++
			}
		}
	}
	for k := 1; k < len(start); k++ {
		start[k] += start[k-1]
	}
	list := make([]int32, start[len(start)-1])
	fill := slices.Clone(start[:len(start)-1])
	for i := range edges {
		e := &edges[i]
		for r := row(e.minY); r <= row(e.maxY); r++ {
			for c := col(e.minX); c <= col(e.maxX); c++ {
				list[fill[r*nx+c]] = int32(i)
				fill[r*nx+c]++
			}
		}
	}
	for k := 0; k < nx*ny; k++ {
		in := list[start[k]:start[k+1]]
		for x := 0; x < len(in); x++ {
			o := &edges[in[x]]
			for y := x + 1; y < len(in); y++ {
				e := &edges[in[y]]
				if o.maxY < e.minY || e.maxY < o.minY || o.maxX < e.minX || e.maxX < o.minX {
					continue
				}
				// the pair is tested in the cell where their overlap begins
				if row(max(o.minY, e.minY))*nx+col(max(o.minX, e.minX)) != k {
					continue
				}
				if err := crossError(o, e, ringName); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// crossError describes how two edges cross or overlap, or returns nil.
func crossError(o, e *vedge, ringName func(int32) string) error {
	switch crossing(o, e) {
	case crossProper:
		if o.ring == e.ring {
			return fmt.Errorf("%s crosses itself near %v", ringName(e.ring), meet(o.a, o.b, e.a, e.b))
		}
		return fmt.Errorf("%s crosses %s near %v", ringName(e.ring), ringName(o.ring), meet(o.a, o.b, e.a, e.b))
	case crossOverlap:
		if o.poly != e.poly {
			return nil // neighbouring polygons of one MultiPolygon sharing a border (DataV outlines do)
		}
		if o.ring == e.ring && adjacent(o, e) {
			return fmt.Errorf("%s doubles back on itself at %v", ringName(e.ring), sharedEnd(o, e))
		}
		if o.ring == e.ring {
			return fmt.Errorf("%s runs over itself near %v", ringName(e.ring), e.a)
		}
		return fmt.Errorf("%s runs along %s near %v", ringName(e.ring), ringName(o.ring), e.a)
	}
	return nil
}

// vedge is one edge of a polygon under validation.
type vedge struct {
	minX, maxX, minY, maxY float64
	a, b                   orb.Point
	ring, idx, n           int32 // ring number, edge index within it, edges in the ring
	poly                   int32 // polygon of the MultiPolygon
}

// checkAreas reports the first way mp is not a valid area (nil if none):
// rings crossing, rings of one polygon overlapping, a hole outside its shell
// or inside another hole, or one polygon of the MultiPolygon overlapping
// another. Polygons may touch and may share stretches of border (real
// administrative outlines do); an island in another polygon's hole is fine.
func checkAreas(mp orb.MultiPolygon) error {
	type ringRef struct{ poly, ring int }
	var refs []ringRef
	ringName := func(g int32) string {
		rr := refs[g]
		name := "outer ring"
		if rr.ring > 0 {
			name = fmt.Sprintf("hole %d", rr.ring)
		}
		if len(mp) > 1 {
			name = fmt.Sprintf("polygon %d %s", rr.poly+1, name)
		}
		return name
	}
	var edges []vedge
	for pi, pg := range mp {
		for ri, r := range pg {
			g := int32(len(refs))
			refs = append(refs, ringRef{pi, ri})
			n := int32(len(r) - 1)
			for i := int32(0); i < n; i++ {
				a, b := r[i], r[i+1]
				if a == b {
					continue // repeated position
				}
				edges = append(edges, vedge{min(a[0], b[0]), max(a[0], b[0]), min(a[1], b[1]), max(a[1], b[1]), a, b, g, i, n, int32(pi)})
			}
		}
	}
	if err := crossings(edges, ringName); err != nil {
		return err
	}
	// No edges cross, so one vertex of a ring off another ring's boundary
	// tells on which side of it the whole ring lies.
	polys := make([]poly, len(mp))
	for pi, pg := range mp {
		polys[pi].outer = newRing(pg[0])
		for _, h := range pg[1:] {
			polys[pi].holes = append(polys[pi].holes, newRing(h))
		}
	}
	name := func(pi, ri int) string {
		for g, rr := range refs {
			if rr.poly == pi && rr.ring == ri {
				return ringName(int32(g))
			}
		}
		return ""
	}
	for pi, pg := range mp {
		for h := 1; h < len(pg); h++ {
			if in, ok := sideOf(pg[h], &polys[pi].outer); ok && !in {
				return fmt.Errorf("%s lies outside the outer ring", name(pi, h))
			}
			for o := 1; o < len(pg); o++ {
				if o == h {
					continue
				}
				if in, ok := sideOf(pg[h], &polys[pi].holes[o-1]); ok && in {
					return fmt.Errorf("%s lies inside %s", name(pi, h), name(pi, o))
				}
			}
		}
	}
	for a := range mp {
		for b := range mp {
			if a != b && insideArea(mp[b][0], &polys[a]) {
				return fmt.Errorf("polygon %d lies inside polygon %d", b+1, a+1)
			}
		}
	}
	return nil
}

// insideArea tells whether ring r (which crosses no ring of pg) lies in pg's
// area — inside its shell and not in one of its holes — judged by r's first
// vertex off every boundary of pg.
func insideArea(r orb.Ring, pg *poly) bool {
	for _, p := range r {
		in, on := pg.outer.contains(p)
		for k := 0; !on && k < len(pg.holes); k++ {
			var inHole bool
			inHole, on = pg.holes[k].contains(p)
			in = in && !inHole
		}
		if !on {
			return in
		}
	}
	return false
}

// sideOf tells whether ring r lies inside ring o, judged by its first vertex
// off o's boundary; ok is false when every vertex is on the boundary.
func sideOf(r orb.Ring, o *ring) (in, ok bool) {
	for _, p := range r {
		if in, on := o.contains(p); !on {
			return in, true
		}
	}
	return false, false
}

type crossKind int

const (
	crossNone    crossKind = iota
	crossProper            // the edges cross at a point inside both
	crossOverlap           // the edges are collinear and share more than a point
)

// crossing classifies two edges. Edges of one ring that follow each other
// share an end, which is never a crossing; they overlap when the ring turns
// back on itself.
func crossing(o, e *vedge) crossKind {
	d1 := orient(o.a, o.b, e.a)
	d2 := orient(o.a, o.b, e.b)
	d3 := orient(e.a, e.b, o.a)
	d4 := orient(e.a, e.b, o.b)
	if d1 == 0 && d2 == 0 { // collinear: do they share more than a point?
		if overlapLen(o.a, o.b, e.a, e.b) > 0 {
			return crossOverlap
		}
		return crossNone
	}
	if (d1 > 0 && d2 < 0 || d1 < 0 && d2 > 0) && (d3 > 0 && d4 < 0 || d3 < 0 && d4 > 0) {
		return crossProper
	}
	return crossNone
}

// orient is twice the signed area of the triangle abc (> 0: c left of a→b).
func orient(a, b, c orb.Point) float64 {
	return (b[0]-a[0])*(c[1]-a[1]) - (b[1]-a[1])*(c[0]-a[0])
}

// overlapLen is the length (in degrees, along the longer axis) shared by two
// collinear segments; 0 when they only touch or are apart.
func overlapLen(a, b, c, d orb.Point) float64 {
	ax := 0
	if max(a[1], b[1])-min(a[1], b[1]) > max(a[0], b[0])-min(a[0], b[0]) {
		ax = 1
	}
	lo := max(min(a[ax], b[ax]), min(c[ax], d[ax]))
	hi := min(max(a[ax], b[ax]), max(c[ax], d[ax]))
	return max(hi-lo, 0)
}

// adjacent reports whether two edges of one ring follow each other.
func adjacent(o, e *vedge) bool {
	d := o.idx - e.idx
	return d == 1 || d == -1 || d == o.n-1 || d == -(o.n-1)
}

// sharedEnd is the vertex between two adjacent edges of one ring: where the
// first (in ring order) ends.
func sharedEnd(o, e *vedge) orb.Point {
	if e.idx == o.idx+1 || (o.idx == o.n-1 && e.idx == 0) {
		return o.b
	}
	return e.b
}

// meet is the crossing point of segments ab and cd (assumed to cross).
func meet(a, b, c, d orb.Point) orb.Point {
	den := (b[0]-a[0])*(d[1]-c[1]) - (b[1]-a[1])*(d[0]-c[0])
	if den == 0 {
		return a
	}
	t := ((c[0]-a[0])*(d[1]-c[1]) - (c[1]-a[1])*(d[0]-c[0])) / den
	return orb.Point{a[0] + t*(b[0]-a[0]), a[1] + t*(b[1]-a[1])}
}
