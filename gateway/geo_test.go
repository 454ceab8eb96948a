package main

import (
	"context"
	"testing"

	"github.com/lookoutfire/lookout/geo"
	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/registry"
)

// Replacing the zone layer at run time re-derives every device's zone.
func TestZoneLayerSwapRelocatesDevices(t *testing.T) {
	a := testApp(t)
	ctx := context.Background()
	if err := a.devices.Create(ctx, registry.Device{ID: "sm-x", Class: ingest.ClassSmoke, Name: "x", Lat: 31.05, Lon: 107.05}); err != nil {
		t.Fatal(err)
	}
	before, _ := a.devices.Get("sm-x")
	zones := []byte(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"new-county","name":"N",
	 "level":"county","duty":[{"name":"a","phone":"1"}]},
	 "geometry":{"type":"Polygon","coordinates":[[[107,31],[107.1,31],[107.1,31.1],[107,31.1],[107,31]]]}}]}`)
	if err := a.geoLayers.Replace(geo.LayerZones, zones, ""); err != nil {
		t.Fatal(err)
	}
	after, _ := a.devices.Get("sm-x")
	if after.Zone != "new-county" || after.Zone == before.Zone {
		t.Fatalf("zone before %q, after swap %q; want new-county", before.Zone, after.Zone)
	}
}
