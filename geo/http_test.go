package geo

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

func testServer(t *testing.T, cfg Config) (*Layers, *httptest.Server) {
	t.Helper()
	l := mustLayers(t, cfg)
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /api/v1/geo/{layer}", l.HandlePut)
	mux.HandleFunc("GET /api/v1/geo/{layer}", l.HandleGet)
	mux.HandleFunc("GET /api/v1/geo/locate", l.HandleLocate)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return l, srv
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPLayers(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxLayerBytes = 4096
	_, srv := testServer(t, cfg)
	base := srv.URL + "/api/v1/geo/"
	forest := string(fc(t, feat("F1", orb.Polygon{rect(107.0, 31.0, 107.1, 31.1)}, map[string]any{"name": "松林"})))

	cases := []struct {
		name, method, path, body string
		status                   int
		contains                 []string
	}{
		{"empty layer", "GET", "forests", "", 200, []string{`"features":[]`}},
		{"put forests", "PUT", "forests", forest, 200, []string{`"layer":"forests"`, `"features":1`, `"crs":"wgs84"`}},
		{"get forests", "GET", "forests", "", 200, []string{`"id":"F1"`, `"name":"松林"`, "FeatureCollection"}},
		{"open ring", "PUT", "forests", `{"type":"FeatureCollection","features":[{"type":"Feature","id":"bad1","geometry":{"type":"Polygon","coordinates":[[[107,31],[107.1,31],[107.1,31.1],[107,31.2]]]}}]}`,
			400, []string{`"code":"invalid"`, `bad1`, "not closed"}},
		{"still the old layer", "GET", "forests", "", 200, []string{`"id":"F1"`}},
		{"unknown layer put", "PUT", "rivers", forest, 404, []string{"not_found"}},
		{"unknown layer get", "GET", "rivers", "", 404, []string{"not_found"}},
		{"bad crs", "PUT", "forests?crs=bd09", forest, 400, []string{"unknown coordinate system"}},
		{"too large", "PUT", "forests", `{"type":"FeatureCollection","features":[` + strings.Repeat(" ", 5000) + `]}`, 413, []string{"too_large"}},
		{"locate inside", "GET", "locate?lat=31.05&lon=107.05", "", 200, []string{`"forests":["F1"]`, `"distance_m":0`, `"near_forest":true`, `"zones":[]`}},
		{"locate outside", "GET", "locate?lat=31.2&lon=107.05", "", 200, []string{`"forests":[]`, `"distance_m":-1`, `"nearest_forest":""`}},
		{"locate bad lat", "GET", "locate?lat=north&lon=107", "", 400, []string{"invalid"}},
		{"locate lat out of range", "GET", "locate?lat=91&lon=107", "", 400, []string{"invalid"}},
		{"locate missing", "GET", "locate", "", 400, []string{"invalid"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := do(t, c.method, base+c.path, c.body)
			if code != c.status {
				t.Fatalf("%s %s: status %d, want %d; body %s", c.method, c.path, code, c.status, body)
			}
			for _, s := range c.contains {
				if !strings.Contains(body, s) {
					t.Errorf("body %s does not contain %s", body, s)
				}
			}
		})
	}
}

// TestHTTPGCJ02Upload: a layer uploaded in GCJ-02 is stored in WGS84, so a
// WGS84 point near its edge lands on the right side, and a GCJ-02 query point
// can be converted by the server.
func TestHTTPGCJ02Upload(t *testing.T) {
	l, srv := testServer(t, DefaultConfig())
	gcj := rect(107.0, 31.0, 107.1, 31.1)
	body := string(fc(t, feat("Z", orb.Polygon{gcj}, nil)))
	if code, b := do(t, "PUT", srv.URL+"/api/v1/geo/forests?crs=gcj02", body); code != 200 {
		t.Fatalf("put: %d %s", code, b)
	}
	// The stored ring is the WGS84 position of each GCJ-02 vertex.
	code, b := do(t, "GET", srv.URL+"/api/v1/geo/forests", "")
	if code != 200 {
		t.Fatal(code)
	}
	got, err := geojson.UnmarshalFeatureCollection([]byte(b))
	if err != nil {
		t.Fatal(err)
	}
	ring := got.Features[0].Geometry.(orb.Polygon)[0]
	want := GCJ02ToWGS84(gcj[0])
	if ring[0] != want {
		t.Errorf("stored first vertex %v, want %v", ring[0], want)
	}
	// Here GCJ-02 lies ~430 m east of WGS84: a WGS84 point 50 m inside the
	// GCJ-02 outline's eastern edge is outside the true (WGS84) outline.
	inner := orb.Point{107.0995, 31.05}
	if len(l.Current().Locate(inner).Forests) != 0 {
		t.Error("a point 50 m inside the GCJ-02 edge should be outside the converted layer")
	}
	code, b = do(t, "GET", srv.URL+"/api/v1/geo/locate?lat=31.05&lon=107.0995&crs=gcj02", "")
	var loc Location
	if code != 200 || json.Unmarshal([]byte(b), &loc) != nil || len(loc.Forests) != 1 {
		t.Errorf("GCJ-02 query point: %d %s", code, b)
	}
}

func TestHTTPZonesLocate(t *testing.T) {
	l, srv := testServer(t, DefaultConfig())
	if err := l.Replace(LayerZones, testZones(t), ""); err != nil {
		t.Fatal(err)
	}
	code, b := do(t, "GET", srv.URL+"/api/v1/geo/locate?lat=31.07&lon=107.07", "")
	var loc Location
	if code != 200 || json.Unmarshal([]byte(b), &loc) != nil {
		t.Fatalf("%d %s", code, b)
	}
	if len(loc.Zones) != 3 || loc.Zones[0].ID != "v1" || loc.Zones[0].Duty[0].Name != "王" || loc.Zones[2].Level != "county" {
		t.Errorf("zones %+v", loc.Zones)
	}
}
