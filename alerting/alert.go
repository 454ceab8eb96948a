package alerting

import (
	"fmt"
	"strings"
	"time"

	"github.com/lookoutfire/lookout/errs"
)

// Sentinel errors callers branch on; each wraps an errs kind for the HTTP edge.
var (
	ErrAlertNotFound = fmt.Errorf("alert %w", errs.ErrNotFound)
	ErrBadSeverity   = fmt.Errorf("severity %w", errs.ErrInvalid)
	ErrAlreadyDone   = fmt.Errorf("alert step %w", errs.ErrConflict)
	ErrBadAlert      = fmt.Errorf("alert %w", errs.ErrInvalid)
)

// Severity orders alerts; the names follow ThingsBoard's model.
type Severity string

// Severities, most severe first.
const (
	Critical Severity = "critical"
	Major    Severity = "major"
	Minor    Severity = "minor"
	Warning  Severity = "warning"
	Info     Severity = "info"
)

// Rank is larger for more severe alerts (critical 5 … info 1).
func (s Severity) Rank() int {
	switch s {
	case Critical:
		return 5
	case Major:
		return 4
	case Minor:
		return 3
	case Warning:
		return 2
	case Info:
		return 1
	}
	return 0
}

// ParseSeverity accepts a severity name in any case.
func ParseSeverity(s string) (Severity, error) {
	v := Severity(strings.ToLower(strings.TrimSpace(s)))
	if v.Rank() == 0 {
		return "", fmt.Errorf("%w: %q (want critical, major, minor, warning or info)", ErrBadSeverity, s)
	}
	return v, nil
}

// State is where an alert is in its lifecycle. An alert is active until cleared
// and unacknowledged until someone acks it, so the four states are the product.
type State string

// States (ThingsBoard: ACTIVE_UNACK, ACTIVE_ACK, CLEARED_UNACK, CLEARED_ACK).
const (
	ActiveUnack  State = "active_unack"
	ActiveAck    State = "active_ack"
	ClearedUnack State = "cleared_unack"
	ClearedAck   State = "cleared_ack"
)

func stateOf(cleared, acked bool) State {
	switch {
	case !cleared && !acked:
		return ActiveUnack
	case !cleared:
		return ActiveAck
	case !acked:
		return ClearedUnack
	}
	return ClearedAck
}

// Alert types raised by the built-in rules.
const (
	TypeSmokeAlarm = "smoke_alarm"
	TypeTamper     = "tamper"
	TypeLowBattery = "low_battery"
	TypeFault      = "fault"
	TypeResidual   = "residual_current"
	TypeCableTemp  = "cable_temp"
	TypeArcFault   = "arc_fault"
	TypeElecAlarm  = "elec_alarm"
	TypeCameraFire = "camera_fire" // suffixed with "/<bin>" per direction
	TypeFireDanger = "fire_danger"
	TypeOffline    = "device_offline"
)

// Raise describes one occurrence of an alert condition. Repeats of an active
// (Source, Type) bump its count instead of creating another alert.
type Raise struct {
	Source   string         `json:"source"` // device id, "zone:<id>", "hotspot:<id>"...
	Type     string         `json:"type"`
	Severity Severity       `json:"severity"`
	Zone     string         `json:"zone,omitempty"`
	Forest   string         `json:"forest,omitempty"`
	Lat      float64        `json:"lat,omitempty"`
	Lon      float64        `json:"lon,omitempty"`
	Message  string         `json:"message"`
	Details  map[string]any `json:"details,omitempty"`
	At       time.Time      `json:"at"` // when the condition was seen (reading time)
}

// Alert is one alert as stored.
type Alert struct {
	ID        int64          `json:"id"`
	Source    string         `json:"source"`
	Type      string         `json:"type"`
	Severity  Severity       `json:"severity"`
	State     State          `json:"state"`
	Zone      string         `json:"zone,omitempty"`
	Forest    string         `json:"forest,omitempty"`
	Lat       float64        `json:"lat,omitempty"`
	Lon       float64        `json:"lon,omitempty"`
	Message   string         `json:"message"`
	Details   map[string]any `json:"details,omitempty"`
	Count     int64          `json:"count"`
	FirstSeen time.Time      `json:"first_seen"`
	LastSeen  time.Time      `json:"last_seen"`
	AckedAt   *time.Time     `json:"acked_at,omitempty"`
	AckedBy   string         `json:"acked_by,omitempty"`
	ClearedAt *time.Time     `json:"cleared_at,omitempty"`
	ClearedBy string         `json:"cleared_by,omitempty"`
	Incident  int64          `json:"incident_id,omitempty"`
}

// Active reports whether the alert is not cleared.
func (a Alert) Active() bool { return a.State == ActiveUnack || a.State == ActiveAck }

// AuditEntry is one step in an alert's history.
type AuditEntry struct {
	At     time.Time `json:"at"`
	Action string    `json:"action"` // raised, severity, acked, cleared, called, escalated, exhausted, answered
	User   string    `json:"user,omitempty"`
	Note   string    `json:"note,omitempty"`
}

// CallRecord is one 叫应 call of a duty contact about an alert.
type CallRecord struct {
	ID       int64      `json:"id"`
	AlertID  int64      `json:"alert_id"`
	Step     int        `json:"step"` // 0 = innermost zone, 1 = its parent, ...
	ZoneID   string     `json:"zone_id"`
	ZoneName string     `json:"zone_name"`
	Level    string     `json:"zone_level"`
	Name     string     `json:"name"`
	Phone    string     `json:"phone"`
	Role     string     `json:"role"`
	At       time.Time  `json:"at"`
	Outcome  string     `json:"outcome"` // placed, failed: ..., no_contact
	Answered *time.Time `json:"answered_at,omitempty"`
	AnswerBy string     `json:"answered_by,omitempty"`
}

// AlertView is an alert with its escalation chain and audit trail, for GET /alerts/{id}.
type AlertView struct {
	Alert
	Escalation *EscalationStatus `json:"escalation,omitempty"`
	Calls      []CallRecord      `json:"calls"`
	Audit      []AuditEntry      `json:"audit"`
}

// EscalationStatus is the timer state of an alert's 叫应 chain.
type EscalationStatus struct {
	Step   int        `json:"step"`
	NextAt *time.Time `json:"next_at,omitempty"`
	Done   bool       `json:"done"`
	Reason string     `json:"reason,omitempty"` // acked, cleared, exhausted
	// Chain is the zones the chain calls, innermost first (Step indexes it);
	// absent for chains started before it was stored.
	Chain []ChainZone `json:"chain,omitempty"`
}

// Filter selects alerts for listing.
type Filter struct {
	States   []State
	Severity []Severity
	Zone     string
	Since    time.Time
	Until    time.Time
	Limit    int
}
