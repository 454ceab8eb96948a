package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/config"
	"github.com/lookoutfire/lookout/internal/testenv"
	"github.com/lookoutfire/lookout/registry"
	"github.com/lookoutfire/lookout/video"
)

// The registry's cameras are the relay's RTSP sources: a seeded camera's
// rtsp_url is pulled from the start, and cameras created, edited and deleted
// through the device API are followed; a video.sources entry wins.
func TestRegistryCamerasAreRTSPSources(t *testing.T) {
	t.Chdir(testenv.ModuleRoot())
	seed := filepath.Join(t.TempDir(), "devices.yaml")
	if err := os.WriteFile(seed, []byte(`devices:
  - {id: cam-seed, class: camera, name: seeded tower, lat: 31.5, lon: 107.0, rtsp_url: "rtsp://admin:pw@127.0.0.1:9/seed"}
  - {id: cam-cfg, class: camera, name: configured tower, lat: 31.5, lon: 107.0, rtsp_url: "rtsp://127.0.0.1:9/registry"}
  - {id: cam-whip, class: camera, name: WHIP tower, lat: 31.5, lon: 107.0}
  - {id: smk-1, class: smoke, name: alarm, lat: 31.5, lon: 107.0}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.MQTT.EmbeddedAddr = "127.0.0.1:0"
	cfg.Registry.Seed = seed
	cfg.Auth.SimCredentials = ""
	cfg.Auth.BootstrapAdmin = ""
	cfg.Video.Sources = []video.Source{{Camera: "cam-cfg", RTSP: "rtsp://127.0.0.1:9/configured"}}
	a, err := NewApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	admin := makeCreds(t, a)[auth.RoleAdmin]
	h := apiMux(a.routes(), a.guard)
	call := func(method, path, body string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+admin)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	streams := func() map[string]video.StreamStats {
		code, body := call("GET", "/api/v1/streams", "")
		var list video.ListResponse
		if code != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil {
			t.Fatalf("GET /api/v1/streams: %d %s", code, body)
		}
		out := map[string]video.StreamStats{}
		for _, s := range list.Streams {
			out[s.Camera] = s
		}
		return out
	}
	type want struct{ origin, rtsp string } // rtsp "" = not listed
	check := func(step string, w map[string]want) {
		t.Helper()
		got := streams()
		for cam, ws := range w {
			s, ok := got[cam]
			switch {
			case ws.rtsp == "" && ok:
				t.Errorf("%s: %s listed: %+v", step, cam, s)
			case ws.rtsp != "" && (!ok || s.Source != video.KindRTSP || s.Origin != ws.origin || s.RTSP != ws.rtsp):
				t.Errorf("%s: %s = %+v (listed %v), want an RTSP stream from %s on %s", step, cam, s, ok, ws.origin, ws.rtsp)
			}
		}
	}
	check("at start", map[string]want{
		"cam-seed": {video.OriginRegistry, "rtsp://***@127.0.0.1:9/seed"}, // credentials redacted
		"cam-cfg":  {video.OriginConfig, "rtsp://127.0.0.1:9/configured"},
		"cam-whip": {}, "smk-1": {},
	})

	// dev is a camera's JSON body with extra fields appended.
	dev := func(extra string) string {
		return `{"class":"camera","name":"new tower","lat":31.5,"lon":107.0` + extra + `}`
	}
	steps := []struct {
		name, method, path, body string
		status                   int
		want                     map[string]want
	}{
		{"create without rtsp_url", "POST", "/api/v1/devices", `{"id":"cam-new",` + dev("")[1:], http.StatusCreated,
			map[string]want{"cam-new": {}}},
		{"add url", "PUT", "/api/v1/devices/cam-new", dev(`,"rtsp_url":"rtsp://127.0.0.1:9/new"`),
			http.StatusOK, map[string]want{"cam-new": {video.OriginRegistry, "rtsp://127.0.0.1:9/new"}}},
		{"change url", "PUT", "/api/v1/devices/cam-new", dev(`,"rtsp_url":"rtsps://127.0.0.1:9/changed"`),
			http.StatusOK, map[string]want{"cam-new": {video.OriginRegistry, "rtsps://127.0.0.1:9/changed"}}},
		{"bad url refused", "PUT", "/api/v1/devices/cam-new", dev(`,"rtsp_url":"http://127.0.0.1:9/x"`),
			http.StatusBadRequest, map[string]want{"cam-new": {video.OriginRegistry, "rtsps://127.0.0.1:9/changed"}}},
		{"remove url", "PUT", "/api/v1/devices/cam-new", dev(""), http.StatusOK, map[string]want{"cam-new": {}}},
		{"create with url", "POST", "/api/v1/devices", `{"id":"cam-new2",` + dev(`,"rtsp_url":"rtsp://127.0.0.1:9/new2"`)[1:],
			http.StatusCreated, map[string]want{"cam-new2": {video.OriginRegistry, "rtsp://127.0.0.1:9/new2"}}},
		{"url on a WHIP camera", "PUT", "/api/v1/devices/cam-whip", dev(`,"rtsp_url":"rtsp://127.0.0.1:9/whip"`),
			http.StatusOK, map[string]want{"cam-whip": {video.OriginRegistry, "rtsp://127.0.0.1:9/whip"}}},
		{"config wins on edit", "PUT", "/api/v1/devices/cam-cfg", dev(`,"rtsp_url":"rtsp://127.0.0.1:9/other"`),
			http.StatusOK, map[string]want{"cam-cfg": {video.OriginConfig, "rtsp://127.0.0.1:9/configured"}}},
		{"delete", "DELETE", "/api/v1/devices/cam-seed", "", http.StatusNoContent, map[string]want{"cam-seed": {}}},
		{"delete configured", "DELETE", "/api/v1/devices/cam-cfg", "", http.StatusNoContent,
			map[string]want{"cam-cfg": {video.OriginConfig, "rtsp://127.0.0.1:9/configured"}}},
	}
	for _, s := range steps {
		code, reply := call(s.method, s.path, s.body)
		if code != s.status {
			t.Fatalf("%s: %s %s: %d %s, want %d", s.name, s.method, s.path, code, reply, s.status)
		}
		check(s.name, s.want)
	}
}

// The follower maps registry changes onto the relay: deletions and devices that
// are not cameras remove, cameras set their rtsp_url ("" included).
func TestFollowRegistry(t *testing.T) {
	var rec recordingSources
	f := followRegistry(&rec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	cam := registry.Device{ID: "c", Class: "camera", RTSPURL: "rtsp://h/x"}
	tests := []struct {
		c    registry.Change
		want string
	}{
		{registry.Change{Op: registry.ChangeCreated, Device: cam}, "set c rtsp://h/x"},
		{registry.Change{Op: registry.ChangeUpdated, Device: registry.Device{ID: "c", Class: "camera"}}, "set c "},
		{registry.Change{Op: registry.ChangeDeleted, Device: cam}, "remove c"},
		{registry.Change{Op: registry.ChangeUpdated, Device: registry.Device{ID: "s", Class: "smoke"}}, "remove s"},
	}
	for _, tc := range tests {
		f(tc.c)
		if got := rec.take(); got != tc.want {
			t.Errorf("%s %+v: relay got %q, want %q", tc.c.Op, tc.c.Device, got, tc.want)
		}
	}
}

type recordingSources struct {
	mu   sync.Mutex
	last string
}

func (r *recordingSources) SetCameraRTSP(camera, url string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = "set " + camera + " " + url
	return nil
}

func (r *recordingSources) RemoveCamera(camera string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = "remove " + camera
}

func (r *recordingSources) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.last
	r.last = ""
	return s
}
