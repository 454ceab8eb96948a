// Package ingest turns MQTT messages from field devices into validated Readings
// and moves them through the gateway: decode → admit (registry) → tag (geo) →
// spool (durable) → observers (alerting). A message is acknowledged to the broker
// only once its reading is durable or it has been dead-lettered with a reason.
package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/lookoutfire/lookout/errs"
)

// Class is a device class; it is the second topic level: fire/{class}/{device}/{kind}.
type Class string

// Device classes.
const (
	ClassSmoke   Class = "smoke"   // smart smoke alarm
	ClassStation Class = "station" // multi-factor fire-risk weather station
	ClassElec    Class = "elec"    // electrical fire monitor
	ClassCamera  Class = "camera"  // PTZ camera with on-board AI
)

// Classes lists every class, in a stable order.
var Classes = []Class{ClassSmoke, ClassStation, ClassElec, ClassCamera}

// Valid reports whether c is a known class.
func (c Class) Valid() bool {
	switch c {
	case ClassSmoke, ClassStation, ClassElec, ClassCamera:
		return true
	}
	return false
}

// Kind is the last topic level: what sort of message it is.
type Kind string

// Message kinds.
const (
	KindTelemetry Kind = "telemetry"
	KindEvent     Kind = "event"
	KindHeartbeat Kind = "heartbeat"
	KindDetection Kind = "detection" // camera only
)

// Reading is one validated device message. Fields hold float64, bool, string or
// []float64 values, named exactly as in the payload (see docs/protocol.md); the
// device id, class, kind and time are lifted out of the payload.
type Reading struct {
	DeviceID string
	Class    Class
	Kind     Kind
	Time     time.Time // device timestamp (UTC); gateway receive time when the payload has none
	Received time.Time // gateway receive time (UTC)
	DeviceTS bool      // Time came from the payload's ts
	// StoreTime, when set, is the time the reading is stored at instead of
	// Time: Time moved inside its millisecond (see Pipeline's apart), so two
	// readings of one device in one millisecond are two InfluxDB points.
	// Everything else (alerting, the API) uses Time, the device's own.
	StoreTime time.Time
	Fields    map[string]any

	// Snapshot is a camera detection's decoded JPEG, if any. The pipeline saves it
	// under the data dir and records the file name in Fields["snapshot_file"]; it is
	// never written to InfluxDB.
	Snapshot []byte

	// Tags set by the pipeline after decoding.
	Zone   string // innermost responsibility zone of the device, "" when unknown
	Forest string // forest id when the device stands inside a forest
	Lat    float64
	Lon    float64 // device position from the registry (WGS84); 0,0 when unknown
}

// Float returns a numeric field and whether it is present.
func (r *Reading) Float(name string) (float64, bool) {
	v, ok := r.Fields[name].(float64)
	return v, ok
}

// Bool returns a boolean field and whether it is present.
func (r *Reading) Bool(name string) (bool, bool) {
	v, ok := r.Fields[name].(bool)
	return v, ok
}

// String returns a string field and whether it is present.
func (r *Reading) String(name string) (string, bool) {
	v, ok := r.Fields[name].(string)
	return v, ok
}

// Floats returns an array field (e.g. residual_current_ma) and whether it is present.
func (r *Reading) Floats(name string) ([]float64, bool) {
	v, ok := r.Fields[name].([]float64)
	return v, ok
}

// Reason says why a message was rejected. Reasons are metric label values and
// dead-letter topic levels (fire/deadletter/{reason}), so they are few and stable.
type Reason string

// Rejection reasons.
const (
	ReasonBadTopic       Reason = "bad_topic"       // not fire/{class}/{device}/{kind}, or unknown class/kind
	ReasonTooLarge       Reason = "too_large"       // payload over the size limit
	ReasonBadJSON        Reason = "bad_json"        // not a JSON object, or trailing garbage
	ReasonMissingField   Reason = "missing_field"   // a required field is absent
	ReasonBadType        Reason = "bad_type"        // a field has the wrong JSON type (or is null)
	ReasonOutOfRange     Reason = "out_of_range"    // a value outside its physical range, NaN or Inf
	ReasonBadTimestamp   Reason = "bad_timestamp"   // ts unparsable, or too far in the future
	ReasonDeviceMismatch Reason = "device_mismatch" // payload device_id differs from the topic's
	ReasonUnknownDevice  Reason = "unknown_device"  // not in the registry and policy is reject
	ReasonClassMismatch  Reason = "class_mismatch"  // registry says the device is of another class
	ReasonBadSnapshot    Reason = "bad_snapshot"    // snapshot_jpeg not base64 JPEG, or too large
	ReasonUnknownField   Reason = "unknown_field"   // a field the protocol does not define for this class and kind
	ReasonDuplicateField Reason = "duplicate_field" // the same key twice in one payload
)

// Reasons lists every reason, so metrics can be pre-registered at zero.
var Reasons = []Reason{ReasonBadTopic, ReasonTooLarge, ReasonBadJSON, ReasonMissingField, ReasonBadType,
	ReasonOutOfRange, ReasonBadTimestamp, ReasonDeviceMismatch, ReasonUnknownDevice, ReasonClassMismatch, ReasonBadSnapshot,
	ReasonUnknownField, ReasonDuplicateField}

// Reject is the error for a message that will not be stored. Callers branch on
// Reason via errors.As; Field and Detail make the log line and dead-letter useful.
type Reject struct {
	Reason Reason
	Field  string // offending field, if any
	Detail string // human-readable, no secrets
}

// Error is the reason with the offending field and detail, as logged.
func (e *Reject) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("rejected (%s): %s: %s", e.Reason, e.Field, e.Detail)
	}
	return fmt.Sprintf("rejected (%s): %s", e.Reason, e.Detail)
}

// Unwrap makes every rejection an errs.ErrInvalid, so generic callers (the HTTP
// edge) classify it without knowing about readings.
func (e *Reject) Unwrap() error { return errs.ErrInvalid }

// Rejectf builds a *Reject.
func Rejectf(reason Reason, field, format string, args ...any) *Reject {
	return &Reject{Reason: reason, Field: field, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the rejection reason of err, or "" when err is not a *Reject.
func ReasonOf(err error) Reason {
	var r *Reject
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}
