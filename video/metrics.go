package video

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the relay's Prometheus series. Camera is not a label: per-camera
// numbers live in GET /api/v1/streams, and series stay bounded however many cameras.
type metrics struct {
	packetsIn        prometheus.Counter
	drops            prometheus.Counter
	keyframeRequests prometheus.Counter
	ffmpegStarts     prometheus.Counter
	streamCap        prometheus.Counter // peer connections closed by streamCap
	viewers          prometheus.Gauge
	rejected         *prometheus.CounterVec
	latency          prometheus.Histogram
	// ingestDrops counts datagrams dropped at an RTP ingest port, by reason; the
	// children are resolved once so the packet path does no label lookup.
	ingestDrops     *prometheus.CounterVec
	dropForeign     prometheus.Counter // not from the stream's latched sender
	dropNotRTP      prometheus.Counter // shorter than an RTP header, not version 2, malformed
	dropRTCP        prometheus.Counter // RTCP on the RTP port: no use without a return channel
	dropNotLoopback prometheus.Counter // an RTSP stream's ffmpeg port reached from off-host
	dropOversize    prometheus.Counter // longer than maxIngestPacket: never relayed, a cut copy would be corrupt
	dropNotAllowed  prometheus.Counter // from outside the source's rtp_from
}

// Reasons of lookout_video_ingest_dropped_total.
const (
	dropReasonForeign     = "foreign_sender"
	dropReasonNotRTP      = "not_rtp"
	dropReasonRTCP        = "rtcp"
	dropReasonNotLoopback = "not_loopback"
	dropReasonOversize    = "oversize"
	dropReasonNotAllowed  = "not_allowed"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		packetsIn: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_video_packets_in_total",
			Help: "RTP packets received from camera sources."}),
		drops: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_video_viewer_drops_total",
			Help: "Packets dropped because a viewer's queue was full (that viewer only)."}),
		keyframeRequests: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_video_keyframe_requests_total",
			Help: "Keyframe requests (PLI) sent to sources after rate limiting."}),
		streamCap: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_video_peers_over_stream_cap_total",
			Help: "Peer connections (viewers or WHIP cameras) closed for opening more than maxPeerStreams (32) RTP/RTCP streams (SSRCs)."}),
		ffmpegStarts: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_video_ffmpeg_starts_total",
			Help: "ffmpeg RTSP pull processes started (first viewer, restart after failure)."}),
		viewers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lookout_video_viewers",
			Help: "Connected WHEP viewers across all cameras."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_video_viewers_rejected_total",
			Help: "WHEP requests refused by a viewer limit."}, []string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lookout_video_relay_latency_seconds",
			Help:    "Time from a packet's arrival at the relay to its send to one viewer (queue wait + SRTP + socket write).",
			Buckets: prometheus.ExponentialBuckets(25e-6, 1.5, 24)}),
		ingestDrops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_video_ingest_dropped_total",
			Help: "Datagrams dropped at RTP ingest ports before the relay: foreign_sender (not the stream's latched sender), not_rtp, rtcp, not_loopback (RTSP ffmpeg port), oversize (datagram over 1600 bytes)."},
			[]string{"reason"}),
	}
	m.dropForeign = m.ingestDrops.WithLabelValues(dropReasonForeign)
	m.dropNotRTP = m.ingestDrops.WithLabelValues(dropReasonNotRTP)
	m.dropRTCP = m.ingestDrops.WithLabelValues(dropReasonRTCP)
	m.dropNotLoopback = m.ingestDrops.WithLabelValues(dropReasonNotLoopback)
	m.dropOversize = m.ingestDrops.WithLabelValues(dropReasonOversize)
	m.dropNotAllowed = m.ingestDrops.WithLabelValues(dropReasonNotAllowed)
	for _, c := range []prometheus.Collector{m.packetsIn, m.drops, m.keyframeRequests, m.streamCap, m.ffmpegStarts, m.viewers, m.rejected, m.latency, m.ingestDrops} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("video metrics: %w", err)
		}
	}
	return m, nil
}
