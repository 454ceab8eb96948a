package main

import (
	"net/http"

	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/web"
)

// routes is THE route table: every /api/v1 endpoint (and page) with the role it
// requires. The guard enforces it; the role × endpoint test walks it. A new
// endpoint is one new row here — nowhere else decides who may call it.
func (a *App) routes() []web.Route {
	const (
		get  = http.MethodGet
		post = http.MethodPost
		put  = http.MethodPut
		del  = http.MethodDelete
	)
	rs := []web.Route{
		// --- devices and health (registry) ---
		{Method: get, Pattern: "/api/v1/devices", Role: auth.RoleMaintenance, Handler: a.devices.HandleList},
		{Method: post, Pattern: "/api/v1/devices", Role: auth.RoleMaintenance, Handler: a.devices.HandleCreate, Audit: "device.create"},
		{Method: get, Pattern: "/api/v1/devices/{id}", Role: auth.RoleMaintenance, Handler: a.devices.HandleGet},
		{Method: put, Pattern: "/api/v1/devices/{id}", Role: auth.RoleMaintenance, Handler: a.devices.HandleUpdate, Audit: "device.update"},
		{Method: del, Pattern: "/api/v1/devices/{id}", Role: auth.RoleMaintenance, Handler: a.devices.HandleDelete, Audit: "device.delete"},
		{Method: get, Pattern: "/api/v1/health/zones", Role: auth.RoleMaintenance, Handler: a.devices.HandleZones},
		// --- geo ---
		// --- alerting ---
		// --- hotspots ---
		// --- video ---
		// --- security (users, tokens, credentials, audit) ---
	}
	return rs
}
