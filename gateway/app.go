package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lookoutfire/lookout/alerting"
	"github.com/lookoutfire/lookout/broker"
	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/config"
	"github.com/lookoutfire/lookout/events"
	"github.com/lookoutfire/lookout/geo"
	"github.com/lookoutfire/lookout/hotspot"
	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/internal/redact"
	"github.com/lookoutfire/lookout/registry"
	"github.com/lookoutfire/lookout/spool"
	"github.com/lookoutfire/lookout/store"
	"github.com/lookoutfire/lookout/tsdb"
	"github.com/lookoutfire/lookout/video"
	"github.com/lookoutfire/lookout/web"
)

// reservedTopics are second-level topics under the prefix that the gateway
// publishes itself; they are never consumed as readings.
var reservedTopics = []string{"deadletter", "alerts", "cmd"}

// App is one running gateway: every component, wired once, started by Run.
type App struct {
	cfg config.Config
	log *slog.Logger
	reg *prometheus.Registry
	clk clock.Clock
	db  *sql.DB
	pub events.Publisher

	devices  *registry.Registry
	spool    *spool.Spool
	writer   *tsdb.Writer
	pipeline *ingest.Pipeline
	broker   *broker.Broker   // embedded mode
	consumer *ingest.Consumer // external-broker mode
	guard    Guard
	panics   prometheus.Counter // lookout_http_panics_total (web.Recover)
	// camera snapshot files: age and size limits (ingest.snapshot_keep, snapshot_max_bytes)
	snapshots *ingest.SnapshotPruner

	// --- geo ---
	geoLayers *geo.Layers // forests, zones, masks; swapped atomically by PUT /api/v1/geo/{layer}
	// --- alerting ---
	alerts  *alerting.Engine // rules, alert lifecycle, incidents, 叫应 escalation, notifiers, SSE hub
	mqttOut *mqttOut         // the gateway's own MQTT publishes (dead letters, alerts)
	// --- hotspots ---
	hotspots *hotspot.Service // FIRMS import, reports, deadlines, exports
	// --- video ---
	video *video.Manager // camera relay: WHIP/RTP/RTSP in, WHEP out (cmd_video.go)
	// --- security ---
	sec *security // users, tokens, audit, MQTT device auth (security.go)

	reqCtx       context.Context // parent of every HTTP request; cancelled at shutdown
	stopRequests context.CancelFunc

	apiAddr, opsAddr net.Addr // bound addresses, known after Run starts listening
	started          chan struct{}
	closers          []func() error

	shutdownLimit time.Duration                 // bounds Run's shutdown; 0 means defaultShutdownLimit
	hung          bool                          // Run's shutdown hit shutdownLimit: Close leaves the stores alone
	stopped       chan struct{}                 // closed when Run's shutdown has finished, even after the limit
	extra         []func(context.Context) error // tests only: more components for Run
}

// ErrShutdownHung is returned by Run when its shutdown did not finish within
// the limit: the gateway exits anyway, as after a crash, rather than hang
// until a supervisor kills it without a word about why.
var ErrShutdownHung = errors.New("gateway: shutdown did not finish in time")

// defaultShutdownLimit bounds the whole shutdown. Its steps are bounded on
// their own (intake 10 s, the engine's drain 5 s, HTTP 10 s), so reaching it
// means a component is stuck; systemd's default stop timeout is 90 s.
const defaultShutdownLimit = 30 * time.Second

// NewApp builds every component from cfg. Nothing listens until Run.
func NewApp(ctx context.Context, cfg config.Config, log *slog.Logger) (a *App, err error) {
	a = &App{cfg: cfg, log: log, reg: prometheus.NewRegistry(), clk: clock.Real{}, started: make(chan struct{}),
		pub: events.Discard{}, guard: openGuard{}}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if a.db, err = store.Open(filepath.Join(cfg.DataDir, "lookout.db")); err != nil {
		return a, err
	}
	a.closers = append(a.closers, a.db.Close)

	// --- spool and InfluxDB writer ---
	if a.spool, err = spool.Open(cfg.SpoolDir(), cfg.Spool, a.reg); err != nil {
		return a, err
	}
	a.closers = append(a.closers, a.spool.Close)
	if a.writer, err = tsdb.NewWriter(cfg.Influx, a.spool, a.reg, log.With("component", "influx")); err != nil {
		return a, err
	}

	// --- geo ---
	if cfg.Geo.Dir == "" { // layers uploaded at run time survive a restart
		cfg.Geo.Dir = filepath.Join(cfg.DataDir, "geo")
	}
	if a.geoLayers, err = geo.NewLayers(cfg.Geo); err != nil {
		return a, err
	}
	log.Info("geo layers loaded", "features", a.geoLayers.Current().Counts())
	// --- alerting --- (before the registry: its hub is the events.Publisher everyone else uses)
	a.mqttOut = &mqttOut{}
	if a.alerts, err = alerting.New(ctx, alerting.Options{
		Config: cfg.Alerting, DB: a.db, Clock: a.clk, Directory: geoDirectory{a.geoLayers}, Geo: cameraGeo{a.geoLayers},
		MQTT: a.mqttOut, Points: spoolPoints{a.spool}, Registerer: a.reg, Logger: log.With("component", "alerting"),
		User: requestUser,
	}); err != nil {
		return a, err
	}
	a.closers = append(a.closers, a.alerts.Close)
	a.pub = a.alerts.Publisher()

	// --- registry --- (device.* health events reach alerting through a.pub)
	if a.devices, err = registry.Open(ctx, a.db, cfg.Registry, a.clk, a.pub, a.reg, log.With("component", "registry")); err != nil {
		return a, err
	}
	a.devices.SetLocator(a.geoLayers.TagPoint)
	// A new forest or zone layer re-derives every device's zone and forest.
	a.geoLayers.OnReplace(func(string) { a.devices.SetLocator(a.geoLayers.TagPoint) })
	if cfg.Registry.Seed != "" { // initial data: creates missing devices, never reverts edits or deletions
		n, err := a.devices.SeedFile(ctx, cfg.Registry.Seed)
		if err != nil {
			return a, fmt.Errorf("registry seed: %w", err)
		}
		log.Info("device registry seeded", "file", cfg.Registry.Seed, "created", n, "devices", a.devices.Len())
	}

	// --- hotspots ---
	if a.hotspots, err = newHotspots(ctx, cfg, a.db, a.geoLayers, a.pub, a.clk, a.reg, a.alerts, a.devices, log.With("component", "hotspots")); err != nil {
		return a, err
	}
	// --- video ---
	if a.video, err = video.NewManager(cfg.Video, cameraDirectory{a.devices}, a.pub, a.reg, log); err != nil {
		return a, err
	}
	a.closers = append(a.closers, a.video.Close)
	// Cameras with an rtsp_url in the registry are pulled over RTSP, now and after every edit.
	a.devices.Watch(followRegistry(a.video, log.With("component", "video")))
	// A deleted device's offline alert is cleared (it will never come back
	// online), and its MQTT account and camera tokens are revoked: a unit
	// registered later under the same id must not inherit the old secrets.
	a.devices.Watch(func(c registry.Change) {
		if c.Op != registry.ChangeDeleted {
			return
		}
		a.alerts.DeviceHealth(alerting.HealthEvent{DeviceID: c.Device.ID, Class: string(c.Device.Class), Zone: c.Device.Zone,
			To: alerting.HealthDeleted, At: a.clk.Now()})
		if a.sec == nil {
			return
		}
		if n, err := a.sec.store.RevokeDevice(context.Background(), c.Device.ID); err != nil {
			a.log.Error("revoke a deleted device's credentials", "device", c.Device.ID, "err", err)
		} else if n > 0 {
			a.log.Info("revoked a deleted device's credentials", "device", c.Device.ID, "removed", n)
		}
		revoker{a.sec.mqtt, a}.Forget(c.Device.ID)
	})
	// --- security ---
	if err = a.setupSecurity(ctx); err != nil {
		return a, err
	}

	// --- ingest ---
	deps := ingest.Deps{
		Admitter:    a.devices,
		Appender:    a.spool,
		Encode:      tsdb.EncodeReading,
		Clock:       a.clk,
		SnapshotDir: a.snapshotDir(),
		Log:         log.With("component", "ingest"),
		Registerer:  a.reg,
	}
	a.snapshots = ingest.NewSnapshotPruner(a.snapshotDir(), cfg.Ingest, a.reg)
	// --- geo tagger / alerting observer are added to deps here ---
	deps.Tagger = geoTagger{a.geoLayers}
	deps.Observers = append(deps.Observers, a.alerts)
	if cfg.MQTT.URL == "" {
		deps.Publisher = a.mqttOut
		if a.pipeline, err = ingest.NewPipeline(cfg.Ingest, deps); err != nil {
			return a, err
		}
		bopts := broker.Options{
			Addr:     cfg.MQTT.EmbeddedAddr,
			Prefix:   cfg.Ingest.TopicPrefix,
			Reserved: reservedTopics,
			Logger:   log,
		}
		if err = a.secureBroker(&bopts); err != nil { // security: auth hooks, limits, TLS
			return a, err
		}
		// ctx ends with the client's connection or when broker.Close starts:
		// a publish waiting for spool space then gives up unacked instead of
		// holding the shutdown or piling up behind a reconnected device.
		a.broker, err = broker.New(bopts, a.pipeline.Handle)
		if err != nil {
			return a, err
		}
		a.mqttOut.b = a.broker
	} else {
		deps.Publisher = a.mqttOut
		if a.pipeline, err = ingest.NewPipeline(cfg.Ingest, deps); err != nil {
			return a, err
		}
		a.consumer, err = ingest.NewConsumer(ingest.ConsumerOptions{
			URL: cfg.MQTT.URL, ClientID: cfg.MQTT.ClientID, Username: cfg.MQTT.Username, Password: cfg.MQTT.Password,
			SharedGroup: cfg.MQTT.SharedGroup, QoS: cfg.MQTT.QoS, KeepAlive: cfg.MQTT.KeepAlive,
			ConnectRetry: cfg.MQTT.ConnectRetry, QueueSize: cfg.Ingest.QueueSize, BatchSize: cfg.Ingest.BatchSize,
			Prefix: cfg.Ingest.TopicPrefix, Reserved: reservedTopics,
		}, a.pipeline, a.reg, log.With("component", "mqtt"))
		if err != nil {
			return a, err
		}
		a.mqttOut.c = a.consumer
	}
	return a, nil
}

// mqttOut publishes the gateway's own messages (dead letters, alerts) through
// whichever broker connection the gateway has.
type mqttOut struct {
	b *broker.Broker
	c *ingest.Consumer
}

// Publish sends at QoS 1 without waiting.
func (d *mqttOut) Publish(topic string, payload []byte) error {
	switch {
	case d.b != nil:
		return d.b.Publish(topic, payload, false, 1)
	case d.c != nil:
		return d.c.Publish(topic, payload)
	}
	return errors.New("no broker")
}

// PublishAlert serves alerting's MQTT outbox, which deletes a message on nil:
// the embedded broker takes it synchronously; through an external broker it
// returns once the broker has acknowledged it (PUBACK).
func (d *mqttOut) PublishAlert(ctx context.Context, topic string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.b == nil && d.c != nil {
		return d.c.PublishWait(ctx, topic, payload)
	}
	return d.Publish(topic, payload)
}

// Run starts every component and serves until parent ends, then shuts down in
// order: stop intake, stop HTTP, let the alerting engine evaluate what is
// queued and the writer finish its batch, close stores. The components run on
// their own context, cancelled only after intake and HTTP have stopped: a
// SIGTERM must not end the engine's drain while readings still come in.
func (a *App) Run(parent context.Context) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 8+len(a.extra))
	goRun := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}

	// HTTP first, so /healthz answers while the rest starts.
	api := apiMux(a.routes(), a.guard)
	ops := opsMux(a.reg, a.ready, a.cfg.HTTP.Pprof)
	var apiHandler http.Handler = api
	if a.cfg.HTTP.OpsAddr == "" {
		both := http.NewServeMux()
		both.Handle("/", api)
		both.Handle("/healthz", ops)
		both.Handle("/readyz", ops)
		both.Handle("/metrics", ops)
		both.Handle("/debug/pprof/", ops)
		apiHandler = both
	}
	apiSrv, err := a.listen(a.cfg.HTTP.Addr, apiHandler, a.cfg.HTTP.TLSCert, a.cfg.HTTP.TLSKey, &a.apiAddr)
	if err != nil {
		return err
	}
	servers := []*http.Server{apiSrv}
	if a.cfg.HTTP.OpsAddr != "" {
		opsSrv, err := a.listen(a.cfg.HTTP.OpsAddr, ops, "", "", &a.opsAddr)
		if err != nil {
			apiSrv.Close()
			return err
		}
		servers = append(servers, opsSrv)
	}

	goRun("influx writer", a.writer.Run)
	goRun("registry", a.devices.Run)
	goRun("alerting", a.alerts.Run)
	// --- background loops of other components start here ---
	goRun("hotspots", func(ctx context.Context) error { a.hotspots.Run(ctx, 5*time.Second, a.logHotspotErr); return nil })
	goRun("auth housekeeping", a.sec.http.Run)

	stopIntake, intakeDone := func() {}, chan struct{}(nil)
	if a.broker != nil {
		if err := a.broker.Start(); err != nil {
			return err
		}
		a.log.Info("embedded MQTT broker listening", "addr", a.cfg.MQTT.EmbeddedAddr)
	} else {
		// The consumer has its own context: shutdown stops it, and waits for it,
		// before the alerting engine drains its queue (nothing is observed after).
		var intakeCtx context.Context
		intakeCtx, stopIntake = context.WithCancel(ctx)
		intakeDone = make(chan struct{})
		goRun("mqtt consumer", func(context.Context) error {
			defer close(intakeDone)
			return a.consumer.Run(intakeCtx)
		})
	}
	for i, f := range a.extra {
		goRun("extra "+strconv.Itoa(i), f)
	}
	goRun("rate log", a.rateLog)
	goRun("snapshot pruning", func(ctx context.Context) error {
		a.snapshots.Run(ctx, 10*time.Minute, a.clk.Now, func(err error) { a.log.Warn("snapshots", "err", err) })
		return nil
	})
	close(a.started)

	var runErr error
	select {
	case <-parent.Done():
	case runErr = <-errc:
		a.log.Error("component failed; shutting down", "err", runErr)
	}
	stopped := make(chan struct{})
	a.stopped = stopped
	go func() {
		defer close(stopped)
		// Stop intake first: the broker stops acking, so nothing half-done is acked.
		// Close ends the broker's Intake before it waits for the clients, so a
		// publish blocked on a full spool (InfluxDB down) cannot hang the shutdown.
		if a.broker != nil {
			_ = a.broker.Close()
		}
		shutCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
		defer done()
		stopIntake()
		if intakeDone != nil {
			select {
			case <-intakeDone:
			case <-shutCtx.Done():
			}
		}
		a.stopRequests() // ends long-lived requests (SSE streams), which Shutdown would wait for
		for _, s := range servers {
			_ = s.Shutdown(shutCtx)
		}
		cancel()
		wg.Wait()
	}()
	limit := a.shutdownLimit
	if limit <= 0 {
		limit = defaultShutdownLimit
	}
	select {
	case <-stopped:
		return runErr
	case <-time.After(limit):
	}
	// Every reading the broker acked is in the spool, fsynced, and SQLite is
	// crash-safe: leaving now is a crash, which the stores are built for.
	// Closing them under goroutines still using them could hang again.
	a.hung = true
	var stacks bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
	a.log.Error("shutdown did not finish; exiting without closing the stores", "limit", limit,
		"goroutines", stacks.String())
	return errors.Join(runErr, ErrShutdownHung)
}

func (a *App) listen(addr string, h http.Handler, cert, key string, bound *net.Addr) (*http.Server, error) {
	if a.reqCtx == nil {
		a.reqCtx, a.stopRequests = context.WithCancel(context.Background())
	}
	if a.panics == nil {
		a.panics = prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_http_panics_total",
			Help: "HTTP handlers that panicked (answered 500 when the reply had not started; logged with a stack)."})
		if a.reg != nil {
			a.reg.MustRegister(a.panics)
		}
	}
	srv := &http.Server{Handler: web.Recover(h, a.log, a.panics.Inc), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		BaseContext: func(net.Listener) context.Context { return a.reqCtx }}
	if cert != "" {
		// Loaded here, not by ServeTLS in the goroutine: a bad certificate must
		// stop the start, not leave a bound port that never answers.
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("http tls %s: %w", addr, err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", addr, err)
	}
	*bound = l.Addr()
	go func() {
		var err error
		if cert != "" {
			err = srv.ServeTLS(l, "", "")
		} else {
			err = srv.Serve(l)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server", "addr", addr, "err", err)
		}
	}()
	a.log.Info("http listening", "addr", l.Addr().String(), "tls", cert != "")
	return srv, nil
}

// ready reports broker and InfluxDB state for /readyz.
func (a *App) ready() []readiness {
	var rs []readiness
	if a.broker != nil {
		rs = append(rs, readiness{Name: "mqtt", Ready: true, Note: "embedded broker"})
	} else if a.consumer != nil {
		rs = append(rs, readiness{Name: "mqtt", Ready: a.consumer.Connected(), Note: redact.URL(a.cfg.MQTT.URL)})
	}
	st := a.spool.Stats()
	rs = append(rs, readiness{Name: "influxdb", Ready: a.writer.Healthy(),
		Note: fmt.Sprintf("%s; spool %d bytes unsent", redact.URL(a.cfg.Influx.URL), st.Bytes)})
	return rs
}

// snapshotDir is where camera snapshots are written (and pruned).
func (a *App) snapshotDir() string { return filepath.Join(a.cfg.DataDir, "snapshots") }

// rateLog prints one line every 10 s with what flowed, so an operator watching
// `make run` sees readings arrive.
func (a *App) rateLog(ctx context.Context) error {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	lastAcc, lastRej := a.pipeline.Counts()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			acc, rej := a.pipeline.Counts()
			secs := now.Sub(last).Seconds()
			st := a.spool.Stats()
			a.log.Info("ingest", "readings_per_s", fmt.Sprintf("%.1f", float64(acc-lastAcc)/secs),
				"rejected_per_s", fmt.Sprintf("%.1f", float64(rej-lastRej)/secs), "stored_total", acc, "rejected_total", rej,
				"spool_bytes", st.Bytes, "influx_ok", a.writer.Healthy())
			lastAcc, lastRej, last = acc, rej, now
		}
	}
}

// Close releases what NewApp opened, in reverse order.
func (a *App) Close() {
	if a.hung {
		a.log.Warn("stores left open: the shutdown hung (see the error above)")
		return
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.log.Warn("close", "err", err)
		}
	}
	a.closers = nil
}
