package hotspot

import (
	"context"
	"time"
)

// Locator answers where a hotspot lies. The gateway adapts geo's index (geo.Locate /
// geo.Within); tests use a fake. Points are WGS84 degrees.
type Locator interface {
	// Locate returns the forests, zones (innermost first), nearest forest and mask at a point.
	Locate(lat, lon float64) Place
	// Within reports whether the point lies inside the zone layer's area or within metres of it.
	Within(lat, lon, metres float64) bool
}

// Place is what the locator knows about one point.
type Place struct {
	Forests       []string // forests containing the point
	Zones         []Zone   // responsibility zones containing the point, innermost first
	NearestForest string   // nearest forest ("" when none within the locator's search radius)
	DistanceM     float64  // distance to NearestForest: 0 inside, -1 none within radius
	Mask          string   // known heat source (factory, kiln, flare) containing the point; "" none
}

// Zone is one responsibility zone (county, town, village, grid) with its people on duty.
type Zone struct {
	ID     string
	Name   string
	Level  string
	Parent string
	Duty   []Contact
}

// Contact is a person on duty for a zone.
type Contact struct {
	Name  string `json:"name"`
	Phone string `json:"phone"`
	Role  string `json:"role"`
}

// OverdueAlert asks the alerting engine to raise a major alert for a report whose
// verification deadline passed; alerting escalates it through the 叫应 chain of Zone.
type OverdueAlert struct {
	ReportID int64     `json:"report_id"`
	Source   string    `json:"source"` // "hotspot:{id}", stable so alerting can dedupe
	Severity string    `json:"severity"`
	Zone     string    `json:"zone"`
	Class    Class     `json:"class"`
	Lat      float64   `json:"lat"`
	Lon      float64   `json:"lon"`
	Deadline time.Time `json:"deadline"`
	Assignee string    `json:"assignee"`
	Message  string    `json:"message"`
}

// Escalator raises overdue alerts and clears them again; the gateway adapts alerting's
// alert creation and Resolve.
type Escalator interface {
	// Raise raises the major alert of a report whose deadline passed.
	Raise(ctx context.Context, a OverdueAlert) error
	// Resolve clears the overdue alert of report reportID (source "hotspot:{id}") if one
	// is active, which stops its 叫应 chain; note says why. No active alert is no error.
	Resolve(ctx context.Context, reportID int64, note string) error
}

// Camera is a tower camera from the registry.
type Camera struct {
	ID     string  `json:"id"`
	Name   string  `json:"name,omitempty"`
	Lat    float64 `json:"lat"`
	Lon    float64 `json:"lon"`
	RangeM float64 `json:"range_m"`
}

// Cameras lists the registered cameras.
type Cameras interface {
	Cameras() []Camera
}

// Item kinds returned by Evidence.
const (
	KindCameraDetection = "camera_detection"
	KindSmokeAlert      = "smoke_alert"
	KindElecAlert       = "elec_alert"
	KindFireDanger      = "fire_danger"
)

// Item is one piece of ground evidence near a report: a camera detection (with the
// camera's position and bearing, or a triangulated fix), an alert or a fire-danger reading.
type Item struct {
	Kind     string    `json:"kind"`
	Source   string    `json:"source"` // device / camera / alert id
	At       time.Time `json:"at"`
	Lat      float64   `json:"lat"` // where the item is (device or fix position)
	Lon      float64   `json:"lon"`
	Summary  string    `json:"summary,omitempty"`
	Level    string    `json:"level,omitempty"` // fire danger level or alert severity
	Score    float64   `json:"score,omitempty"` // detection score
	Fix      bool      `json:"fix,omitempty"`   // Lat/Lon is a triangulated fire position
	CameraID string    `json:"camera_id,omitempty"`
	// Bearing and ConeDeg describe a single camera's detection: the azimuth from the
	// camera (at CamLat/CamLon) to the plume and the cone width (degrees).
	HasBearing bool    `json:"has_bearing,omitempty"`
	CamLat     float64 `json:"cam_lat,omitempty"`
	CamLon     float64 `json:"cam_lon,omitempty"`
	Bearing    float64 `json:"bearing,omitempty"`
	ConeDeg    float64 `json:"cone_deg,omitempty"`
}

// Evidence finds ground evidence within radiusM of a point and between from and to.
// The gateway combines alerting's detections and alerts and the stations' fire danger.
type Evidence interface {
	Near(ctx context.Context, lat, lon, radiusM float64, from, to time.Time) ([]Item, error)
}
