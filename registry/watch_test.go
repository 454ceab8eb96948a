package registry

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lookoutfire/lookout/ingest"
)

// watchLog records changes as "op:id:rtsp_url".
type watchLog struct {
	mu  sync.Mutex
	got []string
}

func (w *watchLog) add(c Change) {
	w.mu.Lock()
	w.got = append(w.got, fmt.Sprintf("%s:%s:%s", c.Op, c.Device.ID, c.Device.RTSPURL))
	w.mu.Unlock()
}

func (w *watchLog) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.got
	w.got = nil
	return out
}

// Watch replays the devices already registered, then reports every edit of
// static data in order: create, update (rtsp_url added, changed, removed),
// seed import, delete.
func TestWatch(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, DefaultConfig())
	mustCreate(t, e.g, "smk-1", ingest.ClassSmoke, 0)
	cam := func(url string) Device {
		return Device{ID: "cam-1", Class: ingest.ClassCamera, Name: "tower", Lat: 31.5, Lon: 107, RTSPURL: url}
	}
	if err := e.g.Create(ctx, cam("rtsp://10.0.0.5/a")); err != nil {
		t.Fatal(err)
	}
	var w watchLog
	e.g.Watch(w.add)
	if got, want := strings.Join(w.take(), " "), "created:cam-1:rtsp://10.0.0.5/a created:smk-1:"; got != want {
		t.Fatalf("replay = %q, want %q", got, want)
	}

	steps := []struct {
		name string
		do   func() error
		want string // changes announced, space separated
	}{
		{"create", func() error { return e.g.Create(ctx, cam("rtsp://10.0.0.5/a")) }, ""}, // exists: refused, nothing announced
		{"change url", func() error { return e.g.Update(ctx, cam("rtsps://10.0.0.6:322/b")) }, "updated:cam-1:rtsps://10.0.0.6:322/b"},
		{"remove url", func() error { return e.g.Update(ctx, cam("")) }, "updated:cam-1:"},
		{"upsert new", func() error {
			d := cam("rtsp://10.0.0.7/c")
			d.ID = "cam-2"
			return e.g.Upsert(ctx, d)
		}, "created:cam-2:rtsp://10.0.0.7/c"},
		{"import", func() error {
			_, err := e.g.ImportFile(ctx, filepath.Join("testdata", "good.yaml"))
			return err
		}, "created:smoke-t1: created:cam-t1:rtsp://127.0.0.1:8554/cam-t1"},
		{"re-import", func() error {
			_, err := e.g.ImportFile(ctx, filepath.Join("testdata", "good.yaml"))
			return err
		}, "updated:smoke-t1: updated:cam-t1:rtsp://127.0.0.1:8554/cam-t1"},
		{"bad url", func() error { return e.g.Update(ctx, cam("http://10.0.0.5/a")) }, ""},
		{"delete", func() error { return e.g.Delete(ctx, "cam-2") }, "deleted:cam-2:rtsp://10.0.0.7/c"},
		{"delete missing", func() error { return e.g.Delete(ctx, "cam-2") }, ""},
	}
	for _, s := range steps {
		err := s.do()
		if (err != nil) != (s.want == "") {
			t.Fatalf("%s: err = %v", s.name, err)
		}
		if got := strings.Join(w.take(), " "); got != s.want {
			t.Errorf("%s: announced %q, want %q", s.name, got, s.want)
		}
	}
	// Auto-registration on the hot path is not announced.
	cfg := DefaultConfig()
	cfg.UnknownDevices = "register"
	e2 := newEnv(t, cfg)
	var w2 watchLog
	e2.g.Watch(w2.add)
	if err := e2.g.Admit(reading("cam-9", ingest.ClassCamera, t0)); err != nil {
		t.Fatal(err)
	}
	if got := w2.take(); len(got) != 0 {
		t.Fatalf("auto-registration announced: %q", got)
	}
}

// rtsp_url is checked where the registry accepts it (API, seeds, code), with
// the reason in the error and without repeating the URL (it may hold a password).
func TestRTSPURLValidation(t *testing.T) {
	tests := []struct {
		url  string
		want string // "" = valid; else a substring of the error
	}{
		{"rtsp://10.0.0.5/stream1", ""},
		{"rtsp://admin:s3cret@10.0.0.5:554/Streaming/Channels/101", ""},
		{"rtsps://cam.example.org:322/live", ""},
		{"rtsp://[fd00::5]:554/live", ""},
		{"RTSP://10.0.0.5/x", "lower case"}, // ffmpeg would not recognise it
		{"http://10.0.0.5/stream1", `scheme "http"`},
		{"10.0.0.5/stream1", `scheme ""`},
		{"rtsp:///stream1", "no host"},
		{"rtsp://admin:s3cret@:554/x", "no host"},
		{"rtsp:10.0.0.5", "no host"},
		{"rtsp://10.0.0.5:port/x", "not a URL"},
		{"rtsp://10.0.0.5/a b", "white space"},
	}
	for _, tc := range tests {
		lat, lon := 31.5, 107.0
		in := Input{ID: "cam-1", Class: "camera", Name: "tower", Lat: &lat, Lon: &lon, RTSPURL: tc.url}
		_, err := in.Device(DefaultConfig().DefaultInterval)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: refused: %v", tc.url, err)
		case tc.want != "" && err == nil:
			t.Errorf("%q: accepted", tc.url)
		case err != nil && (!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "rtsp_url") ||
			!errors.Is(err, ErrInvalidDevice)):
			t.Errorf("%q: error %q, want rtsp_url, %q and ErrInvalidDevice", tc.url, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "s3cret"):
			t.Errorf("%q: error repeats the credentials: %v", tc.url, err)
		}
	}
	// The API answers 400 with the reason.
	e := newEnv(t, DefaultConfig())
	srv := server(t, e.g)
	code, body := do(t, srv, "POST", "/api/v1/devices",
		`{"id":"cam-1","class":"camera","name":"tower","lat":31.5,"lon":107,"rtsp_url":"http://10.0.0.5/live"}`)
	if code != 400 || !strings.Contains(string(body), `rtsp_url: scheme \"http\"; want rtsp://`) {
		t.Fatalf("POST with an http rtsp_url: %d %s", code, body)
	}
	if _, ok := e.g.Get("cam-1"); ok {
		t.Fatal("device with a bad rtsp_url was stored")
	}
}
