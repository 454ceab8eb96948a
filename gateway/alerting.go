package main

import (
	"context"
	"time"

	"github.com/paulmach/orb"

	"github.com/lookoutfire/lookout/alerting"
	"github.com/lookoutfire/lookout/geo"
	"github.com/lookoutfire/lookout/spool"
	"github.com/lookoutfire/lookout/tsdb"
)

// Adapters from the gateway's components to the small interfaces alerting
// declares: geo answers zones and camera geometry, the spool stores points,
// the MQTT connection publishes alerts. alerting imports none of them.

// geoDirectory resolves zone chains (innermost first) from the current geo index.
type geoDirectory struct{ l *geo.Layers }

func (d geoDirectory) ZonePath(zoneID string) []alerting.Zone {
	path := d.l.Current().ZonePath(zoneID)
	out := make([]alerting.Zone, 0, len(path))
	for _, z := range path {
		az := alerting.Zone{ID: z.ID, Name: z.Name, Level: z.Level, Parent: z.Parent}
		for _, c := range z.Duty {
			az.Duty = append(az.Duty, alerting.Contact{Name: c.Name, Phone: c.Phone, Role: c.Role})
		}
		out = append(out, az)
	}
	return out
}

// cameraGeo follows bearing rays over the forest layer and triangulates.
type cameraGeo struct{ l *geo.Layers }

func (c cameraGeo) RayForests(lat, lon, azimuthDeg, rangeM float64) []string {
	return c.l.Current().RayForests(orb.Point{lon, lat}, azimuthDeg, rangeM)
}

func (c cameraGeo) Triangulate(s []alerting.Sighting, minBaselineM, minAngleDeg float64) (alerting.Fix, error) {
	in := make([]geo.Sighting, len(s))
	for i, x := range s {
		in[i] = geo.Sighting{Lat: x.Lat, Lon: x.Lon, BearingDeg: x.BearingDeg}
	}
	f, err := geo.Triangulate(in, minBaselineM, minAngleDeg)
	return alerting.Fix{Lat: f.Lat, Lon: f.Lon, ErrorM: f.ErrorM}, err
}

// spoolPoints stores derived points (daily fire danger) through the same
// durable spool as readings, so they reach InfluxDB with the same guarantees.
type spoolPoints struct{ s *spool.Spool }

func (p spoolPoints) WritePoint(ctx context.Context, measurement string, tags map[string]string, fields map[string]any, t time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second) // a full spool waits at most this long
	defer cancel()
	return p.s.Append(ctx, tsdb.EncodePoint(nil, measurement, tags, fields, t))
}
