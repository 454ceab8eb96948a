package video_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"

	"github.com/lookoutfire/lookout/internal/testenv"
	"github.com/lookoutfire/lookout/video"
	"github.com/lookoutfire/lookout/video/camsim"
)

// Inputs a peer controls that pion v3.3.6 handles in ways the relay must not
// pass on: data channels in an offer, RTP padding.

// An offer with a data channel (m=application) is refused: the relay carries
// video only, and every channel a peer opens on an accepted SCTP association
// costs a goroutine and a 64 KiB buffer in pion, up to 65,535 of them.
func TestOfferWithDataChannelRefused(t *testing.T) {
	g := startGateway(t, testConfig())
	api, err := camsim.NewAPI(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, camera, path string
		dir                webrtc.RTPTransceiverDirection
	}{
		{"whep", "cam-01", "/api/v1/streams/cam-01/whep", webrtc.RTPTransceiverDirectionRecvonly},
		{"whip", "cam-03", "/api/v1/streams/cam-03/whip", webrtc.RTPTransceiverDirectionSendonly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc, err := api.NewPeerConnection(webrtc.Configuration{})
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: tc.dir}); err != nil {
				t.Fatal(err)
			}
			if _, err := pc.CreateDataChannel("x", nil); err != nil {
				t.Fatal(err)
			}
			offer, err := pc.CreateOffer(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(offer.SDP, "m=application") {
				t.Fatal("the offer has no data channel section; the test proves nothing")
			}
			res, err := http.Post(g.url(tc.path), "application/sdp", strings.NewReader(offer.SDP))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "data channel") {
				t.Fatalf("status %d %s, want 400 naming the data channel", res.StatusCode, b)
			}
			if st, _ := g.m.StreamStats(tc.camera); st.Viewers != 0 || st.ViewersConnecting != 0 || st.State != video.StateIdle {
				t.Fatalf("the refused offer left state behind: %+v", st)
			}
		})
	}
}

// RTP packets with padding reach viewers intact. rtp.Unmarshal strips the
// padding from the payload but leaves the P bit set, and pion's SRTP writer
// sends header and payload only: the viewer would read the last payload byte
// as the padding length and drop the packet (pion's ReadRTP fails on it, which
// ends this test viewer's read loop).
func TestRTPPaddingRelayedIntact(t *testing.T) {
	cfg := testConfig()
	cfg.Sources = []video.Source{{Camera: "cam-02", RTPPort: freeUDPPort(t)}}
	g := startGateway(t, cfg)
	addr, ok := g.m.RTPAddr("cam-02")
	if !ok {
		t.Fatal("no RTP address for cam-02")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cam, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	// A padded IDR slice every 20 ms (bounded by ctx): the viewer must decode one.
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(1); ; seq++ {
			b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq,
				Timestamp: uint32(seq) * 1800, SSRC: 0xCAFE, Marker: true, Padding: true, PaddingSize: 8},
				Payload: []byte{0x65, 0x88, 0x84, 0x21, 0xa0}}).Marshal()
			if err != nil {
				return
			}
			_, _ = cam.Write(b)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	g.ev.wait(t, video.EventStreamUp, "cam-02", 10*time.Second)
	v, err := dialViewer(ctx, g.url("/api/v1/streams/cam-02/whep"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.close()
	v.waitKeyframe(t, 15*time.Second)
}

// A viewer that addresses RTCP to ever new SSRCs (each one a read stream that
// pion keeps until the connection closes) is disconnected once past the cap;
// its first few streams are served as usual.
func TestPeerCyclingSSRCsIsClosed(t *testing.T) {
	g := startGateway(t, testConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	v, err := dialViewer(ctx, g.url("/api/v1/streams/cam-01/whep"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.close()
	viewers := func() int { st, _ := g.m.StreamStats("cam-01"); return st.Viewers }
	waitFor(t, 20*time.Second, "the viewer connected", func() bool { return viewers() == 1 })
	for i := range 8 { // a handful of SSRCs is normal
		if err := v.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: 1000 + uint32(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if viewers() != 1 {
		t.Fatal("a viewer with 8 extra SSRCs was disconnected")
	}
	for i := 8; i < 200; i++ {
		if err := v.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: 1000 + uint32(i)}}); err != nil {
			break // the gateway closed the connection
		}
	}
	waitFor(t, 20*time.Second, "the viewer disconnected", func() bool { return viewers() == 0 })
	if n := testenv.CounterValue(t, g.reg, "lookout_video_peers_over_stream_cap_total"); n != 1 {
		t.Fatalf("lookout_video_peers_over_stream_cap_total = %v, want 1", n)
	}
}
