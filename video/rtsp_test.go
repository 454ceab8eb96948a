package video_test

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/video"
)

// startRTSPServer runs the GStreamer RTSP server (Debian python3-gi +
// gir1.2-gst-rtsp-server-1.0) on port and waits until it listens. Missing
// components fail the test: CI installs them.
func startRTSPServer(t *testing.T, port int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", filepath.Join("testdata", "rtsp_server.py"), fmt.Sprint(port))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start RTSP server (needs /usr/bin/python3 with python3-gi): %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- strings.TrimSpace(line) == "ready"
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("RTSP server did not start: %s", stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("RTSP server not ready after 20s: %s", stderr.String())
	}
	return cmd
}

// Lookout pulls a real RTSP camera through ffmpeg only while someone watches: the
// first viewer starts ffmpeg, a dying ffmpeg is restarted with backoff, and ffmpeg
// stops once the last viewer has been gone for the grace period (fake clock).
func TestRTSPPullOnDemand(t *testing.T) {
	port := freeTCPPort(t)
	srv := startRTSPServer(t, port)

	fc := clock.NewFake(time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC))
	cfg := testConfig()
	cfg.RTSPGrace = 30 * time.Second
	cfg.SourceTimeout = time.Hour // this test is about ffmpeg's lifecycle, not the source timeout
	cfg.Sources = []video.Source{{Camera: "cam-03", RTSP: fmt.Sprintf("rtsp://127.0.0.1:%d/cam", port)}}
	g := startGateway(t, cfg, video.WithClock(fc), video.WithTickInterval(time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	stats := func() video.StreamStats { s, _ := g.m.StreamStats("cam-03"); return s }
	g.m.RunDue(ctx, fc.Now())
	if s := stats(); s.FFmpegRunning || s.FFmpegStarts != 0 || s.State != video.StateIdle {
		t.Fatalf("before any viewer: %+v, want idle and no ffmpeg", s)
	}

	v, err := dialViewer(ctx, g.url("/api/v1/streams/cam-03/whep"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.close()
	if s := stats(); !s.FFmpegRunning || s.FFmpegStarts != 1 {
		t.Fatalf("after the first viewer: %+v, want ffmpeg started once", s)
	}
	v.waitKeyframe(t, 30*time.Second)
	g.ev.wait(t, video.EventStreamUp, "cam-03", 5*time.Second)

	// The camera drops: ffmpeg ends, and is restarted only after the backoff.
	first := g.m.FFmpegDone("cam-03")
	_ = srv.Process.Kill()
	_ = srv.Wait()
	select {
	case <-first:
	case <-time.After(20 * time.Second):
		t.Fatal("ffmpeg did not exit after the RTSP server died")
	}
	waitFor(t, 5*time.Second, "ffmpeg exit recorded", func() bool { return !stats().FFmpegRunning })
	if e := g.ev.wait(t, video.EventStreamDown, "cam-03", 5*time.Second); !strings.Contains(e.Reason, "ffmpeg exited") {
		t.Fatalf("stream.down reason = %q", e.Reason)
	}
	if s := stats(); !strings.Contains(s.LastError, "ffmpeg exited") {
		t.Fatalf("last_error = %q, want the ffmpeg exit", s.LastError)
	}
	g.m.RunDue(ctx, fc.Now())
	if s := stats(); s.FFmpegStarts != 1 {
		t.Fatalf("restarted before the backoff: %+v", s)
	}
	startRTSPServer(t, port) // the camera comes back
	g.m.RunDue(ctx, fc.Advance(time.Second))
	if s := stats(); s.FFmpegStarts != 2 || !s.FFmpegRunning {
		t.Fatalf("after the 1s backoff: %+v, want the second start", s)
	}
	t0 := time.Now()
	before := v.keyframes.Load()
	waitFor(t, 30*time.Second, "video again after the restart", func() bool { return v.keyframes.Load() > before })

	t.Logf("video again %s after the restart", time.Since(t0).Round(time.Millisecond))
	// The last viewer leaves: ffmpeg runs on through the grace period, then stops.
	v.close()
	waitFor(t, 10*time.Second, "viewer gone", func() bool { s := stats(); return s.Viewers+s.ViewersConnecting == 0 })
	g.m.RunDue(ctx, fc.Advance(cfg.RTSPGrace-time.Second))
	if s := stats(); !s.FFmpegRunning {
		t.Fatalf("ffmpeg stopped inside the grace period: %+v", s)
	}
	done := g.m.FFmpegDone("cam-03")
	g.m.RunDue(ctx, fc.Advance(2*time.Second))
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("ffmpeg still running after the grace period")
	}
	waitFor(t, 5*time.Second, "ffmpeg stop recorded", func() bool { return !stats().FFmpegRunning })
	if s := stats(); s.State != video.StateIdle || s.FFmpegStarts != 2 {
		t.Fatalf("after the grace: %+v, want idle with 2 starts", s)
	}
	// An intentional stop is not a failure: no restart.
	g.m.RunDue(ctx, fc.Advance(time.Minute))
	if s := stats(); s.FFmpegRunning || s.FFmpegStarts != 2 {
		t.Fatalf("ffmpeg restarted with no viewers: %+v", s)
	}
}
