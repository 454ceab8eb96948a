package geo

import (
	"math"

	"github.com/paulmach/orb"
)

// WGS84 ellipsoid. Distances reported to people (metres to a forest edge) are
// measured on it, not on a sphere: the spherical error (~0.5 %) is tens of
// metres at the search radius.
const (
	wgsA  = 6378137.0
	wgsF  = 1 / 298.257223563
	wgsB  = wgsA * (1 - wgsF)
	wgsE2 = wgsF * (2 - wgsF)
	rad   = math.Pi / 180
)

// metresPerDegree returns the local scale (metres per degree of longitude and
// of latitude) at latitude lat. Near a point (a few km) lon/lat scaled by these
// is a plane accurate to well below a metre, which is what the nearest-edge
// search needs; the final distance is then measured geodesically.
func metresPerDegree(lat float64) (kx, ky float64) {
	s := math.Sin(lat * rad)
	w := 1 - wgsE2*s*s
	n := wgsA / math.Sqrt(w)                     // prime vertical radius
	m := wgsA * (1 - wgsE2) / (w * math.Sqrt(w)) // meridional radius
	return n * math.Cos(lat*rad) * rad, m * rad
}

// Distance returns the geodesic distance in metres between two WGS84 points
// (Vincenty's inverse formula on the WGS84 ellipsoid; sub-millimetre for the
// distances geo uses).
func Distance(a, b orb.Point) float64 {
	d, _ := inverse(a, b)
	return d
}

// shortDistance is the geodesic distance for points a few km apart: the local
// ellipsoidal plane at the mid latitude, whose error grows like d³/R² (a few
// millimetres at 5 km, centimetres at 20 km) and which costs a fraction of
// Vincenty's iteration. Beyond 20 km it defers to Distance.
func shortDistance(a, b orb.Point) float64 {
	kx, ky := metresPerDegree((a[1] + b[1]) / 2)
	dx, dy := (b[0]-a[0])*kx, (b[1]-a[1])*ky
	d := math.Hypot(dx, dy)
	if d > 20000 {
		return Distance(a, b)
	}
	return d
}

// inverse solves the geodesic inverse problem: distance (m) and the initial
// azimuth at a (degrees clockwise from north). It falls back to a spherical
// answer for the nearly antipodal pairs where Vincenty does not converge,
// which geo never meets in practice (everything is within tens of km).
func inverse(a, b orb.Point) (dist, az1 float64) {
	if a == b {
		return 0, 0
	}
	L := (b[0] - a[0]) * rad
	U1 := math.Atan((1 - wgsF) * math.Tan(a[1]*rad))
	U2 := math.Atan((1 - wgsF) * math.Tan(b[1]*rad))
	sinU1, cosU1 := math.Sincos(U1)
	sinU2, cosU2 := math.Sincos(U2)
	lambda := L
	var sinSigma, cosSigma, sigma, cos2Alpha, cos2SigmaM, sinLambda, cosLambda float64
	converged := false
	for i := 0; i < 200; i++ {
		sinLambda, cosLambda = math.Sincos(lambda)
		t1 := cosU2 * sinLambda
		t2 := cosU1*sinU2 - sinU1*cosU2*cosLambda
		sinSigma = math.Sqrt(t1*t1 + t2*t2)
		if sinSigma == 0 {
			return 0, 0 // coincident
		}
		cosSigma = sinU1*sinU2 + cosU1*cosU2*cosLambda
		sigma = math.Atan2(sinSigma, cosSigma)
		sinAlpha := cosU1 * cosU2 * sinLambda / sinSigma
		cos2Alpha = 1 - sinAlpha*sinAlpha
		if cos2Alpha != 0 {
			cos2SigmaM = cosSigma - 2*sinU1*sinU2/cos2Alpha
		} else {
			cos2SigmaM = 0 // equatorial line
		}
		C := wgsF / 16 * cos2Alpha * (4 + wgsF*(4-3*cos2Alpha))
		prev := lambda
		lambda = L + (1-C)*wgsF*sinAlpha*(sigma+C*sinSigma*(cos2SigmaM+C*cosSigma*(-1+2*cos2SigmaM*cos2SigmaM)))
		if math.Abs(lambda-prev) < 1e-12 {
			converged = true
			break
		}
	}
	if !converged {
		return sphericalDistance(a, b), sphericalAzimuth(a, b)
	}
	u2 := cos2Alpha * (wgsA*wgsA - wgsB*wgsB) / (wgsB * wgsB)
	A := 1 + u2/16384*(4096+u2*(-768+u2*(320-175*u2)))
	B := u2 / 1024 * (256 + u2*(-128+u2*(74-47*u2)))
	deltaSigma := B * sinSigma * (cos2SigmaM + B/4*(cosSigma*(-1+2*cos2SigmaM*cos2SigmaM)-
		B/6*cos2SigmaM*(-3+4*sinSigma*sinSigma)*(-3+4*cos2SigmaM*cos2SigmaM)))
	dist = wgsB * A * (sigma - deltaSigma)
	az := math.Atan2(cosU2*sinLambda, cosU1*sinU2-sinU1*cosU2*cosLambda) / rad
	return dist, normDeg(az)
}

// destination solves the direct problem: the point reached from p after dist
// metres on initial azimuth az (degrees clockwise from north).
func destination(p orb.Point, az, dist float64) orb.Point {
	if dist == 0 {
		return p
	}
	sinA1, cosA1 := math.Sincos(az * rad)
	tanU1 := (1 - wgsF) * math.Tan(p[1]*rad)
	cosU1 := 1 / math.Sqrt(1+tanU1*tanU1)
	sinU1 := tanU1 * cosU1
	sigma1 := math.Atan2(tanU1, cosA1)
	sinAlpha := cosU1 * sinA1
	cos2Alpha := 1 - sinAlpha*sinAlpha
	u2 := cos2Alpha * (wgsA*wgsA - wgsB*wgsB) / (wgsB * wgsB)
	A := 1 + u2/16384*(4096+u2*(-768+u2*(320-175*u2)))
	B := u2 / 1024 * (256 + u2*(-128+u2*(74-47*u2)))
	sigma := dist / (wgsB * A)
	var sinSigma, cosSigma, cos2SigmaM float64
	for i := 0; i < 100; i++ {
		cos2SigmaM = math.Cos(2*sigma1 + sigma)
		sinSigma, cosSigma = math.Sincos(sigma)
		deltaSigma := B * sinSigma * (cos2SigmaM + B/4*(cosSigma*(-1+2*cos2SigmaM*cos2SigmaM)-
			B/6*cos2SigmaM*(-3+4*sinSigma*sinSigma)*(-3+4*cos2SigmaM*cos2SigmaM)))
		prev := sigma
		sigma = dist/(wgsB*A) + deltaSigma
		if math.Abs(sigma-prev) < 1e-12 {
			break
		}
	}
	sinSigma, cosSigma = math.Sincos(sigma)
	cos2SigmaM = math.Cos(2*sigma1 + sigma)
	tmp := sinU1*sinSigma - cosU1*cosSigma*cosA1
	lat := math.Atan2(sinU1*cosSigma+cosU1*sinSigma*cosA1, (1-wgsF)*math.Sqrt(sinAlpha*sinAlpha+tmp*tmp))
	lambda := math.Atan2(sinSigma*sinA1, cosU1*cosSigma-sinU1*sinSigma*cosA1)
	C := wgsF / 16 * cos2Alpha * (4 + wgsF*(4-3*cos2Alpha))
	L := lambda - (1-C)*wgsF*sinAlpha*(sigma+C*sinSigma*(cos2SigmaM+C*cosSigma*(-1+2*cos2SigmaM*cos2SigmaM)))
	lon := p[0] + L/rad
	if lon > 180 {
		lon -= 360
	} else if lon < -180 {
		lon += 360
	}
	return orb.Point{lon, lat / rad}
}

func sphericalDistance(a, b orb.Point) float64 {
	const r = 6371008.8
	dLat := (b[1] - a[1]) * rad
	dLon := (b[0] - a[0]) * rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(a[1]*rad)*math.Cos(b[1]*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(h)))
}

func sphericalAzimuth(a, b orb.Point) float64 {
	dLon := (b[0] - a[0]) * rad
	y := math.Sin(dLon) * math.Cos(b[1]*rad)
	x := math.Cos(a[1]*rad)*math.Sin(b[1]*rad) - math.Sin(a[1]*rad)*math.Cos(b[1]*rad)*math.Cos(dLon)
	return normDeg(math.Atan2(y, x) / rad)
}

// normDeg maps an angle to [0, 360).
func normDeg(d float64) float64 {
	d = math.Mod(d, 360)
	if d < 0 {
		d += 360
	}
	if d >= 360 {
		d = 0
	}
	return d
}

// vec3 is an Earth-centred, Earth-fixed vector (metres).
type vec3 [3]float64

func (a vec3) sub(b vec3) vec3      { return vec3{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }
func (a vec3) add(b vec3) vec3      { return vec3{a[0] + b[0], a[1] + b[1], a[2] + b[2]} }
func (a vec3) scale(k float64) vec3 { return vec3{a[0] * k, a[1] * k, a[2] * k} }
func (a vec3) dot(b vec3) float64   { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }

// toECEF converts a WGS84 point on the ellipsoid (height 0) to ECEF.
func toECEF(p orb.Point) vec3 {
	sl, cl := math.Sincos(p[1] * rad)
	so, co := math.Sincos(p[0] * rad)
	n := wgsA / math.Sqrt(1-wgsE2*sl*sl)
	return vec3{n * cl * co, n * cl * so, n * (1 - wgsE2) * sl}
}

// fromECEF converts ECEF back to longitude/latitude (height dropped), by
// Bowring's iteration.
func fromECEF(v vec3) orb.Point {
	lon := math.Atan2(v[1], v[0])
	p := math.Hypot(v[0], v[1])
	lat := math.Atan2(v[2], p*(1-wgsE2))
	for i := 0; i < 6; i++ {
		s := math.Sin(lat)
		n := wgsA / math.Sqrt(1-wgsE2*s*s)
		h := p/math.Cos(lat) - n
		lat = math.Atan2(v[2], p*(1-wgsE2*n/(n+h)))
	}
	return orb.Point{lon / rad, lat / rad}
}

// enuBasis returns the local east, north and up unit vectors at p.
func enuBasis(p orb.Point) (e, n, u vec3) {
	sl, cl := math.Sincos(p[1] * rad)
	so, co := math.Sincos(p[0] * rad)
	e = vec3{-so, co, 0}
	n = vec3{-sl * co, -sl * so, cl}
	u = vec3{cl * co, cl * so, sl}
	return
}
