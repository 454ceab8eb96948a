package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/alerting"
	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/config"
	"github.com/lookoutfire/lookout/events"
	"github.com/lookoutfire/lookout/geo"
	"github.com/lookoutfire/lookout/hotspot"
	"github.com/lookoutfire/lookout/registry"
)

// newHotspots builds the hotspot workflow on the shared state DB and geo layers, with
// overdue reports raised as alerts (escalated through 叫应 by alerting) and
// corroboration from alerting's evidence and the registry's cameras.
func newHotspots(ctx context.Context, cfg config.Config, db *sql.DB, layers *geo.Layers, pub events.Publisher,
	clk clock.Clock, reg prometheus.Registerer, alerts *alerting.Engine, devices *registry.Registry, log *slog.Logger) (*hotspot.Service, error) {
	hc := cfg.Hotspot
	if hc.PhotoDir == "" {
		hc.PhotoDir = filepath.Join(cfg.DataDir, "photos")
	}
	if len(hc.Sources) == 0 {
		// With no poll source configured, watch an inbox folder under the data dir:
		// dropping a FIRMS file there is the simplest way to feed the workflow.
		inbox := filepath.Join(cfg.DataDir, "hotspots", "inbox")
		if err := os.MkdirAll(inbox, 0o755); err != nil {
			return nil, fmt.Errorf("hotspot inbox: %w", err)
		}
		hc.Sources = []hotspot.SourceConfig{{Name: "inbox", Dir: inbox, Interval: 10 * time.Second}}
	}
	return hotspot.New(ctx, hc, hotspot.Deps{DB: db, Locator: hotspot.GeoLocator{Layers: layers}, Events: pub, Clock: clk,
		Registerer: reg, User: requestUser, Escalator: hotspotEscalator{alerts},
		Evidence: alertEvidence{alerts: alerts, devices: devices},
		Cameras:  registryCameras{devices: devices, rangeM: cfg.Geo.CameraRangeM}, Logger: log})
}

// hotspotEscalator raises an overdue hotspot report as a major alert and clears it
// when the report is closed or merged away; its source "hotspot:{id}" keeps repeats on
// one alert.
type hotspotEscalator struct{ e *alerting.Engine }

// hotspotOverdueType is the alert type of an overdue hotspot report.
const hotspotOverdueType = "hotspot_overdue"

// Raise implements hotspot.Escalator.
func (h hotspotEscalator) Raise(ctx context.Context, a hotspot.OverdueAlert) error {
	_, err := h.e.Raise(ctx, alerting.Raise{Source: a.Source, Type: hotspotOverdueType, Severity: alerting.Severity(a.Severity),
		Zone: a.Zone, Lat: a.Lat, Lon: a.Lon, Message: a.Message, At: a.Deadline,
		Details: map[string]any{"report_id": a.ReportID, "class": a.Class, "assignee": a.Assignee}})
	return err
}

// Resolve implements hotspot.Escalator: it clears the report's active overdue alert,
// which stops its 叫应 chain.
func (h hotspotEscalator) Resolve(ctx context.Context, reportID int64, note string) error {
	if err := h.e.Resolve(ctx, fmt.Sprintf("hotspot:%d", reportID), hotspotOverdueType, note); err != nil {
		return fmt.Errorf("clear overdue alert of hotspot report %d: %w", reportID, err)
	}
	return nil
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
