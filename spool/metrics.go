package spool

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the spool's Prometheus series. Gauges are computed at scrape
// time from the spool's state, so they can never drift from it.
type metrics struct {
	appended    prometheus.Counter
	blocked     prometheus.Counter
	blockedSecs prometheus.Counter
	corrupt     prometheus.Counter
	gauges      []prometheus.Collector
}

func newMetrics(s *Spool) *metrics {
	m := &metrics{
		appended: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_spool_appended_total",
			Help: "Records appended to the spool."}),
		blocked: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_spool_blocked_total",
			Help: "Appends that had to wait because the spool was full (backpressure to the broker)."}),
		blockedSecs: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_spool_blocked_seconds_total",
			Help: "Time appenders spent waiting for spool space."}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_spool_corrupt_total",
			Help: "Torn or corrupt spool regions dropped (crash leftovers found at open, bad checksums at read)."}),
	}
	m.gauges = []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lookout_spool_bytes",
			Help: "Bytes in the spool not yet delivered to InfluxDB."},
			func() float64 { return float64(s.Stats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lookout_spool_records",
			Help: "Records in the spool not yet delivered to InfluxDB."},
			func() float64 { return float64(s.Stats().Records) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lookout_spool_lag_seconds",
			Help: "Age of the oldest undelivered record (0 when the spool is drained)."},
			func() float64 {
				st := s.Stats()
				if st.OldestUnsent.IsZero() {
					return 0
				}
				return time.Since(st.OldestUnsent).Seconds()
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lookout_spool_segments",
			Help: "Segment files in the spool directory."},
			func() float64 { return float64(s.Stats().Segments) }),
	}
	return m
}

func (m *metrics) register(reg prometheus.Registerer) error {
	cs := append([]prometheus.Collector{m.appended, m.blocked, m.blockedSecs, m.corrupt}, m.gauges...)
	var errsOut []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errsOut = append(errsOut, err)
		}
	}
	return errors.Join(errsOut...)
}
