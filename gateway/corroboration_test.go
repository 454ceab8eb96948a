package main

import (
	"context"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/alerting"
	"github.com/lookoutfire/lookout/hotspot"
	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/registry"
)

// The corroboration adapters find a smoke alarm 1 km from a hotspot 10 minutes
// earlier, ignore one 20 km away, and list the registered cameras.
func TestCorroborationAdapters(t *testing.T) {
	a := testApp(t)
	ctx := context.Background()
	now := time.Now().UTC()
	for _, d := range []registry.Device{
		{ID: "sm-near", Class: ingest.ClassSmoke, Name: "near", Lat: 31.509, Lon: 107.0},
		{ID: "sm-far", Class: ingest.ClassSmoke, Name: "far", Lat: 31.68, Lon: 107.0},
		{ID: "cam-x", Class: ingest.ClassCamera, Name: "tower", Lat: 31.45, Lon: 107.02},
	} {
		if err := a.devices.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, src := range []string{"sm-near", "sm-far"} {
		d, _ := a.devices.Get(src)
		if _, err := a.alerts.Raise(ctx, alerting.Raise{Source: src, Type: alerting.TypeSmokeAlarm, Severity: alerting.Critical,
			Lat: d.Lat, Lon: d.Lon, Message: "smoke alarm", At: now.Add(-10 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	ev := alertEvidence{alerts: a.alerts, devices: a.devices}
	items, err := ev.Near(ctx, 31.5, 107.0, 5000, now.Add(-2*time.Hour), now.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Source != "sm-near" || items[0].Kind != hotspot.KindSmokeAlert {
		t.Fatalf("evidence = %+v, want only sm-near's smoke alert", items)
	}
	cams := registryCameras{devices: a.devices, rangeM: 20000}.Cameras()
	if len(cams) != 1 || cams[0].ID != "cam-x" || cams[0].RangeM != 20000 {
		t.Fatalf("cameras = %+v", cams)
	}
}
