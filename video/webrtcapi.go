package video

import (
	"fmt"
	"net"
	"time"

	"github.com/pion/ice/v2"
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
func newAPI(s iceSettings) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: H264Capability(), PayloadType: h264PayloadType}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("video: register H.264: %w", err)
	}
	se := webrtc.SettingEngine{}
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
