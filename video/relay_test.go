package video_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/video"
	"github.com/lookoutfire/lookout/video/camsim"
)

// A camera publishes over WHIP; two pion viewers get H.264 starting at a keyframe,
// the viewers' arrival makes the gateway ask the camera for a keyframe, and the
// camera going away is reported as stream.down.
func TestWHIPIngestToViewers(t *testing.T) {
	g := startGateway(t, testConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var plis atomic.Int64
	camCtx, stopCam := context.WithCancel(ctx)
	camDone := make(chan error, 1)
	go func() {
		camDone <- camsim.StreamWHIP(camCtx, g.url("/api/v1/streams/cam-01/whip"), "tok", clip,
			camsim.Options{LoopbackOnly: true, OnKeyframeRequest: func() { plis.Add(1) }})
	}()
	if e := g.ev.wait(t, video.EventStreamUp, "cam-01", 20*time.Second); e.Source != video.KindWHIP {
		t.Fatalf("stream.up source = %q, want whip", e.Source)
	}

	var viewers []*pionViewer
	for i := 0; i < 2; i++ {
		v, err := dialViewer(ctx, g.url("/api/v1/streams/cam-01/whep"))
		if err != nil {
			t.Fatalf("viewer %d: %v", i, err)
		}
		defer v.close()
		viewers = append(viewers, v)
	}
	for _, v := range viewers {
		v.waitKeyframe(t, 15*time.Second)
	}
	// A new viewer must have triggered a keyframe request to the publisher.
	waitFor(t, 5*time.Second, "PLI at the publisher", func() bool { return plis.Load() >= 1 })

	st, ok := g.m.StreamStats("cam-01")
	if !ok || st.State != video.StateUp || st.Viewers != 2 || st.Packets == 0 || st.KeyframeRequests == 0 {
		t.Fatalf("stats = %+v, want up, 2 viewers, packets and keyframe requests counted", st)
	}

	// GET /api/v1/streams lists it.
	res, err := http.Get(g.url("/api/v1/streams"))
	if err != nil {
		t.Fatal(err)
	}
	var list video.ListResponse
	if err := json.NewDecoder(res.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if len(list.Streams) != 1 || list.Streams[0].Camera != "cam-01" || list.Streams[0].Source != "whip" {
		t.Fatalf("GET /api/v1/streams = %+v", list.Streams)
	}

	// The camera leaves (WHIP DELETE on exit): stream.down for device health.
	stopCam()
	if err := <-camDone; err != nil {
		t.Fatalf("StreamWHIP: %v", err)
	}
	if e := g.ev.wait(t, video.EventStreamDown, "cam-01", 15*time.Second); e.Reason == "" {
		t.Fatalf("stream.down without a reason: %+v", e)
	}
	if st, _ := g.m.StreamStats("cam-01"); st.State != video.StateDown {
		t.Fatalf("state after publisher left = %q, want down", st.State)
	}
}

// An encoder pushes RTP/H.264 to the configured port; a pion viewer decodes from the
// first keyframe; when the encoder stops, the source timeout (on the fake clock)
// reports the camera down.
func TestRTPIngestToViewer(t *testing.T) {
	fc := clock.NewFake(time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC))
	cfg := testConfig()
	cfg.Sources = []video.Source{{Camera: "cam-02", RTPPort: freeUDPPort(t)}}
	g := startGateway(t, cfg, video.WithClock(fc))
	addr, ok := g.m.RTPAddr("cam-02")
	if !ok {
		t.Fatal("no RTP address for cam-02")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	camCtx, stopCam := context.WithCancel(ctx)
	camDone := make(chan error, 1)
	go func() { camDone <- camsim.StreamRTP(camCtx, addr.String(), clip) }()

	g.ev.wait(t, video.EventStreamUp, "cam-02", 10*time.Second)
	v, err := dialViewer(ctx, g.url("/api/v1/streams/cam-02/whep"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.close()
	v.waitKeyframe(t, 15*time.Second)

	stopCam()
	if err := <-camDone; err != nil {
		t.Fatalf("StreamRTP: %v", err)
	}
	// Nothing changes before the timeout…
	g.m.RunDue(ctx, fc.Now().Add(time.Second))
	if st, _ := g.m.StreamStats("cam-02"); st.State != video.StateUp {
		t.Fatalf("state 1s after last packet = %q, want still up", st.State)
	}
	// …and past it the camera is down.
	g.m.RunDue(ctx, fc.Advance(cfg.SourceTimeout+time.Second))
	e := g.ev.wait(t, video.EventStreamDown, "cam-02", 5*time.Second)
	if e.Source != video.KindRTP || !strings.Contains(e.Reason, "no packets") {
		t.Fatalf("stream.down = %+v, want rtp source and a no-packets reason", e)
	}
}

// Viewer limits per camera and in total answer 503 with a JSON error; DELETE frees the slot.
func TestViewerLimits(t *testing.T) {
	cfg := testConfig()
	cfg.MaxViewersPerCamera = 2
	cfg.MaxViewers = 3
	g := startGateway(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	dial := func(cam string) (*pionViewer, error) {
		return dialViewer(ctx, g.url("/api/v1/streams/"+cam+"/whep"))
	}
	a, err := dial("cam-01")
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	b, err := dial("cam-01")
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	steps := []struct {
		cam  string
		want int
	}{
		{"cam-01", http.StatusServiceUnavailable}, // per-camera limit
		{"cam-02", http.StatusCreated},            // total 3
		{"cam-03", http.StatusServiceUnavailable}, // total limit
	}
	for _, s := range steps {
		v, err := dial(s.cam)
		got := http.StatusCreated
		if err != nil {
			got = statusCode(err)
			if !strings.Contains(err.Error(), `"code":"unavailable"`) {
				t.Errorf("%s: 503 body is not the JSON error: %v", s.cam, err)
			}
		} else {
			defer v.close()
		}
		if got != s.want {
			t.Fatalf("%s: status %d (%v), want %d", s.cam, got, err, s.want)
		}
	}
	// DELETE frees a slot on cam-01 (and in total).
	if err := camsim.DeleteSession(http.DefaultClient, a.location, ""); err != nil {
		t.Fatalf("DELETE: %v", err)
	}
	a.location = ""
	if err := camsim.DeleteSession(http.DefaultClient, b.location, ""); err != nil {
		t.Fatalf("DELETE: %v", err)
	}
	if err := camsim.DeleteSession(http.DefaultClient, b.location, ""); statusCode(err) != http.StatusNotFound {
		t.Fatalf("second DELETE of a session: %v, want 404", err)
	}
	b.location = ""
	c, err := dial("cam-01")
	if err != nil {
		t.Fatalf("after DELETE the slot must be free: %v", err)
	}
	c.close()
}

// Requests the relay must refuse, and the status each gets.
func TestHTTPErrors(t *testing.T) {
	cfg := testConfig()
	cfg.Sources = []video.Source{{Camera: "cam-02", RTPPort: freeUDPPort(t)}}
	g := startGateway(t, cfg)
	offer := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
	tests := []struct {
		name, method, path, ctype, body string
		want                            int
	}{
		{"unknown camera whep", "POST", "/api/v1/streams/nope/whep", "application/sdp", offer, 404},
		{"unknown camera whip", "POST", "/api/v1/streams/nope/whip", "application/sdp", offer, 404},
		{"wrong content type", "POST", "/api/v1/streams/cam-01/whep", "application/json", "{}", 400},
		{"not sdp", "POST", "/api/v1/streams/cam-01/whep", "application/sdp", "hello", 400},
		{"sdp without media", "POST", "/api/v1/streams/cam-01/whep", "application/sdp", offer, 400},
		{"whip to rtp camera", "POST", "/api/v1/streams/cam-02/whip", "application/sdp", offer, 409},
		{"huge offer", "POST", "/api/v1/streams/cam-01/whep", "application/sdp", "v=0\r\n" + strings.Repeat("a=x\r\n", 20000), 413},
		{"delete unknown viewer", "DELETE", "/api/v1/streams/cam-01/whep/abc", "", "", 404},
		{"delete unknown publisher", "DELETE", "/api/v1/streams/cam-01/whip/abc", "", "", 404},
		{"page for unknown camera", "GET", "/live/nope", "", "", 404},
		{"page", "GET", "/live/cam-01", "", "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, g.url(tc.path), strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.want, b)
			}
			if tc.want >= 400 && !strings.Contains(string(b), `"error"`) {
				t.Fatalf("error reply is not JSON: %s", b)
			}
		})
	}
	// Nothing failed handshakes left behind holds a slot.
	if st, _ := g.m.StreamStats("cam-01"); st.Viewers != 0 || st.ViewersConnecting != 0 {
		t.Fatalf("failed requests left viewers: %+v", st)
	}
}

// An RTSP camera cannot be pulled without ffmpeg: 503 with a message that says so.
func TestFFmpegMissing(t *testing.T) {
	cfg := testConfig()
	cfg.FFmpegPath = "/nonexistent/ffmpeg"
	cfg.Sources = []video.Source{{Camera: "cam-03", RTSP: "rtsp://127.0.0.1:1/x"}}
	g := startGateway(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := dialViewer(ctx, g.url("/api/v1/streams/cam-03/whep"))
	if statusCode(err) != http.StatusServiceUnavailable || !strings.Contains(err.Error(), "ffmpeg") {
		t.Fatalf("WHEP to RTSP camera without ffmpeg: %v, want 503 mentioning ffmpeg", err)
	}
}

// An offer that makes pion v3.3.6 panic while parsing it (an empty
// a=simulcast:send list) is a 400 on both endpoints, not a dropped connection,
// and leaves no viewer slot reserved: with one slot per camera, repeated bad
// offers keep answering 400, never 503.
func TestOfferPanickingPionIsBadOffer(t *testing.T) {
	cfg := testConfig()
	cfg.MaxViewersPerCamera = 1
	g := startGateway(t, cfg)
	offer := "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\n" +
		"c=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtpmap:102 H264/90000\r\na=simulcast:send \r\n"
	tests := []struct{ name, camera, path string }{
		{"whep", "cam-01", "/api/v1/streams/cam-01/whep"},
		{"whip", "cam-03", "/api/v1/streams/cam-03/whip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 3 {
				res, err := http.Post(g.url(tc.path), "application/sdp", strings.NewReader(offer))
				if err != nil {
					t.Fatalf("POST %d: %v (the handler panicked?)", i, err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"code":"invalid"`) {
					t.Fatalf("POST %d: status %d %s, want 400 invalid", i, res.StatusCode, b)
				}
			}
			if st, _ := g.m.StreamStats(tc.camera); st.Viewers != 0 || st.ViewersConnecting != 0 || st.State != video.StateIdle {
				t.Fatalf("bad offers left state behind: %+v", st)
			}
		})
	}
}

// An SDP body over the request limit set in front of the handler (the gateway's
// MaxBytesReader) answers 413, like one over the package's own maxSDP.
func TestOfferOverBodyLimitIs413(t *testing.T) {
	g := startGateway(t, testConfig())
	body := "v=0\r\n" + strings.Repeat("a=x\r\n", 400) // 2 KB, well under maxSDP
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"whep", g.m.HandleWHEP},
		{"whip", g.m.HandleWHIP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/api/v1/streams/cam-01/"+tc.name, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/sdp")
			req.SetPathValue("camera", "cam-01")
			req.Body = http.MaxBytesReader(rec, req.Body, 1024)
			tc.handler(rec, req)
			if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), `"code":"too_large"`) {
				t.Fatalf("status %d %s, want 413 too_large", rec.Code, rec.Body)
			}
		})
	}
}
