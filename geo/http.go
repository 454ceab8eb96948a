package geo

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/paulmach/orb"

	"github.com/lookoutfire/lookout/errs"
	"github.com/lookoutfire/lookout/web"
)

// PutReply is the answer to a successful layer upload.
type PutReply struct {
	Layer    string `json:"layer"`
	Features int    `json:"features"`
	CRS      string `json:"crs"` // the CRS the upload was read in; stored as WGS84
}

// HandlePut replaces a layer: PUT /api/v1/geo/{layer}[?crs=gcj02] with a
// GeoJSON FeatureCollection body. A bad layer is a 400 naming the feature and
// the old layer stays in force.
func (l *Layers) HandlePut(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("layer")
	crs, err := normCRS(r.URL.Query().Get("crs"))
	if err != nil {
		web.Error(w, r, fmt.Errorf("crs: %v: %w", err, errs.ErrInvalid))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, l.cfg.MaxLayerBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			web.Error(w, r, fmt.Errorf("geo layer larger than %d bytes: %w", l.cfg.MaxLayerBytes, errs.ErrTooLarge))
			return
		}
		web.Error(w, r, fmt.Errorf("read body: %v: %w", err, errs.ErrInvalid))
		return
	}
	if err := l.Replace(name, body, crs); err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, PutReply{Layer: name, Features: l.Current().Counts()[name], CRS: crs})
}

// HandleGet serves a layer as a WGS84 FeatureCollection: GET /api/v1/geo/{layer}.
func (l *Layers) HandleGet(w http.ResponseWriter, r *http.Request) {
	ix := l.Current()
	var ly *layer
	switch name := r.PathValue("layer"); name {
	case LayerForests:
		ly = ix.forests
	case LayerZones:
		ly = ix.zones
	case LayerMasks:
		ly = ix.masks
	default:
		web.Error(w, r, fmt.Errorf("%q (want forests, zones or masks): %w", name, ErrUnknownLayer))
		return
	}
	w.Header().Set("Content-Type", "application/geo+json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(ly.raw)
}

// HandleLocate answers GET /api/v1/geo/locate?lat=&lon=[&crs=gcj02] with a Location.
func (l *Layers) HandleLocate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lat, err1 := strconv.ParseFloat(q.Get("lat"), 64)
	lon, err2 := strconv.ParseFloat(q.Get("lon"), 64)
	if err1 != nil || err2 != nil {
		web.Error(w, r, fmt.Errorf("lat and lon must be decimal degrees: %w", errs.ErrInvalid))
		return
	}
	p := orb.Point{lon, lat}
	if err := checkPoint(p); err != nil {
		web.Error(w, r, fmt.Errorf("%v: %w", err, errs.ErrInvalid))
		return
	}
	crs, err := normCRS(q.Get("crs"))
	if err != nil {
		web.Error(w, r, fmt.Errorf("crs: %v: %w", err, errs.ErrInvalid))
		return
	}
	if crs == CRSGCJ02 {
		p = GCJ02ToWGS84(p)
	}
	loc := l.Current().Locate(p)
	if loc.Forests == nil {
		loc.Forests = []string{}
	}
	if loc.Zones == nil {
		loc.Zones = []Zone{}
	}
	web.JSON(w, http.StatusOK, loc)
}
