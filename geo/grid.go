package geo

import (
	"math"
	"slices"

	"github.com/paulmach/orb"
)

// Layer grids.
//
// An R-tree answers "which bounds hold this point" by walking nodes of 64
// rectangles each: dozens of cache lines per query, and it says nothing about
// the polygon itself. A uniform grid over the layer, prepared once per layer
// version, answers most point queries with two array reads:
//
//   - cellGrid (containment): each cell lists the features that may contain a
//     point of the cell, in index order, each flagged "covered" when the whole
//     cell is inside the feature. A cell that no boundary edge comes near has
//     one answer for all its points, so only cells a boundary crosses need the
//     exact ring test; features that cannot contain any point of the cell are
//     not listed at all.
//   - nearIndex (nearest forest, nearest.go): each cell lists the runs of
//     boundary edges that can hold the nearest boundary point (within the
//     search radius) for some point of the cell.
//
// Exactness. The ring test (edgeTest) is orb's rule, and its answers near an
// edge depend on rounding; a grid must never change them. A cell is called
// clear of a ring when no edge of the ring passes within gridMargin (1e-9°,
// 0.1 mm) of it. For points that far from every edge, the rule's rounding
// (relative 2⁻⁵² of an edge's extent, far below 1e-9°) and its nudge of p by
// one ulp cannot change the answer, so it returns the true even-odd
// containment, which is the same for every point of a connected edge-free
// area: one exact test at the cell's centre decides the whole cell (and a run
// of adjacent clear cells). Points map to cells by one floor; the cells used
// at build time are widened by the same margin, far more than the rounding of
// that mapping (≈1e-13°), so every point lies in the cell it was filed under.
const (
	gridMargin = 1e-9 // degrees

	// containment grid: about one cell per gridVertsPerCell vertices, at least
	// gridCellsPerFeature per feature, at most gridMaxCells cells and about
	// gridMaxEntries (feature, cell) entries.
	gridVertsPerCell    = 4
	gridCellsPerFeature = 16
	gridMaxCells        = 1 << 23
	gridMaxEntries      = 1 << 24

	coveredBit = 1 << 31
)

// frame maps points to the cells of a uniform grid over a box.
type frame struct {
	b          box
	dx, dy     float64 // cell size in degrees (0 when the box is flat)
	invX, invY float64 // cells per degree (0 when flat)
	nx, ny     int
}

// newFrame cuts b into about `cells` square-ish cells (in metres at scale kx, ky).
func newFrame(b box, cells int, kx, ky float64) frame {
	f := frame{b: b, nx: 1, ny: 1}
	w, h := (b.maxX-b.minX)*kx, (b.maxY-b.minY)*ky
	cells = max(cells, 1)
	switch {
	case w > 0 && h > 0:
		s := math.Sqrt(w * h / float64(cells))
		f.nx = int(math.Min(math.Ceil(w/s), float64(cells)))
		f.ny = int(math.Min(math.Ceil(h/s), float64(cells)))
	case w > 0:
		f.nx = cells
	case h > 0:
		f.ny = cells
	}
	f.nx, f.ny = max(f.nx, 1), max(f.ny, 1)
	if b.maxX > b.minX {
		f.dx = (b.maxX - b.minX) / float64(f.nx)
		f.invX = 1 / f.dx
	}
	if b.maxY > b.minY {
		f.dy = (b.maxY - b.minY) / float64(f.ny)
		f.invY = 1 / f.dy
	}
	return f
}

func (f *frame) col(x float64) int {
	return clampInt(int(math.Floor((x-f.b.minX)*f.invX)), 0, f.nx-1)
}

func (f *frame) row(y float64) int {
	return clampInt(int(math.Floor((y-f.b.minY)*f.invY)), 0, f.ny-1)
}

// cell returns the cell holding p, or false when p is outside the box.
func (f *frame) cell(p orb.Point) (int, bool) {
	if !f.b.contains(p) {
		return 0, false
	}
	return f.row(p[1])*f.nx + f.col(p[0]), true
}

// cellBox is the box of cell (c, r), widened by gridMargin.
func (f *frame) cellBox(c, r int) box {
	x0, x1 := f.b.minX+float64(c)*f.dx, f.b.minX+float64(c+1)*f.dx
	y0, y1 := f.b.minY+float64(r)*f.dy, f.b.minY+float64(r+1)*f.dy
	if f.dx == 0 {
		x0, x1 = f.b.minX, f.b.maxX
	}
	if f.dy == 0 {
		y0, y1 = f.b.minY, f.b.maxY
	}
	return box{x0 - gridMargin, y0 - gridMargin, x1 + gridMargin, y1 + gridMargin}
}

func clampInt(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// cellGrid is the containment grid of a polygon layer (see the top of the file).
type cellGrid struct {
	frame
	// cell[k] is 0 (no feature), a single entry | inlineBit, or 1 + the
	// offset in ent of a count followed by that many entries. An entry is a
	// feature index, | coveredBit when the whole cell is inside the feature.
	// Most cells hold at most one feature, so most queries read one word.
	cell []uint32
	ent  []uint32
}

const (
	inlineBit  = 1 << 30
	entryLimit = inlineBit // feature indexes and ent offsets stay below this
)

// at returns p's cell entries: one (with inlineBit set, 0 if none) or many.
func (g *cellGrid) at(p orb.Point) (one uint32, many []uint32) {
	k, ok := g.frame.cell(p)
	if !ok {
		return 0, nil
	}
	w := g.cell[k]
	if w == 0 || w&inlineBit != 0 {
		return w, nil
	}
	n := g.ent[w-1]
	return 0, g.ent[w : w+n]
}

// entries appends the entries of p's cell to dst (for tests).
func (g *cellGrid) entries(dst []uint32, p orb.Point) []uint32 {
	one, many := g.at(p)
	if one != 0 {
		return append(dst, one&^inlineBit)
	}
	return append(dst, many...)
}

// newCellGrid builds the containment grid over shapes (all polygons), with
// about `cells` cells (≤ 0: sized from the layer, see the constants); nil when
// the layer is too large to encode.
func newCellGrid(shapes []shape, bound box, cells int) *cellGrid {
	if len(shapes) >= entryLimit {
		return nil
	}
	verts := 0
	var area float64 // sum of feature bound areas, in layer-bound units
	lw, lh := bound.maxX-bound.minX, bound.maxY-bound.minY
	for i := range shapes {
		for _, pg := range shapes[i].polys {
			verts += len(pg.outer.pts)
			for _, h := range pg.holes {
				verts += len(h.pts)
			}
		}
		if lw > 0 && lh > 0 {
			sb := shapes[i].bound
			area += (sb.maxX - sb.minX) * (sb.maxY - sb.minY) / (lw * lh)
		}
	}
	if cells <= 0 {
		cells = max(verts/gridVertsPerCell, len(shapes)*gridCellsPerFeature)
		cells = min(cells, gridMaxCells)
		if area > 0 && float64(cells)*area > gridMaxEntries {
			cells = max(int(gridMaxEntries/area), 1)
		}
	}
	kx, ky := metresPerDegree((bound.minY + bound.maxY) / 2)
	g := &cellGrid{frame: newFrame(bound, cells, math.Max(kx, 1e-3), ky)}

	type cellEnt struct{ cell, ent uint32 }
	var all []cellEnt
	var hit []bool
	for i := range shapes {
		s := &shapes[i]
		c0, c1 := g.col(s.bound.minX-2*gridMargin), g.col(s.bound.maxX+2*gridMargin)
		r0, r1 := g.row(s.bound.minY-2*gridMargin), g.row(s.bound.maxY+2*gridMargin)
		w, h := c1-c0+1, r1-r0+1
		hit = slices.Grow(hit[:0], w*h)[:w*h]
		clear(hit)
		mark := func(rg *ring) {
			for e := 0; e+1 < len(rg.pts); e++ {
				g.markEdge(rg.pts[e], rg.pts[e+1], c0, c1, r0, r1, w, hit)
			}
		}
		for k := range s.polys {
			mark(&s.polys[k].outer)
			for j := range s.polys[k].holes {
				mark(&s.polys[k].holes[j])
			}
		}
		for r := r0; r <= r1; r++ {
			inside, known := false, false
			for c := c0; c <= c1; c++ {
				cell := uint32(r*g.nx + c)
				if hit[(r-r0)*w+(c-c0)] {
					all = append(all, cellEnt{cell, uint32(i)})
					known = false
					continue
				}
				if !known { // first clear cell of a run decides the run
					cb := g.cellBox(c, r)
					inside = s.contains(orb.Point{(cb.minX + cb.maxX) / 2, (cb.minY + cb.maxY) / 2})
					known = true
				}
				if inside {
					all = append(all, cellEnt{cell, uint32(i) | coveredBit})
				}
			}
		}
	}
	// counting sort by cell, stable: each cell's entries stay in index order
	start := make([]uint32, g.nx*g.ny+1)
	for _, ce := range all {
		start[ce.cell+1]++
	}
	for k := 1; k < len(start); k++ {
		start[k] += start[k-1]
	}
	sorted := make([]uint32, len(all))
	fill := slices.Clone(start[:len(start)-1])
	for _, ce := range all {
		sorted[fill[ce.cell]] = ce.ent
		fill[ce.cell]++
	}
	g.cell = make([]uint32, g.nx*g.ny)
	for k := range g.cell {
		switch list := sorted[start[k]:start[k+1]]; len(list) {
		case 0:
		case 1:
			g.cell[k] = list[0] | inlineBit
		default:
			if len(g.ent)+1+len(list) >= entryLimit {
				return nil
			}
			g.cell[k] = uint32(len(g.ent)) + 1
			g.ent = append(g.ent, uint32(len(list)))
			g.ent = append(g.ent, list...)
		}
	}
	return g
}

// markEdge flags, within the window of cells [c0,c1]×[r0,r1] (row stride w),
// every cell that the segment a–b passes within gridMargin of. Column by
// column: the segment's y range over the (widened) column, widened again.
func (g *cellGrid) markEdge(a, b orb.Point, c0, c1, r0, r1, w int, hit []bool) {
	x0, x1 := math.Min(a[0], b[0]), math.Max(a[0], b[0])
	ca := max(g.col(x0-2*gridMargin), c0)
	cb := min(g.col(x1+2*gridMargin), c1)
	for c := ca; c <= cb; c++ {
		ya, yb := a[1], b[1]
		if a[0] != b[0] && g.dx > 0 {
			colBox := g.cellBox(c, 0)
			xa := math.Max(x0, colBox.minX-gridMargin)
			xb := math.Min(x1, colBox.maxX+gridMargin)
			if xa > xb {
				continue
			}
			slope := (b[1] - a[1]) / (b[0] - a[0])
			ya, yb = a[1]+(xa-a[0])*slope, a[1]+(xb-a[0])*slope
		}
		lo, hi := math.Min(ya, yb), math.Max(ya, yb)
		ra := max(g.row(lo-2*gridMargin), r0)
		rb := min(g.row(hi+2*gridMargin), r1)
		for r := ra; r <= rb; r++ {
			hit[(r-r0)*w+(c-c0)] = true
		}
	}
}

// scaleRange returns the smallest and largest metres per degree of longitude
// and latitude between latitudes lat0 and lat1.
func scaleRange(lat0, lat1 float64) (kxLo, kyLo, kxHi, kyHi float64) {
	kxLo, kyLo = math.Inf(1), math.Inf(1)
	lats := []float64{lat0, lat1}
	if lat0 < 0 && lat1 > 0 {
		lats = append(lats, 0)
	}
	for _, lat := range lats {
		kx, ky := metresPerDegree(lat)
		kxLo, kyLo = math.Min(kxLo, kx), math.Min(kyLo, ky)
		kxHi, kyHi = math.Max(kxHi, kx), math.Max(kyHi, ky)
	}
	return kxLo, kyLo, kxHi, kyHi
}

// boxGap2 is the squared scaled distance between two boxes (0 when they meet).
func boxGap2(a, b box, kx, ky float64) float64 {
	dx := math.Max(0, math.Max(a.minX-b.maxX, b.minX-a.maxX)) * kx
	dy := math.Max(0, math.Max(a.minY-b.maxY, b.minY-a.maxY)) * ky
	return dx*dx + dy*dy
}
