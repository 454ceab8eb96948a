package ingest

// The payload schemas, one per class and kind. They are the single source of
// truth for what a device may send: Decode enforces them and docs/protocol.md
// documents them (a test checks that every field here appears in the doc).
// Ranges are physical plausibility bounds, not alarm thresholds: a value outside
// them means a broken sensor or a corrupt message, never a fire. The tables are
// package-level but read-only: nothing ever writes to them after init.

// fieldType is the JSON shape a field must have.
type fieldType uint8

const (
	tNum      fieldType = iota // number within [min, max]
	tInt                       // integral number within [min, max]
	tBool                      // true or false
	tEnum                      // string, one of enum
	tText                      // string of 1..maxLen bytes, no control characters
	tNums                      // array of minLen..maxLen numbers, each within [min, max]
	tBox                       // [xmin, ymin, xmax, ymax], each within [0, 1], xmin<xmax, ymin<ymax
	tSnapshot                  // base64 (standard alphabet, padded) JPEG, at most Limits.MaxSnapshot bytes decoded
)

// fieldSpec describes one payload field.
type fieldSpec struct {
	name     string
	typ      fieldType
	required bool
	min, max float64
	minOpen  bool // min itself is not allowed (hfov_deg > 0)
	minLen   int  // tNums: fewest elements; tText: fewest bytes
	maxLen   int  // tNums: most elements; tText: most bytes
	enum     []string
	unit     string // shown in reject details and the protocol doc
}

// schema is the field list for one class and kind. Lookup is a linear scan: a
// dozen short string compares beat a map for these sizes.
type schema struct {
	fields []fieldSpec
}

func (s *schema) index(name []byte) int {
	for i := range s.fields {
		if string(name) == s.fields[i].name {
			return i
		}
	}
	return -1
}

// Shared field definitions, so a unit or range is written down once.
var (
	fBattery  = fieldSpec{name: "battery_pct", typ: tNum, min: 0, max: 100, unit: "%"}
	fRSSI     = fieldSpec{name: "rssi_dbm", typ: tNum, min: -160, max: 0, unit: "dBm"}
	fUptime   = fieldSpec{name: "uptime_s", typ: tNum, required: true, min: 0, max: 4294967295, unit: "s"}
	fFirmware = fieldSpec{name: "fw", typ: tText, required: true, minLen: 1, maxLen: 64}
)

func req(f fieldSpec) fieldSpec { f.required = true; return f }

// Event names per class. Smoke's list is fixed by the protocol (issue 2); the
// others follow the same pattern: alarms, their clearing, faults and recovery.
var (
	smokeEvents   = []string{"alarm", "alarm_cleared", "tamper", "low_battery", "fault", "test", "restore"}
	stationEvents = []string{"tamper", "low_battery", "fault", "restore", "power_lost", "power_restored"}
	elecEvents    = []string{"residual_alarm", "temp_alarm", "arc_fault", "alarm_cleared", "fault", "restore", "test", "power_lost", "power_restored"}
	cameraEvents  = []string{"tamper", "fault", "restore", "video_lost", "video_restored"}
	cameraLabels  = []string{"smoke", "fire"}
)

var heartbeatSchema = schema{fields: []fieldSpec{fUptime, fFirmware, fBattery, fRSSI}}

var (
	smokeTelemetry = schema{fields: []fieldSpec{
		{name: "alarm", typ: tBool, required: true},
		{name: "smoke_db_m", typ: tNum, required: true, min: 0, max: 20, unit: "dB/m"},
		{name: "temperature_c", typ: tNum, required: true, min: -50, max: 150, unit: "°C"},
		req(fBattery),
		req(fRSSI),
		{name: "tamper", typ: tBool, required: true},
	}}
	smokeEvent = schema{fields: []fieldSpec{
		{name: "event", typ: tEnum, required: true, enum: smokeEvents},
		{name: "smoke_db_m", typ: tNum, min: 0, max: 20, unit: "dB/m"},
		{name: "temperature_c", typ: tNum, min: -50, max: 150, unit: "°C"},
		fBattery,
	}}

	stationTelemetry = schema{fields: []fieldSpec{
		{name: "air_temp_c", typ: tNum, required: true, min: -80, max: 70, unit: "°C"},
		{name: "rh_pct", typ: tNum, required: true, min: 0, max: 100, unit: "%"},
		{name: "wind_speed_ms", typ: tNum, required: true, min: 0, max: 120, unit: "m/s"},
		{name: "wind_dir_deg", typ: tNum, required: true, min: 0, max: 360, unit: "°"},
		{name: "precip_mm", typ: tNum, required: true, min: 0, max: 2000, unit: "mm"},
		{name: "fuel_moisture_pct", typ: tNum, min: 0, max: 300, unit: "%"},
		{name: "soil_moisture_pct", typ: tNum, min: 0, max: 100, unit: "%"},
		{name: "pressure_hpa", typ: tNum, min: 300, max: 1100, unit: "hPa"},
		fBattery,
		fRSSI,
	}}
	stationEvent = schema{fields: []fieldSpec{
		{name: "event", typ: tEnum, required: true, enum: stationEvents},
		fBattery,
	}}

	elecTelemetry = schema{fields: []fieldSpec{
		{name: "residual_current_ma", typ: tNums, required: true, minLen: 1, maxLen: 4, min: 0, max: 5000, unit: "mA"},
		{name: "cable_temp_c", typ: tNums, required: true, minLen: 1, maxLen: 4, min: -50, max: 250, unit: "°C"},
		{name: "current_a", typ: tNums, minLen: 1, maxLen: 3, min: 0, max: 10000, unit: "A"},
		{name: "voltage_v", typ: tNums, minLen: 1, maxLen: 3, min: 0, max: 1000, unit: "V"},
		{name: "arc_fault", typ: tBool},
		{name: "alarm", typ: tBool},
		fRSSI,
	}}
	elecEvent = schema{fields: []fieldSpec{
		{name: "event", typ: tEnum, required: true, enum: elecEvents},
		{name: "channel", typ: tInt, min: 1, max: 4},
	}}

	cameraDetection = schema{fields: []fieldSpec{
		{name: "label", typ: tEnum, required: true, enum: cameraLabels},
		{name: "score", typ: tNum, required: true, min: 0, max: 1},
		{name: "box", typ: tBox, required: true, min: 0, max: 1},
		{name: "pan_deg", typ: tNum, required: true, min: 0, max: 360, unit: "°"},
		{name: "tilt_deg", typ: tNum, required: true, min: -90, max: 90, unit: "°"},
		{name: "hfov_deg", typ: tNum, required: true, min: 0, minOpen: true, max: 180, unit: "°"},
		{name: "track_id", typ: tText, minLen: 1, maxLen: 64},
		{name: "snapshot_jpeg", typ: tSnapshot},
	}}
	cameraEvent = schema{fields: []fieldSpec{
		{name: "event", typ: tEnum, required: true, enum: cameraEvents},
	}}
)

// schemaFor returns the schema of a class and kind, nil when the pair is not
// part of the protocol (ParseTopic refuses those first).
func schemaFor(c Class, k Kind) *schema {
	if k == KindHeartbeat && c.Valid() {
		return &heartbeatSchema
	}
	switch {
	case c == ClassSmoke && k == KindTelemetry:
		return &smokeTelemetry
	case c == ClassSmoke && k == KindEvent:
		return &smokeEvent
	case c == ClassStation && k == KindTelemetry:
		return &stationTelemetry
	case c == ClassStation && k == KindEvent:
		return &stationEvent
	case c == ClassElec && k == KindTelemetry:
		return &elecTelemetry
	case c == ClassElec && k == KindEvent:
		return &elecEvent
	case c == ClassCamera && k == KindDetection:
		return &cameraDetection
	case c == ClassCamera && k == KindEvent:
		return &cameraEvent
	}
	return nil
}
