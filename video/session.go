package video

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v3"
)

// gatherTimeout bounds ICE candidate gathering before the SDP answer is sent (no
// trickle: WHIP/WHEP clients get every candidate in the answer).
const gatherTimeout = 5 * time.Second

// connectTimeout frees the slot of a viewer whose transport never connected.
const connectTimeout = 30 * time.Second

// viewer is one WHEP session: its own track and its own bounded queue, drained by
// one of the manager's writers, so a slow viewer only ever loses its own packets.
type viewer struct {
	id      string
	st      *stream
	pc      *webrtc.PeerConnection
	track   *webrtc.TrackLocalStaticRTP
	q       chan relayPacket // bounded; drained by the viewer's writer (w)
	w       *writer          // the send goroutine owning this viewer; nil until it has a track
	waitKey atomic.Bool      // drop until the first keyframe start: a decoder cannot use anything before it
	drops   atomic.Uint64
	once    sync.Once
	done    chan struct{}
	active  bool      // in the stream's snapshot (guarded by Manager.mu)
	created time.Time // clock time of the WHEP POST; unconnected viewers are reaped after connectTimeout
}

// addViewer reserves a slot, answers the WHEP offer and returns the session id and
// SDP answer. The viewer joins the fan-out only when its transport is connected.
func (m *Manager) addViewer(ctx context.Context, camera, offer string) (string, string, error) {
	// Look the stream up and reserve the slot under one lock, so a registry edit
	// that replaces the stream cannot leave this viewer on the retired one. The
	// slot comes first: the limits hold even while handshakes are in flight.
	m.mu.Lock()
	st, err := m.streamLocked(camera)
	if err != nil {
		m.mu.Unlock()
		return "", "", err
	}
	if st.kind == KindRTSP && m.ffmpeg == "" {
		m.mu.Unlock()
		return "", "", ErrFFmpegMissing
	}
	v := &viewer{id: newSessionID(), st: st, created: m.clock.Now(), q: make(chan relayPacket, m.cfg.ViewerQueue), done: make(chan struct{})}
	switch {
	case len(st.viewers) >= m.cfg.MaxViewersPerCamera:
		m.mu.Unlock()
		m.met.rejected.WithLabelValues("camera_limit").Inc()
		return "", "", fmt.Errorf("%w: %d viewers on camera %s", ErrViewerLimit, m.cfg.MaxViewersPerCamera, camera)
	case m.total >= m.cfg.MaxViewers:
		m.mu.Unlock()
		m.met.rejected.WithLabelValues("total_limit").Inc()
		return "", "", fmt.Errorf("%w: %d viewers in total", ErrViewerLimit, m.cfg.MaxViewers)
	}
	st.viewers[v.id] = v
	m.sessions[v.id] = v
	m.total++
	var later []func()
	if st.kind == KindRTSP {
		later = st.superviseLocked(m.clock.Now()) // first viewer starts ffmpeg now, not at the next tick
	}
	m.mu.Unlock()
	for _, f := range later {
		f()
	}

	answer, err := m.answerViewer(ctx, v, offer)
	if err != nil {
		m.removeViewer(v)
		return "", "", err
	}
	return v.id, answer, nil
}

func (m *Manager) answerViewer(ctx context.Context, v *viewer, offer string) (string, error) {
	pc, err := m.newPeer(func(*webrtc.PeerConnection) { m.removeViewer(v) })
	if err != nil {
		return "", err
	}
	// Hand pc to the viewer under mu and only while its slot is still reserved: a
	// removeViewer since addViewer unlocked (RemoveCamera, SetCameraRTSP, Close)
	// had no connection to close, and a later one reads v.pc under mu.
	m.mu.Lock()
	if err := m.viewerGoneLocked(v); err != nil {
		m.mu.Unlock()
		_ = pc.Close()
		return "", err
	}
	v.pc = pc
	m.mu.Unlock()
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			m.activateViewer(v)
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			m.removeViewer(v)
		}
	})
	if err := setOffer(pc, offer); err != nil {
		return "", err
	}
	track, err := webrtc.NewTrackLocalStaticRTP(H264Capability(), "video", "lookout-"+v.st.camera)
	if err != nil {
		return "", fmt.Errorf("video: track: %w", err)
	}
	v.track = track
	sender, err := pc.AddTrack(track)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	answer, err := answerAndGather(ctx, pc, v.done)
	if errors.Is(err, errGatherAborted) {
		m.mu.Lock()
		err = m.viewerGoneLocked(v)
		m.mu.Unlock()
		if err == nil {
			err = ErrUnknownSession // unreachable: done is closed after the slot is freed
		}
		return "", err
	}
	if err != nil {
		return "", err
	}
	if !strings.Contains(strings.ToLower(answer), "h264/90000") {
		return "", fmt.Errorf("%w: offer accepts no H.264 (%s)", ErrBadOffer, H264Fmtp)
	}
	m.mu.Lock()
	if err := m.viewerGoneLocked(v); err != nil {
		m.mu.Unlock()
		return "", err
	}
	m.pickWriterLocked(v)
	m.wg.Add(1) // under mu and before closed: never races Close's Wait
	m.mu.Unlock()
	go func() { defer m.wg.Done(); v.readRTCP(sender) }()
	return answer, nil
}

// viewerGoneLocked says why v's slot is no longer reserved (the manager closed,
// the camera's source was replaced or removed, the session was deleted or its
// connection failed), or nil while it is. Caller holds mu.
func (m *Manager) viewerGoneLocked(v *viewer) error {
	switch {
	case m.closed:
		return ErrClosed
	case v.st.retired:
		return ErrSourceReplaced
	case v.st.viewers[v.id] != v:
		return ErrUnknownSession
	}
	return nil
}

// errGatherAborted: answerAndGather stopped waiting because the session ended.
var errGatherAborted = errors.New("video: session ended during ICE gathering")

// setOffer applies a client's SDP offer. pion v3.3.6 panics on some malformed
// offers (an empty "a=simulcast:send " list indexes past the end in getRids); the
// panic is a bad offer like any other, so the caller releases the slot and the
// connection and answers 400 instead of the handler dying with them held.
//
// An offer with a data channel (m=application) is refused: the relay carries
// video only, and on an accepted SCTP association pion gives every channel the
// peer opens a goroutine and a 64 KiB buffer, up to 65,535 per connection.
func setOffer(pc *webrtc.PeerConnection, offer string) error {
	var sd sdp.SessionDescription
	if sd.UnmarshalString(offer) == nil { // unparsable: pion says why below
		for _, md := range sd.MediaDescriptions {
			if strings.EqualFold(md.MediaName.Media, "application") {
				return fmt.Errorf("%w: data channels are not supported (the offer has an m=application section)", ErrBadOffer)
			}
		}
	}
	return guardSDP(func() error {
		return pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer})
	})
}

// guardSDP runs one pion step driven by the client's SDP and returns its error,
// or a panic inside it, as ErrBadOffer.
func guardSDP(step func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: rejected by the WebRTC stack: %v", ErrBadOffer, r)
		}
	}()
	if err := step(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	return nil
}

// answerAndGather creates and sets the local answer and waits for ICE gathering;
// a close of gone (the session ended meanwhile) stops the wait with errGatherAborted.
func answerAndGather(ctx context.Context, pc *webrtc.PeerConnection, gone <-chan struct{}) (string, error) {
	var answer webrtc.SessionDescription
	if err := guardSDP(func() (err error) { answer, err = pc.CreateAnswer(nil); return err }); err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := guardSDP(func() error { return pc.SetLocalDescription(answer) }); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, gatherTimeout)
	defer cancel()
	select {
	case <-gathered:
	case <-gone:
		return "", errGatherAborted
	case <-ctx.Done():
		return "", fmt.Errorf("video: ICE gathering: %w", ctx.Err())
	}
	return pc.LocalDescription().SDP, nil
}

// activateViewer puts a connected viewer into the fan-out and asks for a keyframe so
// it sees video within one keyframe request instead of one GOP.
func (m *Manager) activateViewer(v *viewer) {
	st := v.st
	m.mu.Lock()
	if v.active || st.viewers[v.id] != v {
		m.mu.Unlock()
		return
	}
	v.active = true
	v.waitKey.Store(true)
	cur := *st.active.Load()
	next := make([]*viewer, 0, len(cur)+1)
	next = append(append(next, cur...), v)
	st.active.Store(&next)
	m.met.viewers.Inc()
	m.mu.Unlock()
	st.requestKeyframe()
}

// removeViewer frees the viewer's slot and closes its connection (idempotent).
func (m *Manager) removeViewer(v *viewer) {
	st := v.st
	m.mu.Lock()
	if st.viewers[v.id] == v {
		delete(st.viewers, v.id)
		delete(m.sessions, v.id)
		m.total--
		if v.active {
			cur := *st.active.Load()
			next := make([]*viewer, 0, len(cur))
			for _, o := range cur {
				if o != v {
					next = append(next, o)
				}
			}
			st.active.Store(&next)
			m.met.viewers.Dec()
		}
		if len(st.viewers) == 0 {
			st.lastGone = m.clock.Now()
		}
	}
	if v.w != nil {
		v.w.removeLocked(v)
	}
	pc := v.pc // set under mu, and only while the slot is reserved (answerViewer)
	m.mu.Unlock()
	v.once.Do(func() { close(v.done) })
	if pc != nil {
		_ = pc.Close() // idempotent; pion runs the state callback on its own goroutine
	}
}

// readRTCP forwards the viewer's keyframe requests (PLI, FIR) to the source; the
// stream rate-limits them, so many viewers cost the camera at most one per interval.
func (v *viewer) readRTCP(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				v.st.requestKeyframe()
			}
		}
	}
}

// deleteViewer ends a WHEP session by id.
func (m *Manager) deleteViewer(camera, id string) error {
	m.mu.Lock()
	v, ok := m.sessions[id]
	m.mu.Unlock()
	if !ok || v.st.camera != camera {
		return ErrUnknownSession
	}
	m.removeViewer(v)
	return nil
}

// addPublisher accepts a WHIP offer for camera: the new publisher replaces any
// previous one (a rebooted camera must not wait for its stale session to time out).
// The publisher's first H.264 track to arrive is the stream; further tracks
// (another video m-line, simulcast layers) and audio are received and discarded.
func (m *Manager) addPublisher(ctx context.Context, camera, offer string) (string, string, error) {
	st, err := m.stream(camera)
	if err != nil {
		return "", "", err
	}
	if st.kind != KindWHIP {
		return "", "", ErrConfiguredSource
	}
	id := newSessionID()
	pc, err := m.newPeer(func(pc *webrtc.PeerConnection) {
		m.endPublisher(st, id, "whip session opened too many RTP streams")
		_ = pc.Close()
	})
	if err != nil {
		return "", "", err
	}
	fail := func(err error) (string, string, error) { _ = pc.Close(); return "", "", err }
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return fail(fmt.Errorf("video: transceiver: %w", err))
	}
	var relayed atomic.Bool // taken by the publisher's first H.264 track
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if !strings.EqualFold(tr.Codec().MimeType, webrtc.MimeTypeH264) || !relayed.CompareAndSwap(false, true) {
			// Not relayed: audio, or a further video track (a second m-line, a
			// simulcast layer), whose SSRC and sequence numbers would interleave
			// with the first in every viewer's one track. Read and discard.
			buf := make([]byte, 1500)
			for {
				if _, _, err := tr.Read(buf); err != nil && !errors.Is(err, io.ErrShortBuffer) {
					return
				}
			}
		}
		m.mu.Lock()
		current := st.pubID == id
		if current {
			ssrc := uint32(tr.SSRC())
			st.askKey = func() { _ = pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}) }
		}
		m.mu.Unlock()
		if !current {
			return
		}
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			st.deliver(p)
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			m.endPublisher(st, id, "whip session "+s.String())
		}
	})
	if err := setOffer(pc, offer); err != nil {
		return fail(err)
	}
	answer, err := answerAndGather(ctx, pc, nil)
	if err != nil {
		return fail(err)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fail(ErrClosed)
	}
	if st.retired { // the registry gave the camera an RTSP source, or removed it
		m.mu.Unlock()
		return fail(ErrSourceReplaced)
	}
	old := st.pubPC
	st.pubPC, st.pubID, st.askKey = pc, id, nil
	if !st.up.Load() {
		st.state, st.since = StateStarting, m.clock.Now()
	}
	m.mu.Unlock()
	if old != nil {
		m.log.Info("WHIP publisher replaced", "camera", camera)
		_ = old.Close()
	}
	return id, answer, nil
}

// endPublisher marks the stream down if id is still its publisher.
func (m *Manager) endPublisher(st *stream, id, reason string) {
	m.mu.Lock()
	if st.pubID != id {
		m.mu.Unlock()
		return
	}
	pc := st.pubPC
	st.pubPC, st.pubID, st.askKey = nil, "", nil
	ev := st.markDownLocked(m.clock.Now(), reason)
	st.bitrate = 0
	m.mu.Unlock()
	if pc != nil {
		_ = pc.Close()
	}
	if ev {
		m.publish(EventStreamDown, StreamEvent{Camera: st.camera, Source: st.kind, Reason: reason})
	}
}

// deletePublisher ends a WHIP session by id.
func (m *Manager) deletePublisher(camera, id string) error {
	m.mu.Lock()
	st, ok := m.streams[camera]
	match := ok && st.pubID == id && id != ""
	m.mu.Unlock()
	if !match {
		return ErrUnknownSession
	}
	m.endPublisher(st, id, "whip session deleted")
	return nil
}
