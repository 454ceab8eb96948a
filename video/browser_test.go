package video_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lookoutfire/lookout/internal/testenv"
	"github.com/lookoutfire/lookout/video"
	"github.com/lookoutfire/lookout/video/camsim"
)

// framesDecodedJS reads framesDecoded of the page's inbound video from getStats().
const framesDecodedJS = `(async () => {
  const pc = window.lookoutPC;
  if (!pc) return 0;
  let n = 0;
  (await pc.getStats()).forEach(r => { if (r.type === "inbound-rtp" && r.kind === "video") n = r.framesDecoded || 0; });
  return n;
})()`

// A real browser opens /live/{camera} and decodes frames relayed from a WHIP camera.
func TestBrowserPlaysLivePage(t *testing.T) {
	g := startGateway(t, testConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	camCtx, stopCam := context.WithCancel(ctx)
	defer stopCam()
	go func() {
		_ = camsim.StreamWHIP(camCtx, g.url("/api/v1/streams/cam-01/whip"), "", clip, camsim.Options{LoopbackOnly: true})
	}()
	g.ev.wait(t, video.EventStreamUp, "cam-01", 20*time.Second)

	bctx := testenv.Browser(t, ctx,
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"))

	start := time.Now()
	if _, err := chromedp.Run(bctx, chromedp.Navigate(g.url("/live/cam-01"))); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	var frames float64
	for time.Since(start) < 30*time.Second && frames == 0 {
		time.Sleep(250 * time.Millisecond)
		var err error
		frames, err = chromedp.Run(bctx, chromedp.Evaluate[float64](framesDecodedJS, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("getStats: %v", err)
		}
	}
	if frames == 0 {
		status, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById("status").textContent`))
		t.Fatalf("no frame decoded within 30s of opening /live/cam-01 (page status %q, stream %+v)", status, mustStats(g, "cam-01"))
	}
	t.Logf("browser decoded %v frames, first after %s", frames, time.Since(start).Round(time.Millisecond))
	if s := mustStats(g, "cam-01"); s.Viewers != 1 {
		t.Fatalf("stream stats while the browser plays: %+v, want 1 viewer", s)
	}
}

func mustStats(g *testGateway, cam string) video.StreamStats {
	s, _ := g.m.StreamStats(cam)
	return s
}
