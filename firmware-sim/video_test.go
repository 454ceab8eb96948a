package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/events"
	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/registry"
	"github.com/lookoutfire/lookout/video"
)

var testClip = filepath.Join("..", "video", "testdata", "testsrc-720p30.h264")

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func writeTokens(t *testing.T, path string, m map[string]string) {
	t.Helper()
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k + `: "` + v + "\"\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestNextBackoff(t *testing.T) {
	for _, c := range []struct{ prev, want time.Duration }{
		{0, time.Second}, {time.Second, 2 * time.Second}, {8 * time.Second, 16 * time.Second},
		{16 * time.Second, 30 * time.Second}, {30 * time.Second, 30 * time.Second},
	} {
		if got := nextBackoff(c.prev, time.Second, 30*time.Second); got != c.want {
			t.Errorf("nextBackoff(%s) = %s, want %s", c.prev, got, c.want)
		}
	}
}

func TestVideoOptionsValidated(t *testing.T) {
	dir := t.TempDir()
	notH264 := filepath.Join(dir, "x.h264")
	if err := os.WriteFile(notH264, []byte("not video"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "tok.yaml")
	writeTokens(t, good, map[string]string{"cam-1": "lk_a"})
	for _, c := range []struct {
		name, url, file, tokens, want string
	}{
		{"ok", "http://127.0.0.1:8080/api/v1/streams/{camera}/whip", testClip, good, ""},
		{"no placeholder", "http://127.0.0.1:8080/whip", testClip, "", "{camera}"},
		{"not http", "rtsp://127.0.0.1/{camera}", testClip, "", "http(s)"},
		{"missing clip", "http://127.0.0.1/{camera}", filepath.Join(dir, "none.h264"), "", "--video-file"},
		{"not a clip", "http://127.0.0.1/{camera}", notH264, "", "--video-file"},
		{"missing tokens", "http://127.0.0.1/{camera}", testClip, filepath.Join(dir, "none.yaml"), "--camera-tokens"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := newCameraVideo(options{whipURL: c.url, videoFile: c.file, cameraTokens: c.tokens}, quietLog())
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("err = %v, want containing %q", err, c.want)
			}
		})
	}
	for host, want := range map[string]bool{"127.0.0.1": true, "localhost": true, "::1": true, "10.0.0.5": false, "gw.example": false} {
		if isLoopbackHost(host) != want {
			t.Errorf("isLoopbackHost(%q) != %v", host, want)
		}
	}
}

// whipCall is what the fake gateway saw.
type whipCall struct {
	method, path, auth, ctype string
	offer                     string
}

// TestCameraVideoRetriesWithFreshToken runs the real WHIP client against a
// gateway that refuses every session: each attempt must POST an H.264 SDP offer
// to the camera's own WHIP URL with the token currently in the file, and the
// waits between attempts must follow the capped backoff.
func TestCameraVideoRetriesWithFreshToken(t *testing.T) {
	var mu sync.Mutex
	var calls []whipCall
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, whipCall{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)})
		mu.Unlock()
		http.Error(w, `{"error":{"code":"unavailable"}}`, http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	tokens := filepath.Join(t.TempDir(), "sim-camera-tokens.yaml")
	writeTokens(t, tokens, map[string]string{"cam-0001": "lk_first", "cam-0002": "lk_other"})
	v, err := newCameraVideo(options{whipURL: srv.URL + "/api/v1/streams/{camera}/whip", videoFile: testClip, cameraTokens: tokens}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if !v.loopback {
		t.Fatal("a 127.0.0.1 gateway should get loopback-only ICE")
	}
	v.clk = clock.NewFake(time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)) // sessions last no time: never "stable"
	const attempts = 6
	var waits []time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v.wait = func(_ context.Context, d time.Duration) bool {
		waits = append(waits, d)
		if len(waits) == 2 { // the gateway reissued the token between attempts
			writeTokens(t, tokens, map[string]string{"cam-0001": "lk_second"})
		}
		if len(waits) == attempts {
			cancel()
			return false
		}
		return true
	}
	done := make(chan struct{})
	go func() { v.camera(ctx, "cam-0001"); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("camera loop did not stop")
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30}
	for i := range want {
		want[i] *= time.Second
	}
	if len(waits) != len(want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != attempts {
		t.Fatalf("%d WHIP POSTs, want %d", len(calls), attempts)
	}
	for i, c := range calls {
		wantTok := "Bearer lk_first"
		if i >= 2 {
			wantTok = "Bearer lk_second"
		}
		if c.method != http.MethodPost || c.path != "/api/v1/streams/cam-0001/whip" || c.auth != wantTok ||
			c.ctype != "application/sdp" || !strings.Contains(c.offer, "H264/90000") || !strings.Contains(c.offer, "a=sendonly") {
			t.Fatalf("call %d: %+v (want POST to cam-0001 with %q and an H.264 sendonly offer)", i, c, wantTok)
		}
	}
	if v.sessions.Load() != attempts || v.failures.Load() != attempts {
		t.Fatalf("sessions %d failures %d", v.sessions.Load(), v.failures.Load())
	}
}

type cameraSet map[string]bool

func (c cameraSet) IsCamera(id string) bool { return c[id] }

// TestCameraVideoReachesRelay streams the fleet's cameras into the real video
// relay (behind a token check like the gateway's camera role) and waits until
// every camera's stream is up with packets flowing; then stopping the
// simulator ends each WHIP session with a DELETE.
func TestCameraVideoReachesRelay(t *testing.T) {
	cfg := video.DefaultConfig()
	cfg.LoopbackOnly = true
	cams := cameraSet{"cam-a": true, "cam-b": true}
	m, err := video.NewManager(cfg, cams, events.Discard{}, prometheus.NewRegistry(), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tokens := map[string]string{"cam-a": "lk_tok_a", "cam-b": "lk_tok_b"}
	var mu sync.Mutex
	deletes := map[string]int{}
	guard := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+tokens[r.PathValue("camera")] {
				http.Error(w, "wrong token", http.StatusUnauthorized)
				return
			}
			if r.Method == http.MethodDelete {
				mu.Lock()
				deletes[r.PathValue("camera")]++
				mu.Unlock()
			}
			h(w, r)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/streams/{camera}/whip", guard(m.HandleWHIP))
	mux.HandleFunc("DELETE /api/v1/streams/{camera}/whip/{session}", guard(m.HandleWHIPDelete))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tokFile := filepath.Join(t.TempDir(), "sim-camera-tokens.yaml")
	writeTokens(t, tokFile, tokens)
	v, err := newCameraVideo(options{whipURL: srv.URL + "/api/v1/streams/{camera}/whip", videoFile: testClip, cameraTokens: tokFile}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	devs := []registry.Device{
		{ID: "cam-a", Class: ingest.ClassCamera}, {ID: "smoke-1", Class: ingest.ClassSmoke}, {ID: "cam-b", Class: ingest.ClassCamera},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { v.run(ctx, devs); close(done) }()

	deadline := time.Now().Add(20 * time.Second)
	for {
		up := 0
		for _, cam := range []string{"cam-a", "cam-b"} {
			if st, ok := m.StreamStats(cam); ok && st.State == video.StateUp && st.Packets > 30 {
				up++
			}
		}
		if up == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("streams not up within 20 s: %+v (sessions %d, failures %d)", m.Stats(), v.sessions.Load(), v.failures.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, ok := m.StreamStats("smoke-1"); ok {
		t.Fatal("a smoke alarm has no video, but a stream was opened for it")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("camera video did not stop")
	}
	mu.Lock()
	defer mu.Unlock()
	if deletes["cam-a"] != 1 || deletes["cam-b"] != 1 {
		t.Fatalf("WHIP DELETEs on stop: %v, want one per camera", deletes)
	}
	if v.failures.Load() != 0 {
		t.Fatalf("%d failed sessions", v.failures.Load())
	}
}
