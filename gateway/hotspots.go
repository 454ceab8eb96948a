package main

import (
	"context"
	"database/sql"
	"net/http"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/config"
	"github.com/lookoutfire/lookout/events"
	"github.com/lookoutfire/lookout/geo"
	"github.com/lookoutfire/lookout/hotspot"
)

// newHotspots builds the hotspot workflow on the shared state DB and geo layers.
// Escalation, evidence and cameras join when alerting and the camera registry are
// wired (hotspot.Deps.Escalator / Evidence / Cameras); until then overdue reports are
// flagged and listed but not escalated through 叫应.
func newHotspots(ctx context.Context, cfg config.Config, db *sql.DB, layers *geo.Layers, pub events.Publisher,
	clk clock.Clock, reg prometheus.Registerer) (*hotspot.Service, error) {
	hc := cfg.Hotspot
	if hc.PhotoDir == "" {
		hc.PhotoDir = filepath.Join(cfg.DataDir, "photos")
	}
	return hotspot.New(ctx, hc, hotspot.Deps{DB: db, Locator: hotspot.GeoLocator{Layers: layers}, Events: pub, Clock: clk,
		Registerer: reg, User: requestUser})
}

// requestUser names the authenticated caller for the hotspot audit trail.
func requestUser(r *http.Request) string {
	if p, ok := auth.PrincipalFrom(r.Context()); ok {
		return p.Name
	}
	return ""
}

// logHotspotErr reports a failed deadline step or poll without stopping the loop.
func (a *App) logHotspotErr(err error) {
	a.log.Warn("hotspots", "err", err)
}
