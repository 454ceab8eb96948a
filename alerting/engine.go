package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/events"
	"github.com/lookoutfire/lookout/ingest"
)

// Zone is one responsibility zone (county, town, village, grid) with its duty
// contacts; geo provides them.
type Zone struct {
	ID     string    `json:"id"`
	Name   string    `json:"name"`
	Level  string    `json:"level"` // county, town, village, grid
	Parent string    `json:"parent,omitempty"`
	Duty   []Contact `json:"duty,omitempty"`
}

// Contact is a person on duty for a zone.
type Contact struct {
	Name  string `json:"name"`
	Phone string `json:"phone"`
	Role  string `json:"role,omitempty"`
}

// Directory resolves a zone id to its chain of zones, innermost first (village,
// town, county). The gateway adapts geo's zone index to it.
type Directory interface {
	ZonePath(zoneID string) []Zone
}

// Sighting is a camera position and the bearing (degrees from north, clockwise) to a plume.
type Sighting struct {
	Lat, Lon, BearingDeg float64
}

// Fix is a triangulated position with its error estimate.
type Fix struct {
	Lat, Lon, ErrorM float64
}

// CameraGeo answers the geometry questions of a confirmed camera detection; the
// gateway adapts geo (RayForests over the forest index, Triangulate). When nil,
// crossed forests are unknown and alerting intersects two bearings itself.
type CameraGeo interface {
	RayForests(lat, lon, azimuthDeg, rangeM float64) []string
	Triangulate(s []Sighting, minBaselineM, minAngleDeg float64) (Fix, error)
}

// PointSink stores a time-series point (the gateway adapts tsdb to it); the daily
// FWI goes there as its own measurement. ctx bounds a write that has to wait
// (a full spool).
type PointSink interface {
	WritePoint(ctx context.Context, measurement string, tags map[string]string, fields map[string]any, t time.Time) error
}

// MQTTPublisher publishes alert messages to fire/alerts/{severity}/{zone} at
// QoS 1 for the MQTT outbox. PublishAlert should return nil only once the broker
// has the message (PUBACK received, or the embedded broker took it), and give up
// when ctx ends: the outbox deletes a message on nil and publishes it again
// later on an error.
type MQTTPublisher interface {
	PublishAlert(ctx context.Context, topic string, payload []byte) error
}

// Call is one 叫应 call: a duty contact told about an alert they must acknowledge.
type Call struct {
	AlertID  int64     `json:"alert_id"`
	Step     int       `json:"step"`
	Zone     Zone      `json:"zone"`
	Contact  Contact   `json:"contact"`
	Severity Severity  `json:"severity"`
	Message  string    `json:"message"`
	At       time.Time `json:"at"`
}

// Caller reaches a duty contact. The engine records every call in SQLite whatever
// the Caller does; an SMS gateway or voice (IVR) provider plugs in here. Call
// runs in the escalation step, so slow providers should queue and return.
type Caller interface {
	Call(ctx context.Context, c Call) error
}

// EventCaller is the default Caller: it announces the call as an "alert.call"
// event (SSE, webhooks), which the control-room UI shows; no telephony.
type EventCaller struct{ Pub events.Publisher }

// Call publishes the call.
func (c EventCaller) Call(_ context.Context, call Call) error {
	c.Pub.Publish("alert.call", call)
	return nil
}

// HealthDeleted as HealthEvent.To: the device was removed from the registry,
// so its offline alert is cleared.
const HealthDeleted = "deleted"

// HealthEvent is a device connectivity change from the registry (same JSON
// shape as the registry's "device.*" events).
type HealthEvent struct {
	DeviceID string    `json:"device_id"`
	Class    string    `json:"class"`
	Zone     string    `json:"zone"`
	From     string    `json:"from"` // online, late, offline, never
	To       string    `json:"to"`
	At       time.Time `json:"at"`
}

// Options are the Engine's collaborators. DB and Clock are required; the rest may be nil.
type Options struct {
	Config     Config
	DB         *sql.DB
	Clock      clock.Clock
	Directory  Directory
	Geo        CameraGeo
	Caller     Caller        // EventCaller on the hub when nil
	MQTT       MQTTPublisher // alerts also go to MQTT, through a persistent outbox, when set
	Points     PointSink
	Registerer prometheus.Registerer // a fresh registry when nil
	Logger     *slog.Logger
	HTTPClient *http.Client                 // webhook client; one with Retry.Timeout when nil
	User       func(r *http.Request) string // acting user of ack/clear; X-Lookout-User header when nil
}

// Engine evaluates rules, owns the alert lifecycle and runs the timers.
type Engine struct {
	cfg    Config
	db     *sql.DB
	st     *alertStore
	clk    clock.Clock
	dir    Directory
	geo    CameraGeo
	caller Caller
	mq     *mqttOutbox // nil without Options.MQTT
	points PointSink
	log    *slog.Logger
	user   func(r *http.Request) string
	hub    *Hub
	out    *outbox
	tz     *time.Location
	capTZ  *time.Location
	// levelDeadlines is Escalation.LevelDeadlines normalised (lower-case level,
	// parsed severity); nil when unset.
	levelDeadlines map[string]map[Severity]time.Duration

	queue    chan ingest.Reading
	healthQ  chan HealthEvent
	cam      *cameraState
	fwiMu    sync.Mutex           // serialises station FWI updates
	fwiCache map[string]*fwiState // station → carried state (danger.go), under fwiMu

	qDepth   prometheus.GaugeFunc
	dropped  *prometheus.CounterVec
	raised   *prometheus.CounterVec
	calls    *prometheus.CounterVec
	ruleErrs prometheus.Counter

	closeOnce sync.Once
	done      chan struct{}
}

// New opens the alerting tables (migrating them) and builds the engine. Call Run
// to start the rule worker and the timer loop.
func New(ctx context.Context, o Options) (*Engine, error) {
	if o.DB == nil || o.Clock == nil {
		return nil, errors.New("alerting: DB and Clock are required")
	}
	if err := o.Config.Validate(); err != nil {
		return nil, fmt.Errorf("alerting config: %w", err)
	}
	st, err := openStore(ctx, o.DB)
	if err != nil {
		return nil, err
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	e := &Engine{cfg: o.Config, db: o.DB, st: st, clk: o.Clock, dir: o.Directory, geo: o.Geo,
		points: o.Points, log: o.Logger, user: o.User, done: make(chan struct{}),
		queue: make(chan ingest.Reading, o.Config.QueueSize), healthQ: make(chan HealthEvent, o.Config.QueueSize),
		cam: newCameraState(), fwiCache: map[string]*fwiState{}}
	e.tz, _ = time.LoadLocation(o.Config.FireDanger.Timezone)
	e.capTZ, _ = time.LoadLocation(o.Config.Notify.CAPTimezone)
	e.levelDeadlines, _ = o.Config.Escalation.levelDeadlines() // checked by Validate
	e.hub = newHub(o.DB, o.Clock, o.Config.Notify, o.Config.Webhooks, o.Logger, o.Registerer)
	if o.MQTT != nil {
		if e.mq, err = newMQTTOutbox(ctx, o.DB, o.MQTT, o.Registerer); err != nil {
			return nil, err
		}
		e.hub.mq = e.mq
	}
	e.caller = o.Caller
	if e.caller == nil {
		e.caller = EventCaller{Pub: e.hub}
	}
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: o.Config.Retry.Timeout}
	}
	e.out = newOutbox(e, client, o.Registerer)
	e.qDepth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lookout_alerting_queue_depth",
		Help: "Readings and health events waiting for rule evaluation."}, func() float64 { return float64(len(e.queue) + len(e.healthQ)) })
	e.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_alerting_dropped_total",
		Help: "Inputs dropped because the rule queue was full (policy: drop newest, never block ingest)."}, []string{"kind"})
	e.raised = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_alerting_alerts_raised_total",
		Help: "New alerts by severity (repeats bump count instead)."}, []string{"severity"})
	e.calls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_alerting_calls_total",
		Help: "叫应 calls by outcome."}, []string{"outcome"})
	e.ruleErrs = prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_alerting_rule_errors_total",
		Help: "Readings whose evaluation failed (store errors)."})
	o.Registerer.MustRegister(e.qDepth, e.dropped, e.raised, e.calls, e.ruleErrs)
	return e, nil
}

// Hub returns the event hub, which implements events.Publisher for other packages.
func (e *Engine) Hub() *Hub { return e.hub }

// Publisher returns the events.Publisher to hand to the other components: every
// event goes to the hub (SSE, webhooks), and "device.*" health events are also
// fed to DeviceHealth, so the registry needs no alerting import.
func (e *Engine) Publisher() events.Publisher { return busPublisher{e} }

type busPublisher struct{ e *Engine }

func (p busPublisher) Publish(typ string, data any) {
	p.e.hub.Publish(typ, data)
	if !strings.HasPrefix(typ, "device.") {
		return
	}
	var ev HealthEvent
	if b, err := json.Marshal(data); err == nil && json.Unmarshal(b, &ev) == nil && ev.DeviceID != "" && ev.To != "" {
		if ev.At.IsZero() {
			ev.At = p.e.clk.Now()
		}
		p.e.DeviceHealth(ev)
	}
}

// Observe queues a reading for rule evaluation. It never blocks: when the queue
// is full the reading is dropped and counted (lookout_alerting_dropped_total).
func (e *Engine) Observe(r ingest.Reading) {
	select {
	case e.queue <- r:
	default:
		e.dropped.WithLabelValues("reading").Inc()
	}
}

// DeviceHealth queues a registry health change; same overflow policy as Observe.
func (e *Engine) DeviceHealth(ev HealthEvent) {
	select {
	case e.healthQ <- ev:
	default:
		e.dropped.WithLabelValues("health").Inc()
	}
}

// Run evaluates queued inputs, steps the timers every RunEvery and delivers the
// MQTT outbox until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if e.mq != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.mq.run(ctx, e.clk, e.cfg.RunEvery, e.log)
		}()
	}
	// Timers and webhook deliveries tick in separate loops: a receiver that
	// hangs until the request timeout must not hold up an escalation call.
	every := func(step func(context.Context, time.Time) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(e.cfg.RunEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if err := step(ctx, e.clk.Now()); err != nil && ctx.Err() == nil {
						e.log.Error("alerting: step", "err", err)
					}
				}
			}
		}()
	}
	every(e.runTimers)
	every(e.out.step)
	defer wg.Wait()
	// Inputs are evaluated under evalCtx, which outlives ctx by drainGrace: an
	// input taken off the queue is evaluated to the end even if shutdown begins
	// meanwhile, and so is the rest of the queue, within that bound.
	evalCtx, stopEval := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEval()
	context.AfterFunc(ctx, func() { time.AfterFunc(drainGrace, stopEval) })
	for {
		select {
		case <-ctx.Done():
			e.drain(evalCtx)
			return ctx.Err()
		case r := <-e.queue:
			e.evaluateQueued(evalCtx, r)
		case h := <-e.healthQ:
			e.evaluateQueuedHealth(evalCtx, h)
		}
	}
}

// evaluateQueued evaluates a reading from the queue; an error is counted
// and logged (nobody waits on a queued reading).
func (e *Engine) evaluateQueued(ctx context.Context, r ingest.Reading) {
	if err := e.Evaluate(ctx, r); err != nil {
		e.ruleErrs.Inc()
		e.log.Error("alerting: evaluate", "device", r.DeviceID, "err", err)
	}
}

// evaluateQueuedHealth is evaluateQueued for a health event.
func (e *Engine) evaluateQueuedHealth(ctx context.Context, h HealthEvent) {
	if err := e.EvaluateHealth(ctx, h); err != nil {
		e.ruleErrs.Inc()
		e.log.Error("alerting: health", "device", h.DeviceID, "err", err)
	}
}

// drainGrace bounds how long a shutting-down Run keeps evaluating, from the
// moment its context ends.
const drainGrace = 5 * time.Second

// drain evaluates the readings and health events still queued when Run is
// stopped (the gateway stops intake first, so the queue is final): an alarm
// that was stored must also have been judged. It gives up when ctx (Run's
// evalCtx) ends and logs how many inputs were left.
func (e *Engine) drain(ctx context.Context) {
	n := 0
	for ctx.Err() == nil {
		select {
		case r := <-e.queue:
			e.evaluateQueued(ctx, r)
		case h := <-e.healthQ:
			e.evaluateQueuedHealth(ctx, h)
		default:
			if n > 0 {
				e.log.Info("alerting: evaluated the queue before stopping", "inputs", n)
			}
			return
		}
		n++
	}
	if left := len(e.queue) + len(e.healthQ); left > 0 {
		e.log.Warn("alerting: stopped with inputs not evaluated", "left", left, "evaluated", n)
	}
}

// RunDue is the deterministic time step: escalation timers, event-log
// pruning, and webhook deliveries and pruning due at now. Run does the same
// in two loops (timers; webhooks).
func (e *Engine) RunDue(ctx context.Context, now time.Time) error {
	return errors.Join(e.runTimers(ctx, now), e.out.step(ctx, now))
}

// runTimers advances the escalation timers due at now and prunes the event log.
func (e *Engine) runTimers(ctx context.Context, now time.Time) error {
	return errors.Join(e.runEscalations(ctx, now), e.hub.prune(ctx))
}

// Raise records an alert condition from any source (rules, hotspot reports,
// operators): a new alert is announced, called and joined to an incident; a
// repeat of an active one bumps its count.
func (e *Engine) Raise(ctx context.Context, r Raise) (Alert, error) {
	if r.Source == "" || r.Type == "" {
		return Alert{}, fmt.Errorf("%w: source and type are required", ErrBadAlert)
	}
	if r.Severity.Rank() == 0 {
		return Alert{}, fmt.Errorf("%w: %q", ErrBadSeverity, r.Severity)
	}
	if r.At.IsZero() {
		r.At = e.clk.Now()
	}
	before, hadActive, err := e.st.active(ctx, r.Source, r.Type)
	if err != nil {
		return Alert{}, err
	}
	a, isNew, err := e.st.upsert(ctx, r)
	if err != nil {
		return Alert{}, err
	}
	now := e.clk.Now()
	switch {
	case isNew:
		e.raised.WithLabelValues(string(a.Severity)).Inc()
		if inc, err := e.joinIncident(ctx, a, now); err != nil {
			e.log.Error("alerting: incident", "alert", a.ID, "err", err)
		} else if inc > 0 {
			a.Incident = inc
		}
		e.announce("alert.raised", a)
		if a.Severity.Rank() >= e.minEscalation().Rank() {
			if err := e.startEscalation(ctx, a, now); err != nil {
				return a, err
			}
		}
	case a.Incident == 0 && (a.Lat != 0 || a.Lon != 0):
		// A repeat that brings a position (a camera fix) can now join or open an incident.
		if inc, err := e.joinIncident(ctx, a, now); err != nil {
			e.log.Error("alerting: incident", "alert", a.ID, "err", err)
		} else if inc > 0 {
			a.Incident = inc
		}
		fallthrough
	case hadActive && before.ID == a.ID && before.Severity != a.Severity:
		if !hadActive || before.ID != a.ID || before.Severity == a.Severity {
			break
		}
		if err := audit(ctx, e.db, a.ID, now, "severity", "", string(before.Severity)+" → "+string(a.Severity)); err != nil {
			return a, err
		}
		e.announce("alert.updated", a)
		// A rise into the called severities starts the chain, unless someone has
		// already acknowledged the alert: they are on it, and the update event
		// tells them it got worse.
		if a.State == ActiveUnack && before.Severity.Rank() < e.minEscalation().Rank() && a.Severity.Rank() >= e.minEscalation().Rank() {
			if err := e.startEscalation(ctx, a, now); err != nil {
				return a, err
			}
		}
	}
	return a, nil
}

// Resolve clears the active (source, type) alert, if any, on behalf of a rule.
func (e *Engine) Resolve(ctx context.Context, source, typ, note string) error {
	a, ok, err := e.st.active(ctx, source, typ)
	if err != nil || !ok {
		return err
	}
	_, err = e.clear(ctx, a.ID, "rule", note)
	if errors.Is(err, ErrAlreadyDone) { // cleared concurrently
		return nil
	}
	return err
}

func (e *Engine) minEscalation() Severity {
	s, _ := ParseSeverity(e.cfg.Escalation.MinSeverity)
	return s
}

// Ack acknowledges an alert; it stops the escalation and answers the last call.
func (e *Engine) Ack(ctx context.Context, id int64, user, note string) (Alert, error) {
	now := e.clk.Now()
	a, err := e.st.ack(ctx, id, now, user, note)
	if err != nil {
		return a, err
	}
	e.stopAfterCommit(ctx, id, now, "acked", user)
	e.announce("alert.acked", a)
	return a, nil
}

// Clear clears an alert by hand.
func (e *Engine) Clear(ctx context.Context, id int64, user, note string) (Alert, error) {
	return e.clear(ctx, id, user, note)
}

func (e *Engine) clear(ctx context.Context, id int64, user, note string) (Alert, error) {
	now := e.clk.Now()
	a, closed, err := e.st.clear(ctx, id, now, user, note)
	if err != nil {
		return a, err
	}
	e.stopAfterCommit(ctx, id, now, "cleared", user)
	e.announce("alert.cleared", a)
	if closed != 0 {
		e.publishIncident(ctx, "incident.closed", closed)
	}
	return a, nil
}

// stopAfterCommit stops the chain of an alert whose ack or clear has already
// committed. A failure here is logged, not returned: the caller must still
// announce what happened, and the chain stops anyway at its next step
// (runEscalations finds the alert acknowledged or cleared; claimStep calls no one).
func (e *Engine) stopAfterCommit(ctx context.Context, id int64, now time.Time, reason, user string) {
	if err := e.stopEscalation(ctx, id, now, reason, user); err != nil {
		e.log.Error("alerting: stop escalation", "alert", id, "err", err)
	}
}

// Get returns an alert with its escalation chain and audit trail.
func (e *Engine) Get(ctx context.Context, id int64) (AlertView, error) {
	a, err := e.st.get(ctx, id)
	if err != nil {
		return AlertView{}, err
	}
	v := AlertView{Alert: a}
	if v.Escalation, err = e.st.escalationOf(ctx, id); err != nil {
		return v, err
	}
	if v.Calls, err = e.st.callsOf(ctx, id); err != nil {
		return v, err
	}
	if v.Audit, err = e.st.auditOf(ctx, id); err != nil {
		return v, err
	}
	return v, nil
}

// List returns alerts matching f, newest first.
func (e *Engine) List(ctx context.Context, f Filter) ([]Alert, error) { return e.st.list(ctx, f) }

// announce publishes an alert event on the hub and, through the MQTT outbox
// (queued in the event's transaction), on MQTT.
func (e *Engine) announce(typ string, a Alert) {
	if e.mq == nil {
		e.hub.Publish(typ, a)
		return
	}
	e.hub.publishAlert(typ, a, mqttTopic(e.cfg.Notify.MQTTPrefix, a))
}

// Close is a no-op kept for symmetry; the engine owns no goroutines outside Run.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() { close(e.done) })
	return nil
}
