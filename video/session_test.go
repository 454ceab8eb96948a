package video

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/video/camsim"
)

// offerFrom gathers pc's offer (no trickle) and returns its SDP.
func offerFrom(t *testing.T, pc *webrtc.PeerConnection) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return pc.LocalDescription().SDP
}

// newClientPC is a loopback-only pion peer connection closed at the end of the test.
func newClientPC(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	api, err := camsim.NewAPI(true)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

// A viewer whose slot is freed (RemoveCamera, SetCameraRTSP, Close, DELETE)
// after addViewer reserved it but before answerViewer created its peer
// connection gets ErrUnknownSession, and that peer connection is closed, not
// leaked with its goroutines.
func TestViewerRemovedBeforeAnswerLeaksNoPeerConnection(t *testing.T) {
	fc := clock.NewFake(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC))
	m := newUnitManager(t, DefaultConfig(), fc)
	st, err := m.stream("cam")
	if err != nil {
		t.Fatal(err)
	}
	client := newClientPC(t)
	if _, err := client.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer := offerFrom(t, client)
	_ = client.Close()
	settle := func() int { // goroutines of the closed client wind down
		n := runtime.NumGoroutine()
		for range 50 {
			time.Sleep(20 * time.Millisecond)
			if k := runtime.NumGoroutine(); k >= n {
				return k
			}
			n = runtime.NumGoroutine()
		}
		return n
	}
	base := settle()

	// What addViewer does, with the slot freed in the window after its unlock.
	v := &viewer{id: "v", st: st, created: fc.Now(), q: make(chan relayPacket, 16), done: make(chan struct{})}
	m.mu.Lock()
	st.viewers[v.id], m.sessions[v.id] = v, v
	m.total++
	m.mu.Unlock()
	m.removeViewer(v) // e.g. RemoveCamera
	_, err = m.answerViewer(t.Context(), v, offer)
	m.removeViewer(v) // addViewer's cleanup on error
	if !errors.Is(err, ErrUnknownSession) {
		t.Fatalf("answerViewer after removal: %v, want ErrUnknownSession", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before the viewer: its peer connection was never closed", runtime.NumGoroutine(), base)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A WHIP offer with two video m-lines: only the publisher's first H.264 track is
// relayed; packets of the second never reach a viewer (they would interleave two
// SSRCs and two sequence spaces into the viewer's one track).
func TestWHIPRelaysFirstTrackOnly(t *testing.T) {
	fc := clock.NewFake(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC))
	m := newUnitManager(t, DefaultConfig(), fc)
	st, err := m.stream("cam")
	if err != nil {
		t.Fatal(err)
	}
	v := addFakeViewer(m, st, "v", 4096)

	pub := newClientPC(t)
	connected := make(chan struct{})
	pub.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			close(connected)
		}
	})
	var tracks []*webrtc.TrackLocalStaticRTP
	for _, id := range []string{"main", "sub"} {
		tr, err := webrtc.NewTrackLocalStaticRTP(H264Capability(), id, "cam")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pub.AddTrack(tr); err != nil {
			t.Fatal(err)
		}
		tracks = append(tracks, tr)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, answer, err := m.addPublisher(ctx, "cam", offerFrom(t, pub))
	if err != nil {
		t.Fatalf("addPublisher: %v", err)
	}
	if err := pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("publisher never connected")
	}

	// Both tracks send IDR packets in step until the relay has passed on 100.
	const want = 100
	for seq := uint16(0); st.packets.Load() < want; seq++ {
		if ctx.Err() != nil {
			t.Fatalf("relayed %d packets, want %d", st.packets.Load(), want)
		}
		for _, tr := range tracks {
			p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq}, Payload: []byte{0x65, 0x88, 0x84}}
			if err := tr.WriteRTP(p); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	ssrcs := map[uint32]int{}
	for len(v.q) > 0 {
		ssrcs[(<-v.q).p.SSRC]++
	}
	if len(ssrcs) != 1 {
		t.Fatalf("viewer got packets of %d SSRCs (%v), want one track only", len(ssrcs), ssrcs)
	}
}
