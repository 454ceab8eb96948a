package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/registry"
)

// connect opens one MQTT connection, retrying until connectTimeout (the
// gateway may still be starting), and keeps it up with auto-reconnect.
func connect(ctx context.Context, o options, clientID, user, pass string) (mqtt.Client, error) {
	opts := mqtt.NewClientOptions().AddBroker(o.broker).SetClientID(clientID).SetCleanSession(true).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).SetKeepAlive(30 * time.Second).SetOrderMatters(false).
		// MQTT 3.1.1 only: with version 0 paho retries a refused CONNECT as 3.1,
		// so one wrong password would reach the broker (and its refusal counter) twice.
		SetProtocolVersion(4)
	if user != "" {
		opts.SetUsername(user).SetPassword(pass)
	}
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	timer := time.NewTimer(o.connectTimeout)
	defer timer.Stop()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return nil, fmt.Errorf("mqtt %s as %s: %w", o.broker, clientID, err)
		}
		return c, nil
	case <-timer.C:
		c.Disconnect(0)
		return nil, fmt.Errorf("mqtt %s as %s: not connected after %s (broker down or credentials refused?)", o.broker, clientID, o.connectTimeout)
	case <-ctx.Done():
		c.Disconnect(0)
		return nil, ctx.Err()
	}
}

// disconnectAll closes connections concurrently (paho's Disconnect waits up
// to its quiesce time each; one at a time, a fleet would take seconds to stop).
func disconnectAll(cs []mqtt.Client) {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() { defer wg.Done(); c.Disconnect(250) }()
	}
	wg.Wait()
}

// publishWait publishes at QoS 1 and waits for the PUBACK (or ctx).
func publishWait(ctx context.Context, c mqtt.Client, m message) error {
	tok := c.Publish(m.topic, 1, false, m.payload)
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// counters are the simulation's running totals, logged every --stats-every.
type counters struct {
	sent      [4]atomic.Int64 // by class index
	malformed atomic.Int64
	failed    atomic.Int64
	silenced  atomic.Int64
	alarms    atomic.Int64
	video     *cameraVideo // nil without --video
}

func classIndex(c ingest.Class) int {
	for i, x := range ingest.Classes {
		if x == c {
			return i
		}
	}
	return 0
}

// plan decides, from the seed, which devices get which fault.
type plan struct {
	offline    map[string]bool
	lowBattery map[string]bool
	tamper     string
}

func makePlan(o options, devs []registry.Device) plan {
	rng := rand.New(rand.NewPCG(o.seed, 0x5eed))
	p := plan{offline: map[string]bool{}, lowBattery: map[string]bool{}}
	for _, i := range rng.Perm(len(devs))[:min(o.offline, len(devs))] {
		p.offline[devs[i].ID] = true
	}
	nb := 0
	for _, d := range devs {
		if d.Class == ingest.ClassSmoke || d.Class == ingest.ClassStation {
			if o.lowBattery && nb%4 == 0 {
				p.lowBattery[d.ID] = true
			}
			nb++
			if o.tamper && p.tamper == "" && d.Class == ingest.ClassSmoke {
				p.tamper = d.ID
			}
		}
	}
	return p
}

// simulate runs every device until ctx ends.
func simulate(ctx context.Context, o options, devs []registry.Device, creds map[string]string, log *slog.Logger) error {
	if o.sharedConn && creds != nil {
		return errors.New("--credentials are per device: they need one connection per device (drop --shared-conn)")
	}
	p := makePlan(o, devs)
	now := time.Now()
	var clients []mqtt.Client
	defer func() { disconnectAll(clients) }()
	var shared mqtt.Client
	if o.sharedConn {
		c, err := connect(ctx, o, fmt.Sprintf("firmware-sim-%d", os.Getpid()), o.username, o.password)
		if err != nil {
			return err
		}
		clients = append(clients, c)
		shared = c
	}
	var cnt counters
	if o.video {
		v, err := newCameraVideo(o, log)
		if err != nil {
			return err
		}
		cnt.video = v
	}
	alarms := make([]chan struct{}, len(devs))
	var wg sync.WaitGroup
	errc := make(chan error, len(devs))
	for i, d := range devs {
		sd := newSimDevice(d, o.prefix, o.seed*1000003+uint64(i), now)
		if p.lowBattery[d.ID] {
			sd.setLowBattery()
		}
		if p.tamper == d.ID {
			sd.setTamper()
		}
		alarms[i] = make(chan struct{}, 1) // one pending demo alarm; more are skipped
		c := shared
		if c == nil {
			user, pass := o.username, o.password
			if creds != nil {
				pw, ok := creds[d.ID]
				if !ok {
					return fmt.Errorf("credentials: no password for device %s", d.ID)
				}
				user, pass = d.ID, pw
			}
			var err error
			if c, err = connect(ctx, o, d.ID, user, pass); err != nil {
				return err
			}
			clients = append(clients, c)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := runDevice(ctx, o, sd, c, p.offline[d.ID], alarms[i], &cnt, log); err != nil {
				errc <- err
			}
		}()
	}
	log.Info("simulating", "devices", len(devs), "broker", o.broker, "speed", o.speed, "shared_conn", o.sharedConn,
		"offline", len(p.offline), "low_battery", len(p.lowBattery), "tamper", p.tamper, "malformed_rate", o.malformedRate)

	if cnt.video != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cnt.video.run(ctx, devs)
		}()
	}
	if o.alarmEvery > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			demoAlarms(ctx, o, devs, alarms, log)
		}()
	}
	if o.statsEvery > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(o.statsEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					logStats(log, &cnt)
				}
			}
		}()
	}
	wg.Wait()
	logStats(log, &cnt)
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func logStats(log *slog.Logger, cnt *counters) {
	args := []any{"smoke", cnt.sent[0].Load(), "station", cnt.sent[1].Load(), "elec", cnt.sent[2].Load(),
		"camera", cnt.sent[3].Load(), "malformed", cnt.malformed.Load(), "failed", cnt.failed.Load(),
		"silenced", cnt.silenced.Load(), "alarms", cnt.alarms.Load()}
	if cnt.video != nil {
		args = append(args, "video_sessions", cnt.video.sessions.Load(), "video_failures", cnt.video.failures.Load())
	}
	log.Info("published", args...)
}

// demoAlarmReports is how many telemetry reports a --alarm-every alarm lasts:
// four smoke periods (15 min by default) outlast the gateway's default critical
// 叫应 deadline (5 min) twice, so the demo shows the call escalating to the
// parent zones before the device reports alarm_cleared (which stops it).
const demoAlarmReports = 4

// demoAlarms sets off smoke alarms round robin every --alarm-every (scaled).
func demoAlarms(ctx context.Context, o options, devs []registry.Device, alarms []chan struct{}, log *slog.Logger) {
	t := time.NewTicker(scale(o.alarmEvery, o.speed))
	defer t.Stop()
	next := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for k := 0; k < len(devs); k++ {
			i := (next + k) % len(devs)
			if devs[i].Class != ingest.ClassSmoke {
				continue
			}
			next = i + 1
			select {
			case alarms[i] <- struct{}{}:
				log.Info("demo smoke alarm", "device", devs[i].ID)
			default: // still pending from last time: skip, never block
			}
			break
		}
	}
}

func scale(d time.Duration, speed float64) time.Duration {
	s := time.Duration(float64(d) / speed)
	if s < time.Millisecond {
		s = time.Millisecond
	}
	return s
}

// telemetryEvery is a class's telemetry period (0 = the class sends none).
func telemetryEvery(o options, c ingest.Class) time.Duration {
	switch c {
	case ingest.ClassSmoke:
		return o.smokeEvery
	case ingest.ClassStation:
		return o.stationEvery
	case ingest.ClassElec:
		return o.elecEvery
	}
	return 0
}

// runDevice is one device's life: a heartbeat every registry interval,
// telemetry at its class period, detections at random (cameras), queued events
// at once; messages are published one at a time (a device waits for its
// PUBACK), optionally replaced by malformed ones; silent after offlineAfter
// when it is one of the --offline devices.
func runDevice(ctx context.Context, o options, sd *simDevice, c mqtt.Client, goesOffline bool, alarm <-chan struct{},
	cnt *counters, log *slog.Logger) error {
	rng := sd.rng
	start := time.Now()
	hbEvery := scale(sd.dev.Interval, o.speed)
	nextHB := start // first heartbeat at once, so the device shows online
	var nextTel, nextDet time.Time
	if p := telemetryEvery(o, sd.dev.Class); p > 0 {
		nextTel = start.Add(time.Duration(rng.Float64() * float64(scale(p, o.speed))))
	}
	detMean := scale(o.detectEvery, o.speed)
	if sd.dev.Class == ingest.ClassCamera && o.detectEvery > 0 {
		nextDet = start.Add(time.Duration(rng.ExpFloat64() * float64(detMean)))
	}
	silentAt := start.Add(scale(o.offlineAfter, o.speed))
	malformedN := rng.IntN(len(malformedKinds))
	ci := classIndex(sd.dev.Class)

	send := func(ms ...message) error {
		for _, m := range ms {
			if o.malformedRate > 0 && rng.Float64() < o.malformedRate {
				m = sd.malformed(time.Now(), malformedN, o.maxPayload)
				malformedN++
				cnt.malformed.Add(1)
			}
			if err := publishWait(ctx, c, m); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				cnt.failed.Add(1)
				log.Warn("publish failed", "device", sd.dev.ID, "topic", m.topic, "err", err)
				continue
			}
			cnt.sent[ci].Add(1)
		}
		return nil
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		if goesOffline && !now.Before(silentAt) {
			cnt.silenced.Add(1)
			log.Info("device goes silent (--offline)", "device", sd.dev.ID)
			<-ctx.Done()
			return nil
		}
		var out []message
		if !now.Before(nextHB) {
			out = append(out, sd.heartbeat(now))
			nextHB = nextHB.Add(hbEvery)
			if nextHB.Before(now) {
				nextHB = now.Add(hbEvery)
			}
		}
		if !nextTel.IsZero() && !now.Before(nextTel) {
			out = append(out, sd.telemetry(now, o.alarmProb)...)
			nextTel = nextTel.Add(scale(telemetryEvery(o, sd.dev.Class), o.speed))
			if nextTel.Before(now) {
				nextTel = now
			}
		}
		if !nextDet.IsZero() && !now.Before(nextDet) {
			// a real camera reports a plume several times while it tracks it
			for range 1 + rng.IntN(3) {
				out = append(out, sd.detection(now))
			}
			nextDet = now.Add(time.Duration(rng.ExpFloat64() * float64(detMean)))
		}
		out = append(out, sd.takeEvents(now)...)
		if err := send(out...); err != nil {
			return nil // ctx ended
		}
		wake := nextHB
		for _, t := range []time.Time{nextTel, nextDet, silentAt} {
			if !t.IsZero() && t.Before(wake) && (t != silentAt || goesOffline) {
				wake = t
			}
		}
		timer.Reset(time.Until(wake))
		select {
		case <-ctx.Done():
			return nil
		case <-alarm:
			if sd.startAlarm(demoAlarmReports) {
				cnt.alarms.Add(1)
				nextTel = time.Now() // report the alarm telemetry at once
			}
			if !timer.Stop() {
				<-timer.C
			}
		case <-timer.C:
		}
	}
}

// loadResult is what --load measured.
type loadResult struct {
	n, failed int64
	elapsed   time.Duration
	conns     int
	inflight  int
}

func (r loadResult) rate() float64 { return float64(r.n-r.failed) / r.elapsed.Seconds() }

func (r loadResult) String() string {
	return fmt.Sprintf("load: %d readings acknowledged (QoS 1) in %s = %.0f msg/s over %d connection(s), %d in flight each; %d failed",
		r.n-r.failed, r.elapsed.Round(time.Millisecond), r.rate(), r.conns, r.inflight, r.failed)
}

// runLoad publishes o.load valid readings as fast as the broker acknowledges
// them: o.loadConn connections, each with up to o.inflight unacknowledged QoS 1
// messages (a bounded FIFO of tokens; the publisher blocks when it is full).
// Every reading gets its own millisecond timestamp in the recent past, so each
// one is a distinct point downstream. With --credentials, connection i logs in
// as device i and publishes only that device's topics (ACLs allow no more).
func runLoad(ctx context.Context, o options, devs []registry.Device, creds map[string]string) (loadResult, error) {
	conns := o.loadConn
	if creds != nil {
		conns = min(conns, len(devs))
	}
	clients := make([]mqtt.Client, conns)
	for i := range conns {
		user, pass, id := o.username, o.password, fmt.Sprintf("firmware-sim-load-%d-%d", os.Getpid(), i)
		if creds != nil {
			pw, ok := creds[devs[i].ID]
			if !ok {
				return loadResult{}, fmt.Errorf("credentials: no password for device %s", devs[i].ID)
			}
			user, pass, id = devs[i].ID, pw, devs[i].ID
		}
		c, err := connect(ctx, o, id, user, pass)
		if err != nil {
			disconnectAll(clients[:i])
			return loadResult{}, err
		}
		clients[i] = c
	}
	defer disconnectAll(clients)
	n := int64(o.load)
	base := time.Now().Add(-time.Duration(n)*time.Millisecond - time.Second).Truncate(time.Millisecond)
	var failed atomic.Int64
	var errMu sync.Mutex
	var firstErr error
	noteErr := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
	}
	var wg sync.WaitGroup
	start := time.Now()
	for ci, c := range clients {
		// each connection simulates its own copies of the devices (simDevice
		// is single-goroutine)
		var sds []*simDevice
		if creds != nil {
			sds = []*simDevice{newSimDevice(devs[ci], o.prefix, o.seed+uint64(ci), start)}
		} else {
			for j, d := range devs {
				sds = append(sds, newSimDevice(d, o.prefix, o.seed+uint64(ci*len(devs)+j), start))
			}
		}
		pending := make(chan mqtt.Token, o.inflight)
		wg.Add(2)
		go func() { // waiter: acknowledgements arrive in order per connection
			defer wg.Done()
			for tok := range pending {
				select {
				case <-tok.Done():
					if err := tok.Error(); err != nil {
						failed.Add(1)
						noteErr(err)
					}
				case <-ctx.Done():
					failed.Add(1)
				}
			}
		}()
		go func() { // publisher
			defer wg.Done()
			defer close(pending)
			for k, idx := 0, int64(ci); idx < n; k, idx = k+1, idx+int64(conns) {
				if ctx.Err() != nil {
					failed.Add(1)
					continue
				}
				sd := sds[(k+ci)%len(sds)]
				m := sd.loadMessage(base.Add(time.Duration(idx) * time.Millisecond))
				pending <- c.Publish(m.topic, 1, false, m.payload)
			}
		}()
	}
	wg.Wait()
	res := loadResult{n: n, failed: failed.Load(), elapsed: time.Since(start), conns: conns, inflight: o.inflight}
	if res.failed > 0 {
		err := firstErr
		if err == nil {
			err = ctx.Err()
		}
		return res, fmt.Errorf("%s: %w", res, err)
	}
	return res, nil
}
