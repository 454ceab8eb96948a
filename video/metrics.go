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
	viewers          prometheus.Gauge
	rejected         *prometheus.CounterVec
	latency          prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		packetsIn: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_video_packets_in_total",
			Help: "RTP packets received from camera sources."}),
		drops: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_video_viewer_drops_total",
			Help: "Packets dropped because a viewer's queue was full (that viewer only)."}),
		keyframeRequests: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_video_keyframe_requests_total",
			Help: "Keyframe requests (PLI) sent to sources after rate limiting."}),
		ffmpegStarts: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_video_ffmpeg_starts_total",
			Help: "ffmpeg RTSP pull processes started (first viewer, restart after failure)."}),
		viewers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lookout_video_viewers",
			Help: "Connected WHEP viewers across all cameras."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_video_viewers_rejected_total",
			Help: "WHEP requests refused by a viewer limit."}, []string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lookout_video_relay_latency_seconds",
			Help:    "Time from a packet's arrival at the relay to its send to one viewer (queue wait + SRTP + socket write).",
			Buckets: prometheus.ExponentialBuckets(25e-6, 1.5, 24)}),
	}
	for _, c := range []prometheus.Collector{m.packetsIn, m.drops, m.keyframeRequests, m.ffmpegStarts, m.viewers, m.rejected, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("video metrics: %w", err)
		}
	}
	return m, nil
}
