package registry

import (
	"fmt"
	"net/http"

	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/web"
)

// ListResponse is the body of GET /api/v1/devices: the matching devices and the
// connection summary per zone (over the devices matching the class and zone
// filters, ignoring the state filter, so rates stay meaningful) plus a total.
type ListResponse struct {
	Devices []Device     `json:"devices"`
	Count   int          `json:"count"`
	Zones   []ZoneHealth `json:"zones"`
	Overall ZoneHealth   `json:"overall"`
}

// ZonesResponse is the body of GET /api/v1/health/zones.
type ZonesResponse struct {
	Zones   []ZoneHealth `json:"zones"`
	Overall ZoneHealth   `json:"overall"`
}

// HandleList serves GET /api/v1/devices?class=&zone=&state=.
func (g *Registry) HandleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := Filter{Class: ingest.Class(q.Get("class")), Zone: q.Get("zone"), State: q.Get("state")}
	if f.Class != "" && !f.Class.Valid() {
		web.Error(w, r, fmt.Errorf("class: %q: want smoke, station, elec or camera: %w", f.Class, ErrInvalidDevice))
		return
	}
	if f.State != "" && !validState(f.State) {
		web.Error(w, r, fmt.Errorf("state: %q: want never, online, late or offline: %w", f.State, ErrInvalidDevice))
		return
	}
	all := g.List(Filter{Class: f.Class, Zone: f.Zone})
	devs := make([]Device, 0, len(all))
	for _, d := range all {
		if f.State == "" || d.State == f.State {
			devs = append(devs, d)
		}
	}
	zones := summarise(all)
	web.JSON(w, http.StatusOK, ListResponse{Devices: devs, Count: len(devs), Zones: zones, Overall: total(zones)})
}

// HandleCreate serves POST /api/v1/devices (strict JSON Input; 201 with the device).
func (g *Registry) HandleCreate(w http.ResponseWriter, r *http.Request) {
	var in Input
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	d, err := in.Device(g.cfg.DefaultInterval)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	if err := g.Create(r.Context(), d); err != nil {
		web.Error(w, r, err)
		return
	}
	out, _ := g.Get(d.ID)
	w.Header().Set("Location", "/api/v1/devices/"+d.ID)
	web.JSON(w, http.StatusCreated, out)
}

// HandleGet serves GET /api/v1/devices/{id}.
func (g *Registry) HandleGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	d, ok := g.Get(id)
	if !ok {
		web.Error(w, r, fmt.Errorf("%s: %w", id, ErrDeviceNotFound))
		return
	}
	web.JSON(w, http.StatusOK, d)
}

// HandleUpdate serves PUT /api/v1/devices/{id}: the body replaces the static
// fields (same shape as create; its id, if given, must match the path).
func (g *Registry) HandleUpdate(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var in Input
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	if in.ID != "" && in.ID != id {
		web.Error(w, r, fmt.Errorf("id: body says %q, path says %q: %w", in.ID, id, ErrInvalidDevice))
		return
	}
	in.ID = id
	d, err := in.Device(g.cfg.DefaultInterval)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	if err := g.Update(r.Context(), d); err != nil {
		web.Error(w, r, err)
		return
	}
	out, _ := g.Get(id)
	web.JSON(w, http.StatusOK, out)
}

// HandleDelete serves DELETE /api/v1/devices/{id} (204).
func (g *Registry) HandleDelete(w http.ResponseWriter, r *http.Request) {
	if err := g.Delete(r.Context(), r.PathValue("id")); err != nil {
		web.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// HandleZones serves GET /api/v1/health/zones.
func (g *Registry) HandleZones(w http.ResponseWriter, r *http.Request) {
	zones := g.ZoneHealth()
	web.JSON(w, http.StatusOK, ZonesResponse{Zones: zones, Overall: total(zones)})
}
