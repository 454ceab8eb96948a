package video

// H.264 NAL unit types that matter to a relay (ITU-T H.264 table 7-1, RFC 6184).
const (
	nalSlice = 1  // non-IDR slice
	nalIDR   = 5  // IDR slice: a decoder can start here
	nalSPS   = 7  // sequence parameter set: precedes the IDR in a keyframe access unit
	nalPPS   = 8  // picture parameter set
	nalSTAPA = 24 // RTP single-time aggregation packet
	nalFUA   = 28 // RTP fragmentation unit
)

// IsKeyframeStart reports whether an RTP H.264 payload (RFC 6184, packetization-mode
// 1) begins a keyframe: an SPS or an IDR slice as a single NAL unit, inside a STAP-A,
// or as the first fragment of an FU-A. A relay uses it so a new viewer's stream
// starts at a point its decoder can use, instead of feeding it undecodable deltas.
// It never panics on malformed input.
func IsKeyframeStart(payload []byte) bool {
	if len(payload) < 1 {
		return false
	}
	switch t := payload[0] & 0x1f; t {
	case nalIDR, nalSPS:
		return true
	case nalSTAPA:
		// [hdr][size16][nal]…
		for p := payload[1:]; len(p) >= 3; {
			n := int(p[0])<<8 | int(p[1])
			if n == 0 || len(p) < 2+n {
				return false
			}
			if k := p[2] & 0x1f; k == nalIDR || k == nalSPS {
				return true
			}
			p = p[2+n:]
		}
		return false
	case nalFUA:
		if len(payload) < 2 {
			return false
		}
		start := payload[1]&0x80 != 0
		k := payload[1] & 0x1f
		return start && (k == nalIDR || k == nalSPS)
	default:
		return false
	}
}
