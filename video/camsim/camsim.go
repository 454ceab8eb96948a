// Package camsim is a simulated tower camera: it streams a looping H.264 Annex-B
// file to the gateway over WHIP (pion) or plain RTP/UDP, paced in real time, so the
// firmware simulator, tests and benchmarks exercise the relay with real video
// instead of hand-made packets.
package camsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v3"
	"github.com/pion/webrtc/v3/pkg/media"
)

// ErrNoFrames means the file holds no H.264 picture (not Annex-B, or empty).
var ErrNoFrames = errors.New("camsim: no H.264 access units in file")

// Options tune a simulated camera. The zero value streams at 30 fps on any interface.
type Options struct {
	FPS               int          // frames per second of the file (default 30)
	LoopbackOnly      bool         // ICE on 127.0.0.1 only (tests, benchmarks)
	PayloadType       uint8        // RTP payload type for StreamRTP (default 96)
	OnKeyframeRequest func()       // called for every PLI/FIR the gateway sends (WHIP only)
	HTTPClient        *http.Client // for WHIP requests (default http.DefaultClient)
}

func (o Options) fps() int {
	if o.FPS <= 0 {
		return 30
	}
	return o.FPS
}

// AccessUnit is one picture's NAL units in Annex-B form, and whether it is a keyframe
// (holds an IDR slice).
type AccessUnit struct {
	Data []byte
	Key  bool
}

// LoadAccessUnits reads an Annex-B H.264 file and groups its NAL units into access
// units (one picture each: parameter sets and SEI travel with the next slice).
func LoadAccessUnits(path string) ([]AccessUnit, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("camsim: %w", err)
	}
	aus := GroupAccessUnits(SplitAnnexB(b))
	if len(aus) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoFrames, path)
	}
	return aus, nil
}

// SplitAnnexB returns the NAL units of an Annex-B byte stream (start codes 00 00 01
// or 00 00 00 01 removed; trailing zero bytes of a NAL dropped). It never panics.
func SplitAnnexB(b []byte) [][]byte {
	var nals [][]byte
	start := -1
	for i := 0; i+2 < len(b); {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				nals = appendNAL(nals, b[start:i])
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 && start < len(b) {
		nals = appendNAL(nals, b[start:])
	}
	return nals
}

func appendNAL(nals [][]byte, n []byte) [][]byte {
	for len(n) > 0 && n[len(n)-1] == 0 {
		n = n[:len(n)-1]
	}
	if len(n) == 0 {
		return nals
	}
	return append(nals, n)
}

// GroupAccessUnits joins NAL units into pictures: non-VCL units (SPS, PPS, SEI, AUD)
// are prepended to the next slice, and each slice (types 1–5) ends a picture. This
// assumes one slice per picture, which is what ffmpeg/x264 write by default.
func GroupAccessUnits(nals [][]byte) []AccessUnit {
	var out []AccessUnit
	var cur bytes.Buffer
	key := false
	for _, n := range nals {
		t := n[0] & 0x1f
		if t == 9 { // access unit delimiter: not needed over RTP
			continue
		}
		cur.Write([]byte{0, 0, 0, 1})
		cur.Write(n)
		if t == 5 {
			key = true
		}
		if t >= 1 && t <= 5 {
			out = append(out, AccessUnit{Data: bytes.Clone(cur.Bytes()), Key: key})
			cur.Reset()
			key = false
		}
	}
	return out
}

// pacer loops over the access units in real time and can skip to the next keyframe
// when a viewer asked for one (a file cannot encode a keyframe on demand, but it can
// jump to the next one, which is what the viewer needs).
type pacer struct {
	aus   []AccessUnit
	i     int
	jump  atomic.Bool
	delay time.Duration
}

func (p *pacer) next() AccessUnit {
	if p.jump.Swap(false) {
		for j := 1; j <= len(p.aus); j++ {
			if k := (p.i + j) % len(p.aus); p.aus[k].Key {
				p.i = k
				break
			}
		}
	}
	au := p.aus[p.i]
	p.i = (p.i + 1) % len(p.aus)
	return au
}

func (p *pacer) run(ctx context.Context, send func(AccessUnit) error) error {
	t := time.NewTicker(p.delay)
	defer t.Stop()
	for {
		if err := send(p.next()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// StreamRTP pushes the file, looping, as RTP/H.264 (RFC 6184, packetization mode 1,
// 1200-byte packets) to a UDP address until ctx ends. This is what an encoder
// configured to push RTP to the gateway's rtp_port does. It returns nil on ctx end.
func StreamRTP(ctx context.Context, addr, h264File string, opts ...Options) error {
	o := pick(opts)
	aus, err := LoadAccessUnits(h264File)
	if err != nil {
		return err
	}
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return fmt.Errorf("camsim: dial %s: %w", addr, err)
	}
	defer conn.Close()
	pt := o.PayloadType
	if pt == 0 {
		pt = 96
	}
	ssrc := uint32(time.Now().UnixNano())
	pk := rtp.NewPacketizer(1200, pt, ssrc, &codecs.H264Payloader{}, rtp.NewRandomSequencer(), 90000)
	samples := uint32(90000 / o.fps())
	p := &pacer{aus: aus, delay: time.Second / time.Duration(o.fps())}
	return p.run(ctx, func(au AccessUnit) error {
		for _, pkt := range pk.Packetize(au.Data, samples) {
			b, err := pkt.Marshal()
			if err != nil {
				return fmt.Errorf("camsim: marshal: %w", err)
			}
			// a refused datagram (relay restarting) is not fatal: a camera keeps pushing
			if _, err := conn.Write(b); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
				return fmt.Errorf("camsim: send: %w", err)
			}
		}
		return nil
	})
}

func pick(opts []Options) Options {
	if len(opts) > 0 {
		return opts[0]
	}
	return Options{}
}

// StreamWHIP publishes the file, looping, to a WHIP endpoint (POST offer, 201 +
// answer, DELETE the Location on exit) as a camera with a WHIP encoder would, until
// ctx ends or the session fails. token, when set, is sent as a Bearer credential.
// Keyframe requests from the gateway make the file skip to its next keyframe.
func StreamWHIP(ctx context.Context, whipURL, token, h264File string, opts ...Options) error {
	o := pick(opts)
	aus, err := LoadAccessUnits(h264File)
	if err != nil {
		return err
	}
	api, err := newAPI(o.LoopbackOnly)
	if err != nil {
		return err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return fmt.Errorf("camsim: peer connection: %w", err)
	}
	defer pc.Close()
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "camsim")
	if err != nil {
		return fmt.Errorf("camsim: track: %w", err)
	}
	tr, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return fmt.Errorf("camsim: transceiver: %w", err)
	}
	p := &pacer{aus: aus, delay: time.Second / time.Duration(o.fps())}
	go func() {
		for {
			pkts, _, err := tr.Sender().ReadRTCP()
			if err != nil {
				return
			}
			for _, pkt := range pkts {
				switch pkt.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					p.jump.Store(true)
					if o.OnKeyframeRequest != nil {
						o.OnKeyframeRequest()
					}
				}
			}
		}
	}()
	failed := make(chan struct{})
	var failOnce atomic.Bool
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if (s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed) && failOnce.CompareAndSwap(false, true) {
			close(failed)
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("camsim: offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("camsim: offer: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return nil
	}
	client := o.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	answer, location, err := postSDP(ctx, client, whipURL, token, pc.LocalDescription().SDP)
	if err != nil {
		return err
	}
	defer deleteSession(client, location, token)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("camsim: answer: %w", err)
	}
	dur := time.Second / time.Duration(o.fps())
	err = p.run(ctx, func(au AccessUnit) error {
		select {
		case <-failed:
			return errors.New("camsim: WHIP session failed")
		default:
		}
		return track.WriteSample(media.Sample{Data: au.Data, Duration: dur})
	})
	return err
}

// PostSDP sends an SDP offer (WHIP or WHEP) and returns the answer and the session
// URL resolved against the endpoint. Exported for tests and benchmarks that act as viewers.
func PostSDP(ctx context.Context, client *http.Client, endpoint, token, offer string) (answer, location string, err error) {
	return postSDP(ctx, client, endpoint, token, offer)
}

func postSDP(ctx context.Context, client *http.Client, endpoint, token, offer string) (string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(offer))
	if err != nil {
		return "", "", fmt.Errorf("camsim: %w", err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("camsim: POST %s: %w", endpoint, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return "", "", fmt.Errorf("camsim: read answer: %w", err)
	}
	if res.StatusCode != http.StatusCreated {
		return "", "", &StatusError{Code: res.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || res.Header.Get("Location") == "" {
		return "", "", fmt.Errorf("camsim: 201 without a usable Location")
	}
	base, _ := url.Parse(endpoint)
	return string(body), base.ResolveReference(loc).String(), nil
}

// StatusError is a non-201 reply to a WHIP/WHEP POST.
type StatusError struct {
	Code int
	Body string
}

// Error names the status and the server's answer.
func (e *StatusError) Error() string { return fmt.Sprintf("camsim: HTTP %d: %s", e.Code, e.Body) }

// DeleteSession ends a WHIP/WHEP session (best effort, bounded).
func DeleteSession(client *http.Client, location, token string) error {
	return deleteSession(client, location, token)
}

func deleteSession(client *http.Client, location, token string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, location, nil)
	if err != nil {
		return fmt.Errorf("camsim: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("camsim: DELETE: %w", err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		return &StatusError{Code: res.StatusCode}
	}
	return nil
}

// NewAPI builds a pion API for simulated cameras and test viewers: H.264 only, no
// mDNS, no STUN, optionally loopback-only ICE.
func NewAPI(loopbackOnly bool) (*webrtc.API, error) { return newAPI(loopbackOnly) }

func newAPI(loopbackOnly bool) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}},
	}, PayloadType: 102}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("camsim: codec: %w", err)
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if loopbackOnly {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)), nil
}

// MakeTestClip writes a small H.264 Annex-B test clip with ffmpeg's testsrc: 720p,
// 30 fps, constrained baseline 3.1 (what the relay negotiates), one keyframe per
// second, SPS/PPS before every keyframe.
func MakeTestClip(ctx context.Context, ffmpeg, out string, d time.Duration) error {
	if ffmpeg == "" {
		ffmpeg = "ffmpeg"
	}
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "lavfi", "-i", "testsrc=size=1280x720:rate=30", "-t", fmt.Sprintf("%.3f", d.Seconds()),
		"-c:v", "libx264", "-profile:v", "baseline", "-level", "3.1", "-pix_fmt", "yuv420p",
		"-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-bf", "0",
		"-x264-params", "repeat-headers=1", "-f", "h264", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("camsim: ffmpeg test clip: %w: %s", err, bytes.TrimSpace(b))
	}
	return nil
}
