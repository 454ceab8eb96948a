package registry

import (
	"context"
	"sort"
	"time"

	"github.com/lookoutfire/lookout/ingest"
)

// Health rules
//
// A device is online while its silence is at most one interval (plus a 10 %
// tolerance for clock jitter and network delay), late after one missed
// interval, and offline after cfg.OfflineAfter missed intervals. RunDue only
// ever worsens a state (online → late → offline); only a message (Admit)
// brings a device back online, so a check can never invent a recovery.
//
// Restart grace: silence is measured from max(last seen, registry start). A
// device that was online when the gateway stopped therefore gets its full
// late/offline allowance again after a restart instead of being declared
// offline at the first check for the time the gateway itself was down (the
// persistent MQTT session delivers what it queued meanwhile). Devices stored
// as late or offline keep that state until they speak.
//
// Wall-clock steps: the registry's clock is the wall clock (clock.Real is UTC,
// without a monotonic reading), so NTP or an operator can step it. A check
// that comes more than jumpFactor check intervals after the previous one is
// taken for a forward step (or a suspended process) and handled like a
// restart: silence is counted from that check, so a step does not mark every
// device offline at once. A last seen (or start) ahead of now, left by a
// backward step, is moved back to now, so the device still goes late after
// its allowance instead of staying online until the clock catches up.

// jumpFactor times cfg.CheckEvery is the gap between two checks past which
// RunDue treats the clock as having jumped forward.
const jumpFactor = 10

// clockSlack is how far a last seen may be ahead of a check's now before it is
// rewritten: a message admitted while the check runs is normally a few
// microseconds ahead, and is not worth a write.
const clockSlack = time.Second

// tolerance is the slack on top of each interval before a heartbeat counts as missed.
func tolerance(iv time.Duration) time.Duration { return iv / 10 }

// classify gives the state for a silence of age on a device with interval iv.
func (g *Registry) classify(age, iv time.Duration) string {
	tol := tolerance(iv)
	switch {
	case age <= iv+tol:
		return StateOnline
	case age <= time.Duration(g.cfg.OfflineAfter)*iv+tol:
		return StateLate
	}
	return StateOffline
}

func rank(state string) int {
	switch state {
	case StateOnline:
		return 1
	case StateLate:
		return 2
	case StateOffline:
		return 3
	}
	return 0
}

// RunDue is the deterministic health step: it emits recoveries seen by Admit,
// moves silent devices to late/offline (each transition emitted exactly once,
// to the health sink and as "device.<state>" events), flushes changed health
// to SQLite in one transaction and refreshes the gauges. A failed flush keeps
// the rows dirty for the next call and returns the error.
//
// RunDue also follows wall-clock steps (see "Wall-clock steps" above): it
// expects to be called every cfg.CheckEvery, as Run does.
func (g *Registry) RunDue(ctx context.Context, now time.Time) error {
	g.mu.RLock()
	list := g.entriesLocked()
	sink := g.sink
	g.mu.RUnlock()
	start := g.clockStep(now)

	var evs []HealthEvent
	for _, e := range list {
		e.mu.Lock()
		if e.pending {
			evs = append(evs, HealthEvent{DeviceID: e.d.ID, Class: e.d.Class, Zone: e.d.Zone, From: e.pendingFrom,
				To: StateOnline, At: e.pendingAt, LastSeen: e.lastSeen})
			e.pending = false
		}
		if e.lastSeen.After(now.Add(clockSlack)) { // the clock stepped back: heard now, not in the future
			e.lastSeen, e.dirty = now, true
		}
		if e.state == StateOnline || e.state == StateLate {
			ref := e.lastSeen
			if ref.Before(start) {
				ref = start
			}
			if ref.After(now) {
				ref = now
			}
			if to := g.classify(now.Sub(ref), e.d.Interval); rank(to) > rank(e.state) {
				evs = append(evs, HealthEvent{DeviceID: e.d.ID, Class: e.d.Class, Zone: e.d.Zone, From: e.state,
					To: to, At: now, LastSeen: e.lastSeen})
				e.state, e.dirty = to, true
			}
		}
		e.mu.Unlock()
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].At.Before(evs[j].At) })
	for _, ev := range evs {
		g.m.transitions.WithLabelValues(ev.To).Inc()
		if sink != nil {
			sink(ev)
		}
		g.pub.Publish("device."+ev.To, ev)
		if ev.To == StateOffline {
			g.log.Warn("device offline", "device", ev.DeviceID, "class", ev.Class, "zone", ev.Zone, "last_seen", ev.LastSeen)
		}
	}
	err := g.flush(ctx, now)
	g.updateGauges()
	return err
}

// clockStep records now as the latest check and returns the restart-grace
// reference for it: moved to now when the clock jumped forward since the
// previous check (more than jumpFactor check intervals) and when a backward
// step left it ahead of now.
func (g *Registry) clockStep(now time.Time) time.Time {
	g.hmu.Lock()
	defer g.hmu.Unlock()
	prev := g.lastCheck
	g.lastCheck = now
	if gap := now.Sub(prev); !prev.IsZero() && gap > jumpFactor*g.cfg.CheckEvery {
		g.log.Warn("registry: clock jumped forward (or the gateway was suspended); device silence counted from now, as after a restart",
			"gap", gap.Round(time.Second), "check_every", g.cfg.CheckEvery)
		g.start = now
	}
	if g.start.After(now) {
		g.start = now
	}
	return g.start
}

// Flush writes changed health to SQLite now (RunDue does it on every step;
// call Flush at shutdown).
func (g *Registry) Flush(ctx context.Context) error { return g.flush(ctx, g.clk.Now()) }

func (g *Registry) flush(ctx context.Context, now time.Time) error {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	var rows []healthRow
	var taken []*entry
	for _, e := range g.entries() {
		e.mu.Lock()
		if e.dirty || e.isNew {
			rows = append(rows, healthRow{d: e.snapshot(), isNew: e.isNew})
			taken = append(taken, e)
			e.dirty, e.isNew = false, false
		}
		e.mu.Unlock()
	}
	if len(rows) == 0 {
		return nil
	}
	// Write in short transactions: SQLite has one writer, and alerts raised
	// meanwhile must not wait behind thousands of health rows.
	for start := 0; start < len(rows); start += flushChunk {
		end := min(start+flushChunk, len(rows))
		if err := writeHealth(ctx, g.db, rows[start:end], now); err != nil {
			for i := start; i < len(rows); i++ { // this chunk and the rest stay queued
				e := taken[i]
				e.mu.Lock()
				e.dirty = true
				e.isNew = e.isNew || rows[i].isNew
				e.mu.Unlock()
			}
			g.m.flushFails.Inc()
			return err
		}
	}
	return nil
}

// flushChunk bounds the rows of one health-flush transaction (a few ms of
// SQLite's write lock on this machine).
const flushChunk = 200

// Run calls RunDue every cfg.CheckEvery until ctx ends, then flushes once more
// (with a short fresh context) so a clean shutdown loses no health update.
func (g *Registry) Run(ctx context.Context) error {
	t := time.NewTicker(g.cfg.CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := g.Flush(fctx); err != nil {
				g.log.Error("registry: final flush failed", "err", err)
			}
			return nil
		case <-t.C:
			if err := g.RunDue(ctx, g.clk.Now()); err != nil && ctx.Err() == nil {
				g.log.Error("registry: health step failed", "err", err)
			}
		}
	}
}

// ZoneHealth is the connection summary of one responsibility zone. Rate is the
// share of the zone's devices that are online (0 when it has none).
type ZoneHealth struct {
	Zone    string  `json:"zone"`
	Total   int     `json:"total"`
	Online  int     `json:"online"`
	Late    int     `json:"late"`
	Offline int     `json:"offline"`
	Never   int     `json:"never"`
	Rate    float64 `json:"rate"`
}

func (z *ZoneHealth) add(state string) {
	z.Total++
	switch state {
	case StateOnline:
		z.Online++
	case StateLate:
		z.Late++
	case StateOffline:
		z.Offline++
	default:
		z.Never++
	}
	z.Rate = float64(z.Online) / float64(z.Total)
}

// ZoneHealth returns the per-zone summary over every device, sorted by zone
// (devices without a zone are summarised under "").
func (g *Registry) ZoneHealth() []ZoneHealth {
	return summarise(g.List(Filter{}))
}

func summarise(devs []Device) []ZoneHealth {
	by := map[string]*ZoneHealth{}
	for _, d := range devs {
		z := by[d.Zone]
		if z == nil {
			z = &ZoneHealth{Zone: d.Zone}
			by[d.Zone] = z
		}
		z.add(d.State)
	}
	out := make([]ZoneHealth, 0, len(by))
	for _, z := range by {
		out = append(out, *z)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Zone < out[j].Zone })
	return out
}

func total(zs []ZoneHealth) ZoneHealth {
	t := ZoneHealth{Zone: "*"}
	for _, z := range zs {
		t.Total += z.Total
		t.Online += z.Online
		t.Late += z.Late
		t.Offline += z.Offline
		t.Never += z.Never
	}
	if t.Total > 0 {
		t.Rate = float64(t.Online) / float64(t.Total)
	}
	return t
}

// updateGauges recounts lookout_devices{class,state}.
func (g *Registry) updateGauges() {
	counts := map[[2]string]int{}
	for _, e := range g.entries() {
		e.mu.Lock()
		counts[[2]string{string(e.d.Class), e.state}]++
		e.mu.Unlock()
	}
	for _, c := range ingest.Classes {
		for _, s := range States {
			g.m.devices.WithLabelValues(string(c), s).Set(float64(counts[[2]string{string(c), s}]))
		}
	}
}
