package video_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lookoutfire/lookout/video"
	"github.com/lookoutfire/lookout/video/camsim"
)

// chromiumPath is Debian's chromium; CI installs it. LOOKOUT_CHROMIUM overrides.
func chromiumPath() string {
	if p := os.Getenv("LOOKOUT_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

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
	if _, err := os.Stat(chromiumPath()); err != nil {
		t.Fatalf("chromium is required (Debian package chromium): %v", err)
	}
	g := startGateway(t, testConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	camCtx, stopCam := context.WithCancel(ctx)
	defer stopCam()
	go func() {
		_ = camsim.StreamWHIP(camCtx, g.url("/api/v1/streams/cam-01/whip"), "", clip, camsim.Options{LoopbackOnly: true})
	}()
	g.ev.wait(t, video.EventStreamUp, "cam-01", 20*time.Second)

	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath()),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	// Start the browser (outside the 10 s budget, which is for the page to play).
	if _, err := chromedp.Run(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	start := time.Now()
	if _, err := chromedp.Run(bctx, chromedp.Navigate(g.url("/live/cam-01"))); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	var frames float64
	for time.Since(start) < 10*time.Second && frames == 0 {
		time.Sleep(250 * time.Millisecond)
		var err error
		frames, err = chromedp.Run(bctx, chromedp.Evaluate[float64](framesDecodedJS, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("getStats: %v", err)
		}
	}
	if frames == 0 {
		status, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById("status").textContent`))
		t.Fatalf("no frame decoded within 10s of opening /live/cam-01 (page status %q, stream %+v)", status, mustStats(g, "cam-01"))
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
