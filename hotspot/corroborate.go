package hotspot

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"
)

// CameraView is a camera whose range covers the report, with the bearing to turn to.
type CameraView struct {
	Camera
	DistanceM  float64 `json:"distance_m"`
	BearingDeg float64 `json:"bearing_deg"` // initial great-circle bearing from the camera to the report
}

// EvidenceView is one evidence item with its distance from the report.
type EvidenceView struct {
	Item
	DistanceM float64 `json:"distance_m"`
	Confirms  bool    `json:"confirms,omitempty"` // a camera fix/bearing that hits a hotspot's pixel
}

// Corroboration is what the ground already knows about a report.
type Corroboration struct {
	Cameras           []CameraView   `json:"cameras"`
	Evidence          []EvidenceView `json:"evidence"`
	ConfirmedByCamera bool           `json:"confirmed_by_camera"`
}

// Corroborate gathers the cameras covering report r and the evidence within
// corroboration_radius_m and ±corroboration_window of its hotspots' times, and decides
// whether a camera confirms it: a triangulated fix inside a hotspot's pixel footprint
// (grown by the clustering distance), or a single camera's detection cone that crosses
// that footprint within the camera's range. Items the Evidence source returns outside
// the radius or window are dropped here too.
func (s *Service) Corroborate(ctx context.Context, r Report, hs []StoredHotspot) (Corroboration, error) {
	c := Corroboration{Cameras: []CameraView{}, Evidence: []EvidenceView{}}
	if s.cams != nil {
		for _, cam := range s.cams.Cameras() {
			d := haversineM(cam.Lat, cam.Lon, r.Lat, r.Lon)
			if cam.RangeM > 0 && d <= cam.RangeM {
				c.Cameras = append(c.Cameras, CameraView{Camera: cam, DistanceM: math.Round(d),
					BearingDeg: math.Round(bearingDeg(cam.Lat, cam.Lon, r.Lat, r.Lon)*10) / 10})
			}
		}
		sort.Slice(c.Cameras, func(i, j int) bool { return c.Cameras[i].DistanceM < c.Cameras[j].DistanceM })
	}
	if s.ev == nil {
		return c, nil
	}
	from, to := r.FirstSeen.Add(-s.cfg.CorroborationWindow), r.LastSeen.Add(s.cfg.CorroborationWindow)
	radius := s.cfg.CorroborationRadiusM
	items, err := s.ev.Near(ctx, r.Lat, r.Lon, radius, from, to)
	if err != nil {
		return c, fmt.Errorf("hotspot: corroboration: %w", err)
	}
	camRange := map[string]float64{}
	if s.cams != nil {
		for _, cam := range s.cams.Cameras() {
			camRange[cam.ID] = cam.RangeM
		}
	}
	for _, it := range items {
		if it.At.Before(from) || it.At.After(to) {
			continue
		}
		d := haversineM(r.Lat, r.Lon, it.Lat, it.Lon)
		if d > radius {
			if !(it.Kind == KindCameraDetection && it.HasBearing) {
				continue
			}
			// A bearing-only detection is positioned at its camera, which may stand further
			// away than the radius and still see the fire: judge it by its cone instead.
		}
		v := EvidenceView{Item: it, DistanceM: math.Round(d)}
		if it.Kind == KindCameraDetection {
			v.Confirms = s.confirms(it, camRange[it.CameraID], hs)
			if !v.Confirms && d > radius {
				continue
			}
		}
		c.ConfirmedByCamera = c.ConfirmedByCamera || v.Confirms
		c.Evidence = append(c.Evidence, v)
	}
	sort.Slice(c.Evidence, func(i, j int) bool { return c.Evidence[i].At.Before(c.Evidence[j].At) })
	return c, nil
}

// confirms reports whether a camera detection hits one of the hotspots' pixel footprints
// (each grown by the clustering distance, since the pixel centre is not the fire). The
// detection must fall within the corroboration window of that hotspot.
func (s *Service) confirms(it Item, rangeM float64, hs []StoredHotspot) bool {
	growKm := s.cfg.ClusterDistanceM / 1000
	for _, h := range hs {
		dt := it.At.Sub(h.Acquired)
		if dt < -s.cfg.CorroborationWindow || dt > s.cfg.CorroborationWindow {
			continue
		}
		halfW, halfH := h.Scan/2+growKm, h.Track/2+growKm
		if it.Fix {
			x, y := project(it.Lat, it.Lon, h.Lat, h.Lon)
			if math.Abs(x) <= halfW && math.Abs(y) <= halfH {
				return true
			}
			continue
		}
		if !it.HasBearing {
			continue
		}
		if rangeM > 0 && haversineM(it.CamLat, it.CamLon, h.Lat, h.Lon) > rangeM+1000*math.Hypot(halfW, halfH) {
			continue
		}
		if coneHitsRect(it.CamLat, it.CamLon, it.Bearing, it.ConeDeg, h.Lat, h.Lon, halfW, halfH) {
			return true
		}
	}
	return false
}

// coneHitsRect reports whether the cone [bearing ± cone/2] from a camera overlaps the
// angular extent of a rectangle (half sizes in km) centred on (lat, lon), as seen from
// the camera. A camera inside the rectangle always hits it.
func coneHitsRect(camLat, camLon, bearing, cone, lat, lon, halfW, halfH float64) bool {
	cx, cy := project(lat, lon, camLat, camLon)
	if math.Abs(cx) <= halfW && math.Abs(cy) <= halfH {
		return true
	}
	centre := math.Atan2(cx, cy) * 180 / math.Pi
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, corner := range [4][2]float64{{-1, -1}, {-1, 1}, {1, -1}, {1, 1}} {
		d := angleDiff(math.Atan2(cx+corner[0]*halfW, cy+corner[1]*halfH)*180/math.Pi, centre)
		lo, hi = math.Min(lo, d), math.Max(hi, d)
	}
	off := angleDiff(bearing, centre)
	half := math.Max(cone, 0) / 2
	return off+half >= lo && off-half <= hi
}

// angleDiff returns a−b wrapped to (−180, 180].
func angleDiff(a, b float64) float64 {
	d := math.Mod(a-b, 360)
	if d > 180 {
		d -= 360
	} else if d <= -180 {
		d += 360
	}
	return d
}

// Detail is a report with everything a verifier looks at.
type Detail struct {
	Report
	HotspotList      []StoredHotspot `json:"hotspot_list"`
	History          []HistoryEntry  `json:"history"`
	Photos           []Photo         `json:"photos"`
	Corroboration    *Corroboration  `json:"corroboration,omitempty"`
	CorroborationErr string          `json:"corroboration_error,omitempty"`
}

// Detail loads a report with its hotspots, history, photos and corroboration. When the
// corroboration newly finds a camera confirmation, the flag is stored and announced.
func (s *Service) Detail(ctx context.Context, id int64) (Detail, error) {
	r, err := getReport(ctx, s.db, id)
	if err != nil {
		return Detail{}, err
	}
	markOverdue(&r, s.clk.Now())
	d := Detail{Report: r}
	if d.HotspotList, err = s.Hotspots(ctx, id); err != nil {
		return d, err
	}
	if d.History, err = s.History(ctx, id); err != nil {
		return d, err
	}
	if d.Photos, err = s.Photos(ctx, id); err != nil {
		return d, err
	}
	c, err := s.Corroborate(ctx, r, d.HotspotList)
	if err != nil {
		d.CorroborationErr = err.Error() // the report is still worth showing without it
		return d, nil
	}
	d.Corroboration = &c
	if c.ConfirmedByCamera && !r.ConfirmedByCamera {
		now := s.clk.Now()
		if _, err := s.db.ExecContext(ctx, `UPDATE hotspot_reports SET confirmed_by_camera=1, updated_at=? WHERE id=?`, now.Unix(), id); err != nil {
			return d, fmt.Errorf("hotspot: mark confirmed: %w", err)
		}
		if err := addHistory(ctx, s.db, id, now, "system", "confirmed_by_camera", r.Status, r.Status, nil); err != nil {
			return d, err
		}
		d.ConfirmedByCamera = true
		d.UpdatedAt = time.Unix(now.Unix(), 0).UTC()
		s.publish(d.Report)
	}
	return d, nil
}
