// Package alerting turns readings and health events into alerts with one lifecycle, fire danger, incidents and the 叫应 escalation chain.
//
// One Engine owns the rules (smoke, elec, camera, station fire danger, device
// health), the alert store in SQLite (exactly one active alert per source and
// type, with an audit trail), incidents, the escalation timers that call duty
// contacts zone by zone until someone acknowledges, and the notifiers: the SSE hub
// (which also implements events.Publisher for the rest of the gateway), the webhook
// and MQTT outboxes, and CAP 1.2. Everything that must survive a restart is in SQLite.
package alerting

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Config holds the alerting settings (YAML section "alerting"). Keep every field documented
// with a yaml tag; env overrides are derived from the path (LOOKOUT_ALERTING_<KEY>).
type Config struct {
	QueueSize  int              `yaml:"queue_size"` // readings waiting for rule evaluation; when full, the newest is dropped and counted
	Smoke      SmokeConfig      `yaml:"smoke"`
	Elec       ElecConfig       `yaml:"elec"`
	Camera     CameraConfig     `yaml:"camera"`
	Health     HealthConfig     `yaml:"health"`
	FireDanger FireDangerConfig `yaml:"fire_danger"`
	Incident   IncidentConfig   `yaml:"incident"`
	Escalation EscalationConfig `yaml:"escalation"`
	Notify     NotifyConfig     `yaml:"notify"`
	Webhooks   []WebhookConfig  `yaml:"webhooks"` // YAML only
	Retry      RetryConfig      `yaml:"webhook_retry"`
	RunEvery   time.Duration    `yaml:"run_every"` // period of the escalation/outbox/FWI step loop
}

// SmokeConfig tunes the smoke-alarm rules.
type SmokeConfig struct {
	LowBatteryPct    float64 `yaml:"low_battery_pct"`    // battery_pct at or below raises low_battery (warning)
	BatteryMarginPct float64 `yaml:"battery_margin_pct"` // cleared only above low_battery_pct + margin
}

// ElecConfig tunes the electrical-fire rules. Margins are the hysteresis: an
// alert raised at the threshold clears only below threshold − margin.
type ElecConfig struct {
	ResidualMA       float64 `yaml:"residual_ma"`        // GB 50116-2013 §9.2.3 advises 300–500 mA
	ResidualMarginMA float64 `yaml:"residual_margin_ma"` // hysteresis for residual current
	CableTempC       float64 `yaml:"cable_temp_c"`       // cable temperature alarm
	CableTempMarginC float64 `yaml:"cable_temp_margin_c"`
}

// CameraConfig tunes camera detection confirmation (after Pyronear).
type CameraConfig struct {
	Labels        []string      `yaml:"labels"`         // detection labels that count
	MinScore      float64       `yaml:"min_score"`      // detections below are ignored
	Confirmations int           `yaml:"confirmations"`  // detections needed within window
	Window        time.Duration `yaml:"window"`         // per camera and direction
	BinDeg        float64       `yaml:"bin_deg"`        // bearing bin: detections in the same bin count together
	RangeM        float64       `yaml:"range_m"`        // how far a bearing is followed to find crossed forests
	MinBaselineM  float64       `yaml:"min_baseline_m"` // two cameras closer than this do not triangulate
	MinAngleDeg   float64       `yaml:"min_angle_deg"`  // bearings crossing flatter than this do not triangulate
	MaxPerCamera  int           `yaml:"max_per_camera"` // remembered detections per camera (oldest dropped)
}

// HealthConfig tunes the device connectivity alert.
type HealthConfig struct {
	OfflineSeverity string `yaml:"offline_severity"` // severity of the one-per-outage offline alert
}

// FireDangerConfig tunes the FWI fire-danger computation.
type FireDangerConfig struct {
	Timezone    string        `yaml:"timezone"`    // local standard time of the stations (noon is taken there)
	NoonWindow  time.Duration `yaml:"noon_window"` // the first observation in [12:00, 12:00+window) local is the day's noon reading
	DefaultLat  float64       `yaml:"default_lat"` // latitude for stations without a position
	Breakpoints []float64     `yaml:"breakpoints"` // four ascending FWI values starting levels 2..5 (YAML only)
	AlertLevel  int           `yaml:"alert_level"` // level at or above which a zone-wide warning is raised
	Measurement string        `yaml:"measurement"` // InfluxDB measurement for daily FWI points
}

// IncidentConfig sets how alerts are grouped into incidents.
type IncidentConfig struct {
	RadiusM float64       `yaml:"radius_m"` // alerts closer than this join
	Window  time.Duration `yaml:"window"`   // ... when within this time of the incident's last evidence
	Types   []string      `yaml:"types"`    // alert type prefixes that are fire evidence
}

// EscalationConfig sets the 叫应 chain. Deadlines are per severity; LevelDeadlines
// optionally sets them per zone level too, because field practice gives the
// people nearest the fire (grid, village) the shortest time to answer and the
// county duty room more. A level or severity it leaves out keeps the severity's
// deadline, so an unset map is the per-severity behaviour.
type EscalationConfig struct {
	MinSeverity      string                              `yaml:"min_severity"`      // alerts at or above are called
	CriticalDeadline time.Duration                       `yaml:"critical_deadline"` // time to acknowledge before the parent zone is called
	MajorDeadline    time.Duration                       `yaml:"major_deadline"`
	OtherDeadline    time.Duration                       `yaml:"other_deadline"`  // for minor and below when min_severity allows them
	LevelDeadlines   map[string]map[string]time.Duration `yaml:"level_deadlines"` // {grid|village|town|county: {severity: duration}}: time to acknowledge while that level is called; unset pairs keep the deadlines above (YAML only)
	FallbackZone     string                              `yaml:"fallback_zone"`   // zone id called (then its parents) for an alert with no zone or one the zones layer does not know; "" = nobody is called
}

// zoneLevels are the levels the 叫应 chain walks, innermost first (geo's zone levels).
func zoneLevels() []string { return []string{"grid", "village", "town", "county"} }

// levelDeadlines checks LevelDeadlines and returns it keyed by lower-case level
// and parsed severity, ready for lookup. Keys are case-insensitive like
// min_severity; errors name the key, checked in sorted order so the same file
// always reports the same first error.
func (c EscalationConfig) levelDeadlines() (map[string]map[Severity]time.Duration, error) {
	const key = "escalation.level_deadlines"
	if len(c.LevelDeadlines) == 0 {
		return nil, nil
	}
	out := make(map[string]map[Severity]time.Duration, len(c.LevelDeadlines))
	for _, level := range slices.Sorted(maps.Keys(c.LevelDeadlines)) {
		lk := strings.ToLower(strings.TrimSpace(level))
		if !slices.Contains(zoneLevels(), lk) {
			return nil, fmt.Errorf("%s.%s: unknown zone level (want %s)", key, level, strings.Join(zoneLevels(), ", "))
		}
		if _, dup := out[lk]; dup {
			return nil, fmt.Errorf("%s.%s: level given twice (keys are case-insensitive)", key, level)
		}
		bySev := make(map[Severity]time.Duration, len(c.LevelDeadlines[level]))
		for _, sev := range slices.Sorted(maps.Keys(c.LevelDeadlines[level])) {
			s, err := ParseSeverity(sev)
			if err != nil {
				return nil, fmt.Errorf("%s.%s.%s: %w", key, level, sev, err)
			}
			if _, dup := bySev[s]; dup {
				return nil, fmt.Errorf("%s.%s.%s: severity given twice (keys are case-insensitive)", key, level, sev)
			}
			d := c.LevelDeadlines[level][sev]
			if d <= 0 {
				return nil, fmt.Errorf("%s.%s.%s: must be > 0", key, level, sev)
			}
			bySev[s] = d
		}
		out[lk] = bySev
	}
	return out, nil
}

// NotifyConfig tunes SSE, MQTT and CAP.
type NotifyConfig struct {
	SSEBuffer    int     `yaml:"sse_buffer"`     // events queued per SSE client; a client that falls this far behind is dropped
	EventLogKeep int     `yaml:"event_log_keep"` // events kept for Last-Event-ID resume
	ReplayMax    int     `yaml:"replay_max"`     // most events replayed on resume
	MQTTPrefix   string  `yaml:"mqtt_prefix"`    // alerts go to {prefix}/{severity}/{zone}
	CAPSender    string  `yaml:"cap_sender"`     // CAP <sender>
	CAPTimezone  string  `yaml:"cap_timezone"`   // zone of CAP <sent> (+08:00 for Asia/Shanghai)
	CAPScope     string  `yaml:"cap_scope"`      // Public, Restricted or Private
	CAPStatus    string  `yaml:"cap_status"`     // Actual, Exercise, System, Test or Draft
	CAPRadiusKM  float64 `yaml:"cap_radius_km"`  // circle radius around a point alert
	BaseURL      string  `yaml:"base_url"`       // public URL prefix used in the Atom feed links
}

// WebhookConfig is one webhook receiver.
type WebhookConfig struct {
	Name   string   `yaml:"name"`   // stable id (outbox rows reference it)
	URL    string   `yaml:"url"`    // http(s) endpoint receiving JSON POSTs
	Secret string   `yaml:"secret"` // HMAC-SHA256 key for X-Lookout-Signature
	Events []string `yaml:"events"` // event type prefixes ("alert.", "incident."); empty = alert.* and incident.*
}

// RetryConfig sets the webhook outbox retry policy.
type RetryConfig struct {
	MaxAttempts int           `yaml:"max_attempts"` // then the delivery is kept as dead
	BaseBackoff time.Duration `yaml:"base_backoff"` // doubled per failed attempt
	MaxBackoff  time.Duration `yaml:"max_backoff"`
	Timeout     time.Duration `yaml:"timeout"` // per request
	Batch       int           `yaml:"batch"`   // deliveries tried per step
}

// DefaultConfig returns the settings that make `make run` work.
//
// Fire-danger breakpoints default to the Canadian Wildland Fire Information
// System's five FWI classes (low < 5, moderate 5–10, high 10–20, very high
// 20–30, extreme ≥ 30), mapped one to one onto China's five levels: no Chinese
// standard bands the FWI, and these classes are the published ones the FWI
// System's authors use. Calibrate them against local fire history.
func DefaultConfig() Config {
	return Config{
		QueueSize: 8192,
		Smoke:     SmokeConfig{LowBatteryPct: 20, BatteryMarginPct: 5},
		Elec:      ElecConfig{ResidualMA: 300, ResidualMarginMA: 30, CableTempC: 70, CableTempMarginC: 5},
		Camera: CameraConfig{Labels: []string{"smoke", "fire"}, MinScore: 0.5, Confirmations: 3,
			Window: 300 * time.Second, BinDeg: 10, RangeM: 15000, MinBaselineM: 100, MinAngleDeg: 10, MaxPerCamera: 64},
		Health: HealthConfig{OfflineSeverity: "minor"},
		FireDanger: FireDangerConfig{Timezone: "Asia/Shanghai", NoonWindow: 2 * time.Hour, DefaultLat: 40,
			Breakpoints: []float64{5, 10, 20, 30}, AlertLevel: 4, Measurement: "fire_danger"},
		Incident: IncidentConfig{RadiusM: 2000, Window: 30 * time.Minute,
			Types: []string{TypeSmokeAlarm, TypeCameraFire, "hotspot", TypeFireDanger, TypeArcFault}},
		Escalation: EscalationConfig{MinSeverity: "major", CriticalDeadline: 5 * time.Minute, MajorDeadline: 30 * time.Minute, OtherDeadline: 2 * time.Hour},
		Notify: NotifyConfig{SSEBuffer: 256, EventLogKeep: 10000, ReplayMax: 1000, MQTTPrefix: "fire/alerts",
			CAPSender: "lookout@localhost", CAPTimezone: "Asia/Shanghai", CAPScope: "Public", CAPStatus: "Actual",
			CAPRadiusKM: 1},
		Retry:    RetryConfig{MaxAttempts: 12, BaseBackoff: 5 * time.Second, MaxBackoff: 10 * time.Minute, Timeout: 10 * time.Second, Batch: 32},
		RunEvery: time.Second,
	}
}

// Validate reports the first bad setting, naming its key relative to the section.
func (c Config) Validate() error {
	pos := func(key string, v float64) error {
		if !(v > 0) {
			return fmt.Errorf("%s: must be > 0", key)
		}
		return nil
	}
	nonneg := func(key string, v float64) error {
		if !(v >= 0) {
			return fmt.Errorf("%s: must be >= 0", key)
		}
		return nil
	}
	for _, e := range []error{
		pos("queue_size", float64(c.QueueSize)),
		nonneg("smoke.low_battery_pct", c.Smoke.LowBatteryPct),
		nonneg("smoke.battery_margin_pct", c.Smoke.BatteryMarginPct),
		pos("elec.residual_ma", c.Elec.ResidualMA),
		nonneg("elec.residual_margin_ma", c.Elec.ResidualMarginMA),
		pos("elec.cable_temp_c", c.Elec.CableTempC),
		nonneg("elec.cable_temp_margin_c", c.Elec.CableTempMarginC),
		pos("camera.confirmations", float64(c.Camera.Confirmations)),
		pos("camera.window", float64(c.Camera.Window)),
		pos("camera.bin_deg", c.Camera.BinDeg),
		pos("camera.range_m", c.Camera.RangeM),
		nonneg("camera.min_baseline_m", c.Camera.MinBaselineM),
		nonneg("camera.min_angle_deg", c.Camera.MinAngleDeg),
		pos("camera.max_per_camera", float64(c.Camera.MaxPerCamera)),
		pos("fire_danger.noon_window", float64(c.FireDanger.NoonWindow)),
		pos("incident.radius_m", c.Incident.RadiusM),
		pos("incident.window", float64(c.Incident.Window)),
		pos("escalation.critical_deadline", float64(c.Escalation.CriticalDeadline)),
		pos("escalation.major_deadline", float64(c.Escalation.MajorDeadline)),
		pos("escalation.other_deadline", float64(c.Escalation.OtherDeadline)),
		pos("notify.sse_buffer", float64(c.Notify.SSEBuffer)),
		pos("notify.event_log_keep", float64(c.Notify.EventLogKeep)),
		pos("notify.replay_max", float64(c.Notify.ReplayMax)),
		nonneg("notify.cap_radius_km", c.Notify.CAPRadiusKM),
		pos("webhook_retry.max_attempts", float64(c.Retry.MaxAttempts)),
		pos("webhook_retry.base_backoff", float64(c.Retry.BaseBackoff)),
		pos("webhook_retry.max_backoff", float64(c.Retry.MaxBackoff)),
		pos("webhook_retry.timeout", float64(c.Retry.Timeout)),
		pos("webhook_retry.batch", float64(c.Retry.Batch)),
		pos("run_every", float64(c.RunEvery)),
	} {
		if e != nil {
			return e
		}
	}
	if c.Camera.MinScore < 0 || c.Camera.MinScore > 1 {
		return errors.New("camera.min_score: must be in 0..1")
	}
	if len(c.Camera.Labels) == 0 {
		return errors.New("camera.labels: must name at least one label")
	}
	if _, err := ParseSeverity(c.Health.OfflineSeverity); err != nil {
		return fmt.Errorf("health.offline_severity: %w", err)
	}
	if _, err := ParseSeverity(c.Escalation.MinSeverity); err != nil {
		return fmt.Errorf("escalation.min_severity: %w", err)
	}
	if _, err := c.Escalation.levelDeadlines(); err != nil {
		return err
	}
	if _, err := time.LoadLocation(c.FireDanger.Timezone); err != nil {
		return fmt.Errorf("fire_danger.timezone: %w", err)
	}
	if _, err := time.LoadLocation(c.Notify.CAPTimezone); err != nil {
		return fmt.Errorf("notify.cap_timezone: %w", err)
	}
	if c.FireDanger.DefaultLat < -90 || c.FireDanger.DefaultLat > 90 {
		return errors.New("fire_danger.default_lat: must be in -90..90")
	}
	if len(c.FireDanger.Breakpoints) != 4 {
		return errors.New("fire_danger.breakpoints: need exactly 4 values (levels 2..5)")
	}
	for i := 1; i < 4; i++ {
		if !(c.FireDanger.Breakpoints[i] > c.FireDanger.Breakpoints[i-1]) {
			return errors.New("fire_danger.breakpoints: must be strictly ascending")
		}
	}
	if c.FireDanger.AlertLevel < 2 || c.FireDanger.AlertLevel > 5 {
		return errors.New("fire_danger.alert_level: must be 2..5")
	}
	if c.FireDanger.Measurement == "" {
		return errors.New("fire_danger.measurement: must be set")
	}
	switch c.Notify.CAPScope {
	case "Public", "Restricted", "Private":
	default:
		return errors.New("notify.cap_scope: must be Public, Restricted or Private")
	}
	switch c.Notify.CAPStatus {
	case "Actual", "Exercise", "System", "Test", "Draft":
	default:
		return errors.New("notify.cap_status: must be Actual, Exercise, System, Test or Draft")
	}
	if c.Notify.CAPSender == "" {
		return errors.New("notify.cap_sender: must be set")
	}
	if c.Notify.MQTTPrefix == "" {
		return errors.New("notify.mqtt_prefix: must be set")
	}
	if c.Retry.MaxBackoff < c.Retry.BaseBackoff {
		return errors.New("webhook_retry.max_backoff: must be >= base_backoff")
	}
	seen := map[string]bool{}
	for i, w := range c.Webhooks {
		key := fmt.Sprintf("webhooks[%d]", i)
		if w.Name == "" || seen[w.Name] {
			return fmt.Errorf("%s.name: must be set and unique", key)
		}
		seen[w.Name] = true
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s.url: must be an http(s) URL", key)
		}
		if w.Secret == "" {
			return fmt.Errorf("%s.secret: must be set (receivers verify the signature)", key)
		}
	}
	return nil
}
