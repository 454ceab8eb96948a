package geo

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	"github.com/paulmach/orb/planar"
)

// blob returns a closed, simple, star-shaped ring of n vertices around c with
// mean radius rm metres: smooth radial waves plus a little jitter, the way
// forest compartment outlines wander.
func blob(rng *rand.Rand, c orb.Point, rm float64, n int) orb.Ring {
	kx, ky := metresPerDegree(c[1])
	k1, k2 := float64(2+rng.IntN(4)), float64(5+rng.IntN(8))
	p1, p2 := rng.Float64()*2*math.Pi, rng.Float64()*2*math.Pi
	r := make(orb.Ring, n+1)
	for i := 0; i < n; i++ {
		th := 2 * math.Pi * float64(i) / float64(n)
		rad := rm * (1 + 0.2*math.Sin(k1*th+p1) + 0.08*math.Sin(k2*th+p2) + 0.03*(rng.Float64()-0.5))
		s, co := math.Sincos(th)
		r[i] = orb.Point{c[0] + rad*co/kx, c[1] + rad*s/ky}
	}
	r[n] = r[0]
	return r
}

// rect returns an axis-aligned closed ring.
func rect(x0, y0, x1, y1 float64) orb.Ring {
	return orb.Ring{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}, {x0, y0}}
}

// fc builds a FeatureCollection document from (id, geometry, props) triples.
func fc(t testing.TB, feats ...*geojson.Feature) []byte {
	t.Helper()
	c := geojson.NewFeatureCollection()
	for _, f := range feats {
		c.Append(f)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func feat(id string, g orb.Geometry, props map[string]any) *geojson.Feature {
	f := geojson.NewFeature(g)
	f.ID = id
	for k, v := range props {
		f.Properties[k] = v
	}
	return f
}

// orbOnRing reports whether orb itself considers p to be on the ring's
// boundary: a degenerate ring that walks one edge out and back has an even
// crossing count, so planar.RingContains is true for it exactly when orb's
// edge test says "on".
func orbOnRing(r orb.Ring, p orb.Point) bool {
	for i := 0; i+1 < len(r); i++ {
		if planar.RingContains(orb.Ring{r[i], r[i+1], r[i]}, p) {
			return true
		}
	}
	return false
}

// bruteContains is the reference: orb's planar predicates, with a point on a
// hole's boundary counted as on the polygon (inside), as geo promises.
func bruteContains(mp orb.MultiPolygon, p orb.Point) bool {
	for _, pg := range mp {
		if !planar.RingContains(pg[0], p) {
			continue
		}
		in := true
		for _, h := range pg[1:] {
			if planar.RingContains(h, p) && !orbOnRing(h, p) {
				in = false
				break
			}
		}
		if in {
			return true
		}
	}
	return false
}

func mustLayers(t testing.TB, cfg Config) *Layers {
	t.Helper()
	l, err := NewLayers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
