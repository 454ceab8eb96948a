package video

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/transport/v2/packetio"
	"github.com/pion/webrtc/v3"
)

// H264Fmtp is the only codec Lookout relays: constrained baseline 3.1, packetization
// mode 1 — what tower cameras emit and every browser decodes. Without re-encoding,
// the viewer must accept exactly what the camera sends.
const H264Fmtp = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"

// h264PayloadType is the payload type the gateway offers/answers with.
const h264PayloadType = 102

// H264Capability returns the codec capability of every relayed track: H.264 with
// keyframe-request feedback (PLI, FIR) and no NACK, since the relay keeps no
// retransmission buffer. Simulators and tests build their tracks with it too.
func H264Capability() webrtc.RTPCodecCapability {
	return webrtc.RTPCodecCapability{
		MimeType:    webrtc.MimeTypeH264,
		ClockRate:   90000,
		SDPFmtpLine: H264Fmtp,
		RTCPFeedback: []webrtc.RTCPFeedback{
			{Type: "nack", Parameter: "pli"},
			{Type: "ccm", Parameter: "fir"},
		},
	}
}

// iceSettings is the transport part of the config that NewWebRTCAPI needs.
type iceSettings struct {
	loopbackOnly   bool
	portMin        uint16
	portMax        uint16
	mux            ice.UDPMux // nil = per-connection sockets
	nat1to1        []string
	disconnectWait time.Duration
	failedWait     time.Duration
}

// newAPI builds the pion API: H.264 only, no interceptors (the relay forwards the
// source's packets untouched and answers keyframe requests itself), no mDNS, no
// STUN/TURN, ICE restricted as configured.
//
// buffers, when set, makes the SRTP/SRTCP read buffers (see streamCap).
func newAPI(s iceSettings, buffers func(packetio.BufferPacketType, uint32) io.ReadWriteCloser) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: H264Capability(), PayloadType: h264PayloadType}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("video: register H.264: %w", err)
	}
	se := webrtc.SettingEngine{}
	se.BufferFactory = buffers
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(s.disconnectWait, s.failedWait, time.Second)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	if s.loopbackOnly {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetIncludeLoopbackCandidate(true)
		se.SetInterfaceFilter(func(name string) bool {
			ifc, err := net.InterfaceByName(name)
			return err == nil && ifc.Flags&net.FlagLoopback != 0
		})
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	if s.mux != nil {
		se.SetICEUDPMux(s.mux)
	} else if s.portMin != 0 {
		if err := se.SetEphemeralUDPPortRange(s.portMin, s.portMax); err != nil {
			return nil, fmt.Errorf("video: ice port range: %w", err)
		}
	}
	if len(s.nat1to1) > 0 {
		se.SetNAT1To1IPs(s.nat1to1, webrtc.ICECandidateTypeHost)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)), nil
}

// maxPeerStreams caps the SRTP and SRTCP read streams of one peer connection.
// pion opens one for every SSRC a peer sends RTP from or addresses RTCP to,
// and frees none until the connection closes: a peer cycling SSRCs would grow
// the gateway's memory without bound. A camera's video with its RTCP needs a
// few (simulcast with retransmission a dozen).
const maxPeerStreams = 32

// Buffer limits as pion's defaults (srtp v2: 1 MB for RTP, 100 kB for RTCP).
const (
	rtpBufferLimit  = 1000 * 1000
	rtcpBufferLimit = 100 * 1000
)

// streamCap makes a peer connection's read buffers and counts them. Past
// maxPeerStreams it hands out closed buffers (pion drops what it cannot
// write) and calls over once, on its own goroutine, to close the connection.
type streamCap struct {
	n    atomic.Int32
	over atomic.Pointer[func()]
	once sync.Once
}

func (c *streamCap) buffer(t packetio.BufferPacketType, _ uint32) io.ReadWriteCloser {
	b := packetio.NewBuffer()
	if t == packetio.RTCPBufferPacket {
		b.SetLimitSize(rtcpBufferLimit)
	} else {
		b.SetLimitSize(rtpBufferLimit)
	}
	if c.n.Add(1) > maxPeerStreams {
		_ = b.Close()
		c.once.Do(func() {
			if f := c.over.Load(); f != nil {
				go (*f)()
			}
		})
	}
	return b
}

// newPeer opens a peer connection on its own API, so that its read streams
// are counted apart from every other connection's (streamCap); over runs once
// when the peer opens more than maxPeerStreams.
func (m *Manager) newPeer(over func(pc *webrtc.PeerConnection)) (*webrtc.PeerConnection, error) {
	c := &streamCap{}
	api, err := newAPI(m.ice, c.buffer)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("video: new peer connection: %w", err)
	}
	f := func() {
		m.met.streamCap.Inc()
		m.log.Warn("peer connection closed: it opened more RTP/RTCP streams than a camera or viewer needs",
			"limit", maxPeerStreams)
		over(pc)
	}
	c.over.Store(&f)
	return pc, nil
}
