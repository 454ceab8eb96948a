package video

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/errs"
)

// fakeFFmpeg writes a stand-in for ffmpeg that appends the URL it was asked to
// pull to a file and then waits to be interrupted, so the RTSP lifecycle can be
// observed without a camera. It returns the default config using it, a fake
// clock for the manager and the file of pulled URLs.
func fakeFFmpeg(t *testing.T) (cfg Config, fc *clock.Fake, pulls string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "ffmpeg")
	pulls = filepath.Join(dir, "pulls")
	script := "#!/bin/sh\nwhile [ $# -gt 0 ]; do if [ \"$1\" = -i ]; then echo \"$2\" >> '" + pulls + "'; fi; shift; done\nexec sleep 60\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg = DefaultConfig()
	cfg.FFmpegPath = bin
	return cfg, clock.NewFake(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)), pulls
}

func readPulls(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// pollUntil waits for cond, which real goroutines (ffmpeg's waiter) make true.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A camera's registry rtsp_url becomes its RTSP source: created idle, pulled
// when watched, replaced in place on a new URL (viewer kept, old ffmpeg stopped
// before the new one starts, no backoff), closed with its viewers when the URL
// is removed; a video.sources entry wins and the choice is logged once.
func TestRegistryRTSPSource(t *testing.T) {
	const (
		urlA   = "rtsp://127.0.0.1:9/a"
		urlB   = "rtsps://user:pw@127.0.0.1:9/b"
		urlCfg = "rtsp://127.0.0.1:9/configured"
	)
	cfg, fc, pulls := fakeFFmpeg(t)
	cfg.Sources = []Source{{Camera: "cam-cfg", RTSP: urlCfg}}
	m, logs := newLoggedManager(t, cfg, fc)
	stats := func(cam string) (StreamStats, bool) { return m.StreamStats(cam) }

	// Added: idle, nothing pulled until someone watches.
	if err := m.SetCameraRTSP("cam", urlA); err != nil {
		t.Fatal(err)
	}
	s, ok := stats("cam")
	if !ok || s.Source != KindRTSP || s.Origin != OriginRegistry || s.RTSP != urlA || s.State != StateIdle || s.FFmpegRunning {
		t.Fatalf("after SetCameraRTSP: %+v (listed %v), want an idle registry RTSP stream on %s", s, ok, urlA)
	}
	m.mu.Lock()
	st := m.streams["cam"]
	m.mu.Unlock()
	v := addFakeViewer(m, st, "v1", 16)
	m.RunDue(t.Context(), fc.Now())
	pollUntil(t, "first pull", func() bool { return len(readPulls(t, pulls)) == 1 })
	if s, _ := stats("cam"); !s.FFmpegRunning || s.FFmpegStarts != 1 {
		t.Fatalf("watched: %+v, want ffmpeg started once", s)
	}

	// The same URL again (a registry edit of another field) changes nothing.
	if err := m.SetCameraRTSP("cam", urlA); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	same := m.streams["cam"] == st
	m.mu.Unlock()
	if s, _ := stats("cam"); !same || s.FFmpegStarts != 1 || !s.FFmpegRunning {
		t.Fatalf("same URL: stream replaced %v, %+v", !same, s)
	}

	// A new URL: same stream, viewer kept, old ffmpeg stopped, new one started on B
	// at the next step without waiting for any backoff.
	first := m.FFmpegDone("cam")
	m.mu.Lock()
	st.ff.failures, st.ff.nextStart = 3, fc.Now().Add(time.Hour) // as if the old camera had been failing
	m.mu.Unlock()
	if err := m.SetCameraRTSP("cam", urlB); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("old ffmpeg still running after the URL changed")
	}
	pollUntil(t, "old ffmpeg's exit recorded", func() bool { s, _ := stats("cam"); return !s.FFmpegRunning })
	m.RunDue(t.Context(), fc.Now())
	pollUntil(t, "second pull", func() bool { return len(readPulls(t, pulls)) == 2 })
	m.mu.Lock()
	same, kept := m.streams["cam"] == st, st.viewers["v1"] == v
	m.mu.Unlock()
	s, _ = stats("cam")
	if got := readPulls(t, pulls); got[1] != urlB || !same || !kept || !v.waitKey.Load() ||
		s.FFmpegStarts != 2 || !s.FFmpegRunning || s.RTSP != redactURL(urlB) || strings.Contains(s.RTSP, "pw") {
		t.Fatalf("after the URL change: pulls %q, same stream %v, viewer kept %v, waits for keyframe %v, %+v",
			got, same, kept, v.waitKey.Load(), s)
	}

	// A bad URL is refused and changes nothing.
	err := m.SetCameraRTSP("cam", "http://127.0.0.1/x")
	if !errors.Is(err, ErrBadSource) || !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("http URL: err = %v, want ErrBadSource", err)
	}
	if s, _ := stats("cam"); s.RTSP != redactURL(urlB) {
		t.Fatalf("bad URL changed the source: %+v", s)
	}

	// URL removed: stream, viewer and ffmpeg gone.
	second := m.FFmpegDone("cam")
	if err := m.SetCameraRTSP("cam", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := stats("cam"); ok {
		t.Fatal("stream still listed after its rtsp_url was removed")
	}
	select {
	case <-v.done:
	default:
		t.Fatal("viewer of the removed source not closed")
	}
	select {
	case <-second:
	case <-time.After(10 * time.Second):
		t.Fatal("ffmpeg still running after the source was removed")
	}
	m.mu.Lock()
	total := m.total
	m.mu.Unlock()
	if total != 0 {
		t.Fatalf("%d viewer slots still reserved", total)
	}
	// The camera may publish over WHIP again: its stream is created on demand.
	if st, err := m.stream("cam"); err != nil || st.kind != KindWHIP {
		t.Fatalf("after removal: stream %v, err %v, want a WHIP stream", st, err)
	}

	// video.sources wins over the registry, logged once per registry URL, and
	// survives the device's removal from the registry.
	for _, u := range []string{"rtsp://127.0.0.1:9/registry", "rtsp://127.0.0.1:9/registry", ""} {
		if err := m.SetCameraRTSP("cam-cfg", u); err != nil {
			t.Fatal(err)
		}
	}
	m.RemoveCamera("cam-cfg")
	if s, ok := stats("cam-cfg"); !ok || s.RTSP != urlCfg || s.Origin != OriginConfig {
		t.Fatalf("configured camera: %+v (listed %v), want its video.sources URL", s, ok)
	}
	if n := logs.Count("using video.sources"); n != 1 {
		t.Fatalf("config-wins logged %d times, want 1:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), "pw@") {
		t.Fatalf("log leaks credentials:\n%s", logs)
	}
}

// A deleted camera's WHIP stream and registry RTSP stream are closed with their
// viewers; a closed manager refuses further sources.
func TestRemoveCamera(t *testing.T) {
	cfg, fc, _ := fakeFFmpeg(t)
	m := newUnitManager(t, cfg, fc)
	whip, err := m.stream("cam-w")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetCameraRTSP("cam-r", "rtsp://127.0.0.1:9/r"); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	rtsp := m.streams["cam-r"]
	m.mu.Unlock()
	views := []*viewer{addFakeViewer(m, whip, "w", 4), addFakeViewer(m, rtsp, "r", 4)}
	for _, cam := range []string{"cam-w", "cam-r", "cam-none"} {
		m.RemoveCamera(cam)
		if _, ok := m.StreamStats(cam); ok {
			t.Errorf("%s still listed after RemoveCamera", cam)
		}
	}
	for _, v := range views {
		select {
		case <-v.done:
		default:
			t.Errorf("viewer %s not closed", v.id)
		}
	}
	if !whip.retired || !rtsp.retired {
		t.Fatal("removed streams not marked retired")
	}
	_ = m.Close()
	if err := m.SetCameraRTSP("cam-r", "rtsp://127.0.0.1:9/r"); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: err = %v, want ErrClosed", err)
	}
}

// A stream retired while RunDue was about to step it (its viewers are closed
// only after the lock is released) does not start ffmpeg: nothing would ever
// stop it before shutdown once the stream is out of the manager's table.
func TestRetiredStreamStartsNoFFmpeg(t *testing.T) {
	cfg, fc, pulls := fakeFFmpeg(t)
	m := newUnitManager(t, cfg, fc)
	if err := m.SetCameraRTSP("cam", "rtsp://127.0.0.1:9/r"); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	st := m.streams["cam"]
	m.mu.Unlock()
	v := addFakeViewer(m, st, "v", 4)
	m.mu.Lock()
	later := st.retireLocked(fc.Now(), "test")
	m.mu.Unlock()
	st.runDue(fc.Now()) // the step RunDue had already scheduled
	m.mu.Lock()
	running := st.ff.running
	m.mu.Unlock()
	runAll(later)
	if running || len(readPulls(t, pulls)) != 0 {
		t.Fatalf("ffmpeg started on a retired stream (running %v, pulls %q)", running, readPulls(t, pulls))
	}
	select {
	case <-v.done:
	default:
		t.Fatal("viewer of the retired stream not closed")
	}
}

// ffmpeg's stderr names its input URL, password included; what reaches
// last_error, the stream.down reason and the log has the user info scrubbed.
func TestFFmpegErrorHidesCredentials(t *testing.T) {
	const url = "rtsp://admin:s3cret%2Fpw@127.0.0.1:9/live"
	cfg, fc, _ := fakeFFmpeg(t)
	script := "#!/bin/sh\nwhile [ $# -gt 0 ]; do if [ \"$1\" = -i ]; then echo \"[rtsp] $2: Connection refused (admin:s3cret/pw)\" >&2; fi; shift; done\nexit 1\n"
	if err := os.WriteFile(cfg.FFmpegPath, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	m, logs := newLoggedManager(t, cfg, fc)
	if err := m.SetCameraRTSP("cam", url); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	st := m.streams["cam"]
	m.mu.Unlock()
	addFakeViewer(m, st, "v1", 16)
	m.RunDue(t.Context(), fc.Now())
	done := m.FFmpegDone("cam")
	if done == nil {
		t.Fatal("ffmpeg not started")
	}
	<-done
	pollUntil(t, "the exit recorded", func() bool { s, _ := m.StreamStats("cam"); return s.LastError != "" })
	s, _ := m.StreamStats("cam")
	if !strings.Contains(s.LastError, "Connection refused") || !strings.Contains(s.LastError, "***@127.0.0.1:9/live") {
		t.Errorf("last_error = %q, want ffmpeg's message with the user info masked", s.LastError)
	}
	for what, text := range map[string]string{"last_error": s.LastError, "log": logs.String()} {
		if strings.Contains(text, "s3cret") {
			t.Errorf("%s leaks the camera password: %q", what, text)
		}
	}
}
