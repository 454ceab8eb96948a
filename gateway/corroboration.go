package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/paulmach/orb"

	"github.com/lookoutfire/lookout/alerting"
	"github.com/lookoutfire/lookout/geo"
	"github.com/lookoutfire/lookout/hotspot"
	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/registry"
)

// Corroboration for hotspot reports: what the ground network saw near a satellite
// hotspot. hotspot declares the questions (Evidence, Cameras); these adapters
// answer them from alerting and the registry without either knowing hotspot.

// registryCameras lists the registered cameras with the configured camera range.
type registryCameras struct {
	devices *registry.Registry
	rangeM  float64
}

func (c registryCameras) Cameras() []hotspot.Camera {
	var out []hotspot.Camera
	for _, d := range c.devices.List(registry.Filter{Class: ingest.ClassCamera}) {
		if d.Lat == 0 && d.Lon == 0 {
			continue
		}
		out = append(out, hotspot.Camera{ID: d.ID, Name: d.Name, Lat: d.Lat, Lon: d.Lon, RangeM: c.rangeM})
	}
	return out
}

// alertEvidence turns alerts (camera detections with bearing or fix, smoke and
// electrical alarms, fire-danger warnings) and stations' current fire danger into
// hotspot evidence items near a point.
type alertEvidence struct {
	alerts  *alerting.Engine
	devices *registry.Registry
}

func (e alertEvidence) Near(ctx context.Context, lat, lon, radiusM float64, from, to time.Time) ([]hotspot.Item, error) {
	as, err := e.alerts.List(ctx, alerting.Filter{Since: from.Add(-24 * time.Hour), Until: to, Limit: 5000})
	if err != nil {
		return nil, err
	}
	here := orb.Point{lon, lat}
	var out []hotspot.Item
	for _, a := range as {
		if a.LastSeen.Before(from) || a.FirstSeen.After(to) {
			continue
		}
		it := hotspot.Item{Source: a.Source, At: a.LastSeen, Lat: a.Lat, Lon: a.Lon, Summary: a.Message, Level: string(a.Severity)}
		switch {
		case strings.HasPrefix(a.Type, alerting.TypeCameraFire):
			it.Kind, it.CameraID = hotspot.KindCameraDetection, a.Source
			it.Score, _ = a.Details["score"].(float64)
			if fix, ok := a.Details["fix"].(map[string]any); ok {
				it.Lat, _ = fix["lat"].(float64)
				it.Lon, _ = fix["lon"].(float64)
				it.Fix = true
			} else {
				it.CamLat, _ = a.Details["camera_lat"].(float64)
				it.CamLon, _ = a.Details["camera_lon"].(float64)
				it.Bearing, _ = a.Details["bearing_deg"].(float64)
				it.ConeDeg, _ = a.Details["cone_deg"].(float64)
				it.HasBearing = true
				it.Lat, it.Lon = it.CamLat, it.CamLon
			}
		case a.Type == alerting.TypeSmokeAlarm:
			it.Kind = hotspot.KindSmokeAlert
		case a.Type == alerting.TypeResidual || a.Type == alerting.TypeCableTemp || a.Type == alerting.TypeArcFault || a.Type == alerting.TypeElecAlarm:
			it.Kind = hotspot.KindElecAlert
		default:
			continue
		}
		if it.Lat == 0 && it.Lon == 0 {
			if d, ok := e.devices.Get(a.Source); ok {
				it.Lat, it.Lon = d.Lat, d.Lon
			}
		}
		// A bearing reaches far beyond its camera; hotspot checks the cone itself.
		if !it.HasBearing && geo.Distance(here, orb.Point{it.Lon, it.Lat}) > radiusM {
			continue
		}
		out = append(out, it)
	}
	danger, err := e.alerts.Danger(ctx)
	if err != nil {
		return nil, err
	}
	for _, sd := range danger {
		d, ok := e.devices.Get(sd.Station)
		if !ok || geo.Distance(here, orb.Point{d.Lon, d.Lat}) > radiusM {
			continue
		}
		if sd.ObsAt.Before(from.Add(-24*time.Hour)) || sd.ObsAt.After(to) {
			continue
		}
		out = append(out, hotspot.Item{Kind: hotspot.KindFireDanger, Source: sd.Station, At: sd.ObsAt, Lat: d.Lat, Lon: d.Lon,
			Level: sd.Level.Name(), Summary: fmt.Sprintf("FWI %.1f", sd.Indices.FWI)})
	}
	return out, nil
}
