package video

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/internal/testenv"
)

type allCams struct{}

func (allCams) IsCamera(string) bool { return true }

func TestIsKeyframeStart(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    bool
	}{
		{"empty", nil, false},
		{"IDR single NAL", []byte{0x65, 0x88}, true},
		{"SPS single NAL", []byte{0x67, 0x42}, true},
		{"PPS single NAL", []byte{0x68, 0xce}, false},
		{"non-IDR slice", []byte{0x41, 0x9a}, false},
		{"STAP-A with SPS+PPS", []byte{0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce}, true},
		{"STAP-A with PPS then IDR", []byte{0x78, 0, 2, 0x68, 0xce, 0, 2, 0x65, 0x88}, true},
		{"STAP-A slices only", []byte{0x78, 0, 2, 0x41, 0x9a}, false},
		{"STAP-A truncated size", []byte{0x78, 0, 9, 0x67}, false},
		{"STAP-A zero size", []byte{0x78, 0, 0, 0x67}, false},
		{"FU-A IDR start", []byte{0x7c, 0x85, 0x88}, true},
		{"FU-A IDR middle", []byte{0x7c, 0x05, 0x88}, false},
		{"FU-A non-IDR start", []byte{0x7c, 0x81, 0x9a}, false},
		{"FU-A header only", []byte{0x7c}, false},
	}
	for _, tc := range tests {
		if got := IsKeyframeStart(tc.payload); got != tc.want {
			t.Errorf("%s: IsKeyframeStart(%x) = %v, want %v", tc.name, tc.payload, got, tc.want)
		}
	}
}

func FuzzIsKeyframeStart(f *testing.F) {
	for _, s := range [][]byte{{0x65}, {0x78, 0, 2, 0x67, 0x42}, {0x7c, 0x85}, {0x78, 0xff, 0xff}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !IsKeyframeStart(b) {
			return
		}
		// Only an IDR/SPS NAL, a STAP-A or an FU-A can start a keyframe.
		switch b[0] & 0x1f {
		case nalIDR, nalSPS, nalSTAPA, nalFUA:
		default:
			t.Fatalf("NAL type %d reported as keyframe start", b[0]&0x1f)
		}
	})
}

// rtp_from is compared with unmapped sender addresses, so mapped forms in the
// config must come out as the IPv4 prefix they mean, never as one that
// matches nothing or everything.
func TestParseFrom(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10.1.2.3", "10.1.2.3/32"},
		{"10.1.2.3/24", "10.1.2.0/24"},
		{"::ffff:10.1.2.3", "10.1.2.3/32"},
		{"::ffff:10.1.2.0/120", "10.1.2.0/24"},
		{"fd00::1/8", "fd00::/8"},
		{"::ffff:10.0.0.0/64", ""},
		{"10.1.2.3/33", ""},
		{"cam-7", ""},
	}
	for _, tc := range tests {
		p, err := parseFrom(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("parseFrom(%q) = %v, want an error", tc.in, p)
		case tc.want != "" && (err != nil || p.String() != tc.want):
			t.Errorf("parseFrom(%q) = %v, %v, want %s", tc.in, p, err, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		key  string // "" = valid
	}{
		{"default", func(*Config) {}, ""},
		{"port range", func(c *Config) { c.ICEUDPPortMin, c.ICEUDPPortMax = 50000, 50100 }, ""},
		{"port range reversed", func(c *Config) { c.ICEUDPPortMin, c.ICEUDPPortMax = 50100, 50000 }, "ice_udp_port_min"},
		{"port range half", func(c *Config) { c.ICEUDPPortMin = 50000 }, "ice_udp_port_min"},
		{"mux port", func(c *Config) { c.ICEUDPMuxPort = 70000 }, "ice_udp_mux_port"},
		{"nat ip", func(c *Config) { c.NAT1To1IPs = []string{"example.com"} }, "nat_1to1_ips[0]"},
		{"viewers per camera", func(c *Config) { c.MaxViewersPerCamera = 0 }, "max_viewers_per_camera"},
		{"viewers", func(c *Config) { c.MaxViewers = 0 }, "max_viewers"},
		{"grace", func(c *Config) { c.RTSPGrace = -time.Second }, "rtsp_grace"},
		{"backoff", func(c *Config) { c.RTSPBackoffMax = 0 }, "rtsp_backoff_max"},
		{"ffmpeg", func(c *Config) { c.FFmpegPath = "" }, "ffmpeg_path"},
		{"bind ip", func(c *Config) { c.RTPBindIP = "nope" }, "rtp_bind_ip"},
		{"timeout", func(c *Config) { c.SourceTimeout = 0 }, "source_timeout"},
		{"queue", func(c *Config) { c.ViewerQueue = 0 }, "viewer_queue"},
		{"sources ok", func(c *Config) {
			c.Sources = []Source{{Camera: "a", RTSP: "rtsp://u:p@cam/x"}, {Camera: "b", RTPPort: 5004}}
		}, ""},
		{"source no camera", func(c *Config) { c.Sources = []Source{{RTPPort: 5004}} }, "sources[0].camera"},
		{"source twice", func(c *Config) { c.Sources = []Source{{Camera: "a", RTPPort: 1}, {Camera: "a", RTPPort: 2}} }, "sources[1].camera"},
		{"source both", func(c *Config) { c.Sources = []Source{{Camera: "a", RTPPort: 1, RTSP: "rtsp://x/y"}} }, "sources[0]"},
		{"source neither", func(c *Config) { c.Sources = []Source{{Camera: "a"}} }, "sources[0]"},
		{"source bad url", func(c *Config) { c.Sources = []Source{{Camera: "a", RTSP: "http://x/y"}} }, "sources[0].rtsp"},
		{"source port twice", func(c *Config) { c.Sources = []Source{{Camera: "a", RTPPort: 1}, {Camera: "b", RTPPort: 1}} }, "sources[1].rtp_port"},
		{"rtp_from ip", func(c *Config) { c.Sources = []Source{{Camera: "a", RTPPort: 1, RTPFrom: "10.1.2.3"}} }, ""},
		{"rtp_from prefix", func(c *Config) { c.Sources = []Source{{Camera: "a", RTPPort: 1, RTPFrom: "10.1.2.0/24"}} }, ""},
		{"rtp_from ipv6", func(c *Config) { c.Sources = []Source{{Camera: "a", RTPPort: 1, RTPFrom: "fd00::/8"}} }, ""},
		{"rtp_from bad", func(c *Config) { c.Sources = []Source{{Camera: "a", RTPPort: 1, RTPFrom: "camera-7"}} }, "sources[0].rtp_from"},
		{"rtp_from for rtsp", func(c *Config) { c.Sources = []Source{{Camera: "a", RTSP: "rtsp://x/y", RTPFrom: "10.0.0.1"}} }, "sources[0].rtp_from"},
	}
	for _, tc := range tests {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		switch {
		case tc.key == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.name, err)
		case tc.key != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.key)):
			t.Errorf("%s: error %v, want one naming %s", tc.name, err, tc.key)
		}
	}
}

// Camera URLs carry credentials in the user info (Hikvision, Dahua), in the
// path (Xiongmai-based cameras) or in the query (some NVRs and Axis): none of
// them may reach logs, events or /api/v1/streams.
func TestRedactURL(t *testing.T) {
	tests := []struct {
		url     string
		secrets []string
		keep    string // what an operator still needs to tell cameras apart
	}{
		{"rtsp://admin:secret@10.0.0.5:554/live", []string{"secret", "admin"}, "10.0.0.5:554/live"},
		{"rtsp://admin:s%40cret@10.0.0.5/Streaming/Channels/101", []string{"s%40cret", "s@cret"}, "/Streaming/Channels/101"},
		{"rtsp://10.0.0.6:554/user=admin_password=tlJwpbo6_channel=1_stream=0.sdp?real_stream",
			[]string{"tlJwpbo6"}, "channel=1_stream=0.sdp"},
		{"rtsp://10.0.0.7/axis-media/media.amp?user=root&password=hunter22&resolution=720p",
			[]string{"hunter22"}, "resolution=720p"},
		{"rtsp://10.0.0.8/live?token=abc123def&pwd=zz9;x=1", []string{"abc123def", "zz9"}, "x=1"},
	}
	for _, tc := range tests {
		got := redactURL(tc.url)
		for _, s := range tc.secrets {
			if strings.Contains(got, s) {
				t.Errorf("redactURL(%q) = %q: %q leaks", tc.url, got, s)
			}
		}
		if !strings.Contains(got, tc.keep) {
			t.Errorf("redactURL(%q) = %q: lost %q", tc.url, got, tc.keep)
		}
		stderr := "[rtsp @ 0x55] method DESCRIBE failed: 401 Unauthorized\n" + tc.url + ": Server returned 401"
		scrubbed := scrubCredentials(stderr, tc.url)
		for _, s := range tc.secrets {
			if strings.Contains(scrubbed, s) {
				t.Errorf("scrubCredentials(…, %q) = %q: %q leaks", tc.url, scrubbed, s)
			}
		}
		if !strings.Contains(scrubbed, "401 Unauthorized") {
			t.Errorf("scrubCredentials lost the message: %q", scrubbed)
		}
	}
	// A user name is masked where it reads as one, not wherever the word occurs.
	if got := scrubCredentials("rtsp stream: rtsp://rtsp:pw9@cam/x failed", "rtsp://rtsp:pw9@cam/x"); got != "rtsp stream: rtsp://***:***@cam/x failed" {
		t.Errorf("scrubCredentials with user name \"rtsp\" = %q", got)
	}
}

// newUnitManager builds a Manager on a fake clock without its background loop ticking.
func newUnitManager(t *testing.T, cfg Config, fc *clock.Fake) *Manager {
	t.Helper()
	m, _ := newLoggedManager(t, cfg, fc)
	return m
}

// newLoggedManager is newUnitManager that also returns what the manager logs.
func newLoggedManager(t *testing.T, cfg Config, fc *clock.Fake) (*Manager, *testenv.SyncBuffer) {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	m, err := NewManager(cfg, allCams{}, nil, prometheus.NewRegistry(), log, WithClock(fc), WithTickInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, logs
}

// addFakeViewer puts a viewer with a queue but no peer connection into the fan-out.
func addFakeViewer(m *Manager, st *stream, id string, queue int) *viewer {
	v := &viewer{id: id, st: st, q: make(chan relayPacket, queue), done: make(chan struct{})}
	m.mu.Lock()
	st.viewers[id] = v
	m.sessions[id] = v
	m.total++
	m.mu.Unlock()
	m.activateViewer(v)
	return v
}

// A viewer that does not drain its queue loses packets; the others lose none, and
// the source is never blocked.
func TestSlowViewerDropsOnlyItsOwn(t *testing.T) {
	fc := clock.NewFake(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC))
	m := newUnitManager(t, DefaultConfig(), fc)
	st, err := m.stream("cam")
	if err != nil {
		t.Fatal(err)
	}
	slow := addFakeViewer(m, st, "slow", 4)
	fast := addFakeViewer(m, st, "fast", 4)
	var fastGot atomic.Int64
	go func() {
		for range fast.q {
			fastGot.Add(1)
		}
	}()
	const n = 200
	for i := range n {
		payload := []byte{0x41, 0}
		if i == 0 {
			payload = []byte{0x65, 0} // IDR: both viewers start here
		}
		st.deliver(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i)}, Payload: payload})
		// give the fast reader a chance; the slow one never reads
		for fastGot.Load() < int64(i+1) {
			time.Sleep(10 * time.Microsecond)
		}
	}
	if got := slow.drops.Load(); got != n-4 {
		t.Fatalf("slow viewer drops = %d, want %d (queue of 4)", got, n-4)
	}
	if fast.drops.Load() != 0 || fastGot.Load() != n {
		t.Fatalf("fast viewer: drops %d, got %d of %d", fast.drops.Load(), fastGot.Load(), n)
	}
	if s, _ := m.StreamStats("cam"); s.Drops != n-4 || s.Packets != n {
		t.Fatalf("stream stats %+v", s)
	}
}

// A new viewer waits for a keyframe: deltas before it are not queued.
func TestViewerStartsAtKeyframe(t *testing.T) {
	fc := clock.NewFake(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC))
	m := newUnitManager(t, DefaultConfig(), fc)
	st, _ := m.stream("cam")
	v := addFakeViewer(m, st, "v", 16)
	for _, p := range [][]byte{{0x41}, {0x41}, {0x78, 0, 1, 0x67, 0, 1, 0x68}, {0x65}, {0x41}} {
		st.deliver(&rtp.Packet{Header: rtp.Header{Version: 2}, Payload: p})
	}
	if len(v.q) != 3 {
		t.Fatalf("queued %d packets, want 3 (from the SPS on)", len(v.q))
	}
	if first := <-v.q; !first.key {
		t.Fatal("first queued packet is not the keyframe start")
	}
}

// Keyframe requests reach the source at most once per PLIInterval; one asked for
// inside the interval is sent when the interval has passed.
func TestKeyframeRequestRateLimit(t *testing.T) {
	fc := clock.NewFake(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC))
	cfg := DefaultConfig()
	cfg.PLIInterval = time.Second
	m := newUnitManager(t, cfg, fc)
	st, _ := m.stream("cam")
	var sent atomic.Int64
	m.mu.Lock()
	st.askKey = func() { sent.Add(1) }
	m.mu.Unlock()
	ctx := context.Background()

	steps := []struct {
		advance  time.Duration
		requests int
		want     int64
	}{
		{0, 5, 1},                      // a burst of viewers: one PLI now
		{300 * time.Millisecond, 0, 1}, // still inside the interval
		{800 * time.Millisecond, 0, 2}, // the deferred one goes out
		{100 * time.Millisecond, 1, 2}, // inside again: deferred
		{2 * time.Second, 0, 3},        // sent
		{5 * time.Second, 0, 3},        // nothing pending: nothing sent
		{0, 1, 4},                      // idle long enough: immediate
	}
	for i, s := range steps {
		now := fc.Advance(s.advance)
		for range s.requests {
			st.requestKeyframe()
		}
		m.RunDue(ctx, now)
		if got := sent.Load(); got != s.want {
			t.Fatalf("step %d: %d keyframe requests sent, want %d", i, got, s.want)
		}
	}
}

func TestRTSPBackoff(t *testing.T) {
	fc := clock.NewFake(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC))
	cfg := DefaultConfig()
	cfg.RTSPBackoffMax = 10 * time.Second
	m := newUnitManager(t, cfg, fc)
	st, _ := m.stream("cam")
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		st.ff.failures = i + 1
		if got := st.backoffLocked(); got != w {
			t.Errorf("failures=%d: backoff %s, want %s", i+1, got, w)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 8}
	_, _ = tb.Write([]byte("hello "))
	_, _ = tb.Write([]byte("world!"))
	if got := tb.String(); got != "o world!" {
		t.Fatalf("tail = %q", got)
	}
}
