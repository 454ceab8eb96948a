package ingest

import (
	"encoding/base64"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testNow is the gateway time of the table tests; the valid examples in
// testdata/valid are stamped 2025-06-01T08:00:00Z.
var testNow = time.Date(2025, 6, 1, 8, 1, 0, 0, time.UTC)

func testLimits() Limits { return DefaultConfig().Limits }

// testDevice is the device id used on each class's topics.
func testDevice(c Class) string {
	switch c {
	case ClassSmoke:
		return "SA-0001"
	case ClassStation:
		return "WS-12"
	case ClassElec:
		return "EFM_3.b"
	}
	return "CAM-07"
}

func topicOf(c Class, k Kind) string {
	return "fire/" + string(c) + "/" + testDevice(c) + "/" + string(k)
}

func validPayload(t testing.TB, c Class, k Kind) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "valid", string(c)+"_"+string(k)+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestDecodeValidExamples decodes the example of every class and kind and
// checks the whole Reading, so a silently dropped or mistyped field fails.
func TestDecodeValidExamples(t *testing.T) {
	jpeg, _ := base64.StdEncoding.DecodeString("/9j/4AAQSkZJRgABAQAAAQABAAD/2Q==")
	at := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	cases := []struct {
		class  Class
		kind   Kind
		time   time.Time
		fields map[string]any
		snap   []byte
	}{
		{ClassSmoke, KindTelemetry, at, map[string]any{"alarm": false, "smoke_db_m": 0.02, "temperature_c": 24.5, "battery_pct": 87.0, "rssi_dbm": -97.0, "tamper": false}, nil},
		{ClassSmoke, KindEvent, at, map[string]any{"event": "alarm", "smoke_db_m": 0.31, "temperature_c": 41.2, "battery_pct": 86.0}, nil},
		{ClassSmoke, KindHeartbeat, at, map[string]any{"uptime_s": 86400.0, "fw": "1.4.2", "battery_pct": 87.0, "rssi_dbm": -97.0}, nil},
		{ClassStation, KindTelemetry, at, map[string]any{"air_temp_c": 31.4, "rh_pct": 22.0, "wind_speed_ms": 6.3, "wind_dir_deg": 225.0, "precip_mm": 0.0,
			"fuel_moisture_pct": 9.5, "soil_moisture_pct": 14.2, "pressure_hpa": 1002.6, "battery_pct": 95.0, "rssi_dbm": -81.0}, nil},
		{ClassStation, KindEvent, at, map[string]any{"event": "power_lost", "battery_pct": 64.0}, nil},
		{ClassStation, KindHeartbeat, testNow, map[string]any{"uptime_s": 3600.0, "fw": "ws-2.0.7"}, nil},
		{ClassElec, KindTelemetry, at, map[string]any{"residual_current_ma": []float64{112, 98.5, 130, 0}, "cable_temp_c": []float64{36.1, 35.4, 38},
			"current_a": []float64{41.2, 39.8, 40.5}, "voltage_v": []float64{229.8, 231.2, 230.4}, "arc_fault": false, "alarm": false, "rssi_dbm": -73.0}, nil},
		{ClassElec, KindEvent, at, map[string]any{"event": "residual_alarm", "channel": 2.0}, nil},
		{ClassElec, KindHeartbeat, at, map[string]any{"uptime_s": 1209600.0, "fw": "EFM-3.1"}, nil},
		{ClassCamera, KindDetection, at.Add(250 * time.Millisecond), map[string]any{"label": "smoke", "score": 0.91, "box": []float64{0.42, 0.31, 0.55, 0.48},
			"pan_deg": 132.5, "tilt_deg": -3.2, "hfov_deg": 54.7, "track_id": "t-1842"}, jpeg},
		{ClassCamera, KindEvent, at, map[string]any{"event": "video_lost"}, nil},
		{ClassCamera, KindHeartbeat, at, map[string]any{"uptime_s": 432000.0, "fw": "ptz-ai 5.2.1", "rssi_dbm": -60.0}, nil},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		t.Run(string(tc.class)+"_"+string(tc.kind), func(t *testing.T) {
			seen[string(tc.class)+"/"+string(tc.kind)] = true
			r, err := Decode("fire", topicOf(tc.class, tc.kind), []byte(validPayload(t, tc.class, tc.kind)), testNow, testLimits())
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if r.DeviceID != testDevice(tc.class) || r.Class != tc.class || r.Kind != tc.kind {
				t.Errorf("identity = %q %q %q", r.DeviceID, r.Class, r.Kind)
			}
			if !r.Time.Equal(tc.time) || r.Time.Location() != time.UTC {
				t.Errorf("Time = %v, want %v UTC", r.Time, tc.time)
			}
			if !r.Received.Equal(testNow) {
				t.Errorf("Received = %v, want %v", r.Received, testNow)
			}
			if !reflect.DeepEqual(r.Fields, tc.fields) {
				t.Errorf("Fields =\n%#v\nwant\n%#v", r.Fields, tc.fields)
			}
			if string(r.Snapshot) != string(tc.snap) {
				t.Errorf("Snapshot = %x, want %x", r.Snapshot, tc.snap)
			}
		})
	}
	// Every protocol pair has an example and a case here.
	for _, c := range Classes {
		for _, k := range c.Kinds() {
			if !seen[string(c)+"/"+string(k)] {
				t.Errorf("no valid example tested for %s %s", c, k)
			}
		}
	}
}

// TestDecodeRejects: one table row per way a message can be wrong, asserting the
// reason and the field the reject names.
func TestDecodeRejects(t *testing.T) {
	smokeT := topicOf(ClassSmoke, KindTelemetry)
	smokeE := topicOf(ClassSmoke, KindEvent)
	stT := topicOf(ClassStation, KindTelemetry)
	elT := topicOf(ClassElec, KindTelemetry)
	elE := topicOf(ClassElec, KindEvent)
	camD := topicOf(ClassCamera, KindDetection)
	hb := topicOf(ClassStation, KindHeartbeat)
	const smokeOK = `"alarm":false,"smoke_db_m":0.02,"temperature_c":24.5,"battery_pct":87,"rssi_dbm":-97,"tamper":false`
	const stOK = `"air_temp_c":31.4,"rh_pct":22,"wind_speed_ms":6.3,"wind_dir_deg":225,"precip_mm":0`
	const elOK = `"residual_current_ma":[112],"cable_temp_c":[36.1]`
	const camOK = `"label":"fire","score":0.5,"pan_deg":10,"tilt_deg":0,"hfov_deg":60`
	const box = `"box":[0.1,0.2,0.3,0.4]`
	jpeg := base64.StdEncoding.EncodeToString([]byte{0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3})
	png := base64.StdEncoding.EncodeToString([]byte{0x89, 'P', 'N', 'G'})

	cases := []struct {
		name    string
		topic   string
		payload string
		reason  Reason // "" = accepted
		field   string
	}{
		// topic
		{"topic wrong prefix", "smoke/SA-1/telemetry", `{}`, ReasonBadTopic, "prefix"},
		{"topic unknown class", "fire/water/SA-1/telemetry", `{}`, ReasonBadTopic, "class"},
		{"topic unknown kind", "fire/smoke/SA-1/status", `{}`, ReasonBadTopic, "kind"},
		{"topic kind not for class", "fire/smoke/SA-1/detection", `{}`, ReasonBadTopic, "kind"},
		{"topic camera telemetry", "fire/camera/CAM-1/telemetry", `{}`, ReasonBadTopic, "kind"},
		{"topic wildcard device", "fire/smoke/+/telemetry", `{}`, ReasonBadTopic, "device_id"},

		// envelope: size, syntax
		{"too large", hb, `{"uptime_s":1,"fw":"` + strings.Repeat("x", 256<<10) + `"}`, ReasonTooLarge, ""},
		{"empty payload", hb, ``, ReasonBadJSON, ""},
		{"array payload", hb, `[1,2]`, ReasonBadJSON, ""},
		{"trailing garbage", hb, `{"uptime_s":1,"fw":"a"} x`, ReasonBadJSON, ""},
		{"trailing comma", hb, `{"uptime_s":1,"fw":"a",}`, ReasonBadJSON, ""},
		{"single quotes", hb, `{'uptime_s':1}`, ReasonBadJSON, ""},
		{"leading zero", hb, `{"uptime_s":01,"fw":"a"}`, ReasonBadJSON, ""},
		{"plus sign", hb, `{"uptime_s":+1,"fw":"a"}`, ReasonBadJSON, ""},
		{"NaN literal", hb, `{"uptime_s":NaN,"fw":"a"}`, ReasonBadJSON, ""},
		{"Infinity literal", hb, `{"uptime_s":Infinity,"fw":"a"}`, ReasonBadJSON, ""},
		{"invalid utf8", hb, "{\"uptime_s\":1,\"fw\":\"\xff\"}", ReasonBadJSON, ""},
		{"raw control char", hb, "{\"uptime_s\":1,\"fw\":\"a\tb\"}", ReasonBadJSON, ""},
		{"raw unit separator", hb, "{\"uptime_s\":1,\"fw\":\"a\x1fb\"}", ReasonBadJSON, ""},
		{"raw DEL in key is JSON", hb, "{\"uptime_s\":1,\"fw\":\"a\",\"\x7f\":1}", ReasonUnknownField, "\ufffd"},
		{"bad escape", hb, `{"uptime_s":1,"fw":"a\qb"}`, ReasonBadJSON, ""},
		{"too deep", hb, `{"fw":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, ReasonBadJSON, ""},
		{"syntax error wins over unknown field", hb, `{"nope":1,"fw":}`, ReasonBadJSON, ""},
		{"duplicate key", hb, `{"uptime_s":1,"fw":"a","uptime_s":2}`, ReasonDuplicateField, "uptime_s"},
		{"duplicate key via escape", hb, `{"uptime_s":1,"fw":"a","\u0066w":"b"}`, ReasonDuplicateField, "fw"},
		{"duplicate ts", hb, `{"ts":1748764800000,"uptime_s":1,"fw":"a","ts":1748764800000}`, ReasonDuplicateField, "ts"},
		{"escaped key accepted", hb, `{"\u0075ptime_s":1,"fw":"a\/b"}`, "", ""},
		{"whitespace everywhere", hb, " \r\n\t{ \"uptime_s\" : 1 ,\n \"fw\" : \"a\" }\n", "", ""},

		// unknown fields, missing fields, types, null
		{"unknown field", hb, `{"uptime_s":1,"fw":"a","temp":3}`, ReasonUnknownField, "temp"},
		{"field of another kind", smokeE, `{"event":"alarm","alarm":true}`, ReasonUnknownField, "alarm"},
		{"missing uptime", hb, `{"fw":"a"}`, ReasonMissingField, "uptime_s"},
		{"missing fw", hb, `{"uptime_s":1}`, ReasonMissingField, "fw"},
		{"empty object", smokeT, `{}`, ReasonMissingField, "alarm"},
		{"number as string", hb, `{"uptime_s":"1","fw":"a"}`, ReasonBadType, "uptime_s"},
		{"string as number", hb, `{"uptime_s":1,"fw":1}`, ReasonBadType, "fw"},
		{"null optional", hb, `{"uptime_s":1,"fw":"a","battery_pct":null}`, ReasonBadType, "battery_pct"},
		{"bool as number", smokeT, `{` + strings.Replace(smokeOK, `"alarm":false`, `"alarm":0`, 1) + `}`, ReasonBadType, "alarm"},
		{"object value", hb, `{"uptime_s":{"v":1},"fw":"a"}`, ReasonBadType, "uptime_s"},
		{"fw empty", hb, `{"uptime_s":1,"fw":""}`, ReasonOutOfRange, "fw"},
		{"fw too long", hb, `{"uptime_s":1,"fw":"` + strings.Repeat("v", 65) + `"}`, ReasonOutOfRange, "fw"},
		{"fw control char via escape", hb, `{"uptime_s":1,"fw":"a\u0000"}`, ReasonOutOfRange, "fw"},
		{"fw lone surrogate", hb, `{"uptime_s":1,"fw":"a\ud800"}`, ReasonOutOfRange, "fw"},
		{"fw unicode ok", hb, `{"uptime_s":1,"fw":"固件 1.2 \ud83d\udd25"}`, "", ""},

		// numbers: overflow, ranges
		{"huge exponent", hb, `{"uptime_s":1e999,"fw":"a"}`, ReasonOutOfRange, "uptime_s"},
		{"huge negative", hb, `{"uptime_s":1,"fw":"a","rssi_dbm":-1e400}`, ReasonOutOfRange, "rssi_dbm"},
		{"tiny exponent is zero", hb, `{"uptime_s":1e-400,"fw":"a"}`, "", ""},
		{"negative uptime", hb, `{"uptime_s":-1,"fw":"a"}`, ReasonOutOfRange, "uptime_s"},
		{"battery 101", hb, `{"uptime_s":1,"fw":"a","battery_pct":101}`, ReasonOutOfRange, "battery_pct"},
		{"battery 100", hb, `{"uptime_s":1,"fw":"a","battery_pct":100}`, "", ""},
		{"rssi positive", hb, `{"uptime_s":1,"fw":"a","rssi_dbm":3}`, ReasonOutOfRange, "rssi_dbm"},
		{"smoke negative", smokeT, `{` + strings.Replace(smokeOK, `0.02`, `-0.1`, 1) + `}`, ReasonOutOfRange, "smoke_db_m"},
		{"smoke temp 200", smokeT, `{` + strings.Replace(smokeOK, `24.5`, `200`, 1) + `}`, ReasonOutOfRange, "temperature_c"},
		{"smoke missing tamper", smokeT, `{"alarm":false,"smoke_db_m":0.02,"temperature_c":24.5,"battery_pct":87,"rssi_dbm":-97}`, ReasonMissingField, "tamper"},
		{"rh 100.5", stT, `{` + strings.Replace(stOK, `"rh_pct":22`, `"rh_pct":100.5`, 1) + `}`, ReasonOutOfRange, "rh_pct"},
		{"rh 0", stT, `{` + strings.Replace(stOK, `"rh_pct":22`, `"rh_pct":0`, 1) + `}`, "", ""},
		{"wind dir 360", stT, `{` + strings.Replace(stOK, `225`, `360`, 1) + `}`, "", ""},
		{"wind dir 361", stT, `{` + strings.Replace(stOK, `225`, `361`, 1) + `}`, ReasonOutOfRange, "wind_dir_deg"},
		{"wind negative", stT, `{` + strings.Replace(stOK, `6.3`, `-0.5`, 1) + `}`, ReasonOutOfRange, "wind_speed_ms"},
		{"precip negative", stT, `{` + strings.Replace(stOK, `"precip_mm":0`, `"precip_mm":-1`, 1) + `}`, ReasonOutOfRange, "precip_mm"},
		{"pressure 200", stT, `{` + stOK + `,"pressure_hpa":200}`, ReasonOutOfRange, "pressure_hpa"},
		{"station missing precip", stT, `{"air_temp_c":31.4,"rh_pct":22,"wind_speed_ms":6.3,"wind_dir_deg":225}`, ReasonMissingField, "precip_mm"},

		// events
		{"smoke event unknown", smokeE, `{"event":"explosion"}`, ReasonOutOfRange, "event"},
		{"smoke event case", smokeE, `{"event":"ALARM"}`, ReasonOutOfRange, "event"},
		{"smoke event number", smokeE, `{"event":1}`, ReasonBadType, "event"},
		{"smoke event escaped", smokeE, `{"event":"alarm\u005fcleared"}`, "", ""},
		{"elec event channel 5", elE, `{"event":"temp_alarm","channel":5}`, ReasonOutOfRange, "channel"},
		{"elec event channel fraction", elE, `{"event":"temp_alarm","channel":1.5}`, ReasonBadType, "channel"},
		{"elec event channel 1e0", elE, `{"event":"temp_alarm","channel":1e0}`, "", ""},
		{"elec smoke event name", elE, `{"event":"low_battery"}`, ReasonOutOfRange, "event"},

		// arrays
		{"elec 4 channels", elT, `{"residual_current_ma":[1,2,3,4],"cable_temp_c":[1,2,3,4]}`, "", ""},
		{"elec 5 channels", elT, `{"residual_current_ma":[1,2,3,4,5],"cable_temp_c":[1]}`, ReasonOutOfRange, "residual_current_ma"},
		{"elec 0 channels", elT, `{"residual_current_ma":[],"cable_temp_c":[1]}`, ReasonOutOfRange, "residual_current_ma"},
		{"elec temp 5 channels", elT, `{"residual_current_ma":[1],"cable_temp_c":[1,2,3,4,5]}`, ReasonOutOfRange, "cable_temp_c"},
		{"elec 4 phases", elT, `{` + elOK + `,"current_a":[1,2,3,4]}`, ReasonOutOfRange, "current_a"},
		{"elec 3 phases", elT, `{` + elOK + `,"current_a":[1,2,3],"voltage_v":[230,230,230]}`, "", ""},
		{"elec voltage 4 phases", elT, `{` + elOK + `,"voltage_v":[1,2,3,4]}`, ReasonOutOfRange, "voltage_v"},
		{"elec scalar not array", elT, `{"residual_current_ma":112,"cable_temp_c":[1]}`, ReasonBadType, "residual_current_ma"},
		{"elec string element", elT, `{"residual_current_ma":[1,"2"],"cable_temp_c":[1]}`, ReasonBadType, "residual_current_ma"},
		{"elec null element", elT, `{"residual_current_ma":[1,null],"cable_temp_c":[1]}`, ReasonBadType, "residual_current_ma"},
		{"elec negative leakage", elT, `{"residual_current_ma":[1,-3],"cable_temp_c":[1]}`, ReasonOutOfRange, "residual_current_ma"},
		{"elec overflow element", elT, `{"residual_current_ma":[1,2e308],"cable_temp_c":[1]}`, ReasonOutOfRange, "residual_current_ma"},
		{"elec arc string", elT, `{` + elOK + `,"arc_fault":"no"}`, ReasonBadType, "arc_fault"},
		{"elec missing cable temp", elT, `{"residual_current_ma":[1]}`, ReasonMissingField, "cable_temp_c"},

		// camera detection: box, ranges, snapshot
		{"camera ok no snapshot", camD, `{` + camOK + `,` + box + `}`, "", ""},
		{"box xmin=xmax", camD, `{` + camOK + `,"box":[0.3,0.2,0.3,0.4]}`, ReasonOutOfRange, "box"},
		{"box xmin>xmax", camD, `{` + camOK + `,"box":[0.5,0.2,0.3,0.4]}`, ReasonOutOfRange, "box"},
		{"box ymin>ymax", camD, `{` + camOK + `,"box":[0.1,0.5,0.3,0.4]}`, ReasonOutOfRange, "box"},
		{"box outside 1", camD, `{` + camOK + `,"box":[0.1,0.2,1.3,0.4]}`, ReasonOutOfRange, "box"},
		{"box negative", camD, `{` + camOK + `,"box":[-0.1,0.2,0.3,0.4]}`, ReasonOutOfRange, "box"},
		{"box 3 values", camD, `{` + camOK + `,"box":[0.1,0.2,0.3]}`, ReasonOutOfRange, "box"},
		{"box 5 values", camD, `{` + camOK + `,"box":[0.1,0.2,0.3,0.4,0.5]}`, ReasonOutOfRange, "box"},
		{"box full frame", camD, `{` + camOK + `,"box":[0,0,1,1]}`, "", ""},
		{"score 1.01", camD, `{` + strings.Replace(camOK, "0.5", "1.01", 1) + `,` + box + `}`, ReasonOutOfRange, "score"},
		{"label person", camD, `{` + strings.Replace(camOK, `"fire"`, `"person"`, 1) + `,` + box + `}`, ReasonOutOfRange, "label"},
		{"pan 400", camD, `{` + strings.Replace(camOK, `"pan_deg":10`, `"pan_deg":400`, 1) + `,` + box + `}`, ReasonOutOfRange, "pan_deg"},
		{"tilt -91", camD, `{` + strings.Replace(camOK, `"tilt_deg":0`, `"tilt_deg":-91`, 1) + `,` + box + `}`, ReasonOutOfRange, "tilt_deg"},
		{"hfov 0", camD, `{` + strings.Replace(camOK, `"hfov_deg":60`, `"hfov_deg":0`, 1) + `,` + box + `}`, ReasonOutOfRange, "hfov_deg"},
		{"hfov 180", camD, `{` + strings.Replace(camOK, `"hfov_deg":60`, `"hfov_deg":180`, 1) + `,` + box + `}`, "", ""},
		{"hfov 181", camD, `{` + strings.Replace(camOK, `"hfov_deg":60`, `"hfov_deg":181`, 1) + `,` + box + `}`, ReasonOutOfRange, "hfov_deg"},
		{"missing box", camD, `{` + camOK + `}`, ReasonMissingField, "box"},
		{"track id number", camD, `{` + camOK + `,` + box + `,"track_id":7}`, ReasonBadType, "track_id"},
		{"snapshot ok", camD, `{` + camOK + `,` + box + `,"snapshot_jpeg":"` + jpeg + `"}`, "", ""},
		{"snapshot escaped slash", camD, `{` + camOK + `,` + box + `,"snapshot_jpeg":"\/9j\/4A=="}`, "", ""},
		{"snapshot png", camD, `{` + camOK + `,` + box + `,"snapshot_jpeg":"` + png + `"}`, ReasonBadSnapshot, "snapshot_jpeg"},
		{"snapshot not base64", camD, `{` + camOK + `,` + box + `,"snapshot_jpeg":"#not base64#"}`, ReasonBadSnapshot, "snapshot_jpeg"},
		{"snapshot url-safe alphabet", camD, `{` + camOK + `,` + box + `,"snapshot_jpeg":"_9j_4A=="}`, ReasonBadSnapshot, "snapshot_jpeg"},
		{"snapshot empty", camD, `{` + camOK + `,` + box + `,"snapshot_jpeg":""}`, ReasonBadSnapshot, "snapshot_jpeg"},
		{"snapshot number", camD, `{` + camOK + `,` + box + `,"snapshot_jpeg":1}`, ReasonBadType, "snapshot_jpeg"},

		// device id and timestamps
		{"device id match", hb, `{"device_id":"WS-12","uptime_s":1,"fw":"a"}`, "", ""},
		{"device id mismatch", hb, `{"device_id":"WS-13","uptime_s":1,"fw":"a"}`, ReasonDeviceMismatch, "device_id"},
		{"device id case differs", hb, `{"device_id":"ws-12","uptime_s":1,"fw":"a"}`, ReasonDeviceMismatch, "device_id"},
		{"device id number", hb, `{"device_id":12,"uptime_s":1,"fw":"a"}`, ReasonBadType, "device_id"},
		{"ts bool", hb, `{"ts":true,"uptime_s":1,"fw":"a"}`, ReasonBadType, "ts"},
		{"ts garbage string", hb, `{"ts":"yesterday","uptime_s":1,"fw":"a"}`, ReasonBadTimestamp, "ts"},
		{"ts without zone", hb, `{"ts":"2025-06-01T08:00:00","uptime_s":1,"fw":"a"}`, ReasonBadTimestamp, "ts"},
		{"ts fractional ms", hb, `{"ts":1748764800000.5,"uptime_s":1,"fw":"a"}`, ReasonBadTimestamp, "ts"},
		{"ts exponent ms", hb, `{"ts":1.7487648e12,"uptime_s":1,"fw":"a"}`, ReasonBadTimestamp, "ts"},
		{"ts seconds not ms", hb, `{"ts":1748764800,"uptime_s":1,"fw":"a"}`, ReasonBadTimestamp, "ts"},
		{"ts int64 overflow", hb, `{"ts":99999999999999999999999,"uptime_s":1,"fw":"a"}`, ReasonBadTimestamp, "ts"},
		{"ts negative", hb, `{"ts":-1,"uptime_s":1,"fw":"a"}`, ReasonBadTimestamp, "ts"},
		{"ts 4m59s ahead", hb, `{"ts":"2025-06-01T08:05:59Z","uptime_s":1,"fw":"a"}`, "", ""},
		{"ts 5m ahead exactly", hb, `{"ts":"2025-06-01T08:06:00Z","uptime_s":1,"fw":"a"}`, "", ""},
		{"ts 5m1ms ahead", hb, `{"ts":"2025-06-01T08:06:00.001Z","uptime_s":1,"fw":"a"}`, ReasonBadTimestamp, "ts"},
		{"ts ahead via offset", hb, `{"ts":"2025-06-01T16:10:00+08:00","uptime_s":1,"fw":"a"}`, ReasonBadTimestamp, "ts"},
		{"ts ms ahead", hb, `{"ts":1748765200000,"uptime_s":1,"fw":"a"}`, ReasonBadTimestamp, "ts"},
		{"ts 6 days old", hb, `{"ts":"2025-05-26T08:01:00Z","uptime_s":1,"fw":"a"}`, "", ""},
		{"ts 8 days old", hb, `{"ts":"2025-05-24T08:01:00Z","uptime_s":1,"fw":"a"}`, ReasonBadTimestamp, "ts"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Decode("fire", tc.topic, []byte(tc.payload), testNow, testLimits())
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				checkInvariants(t, tc.topic, []byte(tc.payload), r, testNow, testLimits())
				return
			}
			var rej *Reject
			if !errors.As(err, &rej) {
				t.Fatalf("want *Reject %s, got %v (reading %+v)", tc.reason, err, r)
			}
			if rej.Reason != tc.reason || rej.Field != tc.field {
				t.Fatalf("got reason %q field %q (%v), want %q field %q", rej.Reason, rej.Field, err, tc.reason, tc.field)
			}
			if rej.Detail == "" {
				t.Errorf("reject without detail")
			}
		})
	}
}

func TestDecodeTimestampForms(t *testing.T) {
	hb := topicOf(ClassElec, KindHeartbeat)
	want := time.Date(2025, 6, 1, 7, 59, 30, 123e6, time.UTC)
	for _, ts := range []string{`"2025-06-01T07:59:30.123Z"`, `"2025-06-01T15:59:30.123+08:00"`, `"2025-06-01T03:59:30.123-04:00"`, `1748764770123`} {
		r, err := Decode("fire", hb, []byte(`{"ts":`+ts+`,"uptime_s":5,"fw":"x"}`), testNow, testLimits())
		if err != nil {
			t.Fatalf("ts %s: %v", ts, err)
		}
		if !r.Time.Equal(want) || r.Time.Location() != time.UTC {
			t.Errorf("ts %s: Time = %v, want %v", ts, r.Time, want)
		}
	}
	// Absent ts: the gateway's receive time, in UTC even when now is local.
	local := testNow.In(time.FixedZone("CST", 8*3600))
	r, err := Decode("fire", hb, []byte(`{"uptime_s":5,"fw":"x"}`), local, testLimits())
	if err != nil || !r.Time.Equal(testNow) || r.Time.Location() != time.UTC || r.Received != r.Time {
		t.Fatalf("absent ts: %+v %v", r, err)
	}
	// Limits are taken from the caller.
	lim := testLimits()
	lim.MaxFuture = 0
	if _, err := Decode("fire", hb, []byte(`{"ts":"2025-06-01T08:01:00.001Z","uptime_s":5,"fw":"x"}`), testNow, lim); ReasonOf(err) != ReasonBadTimestamp {
		t.Errorf("MaxFuture 0: got %v", err)
	}
	lim.MaxPast = time.Minute
	if _, err := Decode("fire", hb, []byte(`{"ts":"2025-06-01T07:59:59Z","uptime_s":5,"fw":"x"}`), testNow, lim); ReasonOf(err) != ReasonBadTimestamp {
		t.Errorf("MaxPast 1m: got %v", err)
	}
	lim.MaxPayload = 10
	if _, err := Decode("fire", hb, []byte(`{"uptime_s":5,"fw":"x"}`), testNow, lim); ReasonOf(err) != ReasonTooLarge {
		t.Errorf("MaxPayload 10: got %v", err)
	}
}

func TestDecodeSnapshotLimit(t *testing.T) {
	lim := testLimits()
	lim.MaxSnapshot = 1000
	const head = `{"label":"fire","score":0.5,"pan_deg":10,"tilt_deg":0,"hfov_deg":60,"box":[0.1,0.2,0.3,0.4],"snapshot_jpeg":"`
	for _, tc := range []struct {
		size int
		ok   bool
	}{{3, true}, {998, true}, {999, true}, {1000, true}, {1001, false}, {1002, false}, {1003, false}, {5000, false}} {
		img := make([]byte, tc.size)
		copy(img, []byte{0xFF, 0xD8, 0xFF})
		for i := 3; i < len(img); i++ {
			img[i] = byte(i)
		}
		p := head + base64.StdEncoding.EncodeToString(img) + `"}`
		r, err := Decode("fire", "fire/camera/C1/detection", []byte(p), testNow, lim)
		if tc.ok {
			if err != nil || string(r.Snapshot) != string(img) {
				t.Errorf("size %d: err %v, snapshot %d bytes", tc.size, err, len(r.Snapshot))
			}
			if _, inFields := r.Fields["snapshot_jpeg"]; inFields {
				t.Errorf("snapshot_jpeg must not be in Fields")
			}
			continue
		}
		var rej *Reject
		if !errors.As(err, &rej) || rej.Reason != ReasonBadSnapshot || rej.Field != "snapshot_jpeg" {
			t.Errorf("size %d: got %v, want bad_snapshot", tc.size, err)
		}
	}
}

// TestDecodeFieldsAreFresh: a Reading must not alias the payload buffer, which
// the MQTT client reuses after the handler returns.
func TestDecodeFieldsAreFresh(t *testing.T) {
	p := []byte(`{"uptime_s":1,"fw":"abc"}`)
	r, err := Decode("fire", "fire/smoke/S1/heartbeat", p, testNow, testLimits())
	if err != nil {
		t.Fatal(err)
	}
	for i := range p {
		p[i] = 'z'
	}
	if fw, _ := r.String("fw"); fw != "abc" {
		t.Fatalf("fw = %q after payload reuse", fw)
	}
}

// TestRejectIsTyped: every error Decode returns is a *Reject with a listed reason.
func TestRejectIsTyped(t *testing.T) {
	for _, p := range []string{``, `{`, `{"a":1}`, `{"fw":1}`, `{"ts":"x"}`} {
		_, err := Decode("fire", "fire/smoke/S1/heartbeat", []byte(p), testNow, testLimits())
		if !knownReason(ReasonOf(err)) {
			t.Errorf("%q: error %v has no known reason", p, err)
		}
	}
}

func knownReason(r Reason) bool {
	for _, x := range Reasons {
		if x == r {
			return true
		}
	}
	return false
}

// physical holds the protocol's ranges written out independently of the
// schema tables, so the invariant check does not just re-read the code's
// own table.
var physical = map[string][2]float64{
	"battery_pct": {0, 100}, "rssi_dbm": {-160, 0}, "uptime_s": {0, 4294967295},
	"smoke_db_m": {0, 20}, "temperature_c": {-50, 150},
	"air_temp_c": {-80, 70}, "rh_pct": {0, 100}, "wind_speed_ms": {0, 120}, "wind_dir_deg": {0, 360},
	"precip_mm": {0, 2000}, "fuel_moisture_pct": {0, 300}, "soil_moisture_pct": {0, 100}, "pressure_hpa": {300, 1100},
	"residual_current_ma": {0, 5000}, "cable_temp_c": {-50, 250}, "current_a": {0, 10000}, "voltage_v": {0, 1000},
	"channel": {1, 4}, "score": {0, 1}, "box": {0, 1}, "pan_deg": {0, 360}, "tilt_deg": {-90, 90}, "hfov_deg": {0, 180},
}

var arrayLen = map[string][2]int{"residual_current_ma": {1, 4}, "cable_temp_c": {1, 4}, "current_a": {1, 3}, "voltage_v": {1, 3}, "box": {4, 4}}

// checkInvariants asserts what any accepted Reading must satisfy, whatever the
// payload was.
func checkInvariants(t testing.TB, topic string, payload []byte, r Reading, now time.Time, lim Limits) {
	t.Helper()
	if !r.Class.Valid() || !r.Class.Sends(r.Kind) || !ValidDeviceID(r.DeviceID) {
		t.Fatalf("accepted bad identity %q %q %q", r.Class, r.DeviceID, r.Kind)
	}
	if topic != "fire/"+string(r.Class)+"/"+r.DeviceID+"/"+string(r.Kind) {
		t.Fatalf("identity %q %q %q does not match topic %q", r.Class, r.DeviceID, r.Kind, topic)
	}
	if r.Time.After(now.Add(lim.MaxFuture)) || r.Time.Before(now.Add(-lim.MaxPast)) || r.Time.Location() != time.UTC {
		t.Fatalf("accepted time %v outside window around %v", r.Time, now)
	}
	if len(payload) > lim.MaxPayload {
		t.Fatalf("accepted %d-byte payload", len(payload))
	}
	for name, v := range r.Fields {
		var xs []float64
		switch v := v.(type) {
		case float64:
			xs = []float64{v}
		case []float64:
			xs = v
			if l, ok := arrayLen[name]; !ok || len(v) < l[0] || len(v) > l[1] {
				t.Fatalf("%s: accepted array of %d", name, len(v))
			}
		case bool:
		case string:
			if v == "" || strings.ContainsAny(v, "\x00\n\r\t") {
				t.Fatalf("%s: accepted string %q", name, v)
			}
		default:
			t.Fatalf("%s: value of type %T", name, v)
		}
		for _, x := range xs {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("%s: accepted non-finite %v", name, x)
			}
			rg, ok := physical[name]
			if !ok {
				t.Fatalf("%s: numeric field without a known range", name)
			}
			if x < rg[0] || x > rg[1] {
				t.Fatalf("%s: accepted %v outside %v", name, x, rg)
			}
		}
	}
	if h, ok := r.Float("hfov_deg"); ok && h <= 0 {
		t.Fatalf("accepted hfov %v", h)
	}
	if b, ok := r.Floats("box"); ok && !(b[0] < b[2] && b[1] < b[3]) {
		t.Fatalf("accepted unordered box %v", b)
	}
	if r.Snapshot != nil {
		if r.Class != ClassCamera || len(r.Snapshot) > lim.MaxSnapshot || len(r.Snapshot) < 3 || r.Snapshot[0] != 0xFF || r.Snapshot[1] != 0xD8 {
			t.Fatalf("accepted bad snapshot of %d bytes", len(r.Snapshot))
		}
	}
}

// TestFastNumberMatchesParseFloat: the fast path must give bit-identical
// results to strconv wherever it claims a literal.
func TestFastNumberMatchesParseFloat(t *testing.T) {
	lits := []string{"0", "-0", "1", "-1", "0.1", "0.2", "0.3", "22.5", "-97", "1002.6", "4294967295",
		"999999999999999", "0.000000000000001", "123456789.012345", "9007199254740993", "1234567890123456",
		"1e5", "0.1e1", "3.14159265358979", "-0.000001"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		digits := strconv.FormatUint(rng.Uint64()%1e15, 10)
		cut := rng.IntN(len(digits) + 1)
		lit := digits[:cut] + "." + digits[cut:]
		if cut == 0 {
			lit = "0" + lit
		}
		if cut == len(digits) {
			lit = digits
		}
		if rng.IntN(2) == 0 {
			lit = "-" + lit
		}
		lits = append(lits, lit)
	}
	fast := 0
	for _, lit := range lits {
		want, err := strconv.ParseFloat(lit, 64)
		if err != nil {
			t.Fatalf("%s: %v", lit, err)
		}
		if got, ok := fastNumber([]byte(lit)); ok {
			fast++
			if math.Float64bits(got) != math.Float64bits(want) {
				t.Errorf("%s: fast %v (%x), strconv %v (%x)", lit, got, math.Float64bits(got), want, math.Float64bits(want))
			}
		}
		if got, rej := number("x", []byte(lit)); rej != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("%s: number() = %v %v, want %v", lit, got, rej, want)
		}
	}
	if fast < len(lits)/2 {
		t.Errorf("fast path took only %d of %d literals", fast, len(lits))
	}
}
