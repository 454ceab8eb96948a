package alerting

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/lookoutfire/lookout/errs"
	"github.com/lookoutfire/lookout/ingest"
)

// ErrNoFix means two bearings do not give a usable cross-bearing position.
var ErrNoFix = fmt.Errorf("triangulation %w", errs.ErrInvalid)

// Bearing is Pyronear's plume azimuth: the view centre (pan, 0 = north,
// clockwise) shifted by the box centre's offset across the horizontal field of
// view; the box is in normalised image coordinates (0..1). It also returns the
// cone width hfov·(xmax−xmin).
func Bearing(panDeg, hfovDeg, xmin, xmax float64) (az, cone float64) {
	az = math.Mod(panDeg+hfovDeg*((xmin+xmax)/2-0.5), 360)
	if az < 0 {
		az += 360
	}
	return az, hfovDeg * (xmax - xmin)
}

// cameraState remembers recent qualifying detections per camera and bearing
// bin, and recent confirmed sightings for triangulation. Bounded: at most
// MaxPerCamera detections per camera (oldest dropped), entries older than the
// window are pruned on every detection.
type cameraState struct {
	mu        sync.Mutex
	hits      map[string][]camHit // camera id → recent detections
	confirmed []camSighting       // recent confirmations, all cameras
}

type camHit struct {
	at  time.Time
	bin int
	az  float64
}

type camSighting struct {
	camera   string
	typ      string
	lat, lon float64
	az       float64
	at       time.Time
}

// located tells whether the camera's position is known: readings carry 0,0
// when the registry has no position for the device, and a bearing taken from
// 0,0 would give a bogus cross-bearing fix thousands of kilometres off.
func (s camSighting) located() bool { return s.lat != 0 || s.lon != 0 }

func newCameraState() *cameraState { return &cameraState{hits: map[string][]camHit{}} }

const maxConfirmed = 256

func (e *Engine) cameraRule(ctx context.Context, r ingest.Reading) error {
	label, _ := r.String("label")
	if !slices.Contains(e.cfg.Camera.Labels, label) {
		return nil
	}
	score, _ := r.Float("score")
	if score < e.cfg.Camera.MinScore {
		return nil
	}
	box, ok := r.Floats("box")
	pan, ok1 := r.Float("pan_deg")
	hfov, ok2 := r.Float("hfov_deg")
	if !ok || len(box) != 4 || !ok1 || !ok2 {
		return nil // no direction: cannot be confirmed per direction
	}
	az, cone := Bearing(pan, hfov, box[0], box[2])
	nbins := int(math.Ceil(360 / e.cfg.Camera.BinDeg))
	bin := int(az/e.cfg.Camera.BinDeg) % nbins
	cfg := e.cfg.Camera

	cs := e.cam
	cs.mu.Lock()
	hits := cs.hits[r.DeviceID]
	keep := hits[:0]
	for _, h := range hits {
		if r.Time.Sub(h.at) <= cfg.Window {
			keep = append(keep, h)
		}
	}
	keep = append(keep, camHit{at: r.Time, bin: bin, az: az})
	if len(keep) > cfg.MaxPerCamera {
		keep = keep[len(keep)-cfg.MaxPerCamera:]
	}
	cs.hits[r.DeviceID] = keep
	n := 0
	for _, h := range keep {
		if h.bin == bin && !h.at.After(r.Time) && r.Time.Sub(h.at) <= cfg.Window {
			n++
		}
	}
	if n < cfg.Confirmations {
		cs.mu.Unlock()
		return nil
	}
	typ := fmt.Sprintf("%s/%03d", TypeCameraFire, int(float64(bin)*cfg.BinDeg))
	// Confirmed: look for another camera's confirmation within the window.
	var other *camSighting
	confirmed := cs.confirmed[:0]
	for _, s := range cs.confirmed {
		if r.Time.Sub(s.at) <= cfg.Window && !(s.camera == r.DeviceID && s.typ == typ) {
			confirmed = append(confirmed, s)
		}
	}
	me := camSighting{camera: r.DeviceID, typ: typ, lat: r.Lat, lon: r.Lon, az: az, at: r.Time}
	confirmed = append(confirmed, me)
	if len(confirmed) > maxConfirmed {
		confirmed = confirmed[len(confirmed)-maxConfirmed:]
	}
	cs.confirmed = confirmed
	// The cross-bearing partner: the latest confirmation by another camera.
	// Only cameras with a known position take part.
	for i := len(confirmed) - 2; i >= 0 && me.located(); i-- {
		if confirmed[i].camera != r.DeviceID && confirmed[i].located() {
			s := confirmed[i]
			other = &s
			break
		}
	}
	cs.mu.Unlock()

	details := map[string]any{"label": label, "score": score, "bearing_deg": round(az, 1), "cone_deg": round(cone, 1),
		"detections": n, "camera": r.DeviceID, "camera_lat": r.Lat, "camera_lon": r.Lon}
	if id, ok := r.String("track_id"); ok {
		details["track_id"] = id
	}
	if e.geo != nil && me.located() {
		details["forests"] = e.geo.RayForests(r.Lat, r.Lon, az, cfg.RangeM)
	}
	raise := Raise{Source: r.DeviceID, Type: typ, Severity: Critical, Zone: r.Zone, Forest: r.Forest,
		Message: fmt.Sprintf("camera %s confirmed %s at bearing %.1f°", r.DeviceID, label, az), Details: details, At: r.Time}
	if other != nil {
		fix, err := e.triangulate([]Sighting{{Lat: other.lat, Lon: other.lon, BearingDeg: other.az}, {Lat: r.Lat, Lon: r.Lon, BearingDeg: az}})
		if err == nil {
			details["fix"] = map[string]any{"lat": round(fix.Lat, 6), "lon": round(fix.Lon, 6), "error_m": round(fix.ErrorM, 0), "with": other.camera}
			raise.Lat, raise.Lon = fix.Lat, fix.Lon
			raise.Message += fmt.Sprintf("; cross-bearing with %s at %.5f,%.5f (±%.0f m)", other.camera, fix.Lat, fix.Lon, fix.ErrorM)
			// Give the other camera's alert the same position.
			if prev, ok, err := e.st.active(ctx, other.camera, other.typ); err == nil && ok {
				d := prev.Details
				if d == nil {
					d = map[string]any{}
				}
				d["fix"] = details["fix"].(map[string]any)
				if _, err := e.Raise(ctx, Raise{Source: prev.Source, Type: prev.Type, Severity: prev.Severity, Zone: prev.Zone,
					Forest: prev.Forest, Lat: fix.Lat, Lon: fix.Lon, Message: prev.Message, Details: d, At: r.Time}); err != nil {
					return err
				}
			}
		} else if !errors.Is(err, ErrNoFix) {
			return err
		}
	}
	_, err := e.Raise(ctx, raise)
	return err
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func (e *Engine) triangulate(s []Sighting) (Fix, error) {
	if e.geo != nil {
		f, err := e.geo.Triangulate(s, e.cfg.Camera.MinBaselineM, e.cfg.Camera.MinAngleDeg)
		if err != nil {
			return f, fmt.Errorf("%w: %v", ErrNoFix, err)
		}
		return f, nil
	}
	return Intersect(s[0], s[1], e.cfg.Camera.MinBaselineM, e.cfg.Camera.MinAngleDeg)
}

const earthR = 6371008.8

// Intersect crosses two bearings in a local tangent plane (accurate over the
// tens of kilometres a tower camera sees). It fails when the cameras are closer
// than minBaselineM, the rays cross at less than minAngleDeg, or they meet
// behind a camera. ErrorM assumes ±1° bearing error.
func Intersect(a, b Sighting, minBaselineM, minAngleDeg float64) (Fix, error) {
	lat0 := a.Lat * math.Pi / 180
	toXY := func(lat, lon float64) (float64, float64) {
		return (lon - a.Lon) * math.Pi / 180 * earthR * math.Cos(lat0), (lat - a.Lat) * math.Pi / 180 * earthR
	}
	bx, by := toXY(b.Lat, b.Lon)
	if math.Hypot(bx, by) < minBaselineM {
		return Fix{}, fmt.Errorf("%w: baseline %.0f m < %.0f m", ErrNoFix, math.Hypot(bx, by), minBaselineM)
	}
	d1x, d1y := math.Sin(a.BearingDeg*math.Pi/180), math.Cos(a.BearingDeg*math.Pi/180)
	d2x, d2y := math.Sin(b.BearingDeg*math.Pi/180), math.Cos(b.BearingDeg*math.Pi/180)
	cross := d1x*d2y - d1y*d2x // sin of the angle between the rays
	if math.Abs(cross) < math.Sin(minAngleDeg*math.Pi/180) {
		return Fix{}, fmt.Errorf("%w: bearings nearly parallel", ErrNoFix)
	}
	// a + t1·d1 = b + t2·d2
	t1 := (bx*d2y - by*d2x) / cross
	t2 := (bx*d1y - by*d1x) / cross
	if t1 <= 0 || t2 <= 0 {
		return Fix{}, fmt.Errorf("%w: rays meet behind a camera", ErrNoFix)
	}
	x, y := t1*d1x, t1*d1y
	lat := a.Lat + y/earthR*180/math.Pi
	lon := a.Lon + x/(earthR*math.Cos(lat0))*180/math.Pi
	errM := (t1 + t2) / 2 * (math.Pi / 180) / math.Abs(cross)
	return Fix{Lat: lat, Lon: lon, ErrorM: errM}, nil
}

// distanceM is the haversine distance in metres.
func distanceM(lat1, lon1, lat2, lon2 float64) float64 {
	p1, p2 := lat1*math.Pi/180, lat2*math.Pi/180
	dp, dl := p2-p1, (lon2-lon1)*math.Pi/180
	h := math.Sin(dp/2)*math.Sin(dp/2) + math.Cos(p1)*math.Cos(p2)*math.Sin(dl/2)*math.Sin(dl/2)
	return 2 * earthR * math.Asin(math.Min(1, math.Sqrt(h)))
}
