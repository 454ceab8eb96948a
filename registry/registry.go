package registry

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/events"
	"github.com/lookoutfire/lookout/ingest"
)

// HealthEvent is one health state transition of one device. Alerting turns
// offline transitions into alerts and online ones into their clearing.
type HealthEvent struct {
	DeviceID string       `json:"device_id"`
	Class    ingest.Class `json:"class"`
	Zone     string       `json:"zone"`
	From     string       `json:"from"`
	To       string       `json:"to"`
	At       time.Time    `json:"at"`
	LastSeen time.Time    `json:"last_seen,omitzero"`
}

// Locator maps a position to its innermost responsibility zone and forest.
type Locator func(lat, lon float64) (zone, forest string)

// Filter selects devices in List; empty fields match everything.
type Filter struct {
	Class ingest.Class
	Zone  string
	State string
}

// entry is one device in memory. The static part (d, without health) changes
// only through CRUD; the health part changes with every admitted message and is
// flushed to SQLite by RunDue. mu guards all of it.
type entry struct {
	mu sync.Mutex
	d  Device // static fields; d's health fields are unused

	lastSeen    time.Time
	battery     float64
	hasBattery  bool
	rssi        float64
	hasRSSI     bool
	state       string
	dirty       bool // health (or zone/forest/firmware) changed since the last flush
	isNew       bool // auto-registered, not yet in SQLite
	pending     bool // Admit saw a non-online device speak; RunDue emits the transition
	pendingFrom string
	pendingAt   time.Time
}

// snapshot returns the device with health filled in. Caller holds e.mu.
func (e *entry) snapshot() Device {
	d := e.d
	d.LastSeen = e.lastSeen
	d.State = e.state
	if e.hasBattery {
		v := e.battery
		d.Battery = &v
	}
	if e.hasRSSI {
		v := e.rssi
		d.RSSI = &v
	}
	return d
}

// Registry is the in-memory device table backed by SQLite. Admit (the ingest
// hot path) touches memory only; persistence of health is batched by RunDue,
// static edits are written through at once.
type Registry struct {
	cfg Config
	db  *sql.DB
	clk clock.Clock
	pub events.Publisher
	log *slog.Logger

	// devs maps id → *entry. A sync.Map because the table is read on every
	// message from every broker goroutine and written rarely: its reads take
	// no lock, so Admit does not contend on a shared reader count. Inserts and
	// deletes happen under mu, which also guards locator, sink and n.
	devs    sync.Map
	n       int
	mu      sync.RWMutex
	locator Locator
	sink    func(HealthEvent)

	// wmu serialises SQL writers (CRUD and flush), so a flush can never
	// resurrect a device that a concurrent Delete removed. It also guards
	// watchers and orders their calls (see Watch).
	wmu      sync.Mutex
	watchers []func(Change)

	// hmu guards RunDue's clock bookkeeping. start is when this registry was
	// opened, or when RunDue last saw the clock jump forward: the restart
	// grace measures a device's silence from max(last seen, start). lastCheck
	// is the previous RunDue's now (zero before the first). See RunDue.
	hmu       sync.Mutex
	start     time.Time
	lastCheck time.Time
	m         metrics
}

type metrics struct {
	devices     *prometheus.GaugeVec
	messages    map[ingest.Class]prometheus.Counter
	unknown     *prometheus.CounterVec
	mismatch    prometheus.Counter
	flushFails  prometheus.Counter
	transitions *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	m := metrics{
		devices: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lookout_devices",
			Help: "Registered devices by class and health state."}, []string{"class", "state"}),
		messages: map[ingest.Class]prometheus.Counter{},
		unknown: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_device_unknown_total",
			Help: "Messages from unregistered devices, by action (rejected, registered, refused_full)."}, []string{"action"}),
		mismatch: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_device_class_mismatch_total",
			Help: "Messages whose topic class differs from the registered class."}),
		flushFails: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_registry_flush_errors_total",
			Help: "Failed health flushes to SQLite (retried at the next check)."}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_device_transitions_total",
			Help: "Device health transitions, by target state."}, []string{"to"}),
	}
	msgs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_device_messages_total",
		Help: "Messages admitted from registered devices, by class."}, []string{"class"})
	for _, c := range ingest.Classes {
		m.messages[c] = msgs.WithLabelValues(string(c))
		for _, s := range States {
			m.devices.WithLabelValues(string(c), s)
		}
	}
	for _, a := range []string{"rejected", "registered", "refused_full"} {
		m.unknown.WithLabelValues(a)
	}
	for _, s := range States {
		m.transitions.WithLabelValues(s)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.devices, msgs, m.unknown, m.mismatch, m.flushFails, m.transitions} {
			if err := reg.Register(c); err != nil {
				return m, fmt.Errorf("registry: metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Open migrates the schema, loads every device into memory and returns the
// registry. The caller owns db. reg may be nil (metrics are then not exported).
func Open(ctx context.Context, db *sql.DB, cfg Config, clk clock.Clock, pub events.Publisher,
	reg prometheus.Registerer, log *slog.Logger) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("registry: config: %w", err)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	if pub == nil {
		pub = events.Discard{}
	}
	if log == nil {
		log = slog.Default()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	g := &Registry{cfg: cfg, db: db, clk: clk, pub: pub, log: log, m: m,
		start: clk.Now()}
	if err := migrate(ctx, db); err != nil {
		return nil, err
	}
	if err := g.load(ctx); err != nil {
		return nil, err
	}
	g.updateGauges()
	return g, nil
}

// SetLocator installs the geo lookup and re-locates every positioned device
// at once (call it again after a layer swap). The locator's zone wins when it
// finds one; otherwise the device's configured zone applies ("" when none was
// configured), never a zone derived from an earlier layer. Its forest always
// wins ("" = not inside a forest).
func (g *Registry) SetLocator(f Locator) {
	g.mu.Lock()
	g.locator = f
	list := g.entriesLocked()
	g.mu.Unlock()
	if f == nil {
		return
	}
	for _, e := range list {
		e.mu.Lock()
		lat, lon := e.d.Lat, e.d.Lon
		e.mu.Unlock()
		if lat == 0 && lon == 0 {
			continue
		}
		zone, forest := f(lat, lon)
		e.mu.Lock()
		if e.d.Lat != lat || e.d.Lon != lon { // moved meanwhile: its edit located it
			e.mu.Unlock()
			continue
		}
		if z := effectiveZone(zone, e.d.ConfiguredZone); z != e.d.Zone {
			e.d.Zone, e.dirty = z, true
		}
		if forest != e.d.Forest {
			e.d.Forest, e.dirty = forest, true
		}
		e.mu.Unlock()
	}
}

// effectiveZone is the zone a device is in: the one the locator found, else
// the configured one.
func effectiveZone(located, configured string) string {
	if located != "" {
		return located
	}
	return configured
}

// locate applies the locator to a device about to be stored: d.Zone becomes
// the zone in effect (located, else d.ConfiguredZone).
func (g *Registry) locate(d *Device) {
	d.Zone = d.ConfiguredZone
	g.mu.RLock()
	f := g.locator
	g.mu.RUnlock()
	if f == nil || (d.Lat == 0 && d.Lon == 0) {
		return
	}
	zone, forest := f(d.Lat, d.Lon)
	d.Zone = effectiveZone(zone, d.ConfiguredZone)
	d.Forest = forest
}

// SetHealthSink installs the callback (alerting) called on every health
// transition, from RunDue's goroutine, after the registry's locks are released.
func (g *Registry) SetHealthSink(f func(HealthEvent)) {
	g.mu.Lock()
	g.sink = f
	g.mu.Unlock()
}

// Admit is the ingest hot path: it looks the device up in memory, applies the
// unknown-device policy and the class check, records last seen, battery, RSSI
// and firmware from the reading, and fills the reading's position, zone and
// forest. It never does I/O.
func (g *Registry) Admit(r *ingest.Reading) error {
	e := g.lookup(r.DeviceID)
	if e == nil {
		var err error
		if e, err = g.unknown(r); err != nil {
			return err
		}
	}
	e.mu.Lock()
	if e.d.Class != r.Class {
		class := e.d.Class
		e.mu.Unlock()
		g.m.mismatch.Inc()
		return &ingest.Reject{Reason: ingest.ReasonClassMismatch, Field: "class",
			Detail: fmt.Sprintf("device %s is registered as %s, topic says %s", r.DeviceID, class, r.Class)}
	}
	if r.Received.After(e.lastSeen) {
		e.lastSeen = r.Received
	}
	if v, ok := r.Fields["battery_pct"].(float64); ok {
		e.battery, e.hasBattery = v, true
	}
	if v, ok := r.Fields["rssi_dbm"].(float64); ok {
		e.rssi, e.hasRSSI = v, true
	}
	if v, ok := r.Fields["fw"].(string); ok && v != e.d.Firmware {
		e.d.Firmware = v
	}
	if e.state != StateOnline {
		if !e.pending {
			e.pending, e.pendingFrom, e.pendingAt = true, e.state, r.Received
		}
		e.state = StateOnline
	}
	e.dirty = true
	r.Lat, r.Lon, r.Zone, r.Forest = e.d.Lat, e.d.Lon, e.d.Zone, e.d.Forest
	e.mu.Unlock()
	g.m.messages[r.Class].Inc()
	return nil
}

// unknown applies the unknown-device policy. Auto-registered devices are kept
// in memory at once and written to SQLite by the next RunDue.
func (g *Registry) unknown(r *ingest.Reading) (*entry, error) {
	if g.cfg.UnknownDevices != "register" {
		g.m.unknown.WithLabelValues("rejected").Inc()
		return nil, &ingest.Reject{Reason: ingest.ReasonUnknownDevice, Field: "device_id",
			Detail: fmt.Sprintf("device %s is not registered", r.DeviceID)}
	}
	if !r.Class.Valid() || !ingest.ValidDeviceID(r.DeviceID) {
		return nil, &ingest.Reject{Reason: ingest.ReasonUnknownDevice, Field: "device_id", Detail: "cannot register"}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if e := g.lookup(r.DeviceID); e != nil { // registered meanwhile
		return e, nil
	}
	if g.n >= g.cfg.MaxDevices {
		g.m.unknown.WithLabelValues("refused_full").Inc()
		return nil, &ingest.Reject{Reason: ingest.ReasonUnknownDevice, Field: "device_id",
			Detail: fmt.Sprintf("device %s is not registered and the registry is full (max_devices %d)", r.DeviceID, g.cfg.MaxDevices)}
	}
	e := &entry{d: Device{ID: r.DeviceID, Class: r.Class, Name: r.DeviceID, Interval: g.cfg.DefaultInterval,
		AutoRegistered: true, Installed: r.Received}, state: StateNever, isNew: true}
	g.putLocked(e)
	g.m.unknown.WithLabelValues("registered").Inc()
	g.log.Info("device auto-registered", "device", r.DeviceID, "class", r.Class)
	return e, nil
}

func (g *Registry) lookup(id string) *entry {
	if v, ok := g.devs.Load(id); ok {
		return v.(*entry)
	}
	return nil
}

// putLocked adds a new entry. Caller holds g.mu for writing.
func (g *Registry) putLocked(e *entry) {
	if _, loaded := g.devs.Swap(e.d.ID, e); !loaded {
		g.n++
	}
}

func (g *Registry) put(e *entry) {
	g.mu.Lock()
	g.putLocked(e)
	g.mu.Unlock()
}

func (g *Registry) entriesLocked() []*entry {
	list := make([]*entry, 0, g.n)
	g.devs.Range(func(_, v any) bool {
		list = append(list, v.(*entry))
		return true
	})
	return list
}

func (g *Registry) entries() []*entry {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.entriesLocked()
}

// Get returns one device with its health.
func (g *Registry) Get(id string) (Device, bool) {
	e := g.lookup(id)
	if e == nil {
		return Device{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.snapshot(), true
}

// List returns the devices matching f, sorted by id.
func (g *Registry) List(f Filter) []Device {
	var out []Device
	for _, e := range g.entries() {
		e.mu.Lock()
		d := e.snapshot()
		e.mu.Unlock()
		if (f.Class == "" || d.Class == f.Class) && (f.Zone == "" || d.Zone == f.Zone) && (f.State == "" || d.State == f.State) {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Len is the number of registered devices.
func (g *Registry) Len() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.n
}

// Create registers a new device; ErrDeviceExists when the id is taken.
func (g *Registry) Create(ctx context.Context, d Device) error {
	d, err := g.normalize(d)
	if err != nil {
		return err
	}
	g.wmu.Lock()
	defer g.wmu.Unlock()
	if _, ok := g.Get(d.ID); ok {
		return fmt.Errorf("%s: %w", d.ID, ErrDeviceExists)
	}
	return g.insertLocked(ctx, d)
}

// Update replaces a device's static fields, keeping its health;
// ErrDeviceNotFound when it does not exist.
func (g *Registry) Update(ctx context.Context, d Device) error {
	d, err := g.normalize(d)
	if err != nil {
		return err
	}
	g.wmu.Lock()
	defer g.wmu.Unlock()
	e := g.lookup(d.ID)
	if e == nil {
		return fmt.Errorf("%s: %w", d.ID, ErrDeviceNotFound)
	}
	return g.replace(ctx, e, d)
}

// replace writes d's static fields (keeping health) to SQLite and memory. Holds wmu.
func (g *Registry) replace(ctx context.Context, e *entry, d Device) error {
	e.mu.Lock()
	if e.isNew { // auto-registered and not flushed yet: write the full row now
		h := e.snapshot()
		e.mu.Unlock()
		row := d
		row.LastSeen, row.Battery, row.RSSI, row.State = h.LastSeen, h.Battery, h.RSSI, h.State
		if err := insertDevice(ctx, g.db, row, g.clk.Now()); err != nil {
			return err
		}
		e.mu.Lock()
		e.isNew = false
	}
	// Firmware is the device's to report: a seed or edit value is only the
	// initial one, and is kept when empty.
	if d.Firmware == "" || !e.lastSeen.IsZero() {
		d.Firmware = e.d.Firmware
	}
	e.mu.Unlock()
	if err := updateStatic(ctx, g.db, d, g.clk.Now()); err != nil {
		return err
	}
	e.mu.Lock()
	e.d = stripHealth(d)
	e.mu.Unlock()
	g.updateGauges()
	g.announceEntryLocked(ChangeUpdated, e)
	return nil
}

// Upsert creates the device or replaces its static fields (seed import).
func (g *Registry) Upsert(ctx context.Context, d Device) error {
	d, err := g.normalize(d)
	if err != nil {
		return err
	}
	g.wmu.Lock()
	defer g.wmu.Unlock()
	return g.upsertLocked(ctx, d)
}

func (g *Registry) upsertLocked(ctx context.Context, d Device) error {
	e := g.lookup(d.ID)
	if e != nil {
		return g.replace(ctx, e, d)
	}
	return g.insertLocked(ctx, d)
}

// insertLocked stores a new device, never seen yet, and announces it. Holds wmu.
func (g *Registry) insertLocked(ctx context.Context, d Device) error {
	d.State, d.LastSeen, d.Battery, d.RSSI = StateNever, time.Time{}, nil, nil
	if err := insertDevice(ctx, g.db, d, g.clk.Now()); err != nil {
		return err
	}
	e := &entry{d: stripHealth(d), state: StateNever}
	g.put(e)
	g.updateGauges()
	g.announceEntryLocked(ChangeCreated, e)
	return nil
}

// Delete removes a device; ErrDeviceNotFound when it does not exist. The id
// is remembered so the start-up seed (SeedFile) does not re-create it.
func (g *Registry) Delete(ctx context.Context, id string) error {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	e := g.lookup(id)
	if e == nil {
		return fmt.Errorf("%s: %w", id, ErrDeviceNotFound)
	}
	if err := deleteDevice(ctx, g.db, id, g.clk.Now()); err != nil {
		return err
	}
	g.mu.Lock()
	if _, ok := g.devs.LoadAndDelete(id); ok {
		g.n--
	}
	g.mu.Unlock()
	g.updateGauges()
	g.announceEntryLocked(ChangeDeleted, e)
	return nil
}

// normalize applies the default interval, takes the configured zone
// (ConfiguredZone, else Zone unless derivedOnly), re-validates a Device built in code
// (Input.Device validates API and seed input), so Create/Update cannot store
// what the API would refuse, and tags it with its zone and forest.
func (g *Registry) normalize(d Device) (Device, error) {
	if d.Interval == 0 {
		d.Interval = g.cfg.DefaultInterval
	}
	if d.ConfiguredZone == "" && d.Zone != "" && !g.derivedOnly(d.ID, d.Zone) {
		d.ConfiguredZone = d.Zone
	}
	lat, lon, s := d.Lat, d.Lon, d.Interval.Seconds()
	in := Input{ID: d.ID, Class: string(d.Class), Name: d.Name, Lat: &lat, Lon: &lon, RTSPURL: d.RTSPURL,
		PanDeg: d.PanDeg, HFOVDeg: d.HFOVDeg, IntervalS: &s, Zone: d.ConfiguredZone, Forest: d.Forest, Firmware: d.Firmware}
	if _, err := in.Device(g.cfg.DefaultInterval); err != nil {
		return d, err
	}
	g.locate(&d)
	return d, nil
}

// derivedOnly reports whether zone is merely the zone the registry derived
// for the registered device id, which has no configured zone: a Device read
// back with Get and written again must not turn it into a configured one.
func (g *Registry) derivedOnly(id, zone string) bool {
	e := g.lookup(id)
	if e == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.d.ConfiguredZone == "" && e.d.Zone == zone
}

func stripHealth(d Device) Device {
	d.LastSeen, d.Battery, d.RSSI, d.State = time.Time{}, nil, nil, ""
	return d
}
