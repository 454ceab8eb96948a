// Package video relays live camera streams (WHIP, RTP, RTSP via ffmpeg) to WebRTC viewers over WHEP.
//
// A tower camera's stream is received once and fanned out, without re-encoding,
// to every control room that watches it: the limit is bandwidth, not CPU, and a
// slow viewer must never slow the others, so every viewer has its own bounded
// queue and its own drops.
package video

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/lookoutfire/lookout/internal/rtspurl"
)

// Config holds the video settings (YAML section "video"). Keep every field documented
// with a yaml tag; env overrides are derived from the path (LOOKOUT_VIDEO_<KEY>).
type Config struct {
	// ICEUDPPortMin/ICEUDPPortMax bound the ephemeral UDP ports used for ICE, so a
	// firewall can open a known range. 0/0 = any port. Ignored when ICEUDPMuxPort is set.
	ICEUDPPortMin uint16 `yaml:"ice_udp_port_min"`
	ICEUDPPortMax uint16 `yaml:"ice_udp_port_max"`
	// ICEUDPMuxPort, when non-zero, serves every peer connection on this one UDP
	// port (easiest to forward through NAT). 0 = per-connection ports.
	ICEUDPMuxPort int `yaml:"ice_udp_mux_port"`
	// NAT1To1IPs are public addresses advertised instead of the host addresses when
	// the gateway sits behind a 1:1 NAT (no STUN/TURN is ever used).
	NAT1To1IPs []string `yaml:"nat_1to1_ips"`
	// LoopbackOnly restricts ICE to 127.0.0.1 (tests, benchmarks, a single-host demo).
	LoopbackOnly bool `yaml:"loopback_only"`
	// MaxViewersPerCamera and MaxViewers cap WHEP sessions; past either a viewer gets 503.
	MaxViewersPerCamera int `yaml:"max_viewers_per_camera"`
	MaxViewers          int `yaml:"max_viewers"`
	// RTSPGrace is how long an RTSP pull (ffmpeg) keeps running after the last viewer left,
	// so a page reload does not restart the camera session.
	RTSPGrace time.Duration `yaml:"rtsp_grace"`
	// RTSPBackoffMax caps the restart backoff of a dying ffmpeg (1 s, 2 s, 4 s, … up to this).
	RTSPBackoffMax time.Duration `yaml:"rtsp_backoff_max"`
	// FFmpegPath is the ffmpeg binary used for RTSP pulls (Debian package "ffmpeg").
	FFmpegPath string `yaml:"ffmpeg_path"`
	// RTPBindIP is the address RTP ingest ports listen on ("" = all interfaces;
	// LoopbackOnly forces 127.0.0.1).
	RTPBindIP string `yaml:"rtp_bind_ip"`
	// Sources configures cameras whose stream is pulled (RTSP) or pushed to a local
	// UDP port (RTP/H.264). Cameras without an entry may publish over WHIP.
	Sources []Source `yaml:"sources"`
	// SourceTimeout marks a stream down when its source sends nothing for this long.
	SourceTimeout time.Duration `yaml:"source_timeout"`
	// PLIInterval is the minimum gap between keyframe requests sent to one source,
	// however many viewers ask (a keyframe costs the camera's uplink).
	PLIInterval time.Duration `yaml:"pli_interval"`
	// ViewerQueue is the per-viewer packet queue; when full, new packets for that
	// viewer only are dropped and counted.
	ViewerQueue int `yaml:"viewer_queue"`
}

// Source is one camera's configured ingest: exactly one of RTSP or RTPPort.
type Source struct {
	Camera  string `yaml:"camera"`   // device id of the camera in the registry
	RTSP    string `yaml:"rtsp"`     // rtsp:// URL pulled through ffmpeg on demand
	RTPPort int    `yaml:"rtp_port"` // UDP port an encoder pushes RTP/H.264 to (payload type ignored)
	// RTPFrom limits who may send to rtp_port: an IP or a CIDR prefix. Empty:
	// the first sender of valid RTP is pinned, whoever it is.
	RTPFrom string `yaml:"rtp_from"`
}

// DefaultConfig returns the settings that make `make run` work.
func DefaultConfig() Config {
	return Config{
		LoopbackOnly:        true,
		MaxViewersPerCamera: 50,
		MaxViewers:          200,
		RTSPGrace:           30 * time.Second,
		RTSPBackoffMax:      30 * time.Second,
		FFmpegPath:          "ffmpeg",
		SourceTimeout:       5 * time.Second,
		PLIInterval:         time.Second,
		ViewerQueue:         256,
	}
}

// Validate reports the first bad setting, naming its key relative to the section.
func (c Config) Validate() error {
	if c.ICEUDPPortMin > c.ICEUDPPortMax || (c.ICEUDPPortMin == 0) != (c.ICEUDPPortMax == 0) {
		return errors.New("ice_udp_port_min: must be <= ice_udp_port_max, both set or both 0")
	}
	if c.ICEUDPMuxPort < 0 || c.ICEUDPMuxPort > 65535 {
		return errors.New("ice_udp_mux_port: must be 0..65535")
	}
	for i, ip := range c.NAT1To1IPs {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("nat_1to1_ips[%d]: %q is not an IP address", i, ip)
		}
	}
	if c.MaxViewersPerCamera < 1 {
		return errors.New("max_viewers_per_camera: must be >= 1")
	}
	if c.MaxViewers < 1 {
		return errors.New("max_viewers: must be >= 1")
	}
	if c.RTSPGrace < 0 {
		return errors.New("rtsp_grace: must be >= 0")
	}
	if c.RTSPBackoffMax < time.Second {
		return errors.New("rtsp_backoff_max: must be >= 1s")
	}
	if c.FFmpegPath == "" {
		return errors.New("ffmpeg_path: must be set")
	}
	if c.RTPBindIP != "" && net.ParseIP(c.RTPBindIP) == nil {
		return fmt.Errorf("rtp_bind_ip: %q is not an IP address", c.RTPBindIP)
	}
	if c.SourceTimeout < 100*time.Millisecond {
		return errors.New("source_timeout: must be >= 100ms")
	}
	if c.PLIInterval < 0 {
		return errors.New("pli_interval: must be >= 0")
	}
	if c.ViewerQueue < 1 || c.ViewerQueue > 65536 {
		return errors.New("viewer_queue: must be 1..65536")
	}
	seen := map[string]bool{}
	ports := map[int]bool{}
	for i, s := range c.Sources {
		key := fmt.Sprintf("sources[%d]", i)
		if s.Camera == "" {
			return fmt.Errorf("%s.camera: must be set", key)
		}
		if seen[s.Camera] {
			return fmt.Errorf("%s.camera: %q listed twice", key, s.Camera)
		}
		seen[s.Camera] = true
		switch {
		case s.RTSP != "" && s.RTPPort != 0:
			return fmt.Errorf("%s: set rtsp or rtp_port, not both", key)
		case s.RTSP != "":
			if err := rtspurl.Check(s.RTSP); err != nil {
				return fmt.Errorf("%s.rtsp: %v", key, err)
			}
		case s.RTPPort < 1 || s.RTPPort > 65535:
			return fmt.Errorf("%s: set rtsp (URL) or rtp_port (1..65535)", key)
		}
		if s.RTPFrom != "" {
			if s.RTPPort == 0 {
				return fmt.Errorf("%s.rtp_from: only with rtp_port", key)
			}
			if _, err := parseFrom(s.RTPFrom); err != nil {
				return fmt.Errorf("%s.rtp_from: %v", key, err)
			}
		}
		if s.RTPPort != 0 {
			if ports[s.RTPPort] {
				return fmt.Errorf("%s.rtp_port: %d used twice", key, s.RTPPort)
			}
			ports[s.RTPPort] = true
		}
	}
	return nil
}

// parseFrom reads rtp_from: an IP address (one host) or a CIDR prefix.
func parseFrom(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an IP address nor a CIDR prefix", s)
	}
	if a, bits := p.Addr(), p.Bits(); a.Is4In6() { // senders are compared unmapped
		if bits < 96 {
			return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped prefix needs at least 96 bits", s)
		}
		p = netip.PrefixFrom(a.Unmap(), bits-96)
	}
	return p.Masked(), nil
}

// source finds the configured source for a camera.
func (c Config) source(camera string) (Source, bool) {
	for _, s := range c.Sources {
		if s.Camera == camera {
			return s, true
		}
	}
	return Source{}, false
}

// secretParam finds a credential passed as key=value in an RTSP URL's path
// (Xiongmai-based cameras: /user=admin_password=…_channel=1…) or query
// (?password=…): the value ends at the next separator or "_key=".
var secretParam = regexp.MustCompile(`(?i)((?:password|passwd|pass|pwd|token|secret|auth|key)=)(.*?)([&;/?#]|_[a-z]+=|$)`)

// urlSecrets lists the secrets in rawURL: the user info's password (as
// written and decoded) and every secretParam value.
func urlSecrets(rawURL string) []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
			if d, err := url.PathUnescape(s); err == nil && d != s {
				out = append(out, d)
			}
		}
	}
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			add(pw)
		}
		// and as written, which may escape differently
		if _, rest, ok := strings.Cut(rawURL, "://"); ok {
			rest, _, _ = strings.Cut(rest, "/") // the authority
			if at := strings.LastIndex(rest, "@"); at >= 0 {
				_, pw, _ := strings.Cut(rest[:at], ":")
				add(pw)
			}
		}
	}
	for _, m := range secretParam.FindAllStringSubmatch(rawURL, -1) {
		add(m[2])
	}
	return out
}

// scrubCredentials removes the secrets of rawURL (urlSecrets) from text
// (ffmpeg's stderr names its input URL, password included), so the text can go
// to logs, events and /api/v1/streams. Longer secrets go first, so one that
// contains another is not left half visible.
func scrubCredentials(text, rawURL string) string {
	secrets := urlSecrets(rawURL)
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, s := range secrets {
		text = strings.ReplaceAll(text, s, "***")
	}
	// The user name only where a URL's user info stands ("//admin:",
	// "//admin@"): a short or common name would garble the whole text.
	if u, err := url.Parse(rawURL); err == nil && u.User != nil && u.User.Username() != "" {
		for _, name := range []string{u.User.Username(), url.PathEscape(u.User.Username())} {
			text = strings.ReplaceAll(text, "//"+name+":", "//***:")
			text = strings.ReplaceAll(text, "//"+name+"@", "//***@")
		}
	}
	return text
}

// redactURL hides the credentials in an RTSP URL (user info and secretParam
// values) for logs and stats; host, port and the rest of the path stay, so
// an operator can still tell cameras apart.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "rtsp://(unparsable)"
	}
	if u.User != nil {
		u.User = url.User("***")
	}
	out := strings.Replace(u.String(), "%2A%2A%2A", "***", 1)
	return secretParam.ReplaceAllString(out, "${1}***${3}")
}
