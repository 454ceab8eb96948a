package geo

import (
	"math"
	"slices"
	"sort"

	"github.com/paulmach/orb"
	"github.com/tidwall/rtree"
)

// Index answers point queries against the forests, zones and masks layers.
// It is immutable once built and safe for any number of concurrent readers; a
// layer update builds a new Index (sharing the unchanged layers) and swaps it in.
type Index struct {
	forests, zones, masks *layer
	searchRadiusM         float64
	nearForestM           float64
}

// Location is everything geo knows about a point.
type Location struct {
	Forests       []string `json:"forests"`        // ids of containing forests (index order)
	Zones         []Zone   `json:"zones"`          // zone path, innermost first
	NearestForest string   `json:"nearest_forest"` // outside every forest: nearest within the search radius ("" = none); inside: the first containing forest
	DistanceM     float64  `json:"distance_m"`     // geodesic metres to NearestForest's boundary; 0 inside; -1 when none within radius
	NearForest    bool     `json:"near_forest"`    // inside a forest or within the near-forest buffer
	Mask          string   `json:"mask"`           // id of a known static heat source covering the point, "" if none
}

// newIndex assembles an Index from prepared layers (nil = empty).
func newIndex(cfg Config, forests, zones, masks *layer) *Index {
	if forests == nil {
		forests = emptyLayer(LayerForests)
	}
	if zones == nil {
		zones = emptyLayer(LayerZones)
	}
	if masks == nil {
		masks = emptyLayer(LayerMasks)
	}
	return &Index{forests: forests, zones: zones, masks: masks,
		searchRadiusM: cfg.SearchRadiusM, nearForestM: cfg.NearForestM}
}

// Counts returns the number of features per layer (for status pages and logs).
func (ix *Index) Counts() map[string]int {
	return map[string]int{LayerForests: ix.forests.len(), LayerZones: ix.zones.len(), LayerMasks: ix.masks.len()}
}

// Locate tags a WGS84 point (orb.Point{lon, lat}): containing forests, the zone
// path, the nearest forest within the search radius when outside, and a mask.
func (ix *Index) Locate(p orb.Point) Location {
	loc := Location{DistanceM: -1}
	if checkPoint(p) != nil {
		return loc
	}
	var buf [8]int32
	in, i, d := ix.forestsAt(p, ix.searchRadiusM, buf[:0])
	if len(in) > 0 {
		loc.Forests = make([]string, len(in))
		for k, i := range in {
			loc.Forests[k] = ix.forests.ids[i]
		}
		loc.NearestForest = loc.Forests[0]
		loc.DistanceM = 0
		loc.NearForest = true
	} else if i >= 0 {
		loc.NearestForest = ix.forests.ids[i]
		loc.DistanceM = d
		loc.NearForest = d <= ix.nearForestM
	}
	if zi := ix.innermostZone(p); zi >= 0 {
		loc.Zones = ix.zonePathFrom(zi)
	}
	if ix.masks.len() > 0 {
		if m := ix.masks.containing(buf[:0], p); len(m) > 0 {
			loc.Mask = ix.masks.ids[m[0]]
		}
	}
	return loc
}

// Within reports whether p is inside any forest or within metres of one
// ("near forest": hotspot priority, alert wording).
func (ix *Index) Within(p orb.Point, metres float64) bool {
	if checkPoint(p) != nil || ix.forests.len() == 0 {
		return false
	}
	var buf [8]int32
	in, i, _ := ix.forestsAt(p, metres, buf[:0])
	return len(in) > 0 || i >= 0
}

// forestsAt appends to in the forests containing p (index order) and, when
// there are none, finds the forest whose boundary is closest to p within limit
// metres (-1 when none). Containment comes from the layer's grid (O(1) for
// most points); the nearest search from the nearest-forest index's short
// per-cell list (see nearest.go), or from the R-tree when the limit exceeds
// what the index was prepared for.
func (ix *Index) forestsAt(p orb.Point, limit float64, in []int32) ([]int32, int, float64) {
	l := ix.forests
	if l.len() == 0 {
		return in, -1, -1
	}
	if in = l.containing(in, p); len(in) > 0 {
		return in, -1, 0
	}
	i, d := l.nearestWithin(p, limit)
	return in, i, d
}

// NearZone reports whether p lies in a zone or within metres (geodesic) of
// one: the hotspot importer's area buffer, which keeps pixel centres that
// fall just outside the county line. Exact, like Locate's forest distance.
func (ix *Index) NearZone(p orb.Point, metres float64) bool {
	if checkPoint(p) != nil || ix.zones.len() == 0 {
		return false
	}
	if ix.innermostZone(p) >= 0 {
		return true
	}
	i, _ := ix.zones.nearestWithin(p, metres)
	return i >= 0
}

// nearestWithin returns the feature whose boundary is closest to p and the
// geodesic distance to it, when within limit metres (else -1, -1).
func (l *layer) nearestWithin(p orb.Point, limit float64) (int, float64) {
	if limit < 0 {
		return -1, -1
	}
	kx, ky := metresPerDegree(p[1])
	if kx < 1 {
		kx = 1 // at the poles: keep the search box finite
	}
	// Work on a slightly larger planar limit: the local plane and the geodesic
	// differ by far less than 1 %, and the final answer is re-measured.
	i, _, at := l.nearest(p, kx, ky, planarLimit(limit))
	if i < 0 {
		return -1, -1
	}
	if d := shortDistance(p, at); d <= limit {
		return i, d
	}
	return -1, -1
}

// planarLimit is the local-plane search bound (metres) for a geodesic limit.
func planarLimit(limit float64) float64 { return math.Max(limit, 0)*1.01 + 1 }

// nearest returns the feature whose boundary is closest to p in the local
// plane (kx, ky metres per degree) within planarLimit metres (-1 when none),
// the squared distance and the closest boundary point.
func (l *layer) nearest(p orb.Point, kx, ky, planarLimit float64) (int, float64, orb.Point) {
	if l.near == nil || planarLimit > l.near.limit {
		return l.nearestTree(p, kx, ky, planarLimit)
	}
	return l.near.nearest(p, kx, ky, planarLimit)
}

// nearestTree is nearest over the layer's R-tree of feature bounds.
func (l *layer) nearestTree(p orb.Point, kx, ky, planarLimit float64) (int, float64, orb.Point) {
	var at orb.Point
	i, best := nearestByTree(&l.tree, p, kx, ky, planarLimit,
		func(i int32) float64 { return l.shapes[i].bound.dist2(p, kx, ky) },
		func(i int32, best *float64) bool {
			before := *best
			l.shapes[i].nearest(p, kx, ky, best, &at)
			return *best < before
		})
	return int(i), best, at
}

// nearestByTree is the R-tree form of the nearest search: it searches squares
// around p (kx, ky metres per degree) that grow fourfold from 250 m up to
// planarLimit (most points are near something), measuring the items found
// nearest box first so the bound tightens early and prunes the rest before
// any edge is touched. boxDist2 is an item's squared box distance; measure
// lowers *best (squared metres) and reports whether it did. It returns the
// item holding the best (-1: none within the limit) and the best.
func nearestByTree(tree *rtree.RTreeG[int32], p orb.Point, kx, ky, planarLimit float64,
	boxDist2 func(int32) float64, measure func(int32, *float64) bool) (int32, float64) {
	best := planarLimit * planarLimit
	bestI := int32(-1)
	var seenBuf [16]int32
	seen := seenBuf[:0]
	var candBuf [64]distIdx
	r := math.Min(250, planarLimit)
	for {
		cands := candBuf[:0]
		dx, dy := r/kx, r/ky
		tree.Search([2]float64{p[0] - dx, p[1] - dy}, [2]float64{p[0] + dx, p[1] + dy},
			func(_, _ [2]float64, i int32) bool {
				if d := boxDist2(i); d < best && !slices.Contains(seen, i) {
					cands = append(cands, distIdx{d, i})
				}
				return true
			})
		sortDistIdx(cands)
		for _, c := range cands {
			if c.d >= best {
				break
			}
			seen = append(seen, c.i)
			if measure(c.i, &best) {
				bestI = c.i
			}
		}
		// Everything within r has been seen: done when the best is within r.
		if (bestI >= 0 && best <= r*r) || r >= planarLimit {
			break
		}
		r = math.Min(r*4, planarLimit)
	}
	return bestI, best
}

// innermostZone returns the deepest zone containing p (ties: lowest index), or -1.
func (ix *Index) innermostZone(p orb.Point) int {
	if ix.zones.len() == 0 {
		return -1
	}
	var buf [8]int32
	best := -1
	for _, i := range ix.zones.containing(buf[:0], p) {
		if best < 0 || ix.zones.depth[i] > ix.zones.depth[best] {
			best = int(i)
		}
	}
	return best
}

func (ix *Index) zonePathFrom(i int) []Zone {
	path := make([]Zone, 0, ix.zones.depth[i]+1)
	for {
		z := ix.zones.zones[i]
		path = append(path, z)
		if z.Parent == "" {
			return path
		}
		i = int(ix.zones.byID[z.Parent])
	}
}

// Zone returns a zone by id.
func (ix *Index) Zone(id string) (Zone, bool) {
	i, ok := ix.zones.byID[id]
	if !ok {
		return Zone{}, false
	}
	return ix.zones.zones[i], true
}

// ZonePath returns the zone id and its ancestors, innermost first (nil when
// the id is unknown) — the order in which the 叫应 chain escalates.
func (ix *Index) ZonePath(id string) []Zone {
	i, ok := ix.zones.byID[id]
	if !ok {
		return nil
	}
	return ix.zonePathFrom(int(i))
}

// RayForests returns the forests crossed by a camera's bearing ray from `from`
// along azimuthDeg (clockwise from north) up to rangeM metres, nearest first.
// The ray is the straight segment (in longitude/latitude) to the geodesic end
// point: over 20 km the two differ by well under the width of a compartment.
func (ix *Index) RayForests(from orb.Point, azimuthDeg, rangeM float64) []string {
	l := ix.forests
	if l.len() == 0 || checkPoint(from) != nil || !(rangeM > 0) || math.IsNaN(azimuthDeg) {
		return nil
	}
	to := destination(from, normDeg(azimuthDeg), rangeM)
	sb := emptyBox()
	sb.extend(from)
	sb.extend(to)
	type hit struct {
		t  float64
		id int32
	}
	var hits []hit
	l.tree.Search([2]float64{sb.minX, sb.minY}, [2]float64{sb.maxX, sb.maxY}, func(_, _ [2]float64, i int32) bool {
		s := &l.shapes[i]
		if s.contains(from) {
			hits = append(hits, hit{0, i})
			return true
		}
		if t := s.firstCrossing(from, to, sb); !math.IsInf(t, 1) {
			hits = append(hits, hit{t, i})
		}
		return true
	})
	sort.Slice(hits, func(a, b int) bool {
		if hits[a].t != hits[b].t {
			return hits[a].t < hits[b].t
		}
		return hits[a].id < hits[b].id
	})
	out := make([]string, len(hits))
	for k, h := range hits {
		out[k] = l.ids[h.id]
	}
	return out
}
