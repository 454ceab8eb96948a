package registry

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/lookoutfire/lookout/errs"
	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/internal/rtspurl"
)

// Sentinel errors. They wrap the errs kinds so the HTTP edge maps them to
// 404/400/409 without knowing about devices.
var (
	ErrDeviceNotFound = fmt.Errorf("device %w", errs.ErrNotFound)
	ErrInvalidDevice  = fmt.Errorf("device %w", errs.ErrInvalid)
	ErrDeviceExists   = fmt.Errorf("device already exists: %w", errs.ErrConflict)
)

// Health states. "never" is a registered device that has not sent anything yet;
// it is kept apart from "offline" so a freshly installed batch does not look
// like an outage.
const (
	StateNever   = "never"
	StateOnline  = "online"
	StateLate    = "late"
	StateOffline = "offline"
)

// States lists the health states in order of increasing trouble (never first).
var States = []string{StateNever, StateOnline, StateLate, StateOffline}

func validState(s string) bool {
	for _, x := range States {
		if x == s {
			return true
		}
	}
	return false
}

// Device is one registered field device: what it is and where it stands
// (static, edited by people) plus its health (updated by every message).
type Device struct {
	ID    string       `json:"id"`
	Class ingest.Class `json:"class"`
	Name  string       `json:"name"`
	Lat   float64      `json:"lat"`
	Lon   float64      `json:"lon"`
	// Zone is the responsibility zone in effect: the innermost zone of the geo
	// layer containing the position, else ConfiguredZone ("" = unknown).
	// Readings, health and the 叫应 chain use it. The registry derives it on
	// every write and layer swap; on Create, Update and Upsert it is read only
	// as the configured zone when ConfiguredZone is empty (see ConfiguredZone).
	Zone string `json:"zone"`
	// ConfiguredZone is the zone set through the API or a devices file (their
	// "zone" key), kept apart from the derived Zone so it is the fallback
	// whenever the geo layer finds no zone at the position. On Create, Update
	// and Upsert it is the configured zone; when empty, Zone is taken instead
	// (a Device built in code may set either), unless Zone is just the zone
	// the registry derived for a device with no configured zone (so a Device
	// read back with Get and written again keeps its configured zone, or its
	// lack of one). Clear both to remove it.
	ConfiguredZone string        `json:"configured_zone"`
	Forest         string        `json:"forest"` // forest compartment id when inside one
	Installed      time.Time     `json:"installed,omitzero"`
	Interval       time.Duration `json:"-"` // expected heartbeat interval; JSON carries interval_s
	Firmware       string        `json:"firmware"`
	// Camera extras: where video pulls the stream from, and the fixed view of a
	// non-PTZ camera (a PTZ camera reports pan/hfov with each detection).
	RTSPURL string   `json:"rtsp_url,omitempty"`
	PanDeg  *float64 `json:"pan_deg,omitempty"`
	HFOVDeg *float64 `json:"hfov_deg,omitempty"`
	// AutoRegistered marks devices created by the "register" policy, so an
	// operator can find and complete them (they have no position yet).
	AutoRegistered bool `json:"auto_registered"`

	// Health.
	LastSeen time.Time `json:"last_seen,omitzero"`
	Battery  *float64  `json:"battery_pct,omitempty"`
	RSSI     *float64  `json:"rssi_dbm,omitempty"`
	State    string    `json:"state"`
}

// MarshalJSON adds interval_s (seconds), the unit the API accepts back.
func (d Device) MarshalJSON() ([]byte, error) {
	type plain Device
	return json.Marshal(struct {
		plain
		IntervalS float64 `json:"interval_s"`
	}{plain(d), d.Interval.Seconds()})
}

// Input is a device as clients write it (HTTP body, one seed row). Pointers
// tell "absent" from zero so required fields can be enforced.
type Input struct {
	ID        string   `json:"id" yaml:"id"`
	Class     string   `json:"class" yaml:"class"`
	Name      string   `json:"name" yaml:"name"`
	Lat       *float64 `json:"lat" yaml:"lat"`
	Lon       *float64 `json:"lon" yaml:"lon"`
	Zone      string   `json:"zone,omitempty" yaml:"zone"`
	Forest    string   `json:"forest,omitempty" yaml:"forest"`
	Installed string   `json:"installed,omitempty" yaml:"installed"` // RFC 3339 or YYYY-MM-DD
	// Interval is a Go duration ("90s", "5m") or plain seconds in seeds; the
	// JSON API uses interval_s.
	Interval  string   `json:"-" yaml:"interval"`
	IntervalS *float64 `json:"interval_s,omitempty" yaml:"-"`
	Firmware  string   `json:"firmware,omitempty" yaml:"firmware"`
	RTSPURL   string   `json:"rtsp_url,omitempty" yaml:"rtsp_url"`
	PanDeg    *float64 `json:"pan_deg,omitempty" yaml:"pan_deg"`
	HFOVDeg   *float64 `json:"hfov_deg,omitempty" yaml:"hfov_deg"`
}

// inputFields are the keys a seed row may carry (YAML keys, CSV header names).
var inputFields = []string{"id", "class", "name", "lat", "lon", "zone", "forest", "installed", "interval",
	"firmware", "rtsp_url", "pan_deg", "hfov_deg"}

// Limits on interval: below a second is a misconfiguration, above a week would
// hide a dead device for too long.
const (
	minInterval = time.Second
	maxInterval = 7 * 24 * time.Hour
)

// Device validates in and returns the static device; defInterval applies when
// no interval is given. Errors wrap ErrInvalidDevice and name the field.
func (in Input) Device(defInterval time.Duration) (Device, error) {
	bad := func(field, format string, args ...any) (Device, error) {
		return Device{}, fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), ErrInvalidDevice)
	}
	d := Device{ID: strings.TrimSpace(in.ID), Class: ingest.Class(strings.TrimSpace(in.Class)),
		Name: strings.TrimSpace(in.Name), Zone: strings.TrimSpace(in.Zone), ConfiguredZone: strings.TrimSpace(in.Zone),
		Forest:   strings.TrimSpace(in.Forest),
		Firmware: strings.TrimSpace(in.Firmware), RTSPURL: strings.TrimSpace(in.RTSPURL), State: StateNever}
	switch {
	case d.ID == "":
		return bad("id", "required")
	case !ingest.ValidDeviceID(d.ID):
		return bad("id", "%q: want 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit", d.ID)
	case d.Class == "":
		return bad("class", "required")
	case !d.Class.Valid():
		return bad("class", "%q: want smoke, station, elec or camera", d.Class)
	case d.Name == "":
		return bad("name", "required")
	case len(d.Name) > 200:
		return bad("name", "longer than 200 bytes")
	case in.Lat == nil:
		return bad("lat", "required")
	case in.Lon == nil:
		return bad("lon", "required")
	case math.IsNaN(*in.Lat) || *in.Lat < -90 || *in.Lat > 90:
		return bad("lat", "%v: want -90..90 (WGS84)", *in.Lat)
	case math.IsNaN(*in.Lon) || *in.Lon < -180 || *in.Lon > 180:
		return bad("lon", "%v: want -180..180 (WGS84)", *in.Lon)
	case len(d.Zone) > 128 || len(d.Forest) > 128 || len(d.Firmware) > 64 || len(d.RTSPURL) > 1024:
		return bad("zone", "zone/forest up to 128, firmware up to 64, rtsp_url up to 1024 bytes")
	}
	d.Lat, d.Lon = *in.Lat, *in.Lon
	if d.RTSPURL != "" {
		if err := rtspurl.Check(d.RTSPURL); err != nil {
			return bad("rtsp_url", "%v", err)
		}
	}
	if in.PanDeg != nil {
		if p := *in.PanDeg; math.IsNaN(p) || p < 0 || p >= 360 {
			return bad("pan_deg", "%v: want 0..<360", p)
		}
		v := *in.PanDeg
		d.PanDeg = &v
	}
	if in.HFOVDeg != nil {
		if h := *in.HFOVDeg; math.IsNaN(h) || h <= 0 || h > 180 {
			return bad("hfov_deg", "%v: want >0..180", h)
		}
		v := *in.HFOVDeg
		d.HFOVDeg = &v
	}
	if (d.PanDeg != nil || d.HFOVDeg != nil || d.RTSPURL != "") && d.Class != ingest.ClassCamera {
		return bad("class", "pan_deg, hfov_deg and rtsp_url are for cameras only")
	}
	if s := strings.TrimSpace(in.Installed); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t, err = time.Parse(time.DateOnly, s)
		}
		if err != nil {
			return bad("installed", "%q: want RFC 3339 or YYYY-MM-DD", s)
		}
		d.Installed = t.UTC()
	}
	d.Interval = defInterval
	switch {
	case in.IntervalS != nil:
		s := *in.IntervalS
		if math.IsNaN(s) || s < minInterval.Seconds() || s > maxInterval.Seconds() {
			return bad("interval_s", "%v: want %v..%v seconds", s, minInterval.Seconds(), maxInterval.Seconds())
		}
		d.Interval = time.Duration(s * float64(time.Second))
	case strings.TrimSpace(in.Interval) != "":
		iv, err := parseInterval(strings.TrimSpace(in.Interval))
		if err != nil {
			return bad("interval", "%v", err)
		}
		d.Interval = iv
	}
	return d, nil
}

// parseInterval accepts a Go duration ("5m", "90s") or plain seconds ("300").
func parseInterval(s string) (time.Duration, error) {
	var d time.Duration
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > maxInterval.Seconds() {
			return 0, fmt.Errorf("%q: want %v..%v", s, minInterval, maxInterval)
		}
		d = time.Duration(f * float64(time.Second))
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, fmt.Errorf("%q: want a duration like 5m or seconds", s)
	}
	if d < minInterval || d > maxInterval {
		return 0, fmt.Errorf("%v: want %v..%v", d, minInterval, maxInterval)
	}
	return d, nil
}
