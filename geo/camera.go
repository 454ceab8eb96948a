package geo

import (
	"fmt"
	"math"

	"github.com/paulmach/orb"

	"github.com/lookoutfire/lookout/errs"
)

// Triangulation refusals. Each says why two or more bearings give no usable fix.
var (
	// ErrBaselineTooShort: no two cameras stand far enough apart for their rays to cross usefully.
	ErrBaselineTooShort = fmt.Errorf("cameras too close together for a cross-bearing fix: %w", errs.ErrInvalid)
	// ErrAngleTooNarrow: the rays are (nearly) parallel, so a small bearing error moves the fix far.
	ErrAngleTooNarrow = fmt.Errorf("bearing rays cross at too narrow an angle: %w", errs.ErrInvalid)
	// ErrNoIntersection: the rays do not meet in front of the cameras.
	ErrNoIntersection = fmt.Errorf("bearing rays do not intersect in front of the cameras: %w", errs.ErrInvalid)
)

// bearingSigmaDeg is the bearing uncertainty assumed for one camera detection
// (box centre vs plume base, pan encoder, mounting): the floor of the error
// estimate when the rays agree perfectly, as two rays always do.
const bearingSigmaDeg = 1.0

// Bearing turns an AI camera detection into the azimuth of the plume (degrees
// clockwise from north) and the width of the cone it could lie in. pan is the
// azimuth of the view centre, hfov the horizontal field of view (degrees) and
// xmin/xmax the box edges as fractions of the image width (0 = left edge).
// Pyronear's formula: azimuth = pan + hfov·((xmin+xmax)/2 − 0.5), cone = hfov·(xmax−xmin).
func Bearing(panDeg, hfovDeg, xmin, xmax float64) (azimuthDeg, coneDeg float64) {
	if xmin > xmax {
		xmin, xmax = xmax, xmin
	}
	return normDeg(panDeg + hfovDeg*((xmin+xmax)/2-0.5)), math.Abs(hfovDeg * (xmax - xmin))
}

// Sighting is one camera's bearing to a plume, from the camera's WGS84 position.
type Sighting struct {
	Lat        float64 `json:"lat"`
	Lon        float64 `json:"lon"`
	BearingDeg float64 `json:"bearing_deg"`
}

// Fix is a triangulated fire position with its estimated error (metres, the
// radius of the 1-σ error ellipse's enclosing circle: sqrt of the covariance trace).
type Fix struct {
	Lat    float64 `json:"lat"`
	Lon    float64 `json:"lon"`
	ErrorM float64 `json:"error_m"`
}

// Triangulate intersects two or more bearings by least squares on the local
// tangent plane (perpendicular distances to each ray, weighted by 1/range² so
// each ray counts by its angular error). It refuses when no pair of cameras is
// at least minBaselineM apart with rays crossing at ≥ minAngleDeg, and when the
// solution lies behind a camera.
func Triangulate(s []Sighting, minBaselineM, minAngleDeg float64) (Fix, error) {
	if len(s) < 2 {
		return Fix{}, fmt.Errorf("triangulation needs at least 2 sightings, got %d: %w", len(s), errs.ErrInvalid)
	}
	for i, v := range s {
		if err := checkPoint(orb.Point{v.Lon, v.Lat}); err != nil {
			return Fix{}, fmt.Errorf("sighting %d: %v: %w", i+1, err, errs.ErrInvalid)
		}
		if math.IsNaN(v.BearingDeg) || math.IsInf(v.BearingDeg, 0) {
			return Fix{}, fmt.Errorf("sighting %d: bearing is not a number: %w", i+1, errs.ErrInvalid)
		}
	}
	// Pair checks: baseline first, then crossing angle among long-enough pairs.
	longPair, goodPair := false, false
	maxBase, maxAngle := 0.0, 0.0
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			base := Distance(orb.Point{s[i].Lon, s[i].Lat}, orb.Point{s[j].Lon, s[j].Lat})
			maxBase = math.Max(maxBase, base)
			if base < minBaselineM {
				continue
			}
			longPair = true
			a := math.Mod(math.Abs(s[i].BearingDeg-s[j].BearingDeg), 180)
			a = math.Min(a, 180-a)
			maxAngle = math.Max(maxAngle, a)
			if a >= minAngleDeg {
				goodPair = true
			}
		}
	}
	if !longPair {
		return Fix{}, fmt.Errorf("%w (widest pair %.0f m apart, need %.0f m)", ErrBaselineTooShort, maxBase, minBaselineM)
	}
	if !goodPair {
		return Fix{}, fmt.Errorf("%w (widest %.1f°, need %.1f°)", ErrAngleTooNarrow, maxAngle, minAngleDeg)
	}

	// Local tangent plane at the cameras' centroid (ECEF → east/north).
	var c vec3
	ecef := make([]vec3, len(s))
	for i, v := range s {
		ecef[i] = toECEF(orb.Point{v.Lon, v.Lat})
		c = c.add(ecef[i])
	}
	origin := fromECEF(c.scale(1 / float64(len(s))))
	o := toECEF(origin)
	e0, n0, _ := enuBasis(origin)
	pos := make([][2]float64, len(s)) // camera east, north (m)
	dir := make([][2]float64, len(s)) // unit ray direction in the plane
	for i, v := range s {
		d := ecef[i].sub(o)
		pos[i] = [2]float64{d.dot(e0), d.dot(n0)}
		// the camera's own north/east, expressed in the origin's plane
		ei, ni, _ := enuBasis(orb.Point{v.Lon, v.Lat})
		sa, ca := math.Sincos(v.BearingDeg * rad)
		w := ei.scale(sa).add(ni.scale(ca))
		dx, dy := w.dot(e0), w.dot(n0)
		l := math.Hypot(dx, dy)
		dir[i] = [2]float64{dx / l, dy / l}
	}
	// Two passes: unweighted to get ranges, then weighted by 1/range².
	x, ok := solveRays(pos, dir, nil)
	if !ok {
		return Fix{}, ErrAngleTooNarrow
	}
	w := make([]float64, len(s))
	for pass := 0; pass < 2; pass++ {
		for i := range s {
			r := math.Hypot(x[0]-pos[i][0], x[1]-pos[i][1])
			w[i] = 1 / math.Max(r*r, 1)
		}
		if x, ok = solveRays(pos, dir, w); !ok {
			return Fix{}, ErrAngleTooNarrow
		}
	}
	// In front of every camera?
	for i := range s {
		along := (x[0]-pos[i][0])*dir[i][0] + (x[1]-pos[i][1])*dir[i][1]
		if along <= 0 {
			return Fix{}, fmt.Errorf("%w (solution is behind camera %d)", ErrNoIntersection, i+1)
		}
	}
	// Error estimate: covariance σ²·(Σ wᵢ nᵢnᵢᵀ)⁻¹, σ the angular error in
	// radians: the assumed per-camera bearing error, or the observed residual
	// spread when it is larger (only measurable with 3+ rays).
	sigma2 := math.Pow(bearingSigmaDeg*rad, 2)
	if len(s) > 2 {
		var ss float64
		for i := range s {
			n := [2]float64{dir[i][1], -dir[i][0]}
			r := (x[0]-pos[i][0])*n[0] + (x[1]-pos[i][1])*n[1]
			ss += w[i] * r * r
		}
		sigma2 = math.Max(sigma2, ss/float64(len(s)-2))
	}
	a, b, d := normalMatrix(dir, w)
	det := a*d - b*b
	errM := math.Sqrt(sigma2 * (a + d) / det) // trace of the inverse = (a+d)/det
	out := planeToLonLat(o, e0, n0, x)
	return Fix{Lat: out[1], Lon: out[0], ErrorM: errM}, nil
}

// planeToLonLat maps a plane point back to longitude/latitude.
func planeToLonLat(o, e0, n0 vec3, x [2]float64) orb.Point {
	return fromECEF(o.add(e0.scale(x[0])).add(n0.scale(x[1])))
}

// normalMatrix returns Σ wᵢ nᵢnᵢᵀ (symmetric: a b / b d) for ray normals nᵢ.
func normalMatrix(dir [][2]float64, w []float64) (a, b, d float64) {
	for i, v := range dir {
		wi := 1.0
		if w != nil {
			wi = w[i]
		}
		nx, ny := v[1], -v[0]
		a += wi * nx * nx
		b += wi * nx * ny
		d += wi * ny * ny
	}
	return
}

// solveRays minimizes Σ wᵢ (nᵢ·(x − pᵢ))² over x.
func solveRays(pos, dir [][2]float64, w []float64) ([2]float64, bool) {
	a, b, d := normalMatrix(dir, w)
	var r0, r1 float64
	for i, v := range dir {
		wi := 1.0
		if w != nil {
			wi = w[i]
		}
		nx, ny := v[1], -v[0]
		k := wi * (nx*pos[i][0] + ny*pos[i][1])
		r0 += k * nx
		r1 += k * ny
	}
	det := a*d - b*b
	if math.Abs(det) < 1e-12*math.Max(a*d, 1e-300) || det == 0 {
		return [2]float64{}, false
	}
	return [2]float64{(d*r0 - b*r1) / det, (a*r1 - b*r0) / det}, true
}
