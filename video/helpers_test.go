package video_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/internal/testenv"
	"github.com/lookoutfire/lookout/video"
	"github.com/lookoutfire/lookout/video/camsim"
)

// clip is the committed 2 s 720p30 testsrc clip (1 keyframe per second).
var clip = filepath.Join("testdata", "testsrc-720p30.h264")

type camSet map[string]bool

func (c camSet) IsCamera(id string) bool { return c[id] }

var testCams = camSet{"cam-01": true, "cam-02": true, "cam-03": true}

// eventLog records published events.
type eventLog struct {
	mu sync.Mutex
	ev []recorded
	ch chan recorded
}

type recorded struct {
	typ string
	e   video.StreamEvent
}

func newEventLog() *eventLog { return &eventLog{ch: make(chan recorded, 64)} }

func (l *eventLog) Publish(typ string, data any) {
	r := recorded{typ: typ, e: data.(video.StreamEvent)}
	l.mu.Lock()
	l.ev = append(l.ev, r)
	l.mu.Unlock()
	select {
	case l.ch <- r:
	default:
	}
}

// wait returns the first event of typ for camera within d.
func (l *eventLog) wait(t *testing.T, typ, camera string, d time.Duration) video.StreamEvent {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case r := <-l.ch:
			if r.typ == typ && r.e.Camera == camera {
				return r.e
			}
		case <-deadline:
			t.Fatalf("no %s event for %s within %s", typ, camera, d)
		}
	}
}

// testGateway is a Manager behind an httptest server with the routes the lead wires.
type testGateway struct {
	m   *video.Manager
	srv *httptest.Server
	ev  *eventLog
	reg *prometheus.Registry
}

func testConfig() video.Config {
	cfg := video.DefaultConfig()
	cfg.LoopbackOnly = true
	return cfg
}

func startGateway(t *testing.T, cfg video.Config, opts ...video.Option) *testGateway {
	t.Helper()
	ev := newEventLog()
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m, err := video.NewManager(cfg, testCams, ev, reg, log, opts...)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/streams/{camera}/whip", m.HandleWHIP)
	mux.HandleFunc("DELETE /api/v1/streams/{camera}/whip/{session}", m.HandleWHIPDelete)
	mux.HandleFunc("POST /api/v1/streams/{camera}/whep", m.HandleWHEP)
	mux.HandleFunc("DELETE /api/v1/streams/{camera}/whep/{session}", m.HandleWHEPDelete)
	mux.HandleFunc("GET /api/v1/streams", m.HandleList)
	mux.HandleFunc("GET /live/{camera}", m.HandleViewerPage)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &testGateway{m: m, srv: srv, ev: ev, reg: reg}
}

func (g *testGateway) url(path string) string { return g.srv.URL + path }

// pionViewer is a WHEP viewer that depacketizes H.264 and notes keyframes.
type pionViewer struct {
	pc        *webrtc.PeerConnection
	location  string
	packets   atomic.Int64
	firstNAL  atomic.Int32 // NAL type of the first NAL unit received (0 = none yet)
	keyframes atomic.Int64 // IDR slices completed
	gotKey    chan struct{}
	keyOnce   sync.Once
	// settled is closed once the connection is connected, failed or closed:
	// pion v3.3.6 starts the ICE transport on its own goroutine after
	// SetRemoteDescription, and a Close racing that start is a data race inside
	// pion (ICETransport.Start writes the mux that stop reads unlocked), which
	// -race reports against whichever test closed a viewer just after dialing it.
	settled    chan struct{}
	settleOnce sync.Once
}

// dialViewer opens a WHEP session; the error is a *camsim.StatusError for non-201 replies.
func dialViewer(ctx context.Context, endpoint string) (*pionViewer, error) {
	api, err := camsim.NewAPI(true)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	v := &pionViewer{pc: pc, gotKey: make(chan struct{}), settled: make(chan struct{})}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected, webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			v.settleOnce.Do(func() { close(v.settled) })
		}
	})
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		pc.Close()
		return nil, err
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		var dep codecs.H264Packet
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			v.packets.Add(1)
			au, err := dep.Unmarshal(p.Payload)
			if err != nil || len(au) == 0 {
				continue
			}
			for _, nal := range camsim.SplitAnnexB(au) {
				typ := nal[0] & 0x1f
				v.firstNAL.CompareAndSwap(0, int32(typ))
				if typ == 5 {
					v.keyframes.Add(1)
					v.keyOnce.Do(func() { close(v.gotKey) })
				}
			}
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		pc.Close()
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		pc.Close()
		return nil, err
	}
	<-gathered
	answer, loc, err := camsim.PostSDP(ctx, http.DefaultClient, endpoint, "", pc.LocalDescription().SDP)
	if err != nil {
		pc.Close()
		return nil, err
	}
	v.location = loc
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		pc.Close()
		return nil, err
	}
	return v, nil
}

// waitKeyframe waits for a complete IDR slice and checks the stream began at a
// keyframe boundary (first NAL unit SPS, PPS-less IDR or IDR).
func (v *pionViewer) waitKeyframe(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-v.gotKey:
	case <-time.After(d):
		t.Fatalf("no keyframe within %s (packets received: %d)", d, v.packets.Load())
	}
	if f := v.firstNAL.Load(); f != 7 && f != 5 {
		t.Fatalf("stream began with NAL type %d, want SPS (7) or IDR (5): relay must start viewers at a keyframe", f)
	}
}

// close waits for the connection to settle (at most 10 s; see
// pionViewer.settled), then ends the session and the peer connection.
func (v *pionViewer) close() {
	select {
	case <-v.settled:
	case <-time.After(10 * time.Second):
	}
	if v.location != "" {
		_ = camsim.DeleteSession(http.DefaultClient, v.location, "")
	}
	_ = v.pc.Close()
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func statusCode(err error) int {
	var se *camsim.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// waitFor polls cond (state reached by real goroutines) until d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeTCPPort returns a loopback TCP port for a test RTSP server: free a
// moment ago, never returned before in this test binary, and below the
// ephemeral range (testenv.RestartablePort), so no outgoing connection (ffmpeg's
// own, or another test process's) takes it while the server is down between a
// kill and a restart on it.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	return testenv.RestartablePort(t)
}
