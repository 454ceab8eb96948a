package geo

import (
	"math"

	"github.com/paulmach/orb"
)

// GCJ-02 ("Mars coordinates") is the obfuscated datum of Chinese web maps
// (Amap/DataV, Tencent, many government portals). Its published forward
// transform (WGS84 → GCJ-02) uses the Krasovsky ellipsoid and a fixed
// trigonometric offset field; there is no closed-form inverse, so the inverse
// is found by fixed-point iteration on the forward transform.
const (
	gcjA  = 6378245.0
	gcjE2 = 0.00669342162296594323
)

// outsideChina reports points where GCJ-02 equals WGS84 (the transform is only
// applied inside China's rough bounding box).
func outsideChina(p orb.Point) bool {
	return p[0] < 72.004 || p[0] > 137.8347 || p[1] < 0.8293 || p[1] > 55.8271
}

// WGS84ToGCJ02 applies the GCJ-02 offset to a WGS84 point (lon, lat).
func WGS84ToGCJ02(p orb.Point) orb.Point {
	if outsideChina(p) {
		return p
	}
	x, y := p[0]-105, p[1]-35
	dLat := -100 + 2*x + 3*y + 0.2*y*y + 0.1*x*y + 0.2*math.Sqrt(math.Abs(x)) +
		(20*math.Sin(6*math.Pi*x)+20*math.Sin(2*math.Pi*x))*2/3 +
		(20*math.Sin(math.Pi*y)+40*math.Sin(math.Pi*y/3))*2/3 +
		(160*math.Sin(math.Pi*y/12)+320*math.Sin(math.Pi*y/30))*2/3
	dLon := 300 + x + 2*y + 0.1*x*x + 0.1*x*y + 0.1*math.Sqrt(math.Abs(x)) +
		(20*math.Sin(6*math.Pi*x)+20*math.Sin(2*math.Pi*x))*2/3 +
		(20*math.Sin(math.Pi*x)+40*math.Sin(math.Pi*x/3))*2/3 +
		(150*math.Sin(math.Pi*x/12)+300*math.Sin(math.Pi*x/30))*2/3
	s := math.Sin(p[1] * rad)
	magic := 1 - gcjE2*s*s
	sq := math.Sqrt(magic)
	dLat = dLat * 180 / ((gcjA * (1 - gcjE2)) / (magic * sq) * math.Pi)
	dLon = dLon * 180 / (gcjA / sq * math.Cos(p[1]*rad) * math.Pi)
	return orb.Point{p[0] + dLon, p[1] + dLat}
}

// GCJ02ToWGS84 removes the GCJ-02 offset: layers from Chinese web maps are
// converted with it on load so that WGS84 device and satellite positions land
// in the right village. Accurate to ~1e-9° (well under a millimetre).
func GCJ02ToWGS84(p orb.Point) orb.Point {
	if outsideChina(p) {
		return p
	}
	w := p
	for i := 0; i < 30; i++ {
		g := WGS84ToGCJ02(w)
		dx, dy := g[0]-p[0], g[1]-p[1]
		w = orb.Point{w[0] - dx, w[1] - dy}
		if math.Abs(dx) < 1e-12 && math.Abs(dy) < 1e-12 {
			break
		}
	}
	return w
}
