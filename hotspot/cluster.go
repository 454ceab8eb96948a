package hotspot

import (
	"math"
)

// Geometry and clustering. Hotspots are projected onto a local plane in km
// (sinusoidal around the batch's centre: accurate for a county or a province, which is
// the scale of the zone layer the batch has already been filtered to).

const (
	kmPerDegLat = 110.574
	kmPerDegLon = 111.320 // at the equator
	earthRadius = 6371008.8
)

// project maps lat/lon to km east/north of (lat0, lon0).
func project(lat, lon, lat0, lon0 float64) (x, y float64) {
	return (lon - lon0) * kmPerDegLon * math.Cos(lat*math.Pi/180), (lat - lat0) * kmPerDegLat
}

// unproject is the inverse of project.
func unproject(x, y, lat0, lon0 float64) (lat, lon float64) {
	lat = lat0 + y/kmPerDegLat
	c := math.Cos(lat * math.Pi / 180)
	if c < 1e-9 {
		return lat, lon0
	}
	return lat, lon0 + x/(kmPerDegLon*c)
}

// haversineM is the great-circle distance in metres.
func haversineM(lat1, lon1, lat2, lon2 float64) float64 {
	p1, p2 := lat1*math.Pi/180, lat2*math.Pi/180
	dp, dl := p2-p1, (lon2-lon1)*math.Pi/180
	a := math.Sin(dp/2)*math.Sin(dp/2) + math.Cos(p1)*math.Cos(p2)*math.Sin(dl/2)*math.Sin(dl/2)
	return 2 * earthRadius * math.Asin(math.Min(1, math.Sqrt(a)))
}

// bearingDeg is the initial great-circle bearing from point 1 to point 2, 0 = north, clockwise.
func bearingDeg(lat1, lon1, lat2, lon2 float64) float64 {
	p1, p2 := lat1*math.Pi/180, lat2*math.Pi/180
	dl := (lon2 - lon1) * math.Pi / 180
	y := math.Sin(dl) * math.Cos(p2)
	x := math.Cos(p1)*math.Sin(p2) - math.Sin(p1)*math.Cos(p2)*math.Cos(dl)
	b := math.Atan2(y, x) * 180 / math.Pi
	return math.Mod(b+360, 360)
}

// node is one hotspot in clustering: centre (km), footprint (scan w × track h km,
// scan taken east–west, track north–south as for polar orbiters) and time (unix s).
type node struct {
	x, y, w, h float64
	t          int64
}

// linked reports whether two footprints lie within linkKm of each other (0 = touching
// or overlapping) and their times within windowS seconds.
func linked(a, b *node, linkKm float64, windowS int64) bool {
	dt := a.t - b.t
	if dt < 0 {
		dt = -dt
	}
	if dt > windowS {
		return false
	}
	gx := math.Max(0, math.Abs(a.x-b.x)-(a.w+b.w)/2)
	gy := math.Max(0, math.Abs(a.y-b.y)-(a.h+b.h)/2)
	return gx*gx+gy*gy <= linkKm*linkKm+1e-12
}

// unionFind is a disjoint-set forest with path halving and union by size.
type unionFind struct{ parent, size []int32 }

func newUnionFind(n int) *unionFind {
	u := &unionFind{parent: make([]int32, n), size: make([]int32, n)}
	for i := range u.parent {
		u.parent[i] = int32(i)
		u.size[i] = 1
	}
	return u
}

func (u *unionFind) find(i int32) int32 {
	for u.parent[i] != i {
		u.parent[i] = u.parent[u.parent[i]]
		i = u.parent[i]
	}
	return i
}

func (u *unionFind) union(a, b int32) {
	ra, rb := u.find(a), u.find(b)
	if ra == rb {
		return
	}
	if u.size[ra] < u.size[rb] {
		ra, rb = rb, ra
	}
	u.parent[rb] = ra
	u.size[ra] += u.size[rb]
}

type cellKey struct {
	x, y int32
	t    int64
}

type cell struct {
	key                    cellKey
	members                []int32
	minX, maxX, minY, maxY float64
	minT, maxT             int64
	maxW, maxH             float64
}

// cluster groups nodes into fire events: single linkage over "footprints within linkKm
// and times within window". It runs in near-linear time on dense data: nodes fall into
// fine cells (side linkKm/√2, one window long) whose members are all linked to each
// other and are unioned at once; fine cells are then compared only with fine cells of
// neighbouring coarse cells (side linkKm + largest pixel + fine side), skipping pairs already in one
// set or whose bounding boxes are too far apart. It returns each node's set root.
func cluster(nodes []node, linkKm float64, windowS int64) []int32 {
	n := len(nodes)
	uf := newUnionFind(n)
	if n == 0 {
		return nil
	}
	if windowS < 1 {
		windowS = 1
	}
	allLinked := linkKm > 0
	side := linkKm / math.Sqrt2
	if !allLinked {
		side = 0.1
	}
	maxPix := 0.0
	for i := range nodes {
		maxPix = math.Max(maxPix, math.Max(nodes[i].w, nodes[i].h))
	}
	reach := linkKm + maxPix
	floorDiv := func(v int64) int64 {
		q := v / windowS
		if v%windowS != 0 && v < 0 {
			q--
		}
		return q
	}
	fine := make(map[cellKey]int32, n/4+1)
	var cells []cell
	for i := range nodes {
		nd := &nodes[i]
		k := cellKey{int32(math.Floor(nd.x / side)), int32(math.Floor(nd.y / side)), floorDiv(nd.t)}
		ci, ok := fine[k]
		if !ok {
			ci = int32(len(cells))
			fine[k] = ci
			cells = append(cells, cell{key: k, minX: nd.x, maxX: nd.x, minY: nd.y, maxY: nd.y, minT: nd.t, maxT: nd.t})
		}
		c := &cells[ci]
		c.members = append(c.members, int32(i))
		c.minX, c.maxX = math.Min(c.minX, nd.x), math.Max(c.maxX, nd.x)
		c.minY, c.maxY = math.Min(c.minY, nd.y), math.Max(c.maxY, nd.y)
		c.minT, c.maxT = min(c.minT, nd.t), max(c.maxT, nd.t)
		c.maxW, c.maxH = math.Max(c.maxW, nd.w), math.Max(c.maxH, nd.h)
		if allLinked {
			uf.union(c.members[0], int32(i))
		}
	}
	// Two linked nodes are at most reach apart, so their fine cells' corners are at most
	// reach+side apart: with that coarse side, linked cells are coarse neighbours.
	coarseSide := reach + side
	coarse := make(map[cellKey][]int32, len(cells)/4+1)
	ckey := func(c *cell) cellKey {
		return cellKey{int32(math.Floor(float64(c.key.x) * side / coarseSide)),
			int32(math.Floor(float64(c.key.y) * side / coarseSide)), c.key.t}
	}
	for i := range cells {
		k := ckey(&cells[i])
		coarse[k] = append(coarse[k], int32(i))
	}
	for i := range cells {
		a := &cells[i]
		if !allLinked {
			for p := 0; p < len(a.members); p++ {
				for q := p + 1; q < len(a.members); q++ {
					if linked(&nodes[a.members[p]], &nodes[a.members[q]], linkKm, windowS) {
						uf.union(a.members[p], a.members[q])
					}
				}
			}
		}
		k := ckey(a)
		for dx := int32(-1); dx <= 1; dx++ {
			for dy := int32(-1); dy <= 1; dy++ {
				for dt := int64(-1); dt <= 1; dt++ {
					for _, j := range coarse[cellKey{k.x + dx, k.y + dy, k.t + dt}] {
						if j <= int32(i) {
							continue
						}
						b := &cells[j]
						if allLinked && uf.find(a.members[0]) == uf.find(b.members[0]) {
							continue
						}
						if !cellsMayLink(a, b, linkKm, windowS) {
							continue
						}
						linkCells(nodes, uf, a, b, linkKm, windowS, allLinked)
					}
				}
			}
		}
	}
	roots := make([]int32, n)
	for i := range roots {
		roots[i] = uf.find(int32(i))
	}
	return roots
}

// cellsMayLink is a lower bound test on two cells' bounding boxes.
func cellsMayLink(a, b *cell, linkKm float64, windowS int64) bool {
	if a.minT-b.maxT > windowS || b.minT-a.maxT > windowS {
		return false
	}
	gx := math.Max(0, math.Max(a.minX-b.maxX, b.minX-a.maxX)-(a.maxW+b.maxW)/2)
	gy := math.Max(0, math.Max(a.minY-b.maxY, b.minY-a.maxY)-(a.maxH+b.maxH)/2)
	return gx*gx+gy*gy <= linkKm*linkKm+1e-12
}

// linkCells unions the linked member pairs of two cells; when each cell is already one
// set, the first link is enough.
func linkCells(nodes []node, uf *unionFind, a, b *cell, linkKm float64, windowS int64, allLinked bool) {
	for _, p := range a.members {
		for _, q := range b.members {
			if linked(&nodes[p], &nodes[q], linkKm, windowS) {
				uf.union(p, q)
				if allLinked {
					return
				}
			}
		}
	}
}
