package video

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"
)

// relayPacket is one source packet on its way to viewers. The *rtp.Packet is shared
// read-only by every viewer (pion copies the header before rewriting SSRC/PT).
type relayPacket struct {
	p   *rtp.Packet
	at  time.Time // monotonic arrival at the relay, for the relay-latency histogram
	key bool      // starts a keyframe
}

// stream is one camera: its source and its viewers. Fields without atomics are
// guarded by Manager.mu; the packet path only touches atomics and the viewer snapshot.
type stream struct {
	m      *Manager
	camera string
	kind   string
	src    Source
	udp    *net.UDPConn // RTP ingest or ffmpeg's target

	// hot path
	active     atomic.Pointer[[]*viewer] // connected viewers (copy-on-write)
	packets    atomic.Uint64
	bytes      atomic.Uint64
	drops      atomic.Uint64
	pliCount   atomic.Uint64
	lastPacket atomic.Int64 // clock UnixNano of the last packet
	up         atomic.Bool

	// guarded by Manager.mu
	state      string
	since      time.Time
	lastErr    string
	viewers    map[string]*viewer // reserved + connected
	lastGone   time.Time          // when the viewer count last fell to zero
	rateAt     time.Time
	rateBytes  uint64
	bitrate    float64
	lastPLI    time.Time
	pendingPLI bool
	pubPC      *webrtc.PeerConnection // WHIP publisher
	pubID      string
	askKey     func() // sends a keyframe request to the source; nil when it has no return channel
	ff         ffmpegState
}

func newStream(m *Manager, camera string) *stream {
	st := &stream{m: m, camera: camera, state: StateIdle, since: m.clock.Now(), viewers: map[string]*viewer{}}
	st.active.Store(&[]*viewer{})
	return st
}

// readUDP reads RTP from an ingest socket until it is closed. Anything that is not
// RTP version 2 is ignored (RTCP, stray datagrams).
func (st *stream) readUDP(conn *net.UDPConn) {
	loopbackOnly := st.kind == KindRTSP
	for {
		buf := make([]byte, 1600)
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if loopbackOnly && !from.IP.IsLoopback() {
			continue
		}
		p := &rtp.Packet{}
		if p.Unmarshal(buf[:n]) != nil || p.Version != 2 || (p.PayloadType >= 72 && p.PayloadType <= 76) {
			continue
		}
		st.deliver(p)
	}
}

// deliver fans one source packet out to every connected viewer's queue. A full queue
// drops the packet for that viewer only (counted); it never blocks the source.
func (st *stream) deliver(p *rtp.Packet) {
	m := st.m
	now := m.clock.Now()
	st.lastPacket.Store(now.UnixNano())
	st.packets.Add(1)
	st.bytes.Add(uint64(len(p.Payload) + 12))
	m.met.packetsIn.Inc()
	if !st.up.Load() {
		st.markUp(now)
	}
	rp := relayPacket{p: p, at: time.Now(), key: IsKeyframeStart(p.Payload)}
	queued := false
	for _, v := range *st.active.Load() {
		if v.waitKey.Load() {
			if !rp.key {
				continue
			}
			v.waitKey.Store(false)
		}
		select {
		case v.q <- rp:
			queued = true
		default:
			v.drops.Add(1)
			st.drops.Add(1)
			m.met.drops.Inc()
		}
	}
	if queued {
		for _, w := range m.writers {
			w.signal()
		}
	}
}

func (st *stream) markUp(now time.Time) {
	m := st.m
	m.mu.Lock()
	if st.up.Load() || (st.kind == KindRTSP && (!st.ff.running || st.ff.stopping)) {
		m.mu.Unlock() // already up, or a straggler from an ffmpeg we stopped
		return
	}
	st.up.Store(true)
	st.state, st.since, st.lastErr = StateUp, now, ""
	st.ff.failures = 0
	wantKey := len(*st.active.Load()) > 0
	m.mu.Unlock()
	m.publish(EventStreamUp, StreamEvent{Camera: st.camera, Source: st.kind})
	if wantKey {
		st.requestKeyframe()
	}
}

// markDownLocked records the source as gone and returns whether an event is due.
func (st *stream) markDownLocked(now time.Time, reason string) bool {
	was := st.up.Swap(false)
	st.state, st.since = StateDown, now
	if reason != "" {
		st.lastErr = reason
	}
	return was
}

// requestKeyframe asks the source for a keyframe, at most once per PLIInterval; a
// request inside the interval is remembered and sent by RunDue when allowed, so a
// viewer joining just after another still gets its keyframe promptly.
func (st *stream) requestKeyframe() {
	m := st.m
	now := m.clock.Now()
	m.mu.Lock()
	if now.Sub(st.lastPLI) < m.cfg.PLIInterval {
		st.pendingPLI = true
		m.mu.Unlock()
		return
	}
	send := st.takePLILocked(now)
	m.mu.Unlock()
	send()
}

// takePLILocked marks a keyframe request as sent and returns the function that sends
// it outside the lock. RTP and RTSP sources have no return channel: for RTP the
// encoder's own keyframe interval is all we get; for RTSP ffmpeg relays what the
// camera sends and restarting it would cost more than waiting for the next GOP.
func (st *stream) takePLILocked(now time.Time) func() {
	st.lastPLI, st.pendingPLI = now, false
	if st.askKey == nil {
		return func() {}
	}
	st.pliCount.Add(1)
	st.m.met.keyframeRequests.Inc()
	return st.askKey
}

// runDue is the stream's time-driven step (see Manager.RunDue).
func (st *stream) runDue(now time.Time) {
	m := st.m
	var events []func()
	m.mu.Lock()
	// bitrate over the last sampling period
	b := st.bytes.Load()
	if !st.rateAt.IsZero() {
		if dt := now.Sub(st.rateAt).Seconds(); dt >= 0.5 {
			st.bitrate = float64(b-st.rateBytes) * 8 / dt
			st.rateAt, st.rateBytes = now, b
		}
	} else {
		st.rateAt, st.rateBytes = now, b
	}
	// source timeout
	if st.up.Load() && now.Sub(time.Unix(0, st.lastPacket.Load())) > m.cfg.SourceTimeout {
		if st.markDownLocked(now, "no packets for "+m.cfg.SourceTimeout.String()) {
			e := StreamEvent{Camera: st.camera, Source: st.kind, Reason: st.lastErr}
			events = append(events, func() { m.publish(EventStreamDown, e) })
		}
		st.bitrate = 0
	}
	// deferred keyframe request
	if st.pendingPLI && now.Sub(st.lastPLI) >= m.cfg.PLIInterval {
		events = append(events, st.takePLILocked(now))
	}
	for _, v := range st.viewers {
		if !v.active && now.Sub(v.created) > connectTimeout {
			events = append(events, func() { m.removeViewer(v) })
		}
	}
	if st.kind == KindRTSP {
		events = append(events, st.superviseLocked(now)...)
	}
	m.mu.Unlock()
	for _, f := range events {
		f()
	}
}

func (st *stream) statsLocked() StreamStats {
	s := StreamStats{
		Camera: st.camera, Source: st.kind, State: st.state, Since: st.since,
		Viewers: len(*st.active.Load()), BitrateBPS: st.bitrate,
		Packets: st.packets.Load(), Bytes: st.bytes.Load(), Drops: st.drops.Load(),
		KeyframeRequests: st.pliCount.Load(), LastError: st.lastErr,
	}
	s.ViewersConnecting = len(st.viewers) - s.Viewers
	if st.kind == KindRTSP {
		s.RTSP = redactURL(st.src.RTSP)
		s.FFmpegRunning = st.ff.running
		s.FFmpegStarts = st.ff.starts
	}
	if st.kind == KindRTP && st.udp != nil {
		s.RTPAddr = st.udp.LocalAddr().String()
	}
	return s
}
