package geo

import (
	"math"

	"github.com/paulmach/orb"
)

// Ring indexing.
//
// orb's planar.RingContains first recomputes the ring's bound (a walk over all
// vertices) and then tests every edge. A county's forest compartments have
// thousands of vertices, so a prepared ring keeps its bound, and rings with at
// least indexMinPoints vertices also keep two edge indexes:
//
//   - slabs: the ring's x range cut into equal vertical slabs, each listing the
//     edges whose x range overlaps it. The containment test casts a vertical ray
//     (the same rule as orb's, see edgeTest), which only edges spanning the
//     point's x can cross, so a test touches the few edges of one slab.
//   - chunks: bounding boxes of runs of chunkSize consecutive edges, and of runs
//     of groupSize chunks, for branch-and-bound nearest-edge and ray queries.
//
// tidwall/geometry (tile38) indexes ring segments in a quadtree above 64 points;
// slabs answer the point test in O(1) edges for the compact shapes forests have.
const (
	indexMinPoints = 64
	edgesPerSlab   = 3
	chunkSize      = 16
	groupSize      = 16
)

// box is an axis-aligned bound in degrees.
type box struct{ minX, minY, maxX, maxY float64 }

func (b *box) extend(p orb.Point) {
	b.minX = math.Min(b.minX, p[0])
	b.minY = math.Min(b.minY, p[1])
	b.maxX = math.Max(b.maxX, p[0])
	b.maxY = math.Max(b.maxY, p[1])
}

func emptyBox() box { return box{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)} }

func (b box) contains(p orb.Point) bool {
	return p[0] >= b.minX && p[0] <= b.maxX && p[1] >= b.minY && p[1] <= b.maxY
}

// dist2 is the squared scaled distance (m²) from p to the box; 0 inside.
func (b box) dist2(p orb.Point, kx, ky float64) float64 {
	var dx, dy float64
	if p[0] < b.minX {
		dx = b.minX - p[0]
	} else if p[0] > b.maxX {
		dx = p[0] - b.maxX
	}
	if p[1] < b.minY {
		dy = b.minY - p[1]
	} else if p[1] > b.maxY {
		dy = p[1] - b.maxY
	}
	dx *= kx
	dy *= ky
	return dx*dx + dy*dy
}

func (b box) intersects(o box) bool {
	return b.minX <= o.maxX && o.minX <= b.maxX && b.minY <= o.maxY && o.minY <= b.maxY
}

// ring is a closed ring (pts[0] == pts[len-1]) prepared for queries.
type ring struct {
	pts   []orb.Point
	bound box

	// Slab index (nil for small rings), one allocation: for nslab slabs,
	// slab[0:nslab+1] are offsets into slab itself, and slab k lists the
	// edges slab[slab[k]:slab[k+1]] (edge i joins pts[i] and pts[i+1]).
	// Fields are ordered so that both searches read two cache lines of it.
	slabInv float64 // slabs per degree of longitude
	slab    []int32

	chunks []box32 // chunk c covers edges [c*chunkSize, (c+1)*chunkSize)
	groups []box32 // group g covers chunks [g*groupSize, (g+1)*groupSize)
}

func newRing(pts []orb.Point) ring {
	r := ring{pts: pts, bound: emptyBox()}
	for _, p := range pts {
		r.bound.extend(p)
	}
	if len(pts) < indexMinPoints {
		return r
	}
	ne := len(pts) - 1
	nslab := ne / edgesPerSlab
	width := r.bound.maxX - r.bound.minX
	if width > 0 {
		r.slabInv = float64(nslab) / width
	} else {
		nslab = 1
	}
	// count, prefix-sum, fill: slabOf is monotonic, so an edge with
	// minX <= x <= maxX is always listed in slabOf(x).
	start := make([]int32, nslab+1)
	for i := 0; i < ne; i++ {
		lo, hi := r.edgeSlabs(i, nslab)
		for k := lo; k <= hi; k++ {
			start[k+1]++
		}
	}
	start[0] = int32(nslab + 1)
	for k := 1; k <= nslab; k++ {
		start[k] += start[k-1]
	}
	r.slab = make([]int32, start[nslab])
	copy(r.slab, start)
	fill := start[:nslab]
	for i := 0; i < ne; i++ {
		lo, hi := r.edgeSlabs(i, nslab)
		for k := lo; k <= hi; k++ {
			r.slab[fill[k]] = int32(i)
			fill[k]++
		}
	}
	nc := (ne + chunkSize - 1) / chunkSize
	chunks := make([]box, nc)
	for c := range chunks {
		b := emptyBox()
		end := min((c+1)*chunkSize, ne)
		for i := c * chunkSize; i <= end; i++ {
			b.extend(pts[i])
		}
		chunks[c] = b
	}
	ng := (nc + groupSize - 1) / groupSize
	both := make([]box32, ng+nc) // one allocation: groups, then chunks
	r.groups = both[:ng:ng]
	for g := range r.groups {
		b := emptyBox()
		for c := g * groupSize; c < min((g+1)*groupSize, nc); c++ {
			cb := chunks[c]
			b.extend(orb.Point{cb.minX, cb.minY})
			b.extend(orb.Point{cb.maxX, cb.maxY})
		}
		r.groups[g] = r.local(b)
	}
	r.chunks = both[ng:]
	for c, b := range chunks {
		r.chunks[c] = r.local(b)
	}
	return r
}

// box32 is a chunk or group bound as float32 offsets from the ring bound's
// lower corner, rounded outwards: half the bytes of a box (the nearest search
// is bound by memory traffic), and still never smaller than the true bound,
// so pruning with it cannot drop an edge.
type box32 struct{ minX, minY, maxX, maxY float32 }

// local converts a box inside the ring's bound to a box32. One extra float32
// step outwards also covers the rounding of the float64 offset.
func (r *ring) local(b box) box32 {
	down := func(v float64) float32 { return math.Nextafter32(float32(v), float32(math.Inf(-1))) }
	up := func(v float64) float32 { return math.Nextafter32(float32(v), float32(math.Inf(1))) }
	ox, oy := r.bound.minX, r.bound.minY
	return box32{down(b.minX - ox), down(b.minY - oy), up(b.maxX - ox), up(b.maxY - oy)}
}

// dist2 is the squared scaled distance (m²) from the ring-local point (qx, qy) to the box.
func (b *box32) dist2(qx, qy, kx, ky float64) float64 {
	var dx, dy float64
	if x := float64(b.minX); qx < x {
		dx = x - qx
	} else if x := float64(b.maxX); qx > x {
		dx = qx - x
	}
	if y := float64(b.minY); qy < y {
		dy = y - qy
	} else if y := float64(b.maxY); qy > y {
		dy = qy - y
	}
	dx *= kx
	dy *= ky
	return dx*dx + dy*dy
}

// intersects reports whether the box meets o (a ring-local box).
func (b *box32) intersects(o box) bool {
	return float64(b.minX) <= o.maxX && o.minX <= float64(b.maxX) && float64(b.minY) <= o.maxY && o.minY <= float64(b.maxY)
}

func (r *ring) edgeSlabs(i, nslab int) (lo, hi int) {
	a, b := r.pts[i][0], r.pts[i+1][0]
	if a > b {
		a, b = b, a
	}
	return r.slabOf(a, nslab), r.slabOf(b, nslab)
}

func (r *ring) slabOf(x float64, nslab int) int {
	k := int((x - r.bound.minX) * r.slabInv)
	if k < 0 {
		return 0
	}
	if k >= nslab {
		return nslab - 1
	}
	return k
}

// contains reports whether p is inside the ring or on its boundary (on).
func (r *ring) contains(p orb.Point) (in, on bool) {
	if !r.bound.contains(p) {
		return false, false
	}
	c := false
	if r.slab == nil {
		for i := 0; i+1 < len(r.pts); i++ {
			x, o := edgeTest(p, r.pts[i], r.pts[i+1])
			if o {
				return true, true
			}
			if x {
				c = !c
			}
		}
		return c, false
	}
	k := r.slabOf(p[0], int(r.slab[0])-1)
	for _, i := range r.slab[r.slab[k]:r.slab[k+1]] {
		x, o := edgeTest(p, r.pts[i], r.pts[i+1])
		if o {
			return true, true
		}
		if x {
			c = !c
		}
	}
	return c, false
}

// edgeTest is one step of a vertical ray cast: does the ray from p cross the
// edge s–e, and does p lie on it? The decision rule (including nudging p off a
// vertex's x and the slope comparison) is deliberately the same as orb's
// planar.RingContains, so that indexed answers equal orb's bit for bit, also for
// points within a rounding error of an edge. Only edges with min(x) <= p.x <=
// max(x) can answer anything but (false, false), which is what the slab index
// relies on.
func edgeTest(p, s, e orb.Point) (cross, on bool) {
	if s[0] > e[0] {
		s, e = e, s
	}
	px, py := p[0], p[1]
	if px == s[0] {
		if py == s[1] {
			return false, true
		}
		if s[0] == e[0] {
			lo, hi := s[1], e[1]
			if lo > hi {
				lo, hi = hi, lo
			}
			if lo != hi && py >= lo && py <= hi {
				return false, true
			}
		}
		px = math.Nextafter(px, math.Inf(1))
	} else if px == e[0] {
		if py == e[1] {
			return false, true
		}
		px = math.Nextafter(px, math.Inf(1))
	}
	if px < s[0] || px > e[0] {
		return false, false
	}
	if s[1] > e[1] {
		if py > s[1] {
			return false, false
		}
		if py < e[1] {
			return true, false
		}
	} else {
		if py > e[1] {
			return false, false
		}
		if py < s[1] {
			return true, false
		}
	}
	rs := (py - s[1]) / (px - s[0])
	ds := (e[1] - s[1]) / (e[0] - s[0])
	if rs == ds {
		return false, true
	}
	return rs <= ds, false
}

// nearest lowers *best (squared scaled metres) and sets *at to the closest
// boundary point when some edge of the ring is closer than *best.
func (r *ring) nearest(p orb.Point, kx, ky float64, best *float64, at *orb.Point) {
	if r.bound.dist2(p, kx, ky) >= *best {
		return
	}
	ne := len(r.pts) - 1
	if r.chunks == nil {
		r.nearestEdges(p, kx, ky, 0, ne, best, at)
		return
	}
	// best-first over groups, then over the chunks of each group, so the
	// bound tightens after a handful of edges and the rest is pruned.
	var gbuf [32]distIdx
	gs := gbuf[:0]
	qx, qy := p[0]-r.bound.minX, p[1]-r.bound.minY
	for g := range r.groups {
		if d := r.groups[g].dist2(qx, qy, kx, ky); d < *best {
			gs = append(gs, distIdx{d, int32(g)})
		}
	}
	// Process in increasing box distance (ties in index order) by picking the
	// next minimum: usually one or two groups and a few chunks are visited
	// before the bound prunes the rest, so sorting whole lists would cost more.
	for {
		gi, ok := nextBelow(gs, *best)
		if !ok {
			return
		}
		g := int(gi)
		var cbuf [groupSize]distIdx
		cs := cbuf[:0]
		for c := g * groupSize; c < min((g+1)*groupSize, len(r.chunks)); c++ {
			if d := r.chunks[c].dist2(qx, qy, kx, ky); d < *best {
				cs = append(cs, distIdx{d, int32(c)})
			}
		}
		for {
			ci, ok := nextBelow(cs, *best)
			if !ok {
				break
			}
			c := int(ci)
			r.nearestEdges(p, kx, ky, c*chunkSize, min((c+1)*chunkSize, ne), best, at)
		}
	}
}

// nextBelow takes the candidate with the smallest distance (the first of
// equal ones) when that distance is below bound: it returns the candidate's
// index and marks it taken. ok is false when none is left below the bound.
func nextBelow(a []distIdx, bound float64) (i int32, ok bool) {
	k, m := -1, bound
	for j := range a {
		if a[j].d < m {
			k, m = j, a[j].d
		}
	}
	if k < 0 {
		return 0, false
	}
	a[k].d = math.Inf(1)
	return a[k].i, true
}

// distIdx is a candidate (group or chunk) with its box distance.
type distIdx struct {
	d float64
	i int32
}

// sortDistIdx is an insertion sort: the lists are short (≤ a few dozen).
func sortDistIdx(a []distIdx) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j].d < a[j-1].d; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

func (r *ring) nearestEdges(p orb.Point, kx, ky float64, from, to int, best *float64, at *orb.Point) {
	nearestOnEdges(r.pts[from:to+1], p, kx, ky, best, at)
}

// firstCrossing returns the smallest parameter t in [0,1] at which segment
// a→b (in degrees, scaled by kx, ky) meets the ring boundary, or +Inf.
func (r *ring) firstCrossing(a, b orb.Point, sb box) float64 {
	if !r.bound.intersects(sb) {
		return math.Inf(1)
	}
	best := math.Inf(1)
	ne := len(r.pts) - 1
	if r.chunks == nil {
		return r.crossEdges(a, b, 0, ne, best)
	}
	// the segment's bound in ring-local offsets, widened by far more than
	// the rounding of the subtraction
	const eps = 1e-12
	lb := box{sb.minX - r.bound.minX - eps, sb.minY - r.bound.minY - eps, sb.maxX - r.bound.minX + eps, sb.maxY - r.bound.minY + eps}
	for g := range r.groups {
		if !r.groups[g].intersects(lb) {
			continue
		}
		for c := g * groupSize; c < min((g+1)*groupSize, len(r.chunks)); c++ {
			if r.chunks[c].intersects(lb) {
				best = r.crossEdges(a, b, c*chunkSize, min((c+1)*chunkSize, ne), best)
			}
		}
	}
	return best
}

func (r *ring) crossEdges(a, b orb.Point, from, to int, best float64) float64 {
	dx, dy := b[0]-a[0], b[1]-a[1]
	for i := from; i < to; i++ {
		c, d := r.pts[i], r.pts[i+1]
		ex, ey := d[0]-c[0], d[1]-c[1]
		den := dx*ey - dy*ex
		if den == 0 {
			continue // parallel: a touching collinear edge also has a non-parallel neighbour
		}
		fx, fy := c[0]-a[0], c[1]-a[1]
		t := (fx*ey - fy*ex) / den
		u := (fx*dy - fy*dx) / den
		if t >= 0 && t <= 1 && u >= 0 && u <= 1 && t < best {
			best = t
		}
	}
	return best
}
