package geo

import (
	"cmp"
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
// shell or overlaps another hole (wholly or in part, also where they only
// meet at points), when polygons of one MultiPolygon cross, overlap or lie
// inside one another, or when a ring has fewer than 3 distinct positions (no
// area: a point-sized forest or hole).
// Rings may touch at a point (a hole meeting the shell at a vertex is common
// in forest inventories), polygons of one MultiPolygon may share stretches of
// border with one on each side (administrative outlines do), and repeated
// consecutive positions are allowed.
//
// The crossing test buckets the polygon's edges in a uniform grid of cells
// about twice the mean edge long and compares only edges that share a cell
// (each pair once, in the cell where their bounds' overlap begins): a few
// comparisons per edge, however jagged the outline.

// distinctPositions counts the distinct positions of r, stopping at limit
// (small: each position is compared with those already found). A ring needs
// three to enclose an area; with fewer it is a point or a spike, which the
// crossing test would let through when every edge repeats one position.
func distinctPositions(r orb.Ring, limit int) int {
	var buf [4]orb.Point
	found := buf[:0]
	for _, p := range r {
		if !slices.Contains(found, p) {
			if found = append(found, p); len(found) >= limit {
				break
			}
		}
	}
	return len(found)
}

// crossings returns the first crossing or overlap among edges, in grid order.
// When touches is not nil, it also collects where edges of different rings
// meet without crossing (see touchPoints).
func crossings(edges []vedge, ringName func(int32) string, touches *[]touchAt) error {
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
				if touches != nil && o.ring != e.ring {
					*touches = touchPoints(*touches, o, e, in[x], in[y])
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
// rings crossing, rings of one polygon overlapping, a hole reaching outside
// its shell or overlapping another hole (see holeAtTouch), or one polygon of
// the MultiPolygon lying inside or overlapping another (see overlapAtTouch).
// Rings may touch at points, polygons may share stretches of border (real
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
	var touches []touchAt
	var shell []int32 // per ring, its polygon's outer ring
	for pi, pg := range mp {
		for ri, r := range pg {
			g := int32(len(refs))
			refs = append(refs, ringRef{pi, ri})
			shell = append(shell, g-int32(ri))
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
	if err := crossings(edges, ringName, &touches); err != nil {
		return err
	}
	// Where rings meet without crossing, a hole may pass out of its shell or
	// into another hole (through a shared vertex, or from a vertex on the
	// other's edge): the test below, one vertex per ring, cannot see that
	// (see holeAtTouch).
	var left []bool
	if len(touches) > 0 {
		slices.SortFunc(touches, compareTouches)
		left = make([]bool, len(refs))
		for g, rr := range refs {
			left[g] = (ringArea(mp[rr.poly][rr.ring]) > 0) == (rr.ring == 0)
		}
		if h, o, at, ok := holeAtTouch(edges, touches, left, shell); ok {
			if o == shell[h] {
				return fmt.Errorf("%s reaches outside the outer ring at %v", ringName(h), at)
			}
			return fmt.Errorf("%s overlaps %s at %v", ringName(min(h, o)), ringName(max(h, o)), at)
		}
		if a, b, at, ok := loopOfTouches(edges, touches, shell); ok {
			return fmt.Errorf("%s touches %s at %v, closing a loop of touching rings: it cuts the polygon's inside in pieces (make each piece its own polygon)",
				ringName(max(a, b)), ringName(min(a, b)), at)
		}
	}
	// No edges cross and no ring passes into another where they meet, so one
	// vertex of a ring off another ring's boundary tells on which side of it
	// the whole ring lies.
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
	// Where two polygons meet, their boundaries may pass into each other
	// (through a shared vertex, or from a vertex on the other's edge) or
	// share a stretch of border with both on the same side of it: the test
	// below, one vertex per ring, cannot see that (see overlapAtTouch).
	if len(mp) > 1 && len(touches) > 0 {
		if a, b, at, ok := overlapAtTouch(edges, touches, left); ok {
			return fmt.Errorf("polygon %d overlaps polygon %d at %v", a+1, b+1, at)
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

// Overlap where polygons touch.
//
// When no edges cross, two polygons of a MultiPolygon can still overlap where
// their boundaries meet — at a shared vertex, at a vertex of one on an edge of
// the other, along a shared stretch — and pass into each other there, or run
// along each other with both interiors on the same side. Testing one interior
// point per polygon is not enough (the square (0,0)–(4,4) and the triangle
// (0,0), (4,4), (-4,4) share half of each, so an interior point of either may
// well lie outside the other), nor are all vertices and edge midpoints (two
// parallelograms crossed like a pinwheel, meeting only at the corners of their
// common square, show it to neither).
//
// What is enough: every region common to both polygons has corners, each a
// vertex of one of them, either strictly inside the other polygon or on its
// boundary. So look at every point where the boundaries meet, at the edges
// leaving it: going round the point, each edge says on which side its
// polygon's interior lies, and the polygons overlap there when some angular
// gap between consecutive edges is inside both. When no such point shows an
// overlap, no ring passes between the inside and the outside of the other
// polygon, so checkAreas's one-vertex test settles the rest (a polygon
// wholly inside another). Only the points where polygons meet are examined:
// nothing for a Polygon or for a MultiPolygon whose parts do not touch, a
// few edges per shared vertex for one whose parts do.

// touchAt is a point where an edge of one ring meets an edge of another ring
// without crossing it.
type touchAt struct {
	at   orb.Point
	edge int32 // index into the edges under validation
}

// touchPoints appends where edges o and e (of different rings, not
// crossing) meet: each end of one lying on the other, with both edges. The
// test is crossing's (the same orient), so what it called a touch or a shared
// stretch is found here.
func touchPoints(dst []touchAt, o, e *vedge, oi, ei int32) []touchAt {
	for _, p := range [...]orb.Point{e.a, e.b} {
		if onEdge(p, o) {
			dst = append(dst, touchAt{p, oi}, touchAt{p, ei})
		}
	}
	for _, p := range [...]orb.Point{o.a, o.b} {
		if p != e.a && p != e.b && onEdge(p, e) { // a shared end is in already
			dst = append(dst, touchAt{p, oi}, touchAt{p, ei})
		}
	}
	return dst
}

// compareTouches orders touch points by position (coordinates are finite),
// then edge.
func compareTouches(x, y touchAt) int {
	switch {
	case x.at[0] < y.at[0]:
		return -1
	case x.at[0] > y.at[0]:
		return 1
	case x.at[1] < y.at[1]:
		return -1
	case x.at[1] > y.at[1]:
		return 1
	}
	return cmp.Compare(x.edge, y.edge)
}

// onEdge tells whether p lies on edge e (ends included).
func onEdge(p orb.Point, e *vedge) bool {
	return p[0] >= e.minX && p[0] <= e.maxX && p[1] >= e.minY && p[1] <= e.maxY && orient(e.a, e.b, p) == 0
}

// ringArea is twice the signed area of r (> 0: counterclockwise), summed
// relative to its first position to keep the products small.
func ringArea(r orb.Ring) float64 {
	s := 0.0
	o := r[0]
	for i := 1; i+2 < len(r); i++ {
		s += orient(o, r[i], r[i+1])
	}
	return s
}

// touchRay is one boundary edge leaving a touch point, towards to.
type touchRay struct {
	to   orb.Point
	edge int32
	poly int32
	ring int32
	in   bool // the polygon's interior lies counterclockwise of the ray
}

// raysAt gathers the rays leaving the first touch point of touches (sorted by
// point, then edge), sorted by sortRays, into rays; n is how many touches it
// took. left tells, per ring, whether its polygon's interior lies left of its
// edges.
func raysAt(edges []vedge, touches []touchAt, left []bool, rays []touchRay) (v orb.Point, out []touchRay, n int) {
	v = touches[0].at
	rays = rays[:0]
	for ; n < len(touches) && touches[n].at == v; n++ {
		if n > 0 && touches[n].edge == touches[n-1].edge {
			continue // the same edge again (sorted by edge within a point)
		}
		k := touches[n].edge
		e := &edges[k]
		l := left[e.ring]
		if e.a != v { // the edge arrives at v from e.a (or passes through v)
			rays = append(rays, touchRay{e.a, k, e.poly, e.ring, !l})
		}
		if e.b != v {
			rays = append(rays, touchRay{e.b, k, e.poly, e.ring, l})
		}
	}
	sortRays(v, rays)
	return v, rays, n
}

// overlapAtTouch looks at every touch point (touches sorted by point, then
// edge) for two polygons whose interiors meet there; left tells, per ring,
// whether its polygon's interior lies left of its edges.
func overlapAtTouch(edges []vedge, touches []touchAt, left []bool) (a, b int32, at orb.Point, ok bool) {
	var rays []touchRay
	var polys []int32
	for len(touches) > 0 {
		var v orb.Point
		var n int
		v, rays, n = raysAt(edges, touches, left, rays)
		touches = touches[n:]
		polys = polys[:0]
		for k := range rays {
			if !slices.Contains(polys, rays[k].poly) {
				polys = append(polys, rays[k].poly)
			}
		}
		for x := range polys {
			for y := x + 1; y < len(polys); y++ {
				if sectorsMeet(v, edges, rays, polys[x], polys[y]) {
					return min(polys[x], polys[y]), max(polys[x], polys[y]), v, true
				}
			}
		}
	}
	return 0, 0, orb.Point{}, false
}

// Holes where rings meet.
//
// The same blind spot inside one polygon: a hole that meets its shell at two
// vertices can pass out of it between them (a diamond hole on a corner of a
// square shell) with its first vertex inside, and a hole whose vertices all
// lie on the shell's boundary has no vertex to judge by at all; two holes
// that touch can overlap the same ways. Edges of different rings never cross,
// so a hole's boundary goes from inside its shell to outside, or into another
// hole, only where the rings meet: it is enough to check, at each such point,
// that the hole's own interior (the inside of its ring) stays within the
// shell's and clear of the other holes'. Going round the point as
// sectorsMeet does, each ring's rays say when the sweep is inside that ring;
// a gap between consecutive directions inside a hole must be inside the
// shell (when the shell passes there: otherwise the point is wholly inside or
// outside it, and the one-vertex test settles it) and inside no other hole.
// Rings may touch at a point: a hole whose sector at the point lies within
// the shell's and beside the other holes' is fine.

// holeAtTouch looks at every touch point (touches sorted by point, then edge)
// for a hole h whose interior reaches outside its polygon's outer ring (o is
// that ring) or overlaps another hole o of its polygon there. left is as for
// overlapAtTouch; shell gives, per ring, its polygon's outer ring. The work
// is linear in the rays at each point but for finding a ring among the rings
// there (a handful).
func holeAtTouch(edges []vedge, touches []touchAt, left []bool, shell []int32) (h, o int32, at orb.Point, ok bool) {
	var rays []touchRay
	var rings []int32 // the rings of one polygon at the point
	var in []bool     // per ring there: is the sweep inside it
	slot := func(g int32) int {
		s := slices.Index(rings, g)
		if s < 0 {
			s = len(rings)
			rings, in = append(rings, g), append(in, false)
		}
		return s
	}
	for len(touches) > 0 {
		var v orb.Point
		var n int
		v, rays, n = raysAt(edges, touches, left, rays)
		touches = touches[n:]
		// each polygon's rays, still in angular order
		slices.SortStableFunc(rays, func(r, s touchRay) int { return cmp.Compare(r.poly, s.poly) })
		for rest := rays; len(rest) > 0; {
			m := 1
			for m < len(rest) && rest[m].poly == rest[0].poly {
				m++
			}
			pr := rest[:m]
			rest = rest[m:]
			// going in at ray 0: the state left by each ring's last ray
			rings, in = rings[:0], in[:0]
			outer := -1 // the outer ring's slot, if it passes here
			for k := range pr {
				s := slot(pr[k].ring)
				in[s] = pr[k].in != (shell[pr[k].ring] != pr[k].ring) // the ring's own inside
				if shell[pr[k].ring] == pr[k].ring {
					outer = s
				}
			}
			if len(rings) < 2 {
				continue
			}
			holesIn := 0
			for s := range rings {
				if s != outer && in[s] {
					holesIn++
				}
			}
			for k := range pr {
				r := &pr[k]
				s := slot(r.ring)
				if now := r.in != (shell[r.ring] != r.ring); now != in[s] {
					in[s] = now
					if s != outer && now {
						holesIn++
					} else if s != outer {
						holesIn--
					}
				}
				if holesIn == 0 || sameDirection(v, edges, r, &pr[(k+1)%len(pr)]) {
					continue
				}
				if holesIn == 1 && (outer < 0 || in[outer]) {
					continue
				}
				var found []int32 // the holes the gap is in
				for s := range rings {
					if s != outer && in[s] {
						found = append(found, rings[s])
					}
				}
				if holesIn > 1 {
					return found[0], found[1], v, true
				}
				return found[0], rings[outer], v, true
			}
		}
	}
	return 0, 0, orb.Point{}, false
}

// loopOfTouches finds rings of one polygon whose touches close a loop: a
// hole touching its shell twice, two holes touching each other twice, or a
// chain of holes from the shell back to it. Such a loop encloses part of the
// polygon's inside and cuts it off from the rest (OGC: a polygon's interior
// is connected). Rings meeting at one point join there once, however many of
// their edges meet; a loop shows as a touch between rings already joined
// (union-find over the rings). touches is sorted by point; shell gives, per
// ring, its polygon's outer ring; a and b are the rings of the first touch
// that closes a loop.
func loopOfTouches(edges []vedge, touches []touchAt, shell []int32) (a, b int32, at orb.Point, ok bool) {
	parent := make([]int32, len(shell))
	for i := range parent {
		parent[i] = int32(i)
	}
	find := func(g int32) int32 {
		for parent[g] != g {
			parent[g] = parent[parent[g]]
			g = parent[g]
		}
		return g
	}
	var here []int32 // the rings meeting at the point
	for i := 0; i < len(touches); {
		v := touches[i].at
		here = here[:0]
		for ; i < len(touches) && touches[i].at == v; i++ {
			if g := edges[touches[i].edge].ring; !slices.Contains(here, g) {
				here = append(here, g)
			}
		}
		for k, g := range here {
			// join g to the first ring of its polygon at this point
			for _, f := range here[:k] {
				if shell[f] == shell[g] {
					if find(f) == find(g) {
						return f, g, v, true
					}
					parent[find(g)] = find(f)
					break
				}
			}
		}
	}
	return 0, 0, orb.Point{}, false
}

// half is 0 for directions from v in [0°, 180°) counterclockwise from east, 1 for [180°, 360°).
func half(v, p orb.Point) int {
	if p[1] > v[1] || p[1] == v[1] && p[0] > v[0] {
		return 0
	}
	return 1
}

// sortRays orders rays counterclockwise by direction, starting east.
func sortRays(v orb.Point, rays []touchRay) {
	slices.SortFunc(rays, func(r, s touchRay) int {
		if hr, hs := half(v, r.to), half(v, s.to); hr != hs {
			return hr - hs
		}
		switch o := orient(v, r.to, s.to); {
		case o > 0:
			return -1
		case o < 0:
			return 1
		}
		return 0
	})
}

// sameDirection tells whether two rays from v point the same way: collinear
// by orient, or along edges that crossing calls a shared stretch (so the
// rounding of orient taken about v cannot open a sliver between them).
func sameDirection(v orb.Point, edges []vedge, r, s *touchRay) bool {
	if r.to == s.to {
		return true
	}
	if half(v, r.to) != half(v, s.to) {
		return false
	}
	return orient(v, r.to, s.to) == 0 || r.poly != s.poly && crossing(&edges[r.edge], &edges[s.edge]) == crossOverlap
}

// sectorsMeet tells whether, near v, polygons pa and pb have interior in
// common: some gap between consecutive ray directions (rays sorted by
// sortRays) inside both.
func sectorsMeet(v orb.Point, edges []vedge, rays []touchRay, pa, pb int32) bool {
	// going in at ray 0: the state left by each polygon's last ray
	inA, inB := false, false
	for k := range rays {
		switch rays[k].poly {
		case pa:
			inA = rays[k].in
		case pb:
			inB = rays[k].in
		}
	}
	for k := range rays {
		switch rays[k].poly {
		case pa:
			inA = rays[k].in
		case pb:
			inB = rays[k].in
		}
		next := &rays[(k+1)%len(rays)]
		if inA && inB && !sameDirection(v, edges, &rays[k], next) {
			return true
		}
	}
	return false
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
