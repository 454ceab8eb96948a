package video_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/errs"
	"github.com/lookoutfire/lookout/video"
	"github.com/lookoutfire/lookout/video/camsim"
)

// listStreams is GET /api/v1/streams.
func listStreams(t *testing.T, g *testGateway) map[string]video.StreamStats {
	t.Helper()
	res, err := http.Get(g.url("/api/v1/streams"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var list video.ListResponse
	if err := json.NewDecoder(res.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	out := map[string]video.StreamStats{}
	for _, s := range list.Streams {
		out[s.Camera] = s
	}
	return out
}

// A camera publishing over WHIP gets an rtsp_url in the registry: its publisher
// and viewers are closed, the stream becomes a registry RTSP pull and WHIP is
// refused; with the URL removed the camera may publish again. Unknown cameras
// are refused.
func TestRegistryRTSPReplacesWHIP(t *testing.T) {
	g := startGateway(t, testConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	camCtx, stopCam := context.WithCancel(ctx)
	defer stopCam()
	camDone := make(chan error, 1)
	go func() {
		camDone <- camsim.StreamWHIP(camCtx, g.url("/api/v1/streams/cam-01/whip"), "", clip, camsim.Options{LoopbackOnly: true})
	}()
	g.ev.wait(t, video.EventStreamUp, "cam-01", 20*time.Second)
	v, err := dialViewer(ctx, g.url("/api/v1/streams/cam-01/whep"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.close()
	v.waitKeyframe(t, 15*time.Second)

	const url = "rtsp://127.0.0.1:9/cam-01"
	if err := g.m.SetCameraRTSP("cam-01", url); err != nil {
		t.Fatal(err)
	}
	if e := g.ev.wait(t, video.EventStreamDown, "cam-01", 5*time.Second); !strings.Contains(e.Reason, "registry rtsp_url") {
		t.Fatalf("stream.down reason %q, want the registry edit", e.Reason)
	}
	s := listStreams(t, g)["cam-01"]
	if s.Source != video.KindRTSP || s.Origin != video.OriginRegistry || s.RTSP != url || s.Viewers+s.ViewersConnecting != 0 {
		t.Fatalf("GET /api/v1/streams cam-01 = %+v, want a registry RTSP stream without the WHIP viewers", s)
	}
	stopCam() // pion notices the server's close only at its ICE timeout: do not wait for it
	<-camDone
	pub := func() int {
		pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
		defer pcancel()
		err := camsim.StreamWHIP(pctx, g.url("/api/v1/streams/cam-01/whip"), "", clip, camsim.Options{LoopbackOnly: true})
		if c := statusCode(err); c != 0 {
			return c
		}
		t.Fatalf("WHIP publish: %v", err)
		return 0
	}
	if c := pub(); c != http.StatusConflict {
		t.Fatalf("WHIP on a registry RTSP camera: %d, want 409", c)
	}

	if err := g.m.SetCameraRTSP("cam-01", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := listStreams(t, g)["cam-01"]; ok {
		t.Fatal("cam-01 still listed after its rtsp_url was removed")
	}
	if err := g.m.SetCameraRTSP("cam-99", url); !errors.Is(err, video.ErrUnknownCamera) || !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("unknown camera: err = %v, want ErrUnknownCamera", err)
	}
}

// End to end with a real RTSP camera defined only by its registry rtsp_url
// (what the gateway's registry follower calls): a viewer gets video, and when
// the URL is changed to a second camera the viewer stays connected and gets
// video from the new one.
func TestRTSPRegistryCameraEndToEnd(t *testing.T) {
	port1, port2 := freeTCPPort(t), freeTCPPort(t)
	srv1 := startRTSPServer(t, port1)
	startRTSPServer(t, port2)

	fc := clock.NewFake(time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC))
	cfg := testConfig()
	cfg.SourceTimeout = time.Hour // about the source switch, not timeouts
	g := startGateway(t, cfg, video.WithClock(fc), video.WithTickInterval(time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	url1 := fmt.Sprintf("rtsp://127.0.0.1:%d/cam", port1)
	if err := g.m.SetCameraRTSP("cam-02", url1); err != nil {
		t.Fatal(err)
	}
	if s := listStreams(t, g)["cam-02"]; s.Source != video.KindRTSP || s.Origin != video.OriginRegistry || s.RTSP != url1 {
		t.Fatalf("GET /api/v1/streams cam-02 = %+v, want the registry RTSP source", s)
	}
	v, err := dialViewer(ctx, g.url("/api/v1/streams/cam-02/whep"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.close()
	v.waitKeyframe(t, 30*time.Second)
	g.ev.wait(t, video.EventStreamUp, "cam-02", 5*time.Second)

	// The operator points the camera at another URL.
	url2 := fmt.Sprintf("rtsp://127.0.0.1:%d/cam", port2)
	first := g.m.FFmpegDone("cam-02")
	if err := g.m.SetCameraRTSP("cam-02", url2); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first:
	case <-time.After(15 * time.Second):
		t.Fatal("ffmpeg on the old URL still running")
	}
	_ = srv1.Process.Kill() // from here on, video can only come from the second camera
	waitFor(t, 5*time.Second, "old ffmpeg's exit recorded", func() bool { s, _ := g.m.StreamStats("cam-02"); return !s.FFmpegRunning })
	before := v.keyframes.Load()
	g.m.RunDue(ctx, fc.Now())
	s, _ := g.m.StreamStats("cam-02")
	if !s.FFmpegRunning || s.FFmpegStarts != 2 || s.RTSP != url2 || s.Viewers != 1 {
		t.Fatalf("after the URL change: %+v, want ffmpeg restarted on %s with the viewer kept", s, url2)
	}
	t0 := time.Now()
	waitFor(t, 30*time.Second, "video from the second camera", func() bool { return v.keyframes.Load() > before })
	g.ev.wait(t, video.EventStreamUp, "cam-02", 5*time.Second)
	t.Logf("video from the new URL %s after the switch", time.Since(t0).Round(time.Millisecond))
}
