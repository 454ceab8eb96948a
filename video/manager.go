package video

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/webrtc/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/errs"
	"github.com/lookoutfire/lookout/events"
)

// Errors callers (and web.Error) branch on; each wraps an errs kind.
var (
	// ErrUnknownCamera: the id is not a camera in the device registry.
	ErrUnknownCamera = fmt.Errorf("video: unknown camera: %w", errs.ErrNotFound)
	// ErrUnknownSession: no WHIP/WHEP session with that id for that camera.
	ErrUnknownSession = fmt.Errorf("video: unknown session: %w", errs.ErrNotFound)
	// ErrViewerLimit: the per-camera or total viewer limit is reached.
	ErrViewerLimit = fmt.Errorf("video: viewer limit reached: %w", errs.ErrUnavailable)
	// ErrFFmpegMissing: an RTSP camera cannot be pulled because ffmpeg is not installed.
	ErrFFmpegMissing = fmt.Errorf("video: ffmpeg not found (install Debian package ffmpeg or set video.ffmpeg_path): %w", errs.ErrUnavailable)
	// ErrConfiguredSource: a camera with a configured RTP/RTSP source cannot also publish over WHIP.
	ErrConfiguredSource = fmt.Errorf("video: camera has a configured rtp/rtsp source: %w", errs.ErrConflict)
	// ErrBadOffer: the SDP offer is missing, malformed or offers no usable H.264.
	ErrBadOffer = fmt.Errorf("video: bad SDP offer: %w", errs.ErrInvalid)
	// ErrClosed: the manager is shutting down.
	ErrClosed = fmt.Errorf("video: manager closed: %w", errs.ErrUnavailable)
	// ErrBadSource: an RTSP URL handed to SetCameraRTSP is not rtsp(s)://host/….
	ErrBadSource = fmt.Errorf("video: bad RTSP source: %w", errs.ErrInvalid)
	// ErrSourceReplaced: the camera's source changed while the request was being
	// answered (the registry edited its rtsp_url); the client should try again.
	ErrSourceReplaced = fmt.Errorf("video: camera source replaced, try again: %w", errs.ErrUnavailable)
)

// CameraDirectory tells the relay which ids are cameras; the device registry adapts to it,
// so video never invents cameras and never imports the registry.
type CameraDirectory interface {
	IsCamera(id string) bool
}

// Source kinds and states reported in stats and events.
const (
	KindWHIP = "whip"
	KindRTP  = "rtp"
	KindRTSP = "rtsp"

	StateIdle     = "idle"     // nothing expected now (RTSP with no viewers, WHIP camera not publishing yet)
	StateStarting = "starting" // ffmpeg started / waiting for the first packet
	StateUp       = "up"       // packets are flowing
	StateDown     = "down"     // the source was up and went away, or failed
)

// Where an RTP/RTSP source is defined (StreamStats.Origin); WHIP streams have none.
const (
	OriginConfig   = "config"   // an entry of video.sources
	OriginRegistry = "registry" // the camera's rtsp_url in the device registry (SetCameraRTSP)
)

// Event types published on the events.Publisher.
const (
	EventStreamUp   = "stream.up"
	EventStreamDown = "stream.down"
)

// StreamEvent is the payload of stream.up / stream.down, used by device health.
type StreamEvent struct {
	Camera string `json:"camera"`
	Source string `json:"source"`
	Reason string `json:"reason,omitempty"`
}

// Option tunes a Manager beyond its Config (clock for tests).
type Option func(*Manager)

// WithClock sets the clock that drives timeouts, grace periods, backoff and keyframe
// rate limits (tests pass a clock.Fake and call RunDue).
func WithClock(c clock.Clock) Option { return func(m *Manager) { m.clock = c } }

// WithTickInterval sets how often the background loop calls RunDue (default 200 ms).
func WithTickInterval(d time.Duration) Option { return func(m *Manager) { m.tick = d } }

// Manager is the gateway's one video relay: it owns every camera stream, its
// source (WHIP publisher, RTP port or ffmpeg RTSP pull) and its WHEP viewers.
type Manager struct {
	cfg     Config
	cams    CameraDirectory
	pub     events.Publisher
	log     *slog.Logger
	clock   clock.Clock
	tick    time.Duration
	ice     iceSettings // every peer connection gets its own API from it (newPeer)
	muxConn net.PacketConn
	mux     ice.UDPMux
	ffmpeg  string // resolved ffmpeg path; "" when missing
	csp     string // viewer page Content-Security-Policy
	met     *metrics
	writers []*writer // fixed send pool, set before any viewer exists
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu       sync.Mutex // guards everything below and the non-atomic fields of streams/viewers
	closed   bool
	streams  map[string]*stream
	total    int // reserved viewer slots across all cameras
	sessions map[string]*viewer
	// shadowed is the registry rtsp_url of each camera whose video.sources entry
	// wins over it, so the choice is logged once per URL, not per registry edit.
	shadowed map[string]string
}

// NewManager builds the relay, binds configured RTP ports and starts its background
// loop. A missing ffmpeg is not fatal: RTSP cameras answer 503 with a clear message.
func NewManager(cfg Config, cams CameraDirectory, pub events.Publisher, reg prometheus.Registerer, log *slog.Logger, opts ...Option) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("video config: %v: %w", err, errs.ErrInvalid)
	}
	if cams == nil {
		return nil, fmt.Errorf("video: nil camera directory: %w", errs.ErrInvalid)
	}
	if pub == nil {
		pub = events.Discard{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	met, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, cams: cams, pub: pub, log: log.With("component", "video"), clock: clock.Real{},
		tick: 200 * time.Millisecond, met: met, csp: viewerCSP(), streams: map[string]*stream{}, sessions: map[string]*viewer{},
		shadowed: map[string]string{}}
	for _, o := range opts {
		o(m)
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())

	ice := iceSettings{loopbackOnly: cfg.LoopbackOnly, portMin: cfg.ICEUDPPortMin, portMax: cfg.ICEUDPPortMax,
		nat1to1: cfg.NAT1To1IPs, disconnectWait: 4 * time.Second, failedWait: 10 * time.Second}
	var batch batcher = nopBatcher{}
	if cfg.ICEUDPMuxPort != 0 {
		host := ""
		if cfg.LoopbackOnly {
			host = "127.0.0.1"
		}
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(cfg.ICEUDPMuxPort)))
		if err != nil {
			return nil, fmt.Errorf("video: ice_udp_mux_port: %w", err)
		}
		m.muxConn = pc
		var muxed net.PacketConn = pc
		if uc, ok := pc.(*net.UDPConn); ok {
			bc := newBatchConn(uc)
			muxed, batch = bc, bc
		}
		m.mux = webrtc.NewICEUDPMux(nil, muxed)
		ice.mux = m.mux
	}
	m.ice = ice
	if _, err = newAPI(ice, nil); err != nil { // config errors surface here, not at the first viewer
		m.closeMux()
		return nil, err
	}
	if p, err := exec.LookPath(cfg.FFmpegPath); err == nil {
		m.ffmpeg = p
	}
	m.mu.Lock()
	for _, src := range cfg.Sources {
		if _, err := m.addSourceLocked(src, OriginConfig); err != nil {
			m.mu.Unlock()
			m.closeAll()
			return nil, fmt.Errorf("video: sources %s: %w", src.Camera, err)
		}
	}
	m.mu.Unlock()
	m.startWriters(runtime.GOMAXPROCS(0), batch)
	m.wg.Add(1)
	go m.loop()
	return m, nil
}

// RTPAddr is the local UDP address RTP for camera is read from (the configured port,
// or ffmpeg's loopback target for RTSP). Simulators and tests push there.
func (m *Manager) RTPAddr(camera string) (net.Addr, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.streams[camera]
	if !ok || st.udp == nil {
		return nil, false
	}
	return st.udp.LocalAddr(), true
}

func (m *Manager) loop() {
	defer m.wg.Done()
	t := time.NewTicker(m.tick)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			m.RunDue(m.ctx, m.clock.Now())
		}
	}
}

// RunDue performs every time-driven step due at now: source timeouts (stream down),
// bitrate sampling, deferred keyframe requests, and the RTSP pull lifecycle (start
// on demand, stop after the grace period, restart with backoff). The background loop
// calls it with the clock's time; tests call it directly after moving a clock.Fake.
func (m *Manager) RunDue(ctx context.Context, now time.Time) {
	if ctx.Err() != nil {
		return
	}
	m.mu.Lock()
	streams := make([]*stream, 0, len(m.streams))
	for _, st := range m.streams {
		streams = append(streams, st)
	}
	m.mu.Unlock()
	for _, st := range streams {
		st.runDue(now)
	}
}

// Close ends every viewer, publisher and ffmpeg child and waits for their goroutines.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	var vs []*viewer
	for _, v := range m.sessions {
		vs = append(vs, v)
	}
	type pubRef struct {
		st *stream
		id string
	}
	var pubs []pubRef
	for _, st := range m.streams {
		if st.pubPC != nil {
			pubs = append(pubs, pubRef{st, st.pubID})
		}
	}
	m.mu.Unlock()
	for _, v := range vs {
		m.removeViewer(v)
	}
	for _, p := range pubs {
		m.endPublisher(p.st, p.id, "gateway shutting down")
	}
	m.cancel()
	m.closeAll()
	m.wg.Wait()
	return nil
}

func (m *Manager) closeAll() {
	m.mu.Lock()
	for _, st := range m.streams {
		if st.udp != nil {
			_ = st.udp.Close()
		}
		st.stopFFmpegLocked()
	}
	m.mu.Unlock()
	m.closeMux()
}

func (m *Manager) closeMux() {
	if m.mux != nil {
		_ = m.mux.Close()
	}
	if m.muxConn != nil {
		_ = m.muxConn.Close()
	}
}

// addSourceLocked creates the stream of a configured or registry-defined
// RTP/RTSP source, binds its UDP port and starts reading it. Caller holds mu
// and has checked that the manager is not closed.
func (m *Manager) addSourceLocked(src Source, origin string) (*stream, error) {
	st := newStream(m, src.Camera)
	st.src, st.origin = src, origin
	bind := m.cfg.RTPBindIP
	if m.cfg.LoopbackOnly || src.RTSP != "" {
		bind = "127.0.0.1" // ffmpeg writes to us on loopback
	}
	port := src.RTPPort
	if src.RTSP != "" {
		st.kind = KindRTSP
		port = 0
		if m.ffmpeg == "" {
			m.log.Warn("RTSP camera configured but ffmpeg is missing", "camera", src.Camera, "origin", origin,
				"ffmpeg_path", m.cfg.FFmpegPath)
		}
	} else {
		st.kind = KindRTP
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(bind), Port: port})
	if err != nil {
		return nil, fmt.Errorf("listen udp %s:%d: %w", bind, port, err)
	}
	_ = conn.SetReadBuffer(1 << 20)
	st.udp = conn
	m.streams[src.Camera] = st
	m.wg.Add(1) // under mu and before closed: never races Close's Wait
	go func() { defer m.wg.Done(); st.readUDP(conn) }()
	return st, nil
}

// stream returns the camera's stream, creating a WHIP-fed one for a known camera.
func (m *Manager) stream(camera string) (*stream, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.streamLocked(camera)
}

// streamLocked is stream with mu held.
func (m *Manager) streamLocked(camera string) (*stream, error) {
	if m.closed {
		return nil, ErrClosed
	}
	if st, ok := m.streams[camera]; ok {
		return st, nil
	}
	if !m.cams.IsCamera(camera) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownCamera, camera)
	}
	st := newStream(m, camera)
	st.kind = KindWHIP
	m.streams[camera] = st
	return st, nil
}

// StreamStats is one row of GET /api/v1/streams.
type StreamStats struct {
	Camera            string    `json:"camera"`
	Source            string    `json:"source"`           // whip, rtp, rtsp
	Origin            string    `json:"origin,omitempty"` // rtp/rtsp: config (video.sources) or registry (rtsp_url)
	State             string    `json:"state"`            // idle, starting, up, down
	Since             time.Time `json:"since"`
	Viewers           int       `json:"viewers"`
	BitrateBPS        float64   `json:"bitrate_bps"`
	Packets           uint64    `json:"packets"`
	Bytes             uint64    `json:"bytes"`
	Drops             uint64    `json:"drops"` // packets dropped at full viewer queues, all viewers
	KeyframeRequests  uint64    `json:"keyframe_requests"`
	FFmpegRunning     bool      `json:"ffmpeg_running,omitempty"`
	FFmpegStarts      int       `json:"ffmpeg_starts,omitempty"`
	LastError         string    `json:"last_error,omitempty"`
	RTSP              string    `json:"rtsp,omitempty"` // credentials redacted
	RTPAddr           string    `json:"rtp_addr,omitempty"`
	RTPSender         string    `json:"rtp_sender,omitempty"` // IP:port the ingest port is pinned to ("" until the first packet)
	ForeignPackets    uint64    `json:"foreign_packets"`      // RTP dropped for coming from another address than RTPSender
	ViewersConnecting int       `json:"viewers_connecting"`
}

// Stats returns every stream's state, sorted by camera.
func (m *Manager) Stats() []StreamStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]StreamStats, 0, len(m.streams))
	for _, st := range m.streams {
		out = append(out, st.statsLocked())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Camera < out[j].Camera })
	return out
}

// StreamStats returns one camera's stats.
func (m *Manager) StreamStats(camera string) (StreamStats, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.streams[camera]
	if !ok {
		return StreamStats{}, false
	}
	return st.statsLocked(), true
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// publish announces an event outside any lock.
func (m *Manager) publish(typ string, e StreamEvent) {
	m.log.Info(typ, "camera", e.Camera, "source", e.Source, "reason", e.Reason)
	m.pub.Publish(typ, e)
}
