package geo

import (
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/paulmach/orb"
	"github.com/tidwall/rtree"
)

// Nearest-forest index.
//
// Two thirds of a county lies outside every forest, and for each such point
// Locate must find the exact closest boundary point within the search radius.
// Forest outlines are long (thousands of vertices) and jagged, so the search
// is a branch-and-bound over bounding boxes: the cost is not the arithmetic
// but the chain of dependent cache misses from a cell to its candidates to
// their boxes to their vertices (each ≈ 0.2 µs on a 400 MB layer). The index
// keeps that chain short and its links contiguous:
//
//   - every ring's vertices are copied into one arena (rings then point into
//     it), so a run of edges is one sequential read;
//   - a piece is a run of chunkSize edges with its bound; a span is a run of
//     groupSize pieces of one ring with its bound and forest;
//   - a uniform grid over the layer (widened by the search limit) lists, per
//     cell, the spans that can hold the nearest boundary point of some point
//     of the cell, with their bounds inline.
//
// A query reads its cell's list, orders spans by box distance, and within the
// closest span its pieces; the bound prunes the rest after a few dozen edges.
// Bounds are float32 offsets from the grid's origin, rounded outwards, so
// they are never smaller than the true ones and pruning never drops an edge:
// answers are the same as a search over every edge (TestNearGridComplete).
//
// Cells that lie wholly inside one forest have no list (no point of them is
// ever outside) and are flagged: a nearest query there goes to the R-tree.
const (
	nearCellsPerSpan = 8       // grid cells per span: ≈ 5 spans listed per cell on dense layers
	nearMinCells     = 1 << 10 // even a small layer gets a useful grid
	nearMaxCells     = 1 << 21
	nearMaxLat       = 80 // no grid beyond ±80°: degrees of longitude shrink too fast
)

// piece is a run of at most chunkSize consecutive edges of one ring.
type piece struct {
	b box32  // bound: offsets from the index origin, rounded outwards
	v uint32 // arena index of the first vertex
	n uint32 // edges: vertices v … v+n
}

// span is a run of at most groupSize consecutive pieces of one ring.
type span struct {
	b     box32  // bound: offsets from the index origin, rounded outwards
	first uint32 // first piece
	n     uint32 // pieces
	f     int32  // forest index
}

// nearIndex is the nearest-forest index of a forests layer (see above).
type nearIndex struct {
	frame
	limit  float64     // planar metres: lists are complete for searches up to this bound
	verts  []orb.Point // arena: every ring's vertices, ring after ring
	pieces []piece
	spans  []span // every span of the layer (what the tree indexes)
	tree   rtree.RTreeG[int32]
	start  []uint32 // cell k lists list[start[k]:start[k+1]]
	list   []span   // per cell, copies of its candidate spans (bounds inline)
	inside []uint64 // bit k: cell k lies wholly inside a forest (no list)
}

// newNearIndex builds the index of forests layer l (whose containment grid
// must already be built) for searches up to limit planar metres, with about
// `cells` grid cells (≤ 0: sized from the layer). It returns nil when the layer is empty or too close to a
// pole for one local scale per cell.
func newNearIndex(l *layer, bound box, limit float64, cells int) *nearIndex {
	if l.len() == 0 || bound.minY < -nearMaxLat || bound.maxY > nearMaxLat {
		return nil
	}
	kxLo, kyLo, _, _ := scaleRange(bound.minY-limit/1e5, bound.maxY+limit/1e5)
	fb := box{bound.minX - limit/kxLo, bound.minY - limit/kyLo, bound.maxX + limit/kxLo, bound.maxY + limit/kyLo}
	if fb.minY < -nearMaxLat || fb.maxY > nearMaxLat || fb.minX < -180 || fb.maxX > 180 {
		return nil
	}
	n := &nearIndex{limit: limit}
	n.b = fb // the origin of the box32 offsets, needed before the frame is cut
	n.fill(l)
	kxLo, kyLo, kxHi, kyHi := scaleRange(fb.minY, fb.maxY)
	if cells <= 0 {
		cells = min(max(len(n.spans)*nearCellsPerSpan, nearMinCells), nearMaxCells)
	}
	n.frame = newFrame(fb, cells, kxLo, kyLo)
	n.build(l, kxLo, kyLo, kxHi, kyHi)
	return n
}

// fill copies the rings into the arena and cuts them into pieces and spans.
// Rings are visited in eachRing order, which adopt relies on.
func (n *nearIndex) fill(l *layer) {
	total := 0
	l.eachRing(func(_ int32, r *ring) { total += len(r.pts) })
	n.verts = make([]orb.Point, 0, total)
	l.eachRing(func(f int32, r *ring) {
		v0 := len(n.verts)
		n.verts = append(n.verts, r.pts...)
		ne := len(r.pts) - 1
		for s := 0; s < ne; s += chunkSize * groupSize {
			sp := span{first: uint32(len(n.pieces)), f: f}
			sb := emptyBox()
			for c := s; c < min(s+chunkSize*groupSize, ne); c += chunkSize {
				m := min(chunkSize, ne-c)
				pb := emptyBox()
				for _, p := range r.pts[c : c+m+1] {
					pb.extend(p)
				}
				n.pieces = append(n.pieces, piece{n.local(pb), uint32(v0 + c), uint32(m)})
				sb.extend(orb.Point{pb.minX, pb.minY})
				sb.extend(orb.Point{pb.maxX, pb.maxY})
				sp.n++
			}
			sp.b = n.local(sb)
			n.tree.Insert([2]float64{sb.minX, sb.minY}, [2]float64{sb.maxX, sb.maxY}, int32(len(n.spans)))
			n.spans = append(n.spans, sp)
		}
	})
}

// adopt points l's rings at their copies in the arena, so that the layer
// holds its vertices once (l must be the layer the index was built from).
func (n *nearIndex) adopt(l *layer) {
	v := 0
	l.eachRing(func(_ int32, r *ring) {
		k := len(r.pts)
		r.pts = n.verts[v : v+k : v+k]
		v += k
	})
}

// local converts a box in degrees to offsets from the index origin, rounded
// outwards by one more float32 step than the conversion can round.
func (n *nearIndex) local(b box) box32 {
	down := func(v float64) float32 { return math.Nextafter32(float32(v), float32(math.Inf(-1))) }
	up := func(v float64) float32 { return math.Nextafter32(float32(v), float32(math.Inf(1))) }
	return box32{down(b.minX - n.b.minX), down(b.minY - n.b.minY), up(b.maxX - n.b.minX), up(b.maxY - n.b.minY)}
}

// build fills the per-cell lists, rows split over the CPUs.
//
// For a cell with centre c, let d be the distance from c to the nearest
// boundary. Every point p of the cell has a boundary point within
// U = d·ρ + half the cell diagonal (ρ bounds how much the local scale varies
// over the grid), so only spans whose bound is within min(U, limit) of the
// cell can hold p's nearest boundary point within the limit. Distances to
// bounds are taken at the smallest scale on the grid and U at the largest,
// so the lists are supersets of what any point of the cell needs.
func (n *nearIndex) build(l *layer, kxLo, kyLo, kxHi, kyHi float64) {
	rho := math.Max(kxHi/kxLo, kyHi/kyLo)
	halfDiag := math.Hypot(n.dx*kxHi, n.dy*kyHi)/2 + 1e-3
	type rowOut struct {
		counts []uint32
		list   []span
		inside []int
	}
	rows := make([]rowOut, n.ny)
	var wg sync.WaitGroup
	next := make(chan int, n.ny)
	for r := 0; r < n.ny; r++ {
		next <- r
	}
	close(next)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cands []int32
			var in [8]int32
			for r := range next {
				out := rowOut{counts: make([]uint32, n.nx)}
				for c := 0; c < n.nx; c++ {
					cb := n.cellBox(c, r)
					centre := orb.Point{(cb.minX + cb.maxX) / 2, (cb.minY + cb.maxY) / 2}
					kx, ky := metresPerDegree(centre[1])
					cut := n.limit
					if i, d2, _ := n.nearestTree(centre, kx, ky, n.limit*rho+2*halfDiag); i >= 0 {
						d := math.Sqrt(d2)
						if d > 2*halfDiag+1 && len(l.containing(in[:0], centre)) > 0 {
							out.inside = append(out.inside, c)
							continue // no boundary in the cell and its centre is in a forest
						}
						cut = math.Min(cut, d*rho+halfDiag+1e-3)
					}
					dx, dy := cut/kxLo, cut/kyLo
					cands = cands[:0]
					n.tree.Search([2]float64{cb.minX - dx, cb.minY - dy}, [2]float64{cb.maxX + dx, cb.maxY + dy},
						func(min, max [2]float64, s int32) bool {
							if boxGap2(cb, box{min[0], min[1], max[0], max[1]}, kxLo, kyLo) <= cut*cut {
								cands = append(cands, s)
							}
							return true
						})
					slices.Sort(cands)
					for _, s := range cands {
						out.list = append(out.list, n.spans[s])
					}
					out.counts[c] = uint32(len(cands))
				}
				rows[r] = out
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, ro := range rows {
		total += len(ro.list)
	}
	n.start = make([]uint32, n.nx*n.ny+1)
	n.list = make([]span, 0, total)
	n.inside = make([]uint64, (n.nx*n.ny+63)/64)
	for r, ro := range rows {
		for c, k := range ro.counts {
			n.start[r*n.nx+c+1] = n.start[r*n.nx+c] + k
		}
		n.list = append(n.list, ro.list...)
		for _, c := range ro.inside {
			k := r*n.nx + c
			n.inside[k/64] |= 1 << (k % 64)
			n.start[k+1] = n.start[k]
		}
	}
}

// nearest returns the forest whose boundary is closest to p in the local plane
// (kx, ky metres per degree) within planarLimit metres (-1 when none), the
// squared distance and the closest boundary point. planarLimit must not
// exceed n.limit.
func (n *nearIndex) nearest(p orb.Point, kx, ky, planarLimit float64) (int, float64, orb.Point) {
	k, ok := n.cell(p)
	if !ok { // farther than the limit from every bound
		return -1, 0, orb.Point{}
	}
	if n.inside[k/64]&(1<<(k%64)) != 0 {
		return n.nearestTree(p, kx, ky, planarLimit)
	}
	list := n.list[n.start[k]:n.start[k+1]]
	best := planarLimit * planarLimit
	bestF := int32(-1)
	var at orb.Point
	qx, qy := p[0]-n.b.minX, p[1]-n.b.minY
	var buf [64]distIdx
	ds := buf[:0]
	for i := range list {
		if d := list[i].b.dist2(qx, qy, kx, ky); d < best {
			ds = append(ds, distIdx{d, int32(i)})
		}
	}
	for {
		i, ok := nextBelow(ds, best)
		if !ok {
			break
		}
		s := &list[i]
		if n.searchSpan(s, p, qx, qy, kx, ky, &best, &at) {
			bestF = s.f
		}
	}
	return int(bestF), best, at
}

// searchSpan lowers *best and sets *at when an edge of span s is closer
// than *best, visiting its pieces nearest box first; it reports whether it did.
func (n *nearIndex) searchSpan(s *span, p orb.Point, qx, qy, kx, ky float64, best *float64, at *orb.Point) bool {
	before := *best
	var buf [groupSize]distIdx
	cs := buf[:0]
	pieces := n.pieces[s.first : s.first+s.n]
	for c := range pieces {
		if d := pieces[c].b.dist2(qx, qy, kx, ky); d < *best {
			cs = append(cs, distIdx{d, int32(c)})
		}
	}
	for {
		c, ok := nextBelow(cs, *best)
		if !ok {
			break
		}
		pc := &pieces[c]
		nearestOnEdges(n.verts[pc.v:pc.v+pc.n+1], p, kx, ky, best, at)
	}
	return *best < before
}

// nearestTree is nearest over the span R-tree. It serves cells without a
// list and measures the cell centres when the lists are built.
func (n *nearIndex) nearestTree(p orb.Point, kx, ky, planarLimit float64) (int, float64, orb.Point) {
	var at orb.Point
	qx, qy := p[0]-n.b.minX, p[1]-n.b.minY
	i, best := nearestByTree(&n.tree, p, kx, ky, planarLimit,
		func(i int32) float64 { return n.spans[i].b.dist2(qx, qy, kx, ky) },
		func(i int32, best *float64) bool { return n.searchSpan(&n.spans[i], p, qx, qy, kx, ky, best, &at) })
	if i < 0 {
		return -1, best, at
	}
	return int(n.spans[i].f), best, at
}

// nearestOnEdges lowers *best (squared scaled metres) and sets *at to the
// closest point when an edge of the polyline pts is closer than *best.
//
// Vertices first, then the interior of an edge only when its line passes
// closer than the best so far (cross² < best·length², no division) and the
// foot of the perpendicular falls inside it: most edges of a long outline
// cost a dozen multiplications and two well-predicted branches. A vertex is
// measured the same way from both of its edges, so the answer does not
// depend on the order in which runs of edges are visited.
func nearestOnEdges(pts []orb.Point, p orb.Point, kx, ky float64, best *float64, at *orb.Point) {
	bst := *best
	ax, ay := (pts[0][0]-p[0])*kx, (pts[0][1]-p[1])*ky
	if d := ax*ax + ay*ay; d < bst {
		bst, *at = d, pts[0]
	}
	for i := 1; i < len(pts); i++ {
		bx, by := (pts[i][0]-p[0])*kx, (pts[i][1]-p[1])*ky
		if d := bx*bx + by*by; d < bst {
			bst, *at = d, pts[i]
		}
		dx, dy := bx-ax, by-ay
		if cr, l := ax*by-ay*bx, dx*dx+dy*dy; cr*cr < bst*l {
			if u := -(ax*dx + ay*dy); u > 0 && u < l {
				t := u / l
				cx, cy := ax+t*dx, ay+t*dy
				if d := cx*cx + cy*cy; d < bst {
					a, b := pts[i-1], pts[i]
					bst, *at = d, orb.Point{a[0] + t*(b[0]-a[0]), a[1] + t*(b[1]-a[1])}
				}
			}
		}
		ax, ay = bx, by
	}
	*best = bst
}

// eachRing calls fn for every ring (outer rings and holes) of every feature,
// in index order.
func (l *layer) eachRing(fn func(f int32, r *ring)) {
	for i := range l.shapes {
		for k := range l.shapes[i].polys {
			pg := &l.shapes[i].polys[k]
			fn(int32(i), &pg.outer)
			for j := range pg.holes {
				fn(int32(i), &pg.holes[j])
			}
		}
	}
}
