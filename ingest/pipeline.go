package ingest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/clock"
)

// Admitter is the device registry as the pipeline sees it: it applies the
// unknown-device policy and class check, records last-seen/battery/rssi/firmware
// and fills the reading's position and zone. It must be fast and never do I/O.
type Admitter interface {
	Admit(r *Reading) error
}

// Tagger adds geographic tags (zone, forest) from the reading's position.
type Tagger interface {
	Tag(r *Reading)
}

// Appender is the durable spool: Append returns once the records would survive
// a process crash, and blocks (never drops) while the spool is full.
type Appender interface {
	Append(ctx context.Context, recs ...[]byte) error
}

// Encoder renders a reading as one InfluxDB line appended to dst.
type Encoder func(dst []byte, r *Reading) []byte

// Observer sees every stored reading (alerting). Observe must not block: the
// observer owns its own bounded queue and overflow policy.
type Observer interface {
	Observe(r Reading)
}

// Publisher sends the gateway's own MQTT messages (dead letters).
type Publisher interface {
	Publish(topic string, payload []byte) error
}

// Message is one MQTT message handed to the pipeline.
type Message struct {
	Topic   string
	Payload []byte
}

// Deps are the stages a Pipeline drives. Admitter, Tagger, Publisher and
// Observers may be nil; Appender and Encode are required.
type Deps struct {
	Admitter  Admitter
	Tagger    Tagger
	Appender  Appender
	Encode    Encoder
	Publisher Publisher
	Observers []Observer
	Clock     clock.Clock
	// SnapshotDir receives camera snapshots as files; "" disables saving them.
	SnapshotDir string
	Log         *slog.Logger
	Registerer  prometheus.Registerer
}

// Pipeline validates, admits, tags and durably spools readings. It is safe for
// concurrent use: the embedded broker calls Handle from every client's goroutine.
type Pipeline struct {
	cfg  Config
	deps Deps
	m    pipelineMetrics
	lim  *logLimiter

	accepted, rejected atomic.Uint64
	bufs               sync.Pool
	// lastStamp is the last gateway time handed out by stamp, in Unix ns.
	lastStamp atomic.Int64
}

type pipelineMetrics struct {
	messages   *prometheus.CounterVec // by class and result
	rejected   *prometheus.CounterVec // by reason
	deadFailed prometheus.Counter
	batchSize  prometheus.Histogram
}

// NewPipeline checks deps and registers metrics.
func NewPipeline(cfg Config, deps Deps) (*Pipeline, error) {
	if deps.Appender == nil || deps.Encode == nil {
		return nil, errors.New("ingest: pipeline needs an appender and an encoder")
	}
	if deps.Clock == nil {
		deps.Clock = clock.Real{}
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	p := &Pipeline{cfg: cfg, deps: deps, lim: newLogLimiter(time.Second)}
	p.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	p.m.messages = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_ingest_messages_total",
		Help: "MQTT messages handled, by device class and result (stored, rejected)."}, []string{"class", "result"})
	p.m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_ingest_rejected_total",
		Help: "Rejected messages by reason; each is dead-lettered to fire/deadletter/{reason}."}, []string{"reason"})
	p.m.deadFailed = prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_ingest_deadletter_failed_total",
		Help: "Dead letters that could not be published (the rejection is still counted and logged)."})
	p.m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lookout_ingest_batch_size",
		Help: "Readings appended to the spool per write.", Buckets: prometheus.ExponentialBuckets(1, 4, 7)})
	for _, r := range Reasons {
		p.m.rejected.WithLabelValues(string(r))
	}
	for _, c := range []prometheus.Collector{p.m.messages, p.m.rejected, p.m.deadFailed, p.m.batchSize} {
		if err := deps.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("ingest: metrics: %w", err)
		}
	}
	return p, nil
}

// Counts returns how many messages were accepted and rejected so far.
func (p *Pipeline) Counts() (accepted, rejected uint64) {
	return p.accepted.Load(), p.rejected.Load()
}

// Handle processes one message. It returns nil when the reading is durable in
// the spool or the message was rejected and dead-lettered; an error means the
// message was NOT handled (context ended, spool failure) and must not be acked.
func (p *Pipeline) Handle(ctx context.Context, topic string, payload []byte) error {
	return p.HandleBatch(ctx, []Message{{Topic: topic, Payload: payload}})
}

// HandleBatch processes messages in order with one spool append for all the
// accepted ones. The result is all-or-nothing for acknowledgement purposes.
func (p *Pipeline) HandleBatch(ctx context.Context, msgs []Message) error {
	b := p.prepareBatch(msgs)
	defer p.release(b)
	return p.store(ctx, b)
}

// prepared is a batch after decoding: the encoded records of the accepted
// readings (in a pooled buffer) and the readings. Its rejects have already been
// counted and dead-lettered.
type prepared struct {
	bp       *[]byte
	recs     [][]byte
	readings []Reading
}

// prepareBatch decodes, admits, tags and encodes msgs in order, and rejects
// (counts, logs, dead-letters) the bad ones. Each message gets its own gateway
// time (see stamp). A caller that retries a failed append retries store with
// the same batch, so a reject is handled once and the readings keep their
// times; it must release the batch when done.
func (p *Pipeline) prepareBatch(msgs []Message) *prepared {
	now := p.deps.Clock.Now()
	bp := p.bufs.Get().(*[]byte)
	buf := (*bp)[:0]
	b := &prepared{bp: bp, recs: make([][]byte, 0, len(msgs)), readings: make([]Reading, 0, len(msgs))}
	for _, m := range msgs {
		at := p.stamp(now)
		r, err := p.prepare(m, at)
		if err != nil {
			p.reject(m, err, at)
			continue
		}
		start := len(buf)
		buf = p.deps.Encode(buf, &r)
		b.recs = append(b.recs, buf[start:len(buf):len(buf)])
		b.readings = append(b.readings, r)
	}
	*bp = buf
	return b
}

// store appends b's records to the spool in one write; once they are durable it
// counts the readings and hands them to the observers. After an error nothing
// was counted or observed and store may be called again with the same b.
func (p *Pipeline) store(ctx context.Context, b *prepared) error {
	if len(b.recs) > 0 {
		if err := p.deps.Appender.Append(ctx, b.recs...); err != nil {
			return fmt.Errorf("ingest: spool append: %w", err)
		}
		p.m.batchSize.Observe(float64(len(b.recs)))
	}
	for i := range b.readings {
		r := &b.readings[i]
		p.m.messages.WithLabelValues(string(r.Class), "stored").Inc()
		for _, o := range p.deps.Observers {
			o.Observe(*r)
		}
	}
	p.accepted.Add(uint64(len(b.readings)))
	return nil
}

// release returns b's buffer to the pool; b's records must not be used after.
func (p *Pipeline) release(b *prepared) {
	if cap(*b.bp) <= 1<<20 { // don't pin huge buffers in the pool
		*b.bp = (*b.bp)[:0]
		p.bufs.Put(b.bp)
	}
	b.bp, b.recs = nil, nil
}

// stamp returns the gateway time for one message: now, or 1 ns after the last
// time it returned when now is not later, so no two messages — in one batch,
// across batches or concurrent callers — share a time. A reading without ts is
// stored at this time, and InfluxDB keeps only one point per measurement, tag
// set and timestamp: equal times would silently drop all but one of them.
func (p *Pipeline) stamp(now time.Time) time.Time {
	t := now.UnixNano()
	for {
		last := p.lastStamp.Load()
		next := t
		if next <= last {
			next = last + 1
		}
		if p.lastStamp.CompareAndSwap(last, next) {
			if next == t {
				return now
			}
			return time.Unix(0, next).UTC()
		}
	}
}

// apart returns the store time (Reading.StoreTime) of a device timestamp given
// to the millisecond (as every numeric ts is): a point inside that
// millisecond chosen by a hash of the message.
// InfluxDB keeps one point per series and time, and two different messages
// of one device in one millisecond are one series: an electrical monitor's
// residual_alarm and temp_alarm, a camera's smoke and fire hits on one frame.
// Without this, the second would overwrite the first (fields merged) while
// both were counted as stored. The same message sent twice (a QoS 1 resend)
// hashes alike and still lands on one point. Readings without ts already get
// distinct times (stamp); finer device times are kept as sent.
func apart(t time.Time, m Message) time.Time {
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		return t
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(m.Topic))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write(m.Payload)
	return t.Add(time.Duration(h.Sum64() % uint64(time.Millisecond)))
}

// prepare decodes, admits and tags one message.
func (p *Pipeline) prepare(m Message, now time.Time) (Reading, error) {
	r, err := Decode(p.cfg.TopicPrefix, m.Topic, m.Payload, now, p.cfg.Limits)
	if err != nil {
		return r, err
	}
	if r.DeviceTS {
		r.StoreTime = apart(r.Time, m)
	}
	if p.deps.Admitter != nil {
		if err := p.deps.Admitter.Admit(&r); err != nil {
			return r, err
		}
	}
	if p.deps.Tagger != nil {
		p.deps.Tagger.Tag(&r)
	}
	if len(r.Snapshot) > 0 {
		if name, err := p.saveSnapshot(&r); err != nil {
			// The reading is still worth storing; the picture is not critical.
			if p.lim.allow("snapshot") {
				p.deps.Log.Warn("camera snapshot not saved", "device", r.DeviceID, "err", err)
			}
		} else {
			r.Fields["snapshot_file"] = name
		}
		r.Snapshot = nil
	}
	return r, nil
}

// saveSnapshot writes a detection's JPEG under SnapshotDir/{device}/ and returns
// its path relative to SnapshotDir.
func (p *Pipeline) saveSnapshot(r *Reading) (string, error) {
	if p.deps.SnapshotDir == "" {
		return "", errors.New("snapshots disabled")
	}
	dir := filepath.Join(p.deps.SnapshotDir, r.DeviceID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	at := r.Time
	if !r.StoreTime.IsZero() {
		at = r.StoreTime // distinct for two detections in one millisecond
	}
	name := at.UTC().Format("20060102T150405.000000000Z") + ".jpg"
	if err := os.WriteFile(filepath.Join(dir, name), r.Snapshot, 0o644); err != nil {
		return "", err
	}
	return r.DeviceID + "/" + name, nil
}

// DeadLetter is the JSON published to fire/deadletter/{reason}.
type DeadLetter struct {
	Topic      string    `json:"topic"`
	Reason     Reason    `json:"reason"`
	Field      string    `json:"field,omitempty"`
	Detail     string    `json:"detail"`
	PayloadB64 string    `json:"payload_b64"`
	Received   time.Time `json:"received"`
}

func (p *Pipeline) reject(m Message, err error, now time.Time) {
	var rj *Reject
	if !errors.As(err, &rj) {
		rj = &Reject{Reason: ReasonBadJSON, Detail: err.Error()}
	}
	p.rejected.Add(1)
	p.m.rejected.WithLabelValues(string(rj.Reason)).Inc()
	class := "unknown"
	if parts := strings.SplitN(m.Topic, "/", 3); len(parts) >= 2 && Class(parts[1]).Valid() {
		class = parts[1]
	}
	p.m.messages.WithLabelValues(class, "rejected").Inc()
	if p.lim.allow(string(rj.Reason)) {
		p.deps.Log.Warn("reading rejected", "topic", truncate(m.Topic, 200), "reason", rj.Reason, "field", rj.Field, "detail", truncate(rj.Detail, 200))
	}
	if !p.cfg.DeadLetter || p.deps.Publisher == nil {
		return
	}
	payload := m.Payload
	if len(payload) > p.cfg.MaxPayload {
		payload = payload[:p.cfg.MaxPayload]
	}
	b, _ := json.Marshal(DeadLetter{Topic: m.Topic, Reason: rj.Reason, Field: rj.Field, Detail: rj.Detail,
		PayloadB64: base64.StdEncoding.EncodeToString(payload), Received: now})
	if err := p.deps.Publisher.Publish(p.cfg.TopicPrefix+"/deadletter/"+string(rj.Reason), b); err != nil {
		p.m.deadFailed.Inc()
		if p.lim.allow("deadletter") {
			p.deps.Log.Warn("dead letter not published", "err", err)
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// logLimiter lets one log line per key through per interval, so a device
// flooding bad messages cannot flood the log.
type logLimiter struct {
	mu    sync.Mutex
	every time.Duration
	last  map[string]time.Time
}

func newLogLimiter(every time.Duration) *logLimiter {
	return &logLimiter{every: every, last: map[string]time.Time{}}
}

func (l *logLimiter) allow(key string) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[key]; ok && now.Sub(t) < l.every {
		return false
	}
	if len(l.last) > 1024 {
		clear(l.last)
	}
	l.last[key] = now
	return true
}
