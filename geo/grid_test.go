package geo

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/paulmach/orb"
)

// TestCellGridExact: the containment grid never changes an answer. For grids
// from one cell to cells far smaller than the features, points uniform over
// the map, on vertices, on edges, in holes and exactly on cell lines get the
// same features from the grid as from testing every feature.
func TestCellGridExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 8))
	ids, geoms := propertyMap(rng)
	l := loadForests(t, ids, geoms).Current().forests
	all := emptyBox()
	for i := range l.shapes {
		all.extend(orb.Point{l.shapes[i].bound.minX, l.shapes[i].bound.minY})
		all.extend(orb.Point{l.shapes[i].bound.maxX, l.shapes[i].bound.maxY})
	}
	var verts []orb.Point
	for _, mp := range geoms {
		for _, pg := range mp {
			for _, r := range pg {
				verts = append(verts, r...)
			}
		}
	}
	for _, cells := range []int{1, 37, 1500, 40000, 400000} {
		t.Run(fmt.Sprintf("cells=%d", cells), func(t *testing.T) {
			g := newCellGrid(l.shapes, all, cells)
			covered, edge := 0, 0
			var ents []uint32
			for _, w := range g.cell {
				switch {
				case w&inlineBit != 0:
					ents = append(ents, w&^inlineBit)
				case w != 0:
					ents = append(ents, g.ent[w:w+g.ent[w-1]]...)
				}
			}
			for _, e := range ents {
				if e&coveredBit != 0 {
					covered++
				} else {
					edge++
				}
			}
			if cells >= 1500 && (covered == 0 || edge == 0) {
				t.Fatalf("%d covered and %d edge entries: the grid does not exercise both paths", covered, edge)
			}
			for k := 0; k < 40000; k++ {
				var p orb.Point
				switch k % 4 {
				case 0:
					p = orb.Point{all.minX + rng.Float64()*(all.maxX-all.minX), all.minY + rng.Float64()*(all.maxY-all.minY)}
				case 1:
					p = verts[rng.IntN(len(verts))]
				case 2: // on an edge (within rounding)
					i := rng.IntN(len(verts) - 1)
					a, b := verts[i], verts[i+1]
					f := rng.Float64()
					p = orb.Point{a[0] + f*(b[0]-a[0]), a[1] + f*(b[1]-a[1])}
				case 3: // on a cell line, and on a cell corner
					c, r := rng.IntN(g.nx+1), rng.IntN(g.ny+1)
					p = orb.Point{all.minX + float64(c)*g.dx, all.minY + rng.Float64()*(all.maxY-all.minY)}
					if k%8 == 3 {
						p[1] = all.minY + float64(r)*g.dy
					}
				}
				var got, want []int32
				for _, e := range g.entries(nil, p) {
					i := int32(e &^ coveredBit)
					if e&coveredBit != 0 || l.shapes[i].contains(p) {
						got = append(got, i)
					}
				}
				for i := range l.shapes {
					if l.shapes[i].contains(p) {
						want = append(want, int32(i))
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("point %d %v: grid says %v, every feature says %v", k, p, got, want)
				}
			}
		})
	}
}

// TestNearGridComplete: the nearest index's per-cell lists hold the nearest
// forest for every limit up to the one it was built for: the distance equals
// the one found over the R-tree of rings (which examines every bound in
// range), also in cells flagged as lying inside a forest (which have no list).
func TestNearGridComplete(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	ids, geoms := propertyMap(rng)
	l := loadForests(t, ids, geoms).Current().forests
	if l.near == nil {
		t.Fatal("the forests layer has no nearest index")
	}
	// the index as built for the layer, and one with 250 m cells, many of
	// which lie wholly inside a forest
	fine := newNearIndex(l, l.near.b, l.near.limit, 1<<16)
	for name, n := range map[string]*nearIndex{"default": l.near, "fine": fine} {
		flagged := 0
		for _, w := range n.inside {
			flagged += bits.OnesCount64(w)
		}
		if name == "fine" && flagged == 0 {
			t.Fatal("no cell is flagged inside a forest: the fallback path goes untested")
		}
		found := 0
		for k := 0; k < 20000; k++ {
			// up to ~8 km beyond the map, so some points see nothing in range
			p := orb.Point{106.90 + rng.Float64()*0.4, 30.90 + rng.Float64()*0.4}
			kx, ky := metresPerDegree(p[1])
			for _, limit := range []float64{30, 500, DefaultConfig().SearchRadiusM} {
				pl := planarLimit(limit)
				gi, gd, _ := n.nearest(p, kx, ky, pl)
				ti, td, _ := l.nearestTree(p, kx, ky, pl)
				if (gi < 0) != (ti < 0) || (gi >= 0 && gd != td) {
					t.Fatalf("%s: %v limit %v m: index finds %d at %v m, tree %d at %v m", name, p, limit, gi, math.Sqrt(gd), ti, math.Sqrt(td))
				}
				if gi >= 0 {
					found++
				}
			}
		}
		if found < 10000 {
			t.Fatalf("%s: only %d searches found a forest: the generator is off", name, found)
		}
	}
}
