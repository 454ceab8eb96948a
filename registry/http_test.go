package registry

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/web"
)

// server mounts the handlers the way the gateway's route table does.
func server(t *testing.T, g *Registry) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/devices", g.HandleList)
	mux.HandleFunc("POST /api/v1/devices", g.HandleCreate)
	mux.HandleFunc("GET /api/v1/devices/{id}", g.HandleGet)
	mux.HandleFunc("PUT /api/v1/devices/{id}", g.HandleUpdate)
	mux.HandleFunc("DELETE /api/v1/devices/{id}", g.HandleDelete)
	mux.HandleFunc("GET /api/v1/health/zones", g.HandleZones)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, srv *httptest.Server, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestHTTPHandlers(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	srv := server(t, e.g)
	steps := []struct {
		name, method, path, body string
		status                   int
		want                     []string // substrings of the reply
	}{
		{"create", "POST", "/api/v1/devices", `{"id":"smk-1","class":"smoke","name":"kitchen","lat":31.5,"lon":107.01,"zone":"vil-1","interval_s":600}`,
			201, []string{`"id":"smk-1"`, `"state":"never"`, `"interval_s":600`}},
		{"create camera", "POST", "/api/v1/devices", `{"id":"cam-1","class":"camera","name":"tower","lat":31.52,"lon":107.03,"zone":"vil-2","pan_deg":90,"hfov_deg":60}`,
			201, []string{`"pan_deg":90`, `"interval_s":300`}},
		{"duplicate", "POST", "/api/v1/devices", `{"id":"smk-1","class":"smoke","name":"again","lat":31.5,"lon":107}`,
			409, []string{`"code":"conflict"`}},
		{"missing lat", "POST", "/api/v1/devices", `{"id":"x","class":"smoke","name":"n","lon":107}`,
			400, []string{`"code":"invalid"`, "lat: required"}},
		{"bad class", "POST", "/api/v1/devices", `{"id":"x","class":"kettle","name":"n","lat":1,"lon":2}`,
			400, []string{"class"}},
		{"unknown field", "POST", "/api/v1/devices", `{"id":"x","class":"smoke","name":"n","lat":1,"lon":2,"color":"red"}`,
			400, []string{`"code":"invalid"`, "color"}},
		{"bad id", "POST", "/api/v1/devices", `{"id":"a/b","class":"smoke","name":"n","lat":1,"lon":2}`,
			400, []string{"id"}},
		{"not json", "POST", "/api/v1/devices", `{"id":`, 400, []string{`"code":"invalid"`}},
		{"get", "GET", "/api/v1/devices/smk-1", "", 200, []string{`"name":"kitchen"`}},
		{"get missing", "GET", "/api/v1/devices/nope", "", 404, []string{`"code":"not_found"`}},
		{"update", "PUT", "/api/v1/devices/smk-1", `{"class":"smoke","name":"hall","lat":31.5,"lon":107.01,"zone":"vil-1"}`,
			200, []string{`"name":"hall"`}},
		{"update id mismatch", "PUT", "/api/v1/devices/smk-1", `{"id":"other","class":"smoke","name":"hall","lat":31.5,"lon":107}`,
			400, []string{"id"}},
		{"update missing", "PUT", "/api/v1/devices/nope", `{"class":"smoke","name":"hall","lat":31.5,"lon":107}`,
			404, []string{"not_found"}},
		{"list", "GET", "/api/v1/devices", "", 200, []string{`"count":2`, `"zone":"vil-1"`, `"overall":{"zone":"*","total":2`}},
		{"list by class", "GET", "/api/v1/devices?class=camera", "", 200, []string{`"count":1`, `"cam-1"`}},
		{"list by state", "GET", "/api/v1/devices?state=online", "", 200, []string{`"count":0`, `"total":2`}},
		{"list bad state", "GET", "/api/v1/devices?state=asleep", "", 400, []string{"state"}},
		{"zones", "GET", "/api/v1/health/zones", "", 200, []string{`"zone":"vil-1","total":1`}},
		{"delete", "DELETE", "/api/v1/devices/smk-1", "", 204, nil},
		{"delete again", "DELETE", "/api/v1/devices/smk-1", "", 404, []string{"not_found"}},
	}
	for _, s := range steps {
		code, body := do(t, srv, s.method, s.path, s.body)
		if code != s.status {
			t.Fatalf("%s: status %d, want %d: %s", s.name, code, s.status, body)
		}
		for _, w := range s.want {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s: reply lacks %s: %s", s.name, w, body)
			}
		}
		if code >= 400 {
			var eb web.ErrorBody
			if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
				t.Errorf("%s: error body not the JSON error shape: %s", s.name, body)
			}
		}
	}
}

func TestHTTPZoneRates(t *testing.T) {
	e := newEnv(t, DefaultConfig())
	srv := server(t, e.g)
	for _, id := range []string{"a", "b", "c", "d"} {
		mustCreate(t, e.g, id, ingest.ClassSmoke, time.Minute) // zone-smoke
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := e.g.Admit(reading(id, ingest.ClassSmoke, t0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.g.RunDue(t.Context(), t0); err != nil {
		t.Fatal(err)
	}
	code, body := do(t, srv, "GET", "/api/v1/health/zones", "")
	var zr ZonesResponse
	if code != 200 || json.Unmarshal(body, &zr) != nil || len(zr.Zones) != 1 {
		t.Fatalf("%d %s", code, body)
	}
	z := zr.Zones[0]
	if z.Zone != "zone-smoke" || z.Total != 4 || z.Online != 3 || z.Never != 1 || z.Rate != 0.75 || zr.Overall.Rate != 0.75 {
		t.Fatalf("zone health %+v", z)
	}
}
