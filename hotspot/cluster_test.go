package hotspot

import (
	"math/rand"
	"testing"
	"time"
)

// bruteCluster is the O(n²) reference: union every linked pair.
func bruteCluster(nodes []node, linkKm float64, windowS int64) []int32 {
	uf := newUnionFind(len(nodes))
	for i := range nodes {
		for j := i + 1; j < len(nodes); j++ {
			if linked(&nodes[i], &nodes[j], linkKm, windowS) {
				uf.union(int32(i), int32(j))
			}
		}
	}
	out := make([]int32, len(nodes))
	for i := range out {
		out[i] = uf.find(int32(i))
	}
	return out
}

// samePartition reports whether two root lists group the nodes identically.
func samePartition(a, b []int32) bool {
	ab, ba := map[int32]int32{}, map[int32]int32{}
	for i := range a {
		if x, ok := ab[a[i]]; ok && x != b[i] {
			return false
		}
		if y, ok := ba[b[i]]; ok && y != a[i] {
			return false
		}
		ab[a[i]], ba[b[i]] = b[i], a[i]
	}
	return true
}

func groups(roots []int32) int {
	m := map[int32]bool{}
	for _, r := range roots {
		m[r] = true
	}
	return len(m)
}

func TestClusterCases(t *testing.T) {
	const day = int64(24 * 3600)
	viirs := func(x, y float64, t int64) node { return node{x: x, y: y, w: 0.375, h: 0.375, t: t} }
	modis := func(x, y float64, t int64) node { return node{x: x, y: y, w: 2.0, h: 1.5, t: t} }
	tests := []struct {
		name   string
		nodes  []node
		linkKm float64
		groups int
	}{
		{"adjacent VIIRS pixels join", []node{viirs(0, 0, 0), viirs(0.375, 0, 0)}, 1, 1},
		{"pixels 1.3 km apart (gap 0.93 km) join", []node{viirs(0, 0, 0), viirs(1.3, 0, 0)}, 1, 1},
		{"pixels 1.5 km apart (gap 1.125 km) split", []node{viirs(0, 0, 0), viirs(1.5, 0, 0)}, 1, 2},
		{"chain links transitively", []node{viirs(0, 0, 0), viirs(1.2, 0, 0), viirs(2.4, 0, 0), viirs(3.6, 0, 0)}, 1, 1},
		{"distant pixels split", []node{viirs(0, 0, 0), viirs(10, 0, 0), viirs(0, 10, 0)}, 1, 3},
		{"diagonal gap measured as distance", []node{viirs(0, 0, 0), viirs(1.05, 1.05, 0)}, 1, 1},
		{"diagonal gap too far", []node{viirs(0, 0, 0), viirs(1.2, 1.2, 0)}, 1, 2},
		{"large MODIS pixels touch", []node{modis(0, 0, 0), modis(2.0, 0, 0)}, 0, 1},
		{"MODIS footprint reaches a VIIRS pixel", []node{modis(0, 0, 0), viirs(2.1, 0, 0)}, 1, 1},
		{"zero distance: touching joins, a gap splits", []node{viirs(0, 0, 0), viirs(0.375, 0, 0), viirs(1.0, 0, 0)}, 0, 2},
		{"23 h apart join", []node{viirs(0, 0, 0), viirs(0, 0, 23*3600)}, 1, 1},
		{"exactly 24 h apart join", []node{viirs(0, 0, 0), viirs(0, 0, day)}, 1, 1},
		{"25 h apart split", []node{viirs(0, 0, 0), viirs(0, 0, day+3600)}, 1, 2},
		{"daily repeats chain through time", []node{viirs(0, 0, 0), viirs(0, 0, day), viirs(0, 0, 2*day)}, 1, 1},
		{"negative coordinates", []node{viirs(-5, -5, -100), viirs(-5.3, -5, -50)}, 1, 1},
		{"empty", nil, 1, 0},
	}
	for _, tc := range tests {
		roots := cluster(tc.nodes, tc.linkKm, day)
		if g := groups(roots); g != tc.groups {
			t.Errorf("%s: %d groups, want %d (roots %v)", tc.name, g, tc.groups, roots)
		}
		if !samePartition(roots, bruteCluster(tc.nodes, tc.linkKm, day)) {
			t.Errorf("%s: differs from brute force", tc.name)
		}
	}
}

// TestClusterMatchesBruteForce checks the grid algorithm against the O(n²) reference on
// random batches of mixed pixel sizes, densities, distances and windows.
func TestClusterMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for iter := 0; iter < 300; iter++ {
		n := 1 + rng.Intn(300)
		span := 1 + rng.Float64()*60 // km
		linkKm := []float64{0, 0.5, 1, 2.5}[rng.Intn(4)]
		windowS := int64([]time.Duration{time.Hour, 6 * time.Hour, 24 * time.Hour}[rng.Intn(3)] / time.Second)
		tspan := int64(1 + rng.Intn(4*24*3600))
		nodes := make([]node, n)
		for i := range nodes {
			w := 0.32 + rng.Float64()*0.5
			if rng.Intn(3) == 0 {
				w = 1 + rng.Float64()*3.8
			}
			nodes[i] = node{x: rng.Float64()*span - span/2, y: rng.Float64()*span - span/2, w: w, h: w * (0.5 + rng.Float64()/2),
				t: rng.Int63n(tspan) - tspan/2}
		}
		got, want := cluster(nodes, linkKm, windowS), bruteCluster(nodes, linkKm, windowS)
		if !samePartition(got, want) {
			t.Fatalf("iteration %d (n=%d span=%.1f link=%.1f window=%d): %d groups, brute force %d",
				iter, n, span, linkKm, windowS, groups(got), groups(want))
		}
	}
}

func TestGeometryHelpers(t *testing.T) {
	// One degree of latitude ≈ 111 km; the bearing due east is 90°.
	if d := haversineM(25, 100, 26, 100); d < 110_000 || d > 112_000 {
		t.Errorf("1° latitude = %.0f m", d)
	}
	for _, tc := range []struct {
		lat2, lon2, want float64
	}{{26, 100, 0}, {25, 101, 90}, {24, 100, 180}, {25, 99, 270}} {
		if b := bearingDeg(25, 100, tc.lat2, tc.lon2); b < tc.want-1 || b > tc.want+1 {
			t.Errorf("bearing to %v,%v = %.1f, want %.0f", tc.lat2, tc.lon2, b, tc.want)
		}
	}
	x, y := project(25.01, 100.01, 25, 100)
	lat, lon := unproject(x, y, 25, 100)
	if d := haversineM(lat, lon, 25.01, 100.01); d > 1 {
		t.Errorf("project/unproject round trip off by %.2f m", d)
	}
	if d := angleDiff(350, 10); d != -20 {
		t.Errorf("angleDiff(350, 10) = %v", d)
	}
}
