package video

import (
	"errors"
	"net"
	"net/netip"
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
	origin string // OriginConfig or OriginRegistry for rtp/rtsp; "" for whip
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
	foreign    atomic.Uint64 // ingest packets dropped: not from the latched sender
	// senderEpoch is bumped (under Manager.mu) to clear readUDP's latched sender.
	senderEpoch atomic.Uint64

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
	sender     netip.AddrPort // the latched RTP sender (readUDP), for stats
	retired    bool           // replaced or removed (registry edit): no longer in Manager.streams
}

func newStream(m *Manager, camera string) *stream {
	st := &stream{m: m, camera: camera, state: StateIdle, since: m.clock.Now(), viewers: map[string]*viewer{}}
	st.active.Store(&[]*viewer{})
	return st
}

// foreignLogEvery spaces the log lines about packets from a foreign sender: a flood
// shows in the metric and in one line per interval per stream, not one per packet.
const foreignLogEvery = 10 * time.Second

// readUDP reads RTP from an ingest socket until it is closed. The port is pinned to
// one sender: the first address (IP:port) to send valid RTP is latched, and packets
// from any other address are dropped (foreign_sender) until the latched sender has
// been silent for SourceTimeout, the same silence that marks the stream down; then
// the next valid packet's sender takes over (a rebooted camera comes back from a new
// source port). An RTSP stream's latch is cleared when ffmpeg (re)starts. Datagrams
// that are not RTP version 2 (too short, malformed), RTCP and datagrams longer than
// maxIngestPacket are dropped and counted before the sender is looked at, so they
// never latch one. A dropped datagram costs no allocation: its buffer is read into
// again; only a delivered packet, which the viewers' queues keep, takes a fresh
// buffer.
func (st *stream) readUDP(conn *net.UDPConn) {
	m := st.m
	loopbackOnly := st.kind == KindRTSP
	allowed, _ := parseFrom(st.src.RTPFrom) // validated; invalid (allow all) when empty
	var (
		sender   netip.AddrPort // latched sender; invalid until the first valid packet
		epoch    uint64         // st.senderEpoch the latch belongs to
		logAt    time.Time      // last foreign-sender log line
		sinceLog uint64         // foreign packets since that line
		buf      = make([]byte, maxIngestPacket+1)
		p        = &rtp.Packet{}
	)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if loopbackOnly && !from.Addr().IsLoopback() {
			m.met.dropNotLoopback.Inc()
			continue
		}
		if allowed.IsValid() && !allowed.Contains(from.Addr().WithZone("")) { // Contains is false for any zoned address
			m.met.dropNotAllowed.Inc()
			continue
		}
		if n > maxIngestPacket { // filled the spare byte: cut to fit, without an error
			m.met.dropOversize.Inc()
			continue
		}
		if n < rtpHeaderLen || buf[0]>>6 != 2 {
			m.met.dropNotRTP.Inc()
			continue
		}
		if pt := buf[1] & 0x7f; pt >= 72 && pt <= 76 {
			m.met.dropRTCP.Inc()
			continue
		}
		if e := st.senderEpoch.Load(); e != epoch {
			sender, epoch = netip.AddrPort{}, e
		}
		takeover := false
		if from != sender {
			now := m.clock.Now()
			if sender.IsValid() && now.Sub(time.Unix(0, st.lastPacket.Load())) <= m.cfg.SourceTimeout {
				st.foreign.Add(1)
				m.met.dropForeign.Inc()
				sinceLog++
				if now.Sub(logAt) >= foreignLogEvery {
					m.log.Warn("RTP from a foreign sender dropped", "camera", st.camera, "from", from.String(),
						"sender", sender.String(), "dropped", sinceLog)
					logAt, sinceLog = now, 0
				}
				continue
			}
			takeover = true
		}
		if p.Unmarshal(buf[:n]) != nil {
			*p = rtp.Packet{}
			m.met.dropNotRTP.Inc()
			continue
		}
		if takeover {
			if !st.latchSender(from, epoch) {
				continue // ffmpeg restarted meanwhile: the next packet re-reads the epoch
			}
			sender = from
		}
		st.deliver(p)
		buf, p = make([]byte, maxIngestPacket+1), &rtp.Packet{}
	}
}

// rtpHeaderLen is the fixed RTP header (RFC 3550 §5.1); anything shorter is not RTP.
const rtpHeaderLen = 12

// maxIngestPacket is the longest datagram an ingest port relays (cameras and
// ffmpeg send at most an Ethernet MTU's worth). readUDP reads into one byte more,
// so a longer datagram, which Linux cuts to the buffer without an error, shows as
// filling it and is dropped whole (oversize) instead of relayed corrupt.
const maxIngestPacket = 1600

// latchSender records from as the stream's sender for stats and the log, unless the
// latch was reset (ffmpeg restart) since epoch was read.
func (st *stream) latchSender(from netip.AddrPort, epoch uint64) bool {
	m := st.m
	m.mu.Lock()
	if st.senderEpoch.Load() != epoch {
		m.mu.Unlock()
		return false
	}
	prev := st.sender
	st.sender = from
	m.mu.Unlock()
	if prev.IsValid() {
		m.log.Warn("RTP sender changed after the previous one went silent", "camera", st.camera,
			"sender", from.String(), "previous", prev.String(), "silent_for_over", m.cfg.SourceTimeout)
	} else {
		m.log.Info("RTP sender latched", "camera", st.camera, "sender", from.String())
	}
	return true
}

// resetSenderLocked forgets the latched sender, so the next valid packet from any
// address is accepted at once (a restarted ffmpeg sends from a new port).
func (st *stream) resetSenderLocked() {
	st.senderEpoch.Add(1)
	st.sender = netip.AddrPort{}
}

// deliver fans one source packet out to every connected viewer's queue. A full queue
// drops the packet for that viewer only (counted); it never blocks the source.
func (st *stream) deliver(p *rtp.Packet) {
	// rtp.Unmarshal strips padding from the payload but leaves the P bit set,
	// and pion's SRTP writer sends header and payload only: a viewer would
	// read the last media byte as the padding length and drop the packet. The
	// padding carries nothing, so it is dropped for good. (A padding-only
	// packet becomes an empty one, which receivers take as padding.)
	if p.Padding {
		p.Padding, p.Header.PaddingSize = false, 0
		p.PaddingSize = 0 // the deprecated copy: rtp v1.10.6 still sets it, and Marshal would use it
	}
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
		Camera: st.camera, Source: st.kind, Origin: st.origin, State: st.state, Since: st.since,
		Viewers: len(*st.active.Load()), BitrateBPS: st.bitrate,
		Packets: st.packets.Load(), Bytes: st.bytes.Load(), Drops: st.drops.Load(),
		KeyframeRequests: st.pliCount.Load(), LastError: st.lastErr,
		ForeignPackets: st.foreign.Load(),
	}
	if st.sender.IsValid() {
		s.RTPSender = st.sender.String()
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
