package main

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/registry"
)

// cst is China Standard Time, fixed (no tzdata needed): the diurnal cycles
// follow local solar-ish time.
var cst = time.FixedZone("CST", 8*3600)

// message is one MQTT publish.
type message struct {
	topic   string
	payload []byte
}

// simDevice is one simulated device's state: what it is, the values that
// evolve between messages (battery, wind direction, alarm state), and the
// faults applied to it. It is owned by one goroutine; it is not safe for
// concurrent use.
type simDevice struct {
	dev    registry.Device
	prefix string
	rng    *rand.Rand
	booted time.Time // uptime_s counts from here

	battery  float64 // %, slowly draining
	rssi     float64 // dBm, per-device mean
	windDir  float64 // deg, random walk
	tempBias float64 // °C, per-site offset
	channels int     // elec: residual-current channels (1–4)
	phases   int     // elec: 1 or 3 phases
	track    int     // camera: detection track counter

	alarmLeft   int  // smoke: telemetry messages left in the current alarm (0 = none)
	elecAlarm   int  // elec: telemetry messages left in a residual-current excursion
	lowBattery  bool // fault: battery near empty
	tamper      bool // fault: removed from its base
	numericTS   bool // alternate ts formats, as a mixed fleet would
	pendingEvts []string
}

func newSimDevice(d registry.Device, prefix string, seed uint64, now time.Time) *simDevice {
	rng := rand.New(rand.NewPCG(seed, uint64(len(d.ID))*7919+seed>>3))
	s := &simDevice{dev: d, prefix: prefix, rng: rng,
		booted:   now.Add(-time.Duration(rng.IntN(30*24*3600)) * time.Second),
		battery:  70 + 30*rng.Float64(),
		rssi:     -60 - 45*rng.Float64(),
		windDir:  360 * rng.Float64(),
		tempBias: rng.NormFloat64() * 1.2,
		channels: 1 + rng.IntN(4),
		phases:   1 + 2*rng.IntN(2),
	}
	s.numericTS = rng.IntN(2) == 0
	return s
}

// topic is fire/{class}/{device}/{kind}.
func (s *simDevice) topic(k ingest.Kind) string {
	return s.prefix + "/" + string(s.dev.Class) + "/" + s.dev.ID + "/" + string(k)
}

// hasBattery: smoke alarms run on batteries; stations on solar + battery.
func (s *simDevice) hasBattery() bool {
	return s.dev.Class == ingest.ClassSmoke || s.dev.Class == ingest.ClassStation
}

// setLowBattery applies the --low-battery fault.
func (s *simDevice) setLowBattery() {
	s.lowBattery = true
	s.battery = 8 + 4*s.rng.Float64()
	s.pendingEvts = append(s.pendingEvts, "low_battery")
}

// setTamper applies the --tamper fault.
func (s *simDevice) setTamper() {
	s.tamper = true
	s.pendingEvts = append(s.pendingEvts, "tamper")
}

// startAlarm begins a smoke alarm lasting n telemetry messages.
func (s *simDevice) startAlarm(n int) bool {
	if s.dev.Class != ingest.ClassSmoke || s.alarmLeft > 0 {
		return false
	}
	s.alarmLeft = n
	s.pendingEvts = append(s.pendingEvts, "alarm")
	return true
}

// jw builds a JSON object with keys in insertion order. Values are finite by
// construction (the generator never produces NaN or Inf).
type jw struct{ b []byte }

func (w *jw) key(k string) {
	if len(w.b) == 0 {
		w.b = append(w.b, '{')
	} else {
		w.b = append(w.b, ',')
	}
	w.b = strconv.AppendQuote(w.b, k)
	w.b = append(w.b, ':')
}
func (w *jw) num(k string, v float64, prec int) {
	w.key(k)
	w.b = strconv.AppendFloat(w.b, v, 'f', prec, 64)
}
func (w *jw) boolean(k string, v bool) { w.key(k); w.b = strconv.AppendBool(w.b, v) }
func (w *jw) str(k, v string)          { w.key(k); w.b = strconv.AppendQuote(w.b, v) }
func (w *jw) nums(k string, vs []float64, prec int) {
	w.key(k)
	w.b = append(w.b, '[')
	for i, v := range vs {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = strconv.AppendFloat(w.b, v, 'f', prec, 64)
	}
	w.b = append(w.b, ']')
}
func (w *jw) done() []byte {
	if len(w.b) == 0 {
		return []byte("{}")
	}
	return append(w.b, '}')
}

func (s *simDevice) ts(w *jw, now time.Time) {
	if s.numericTS {
		w.key("ts")
		w.b = strconv.AppendInt(w.b, now.UnixMilli(), 10)
		return
	}
	w.str("ts", now.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
}

func round(v float64, prec int) float64 {
	p := math.Pow10(prec)
	return math.Round(v*p) / p
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// diurnal is a daily cycle in [-1, 1] peaking at 15:00 local time.
func diurnal(now time.Time) float64 {
	t := now.In(cst)
	h := float64(t.Hour()) + float64(t.Minute())/60
	return math.Sin(2 * math.Pi * (h - 9) / 24)
}

func (s *simDevice) drain() {
	if s.hasBattery() && !s.lowBattery {
		s.battery = math.Max(15, s.battery-0.002*s.rng.Float64())
	}
}

func (s *simDevice) signal() float64 { return round(clamp(s.rssi+s.rng.NormFloat64()*3, -140, -30), 0) }

// heartbeat is every class's "still alive" message.
func (s *simDevice) heartbeat(now time.Time) message {
	var w jw
	s.ts(&w, now)
	w.num("uptime_s", math.Floor(now.Sub(s.booted).Seconds()), 0)
	fw := s.dev.Firmware
	if fw == "" {
		fw = "sim-1.0.0"
	}
	w.str("fw", fw)
	if s.hasBattery() {
		w.num("battery_pct", round(s.battery, 1), 1)
	}
	w.num("rssi_dbm", s.signal(), 0)
	return message{s.topic(ingest.KindHeartbeat), w.done()}
}

// event renders a pending or spontaneous event for the device's class.
func (s *simDevice) event(now time.Time, name string) message {
	var w jw
	s.ts(&w, now)
	w.str("event", name)
	switch s.dev.Class {
	case ingest.ClassSmoke:
		if name == "alarm" {
			w.num("smoke_db_m", round(0.25+s.rng.Float64()*0.8, 2), 2)
			w.num("temperature_c", round(35+s.rng.Float64()*15, 1), 1)
		}
		w.num("battery_pct", round(s.battery, 1), 1)
	case ingest.ClassStation:
		w.num("battery_pct", round(s.battery, 1), 1)
	case ingest.ClassElec:
		if name == "residual_alarm" {
			w.num("channel", 1, 0)
		}
	}
	return message{s.topic(ingest.KindEvent), w.done()}
}

// eventName maps a generic fault to the class's event vocabulary ("" = none).
func (s *simDevice) eventName(generic string) string {
	switch generic {
	case "low_battery":
		if s.hasBattery() {
			return "low_battery"
		}
	case "tamper":
		if s.dev.Class != ingest.ClassElec {
			return "tamper"
		}
	default:
		return generic
	}
	return ""
}

// takeEvents returns the events queued by faults and alarms.
func (s *simDevice) takeEvents(now time.Time) []message {
	var out []message
	for _, e := range s.pendingEvts {
		if name := s.eventName(e); name != "" {
			out = append(out, s.event(now, name))
		}
	}
	s.pendingEvts = s.pendingEvts[:0]
	return out
}

// telemetry renders one periodic measurement (cameras send detections instead).
// alarmProb is the chance per message that a smoke alarm or an electrical
// excursion starts spontaneously.
func (s *simDevice) telemetry(now time.Time, alarmProb float64) []message {
	s.drain()
	var w jw
	s.ts(&w, now)
	var extra []message
	switch s.dev.Class {
	case ingest.ClassSmoke:
		if s.alarmLeft == 0 && s.rng.Float64() < alarmProb {
			s.startAlarm(2 + s.rng.IntN(3))
		}
		extra = s.takeEvents(now)
		alarm := s.alarmLeft > 0
		smoke := clamp(0.01+math.Abs(s.rng.NormFloat64())*0.01, 0, 0.08)
		temp := 21 + 3*diurnal(now) + s.tempBias + s.rng.NormFloat64()*0.3
		if alarm {
			smoke = 0.2 + s.rng.Float64()*1.2
			temp += 10 + s.rng.Float64()*20
			s.alarmLeft--
			if s.alarmLeft == 0 {
				defer func() { s.pendingEvts = append(s.pendingEvts, "alarm_cleared") }()
			}
		}
		w.boolean("alarm", alarm)
		w.num("smoke_db_m", round(smoke, 3), 3)
		w.num("temperature_c", round(temp, 1), 1)
		w.num("battery_pct", round(s.battery, 1), 1)
		w.num("rssi_dbm", s.signal(), 0)
		w.boolean("tamper", s.tamper)
	case ingest.ClassStation:
		extra = s.takeEvents(now)
		d := diurnal(now)
		temp := 17 + 7*d + s.tempBias + s.rng.NormFloat64()*0.4
		rh := clamp(62-22*d+s.rng.NormFloat64()*3, 8, 100)
		wind := clamp(2+2.5*math.Max(d, 0)+math.Abs(s.rng.NormFloat64())*1.5, 0, 40)
		s.windDir = math.Mod(s.windDir+s.rng.NormFloat64()*15+360, 360)
		precip := 0.0
		if s.rng.Float64() < 0.03 {
			precip = round(s.rng.ExpFloat64()*0.6, 1)
		}
		w.num("air_temp_c", round(temp, 1), 1)
		w.num("rh_pct", round(rh, 1), 1)
		w.num("wind_speed_ms", round(wind, 1), 1)
		w.num("wind_dir_deg", round(s.windDir, 0), 0)
		w.num("precip_mm", precip, 1)
		w.num("fuel_moisture_pct", round(clamp(8+0.2*rh+s.rng.NormFloat64(), 2, 60), 1), 1)
		w.num("soil_moisture_pct", round(clamp(24+s.rng.NormFloat64()*2, 5, 60), 1), 1)
		w.num("pressure_hpa", round(955+s.rng.NormFloat64()*2-2*d, 1), 1)
		w.num("battery_pct", round(s.battery, 1), 1)
		w.num("rssi_dbm", s.signal(), 0)
	case ingest.ClassElec:
		if s.elecAlarm == 0 && s.rng.Float64() < alarmProb {
			s.elecAlarm = 2
			s.pendingEvts = append(s.pendingEvts, "residual_alarm")
		}
		extra = s.takeEvents(now)
		load := 0.55 + 0.35*diurnal(now) // share of rated current, low at night
		res := make([]float64, s.channels)
		cable := make([]float64, s.channels)
		for i := range res {
			res[i] = round(clamp(150+s.rng.NormFloat64()*20, 90, 220), 0) // GB 50116: normal leakage 100–200 mA
			cable[i] = round(28+12*load+s.rng.NormFloat64(), 1)
		}
		alarm := s.elecAlarm > 0
		if alarm {
			res[0] = round(320+s.rng.Float64()*180, 0) // 300–500 mA alarm band
			s.elecAlarm--
			if s.elecAlarm == 0 {
				defer func() { s.pendingEvts = append(s.pendingEvts, "alarm_cleared") }()
			}
		}
		cur := make([]float64, s.phases)
		volt := make([]float64, s.phases)
		for i := range cur {
			cur[i] = round(math.Max(0, 40*load+s.rng.NormFloat64()*2), 1)
			volt[i] = round(228+s.rng.NormFloat64()*3, 1)
		}
		w.nums("residual_current_ma", res, 0)
		w.nums("cable_temp_c", cable, 1)
		w.nums("current_a", cur, 1)
		w.nums("voltage_v", volt, 1)
		w.boolean("arc_fault", false)
		w.boolean("alarm", alarm)
		w.num("rssi_dbm", s.signal(), 0)
	default:
		return nil
	}
	return append(extra, message{s.topic(ingest.KindTelemetry), w.done()})
}

// detection renders a camera AI detection: label, score, a normalised box and
// the camera's pointing (pan/tilt/hfov) at the time.
func (s *simDevice) detection(now time.Time) message {
	pan, hfov := 360*s.rng.Float64(), 58.0
	if s.dev.PanDeg != nil {
		pan = *s.dev.PanDeg
	}
	if s.dev.HFOVDeg != nil {
		hfov = *s.dev.HFOVDeg
	}
	pan = math.Mod(pan+s.rng.NormFloat64()*2+360, 360)
	label := "smoke"
	if s.rng.Float64() < 0.15 {
		label = "fire"
	}
	bw, bh := 0.03+0.12*s.rng.Float64(), 0.03+0.15*s.rng.Float64()
	x0, y0 := s.rng.Float64()*(1-bw), 0.2+s.rng.Float64()*(0.7-bh)
	s.track++
	var w jw
	s.ts(&w, now)
	w.str("label", label)
	w.num("score", round(0.45+0.5*s.rng.Float64(), 3), 3)
	w.nums("box", []float64{round(x0, 4), round(y0, 4), round(x0+bw, 4), round(y0+bh, 4)}, 4)
	w.num("pan_deg", round(pan, 2), 2)
	w.num("tilt_deg", round(-2+s.rng.NormFloat64(), 2), 2)
	w.num("hfov_deg", hfov, -1) // full precision: a narrow zoom (< 0.05°) must not print as 0.0
	// The topic names the camera already; "<device id>-<n>" would pass the
	// 64-byte track_id limit for device ids of 63–64 characters.
	w.str("track_id", "t-"+strconv.Itoa(s.track))
	return message{s.topic(ingest.KindDetection), w.done()}
}

// loadMessage is a valid reading for --load: alternating kinds per class, with
// the given timestamp (unique per message so every reading is its own point).
func (s *simDevice) loadMessage(ts time.Time) message {
	switch s.dev.Class {
	case ingest.ClassCamera:
		if s.rng.IntN(2) == 0 {
			return s.detection(ts)
		}
		return s.heartbeat(ts)
	default:
		if s.rng.IntN(4) == 0 {
			return s.heartbeat(ts)
		}
		s.pendingEvts = s.pendingEvts[:0]
		s.alarmLeft, s.elecAlarm = 0, 0
		ms := s.telemetry(ts, 0)
		return ms[len(ms)-1]
	}
}

// Malformed payload variants for --malformed-rate, each with the reason the
// gateway must reject it with. They cover the validation layers in order:
// topic, size, syntax, structure, types, ranges, time, identity.
var malformedKinds = []struct {
	name   string
	reason ingest.Reason
}{
	{"bad_topic", ingest.ReasonBadTopic},
	{"too_large", ingest.ReasonTooLarge},
	{"truncated_json", ingest.ReasonBadJSON},
	{"not_an_object", ingest.ReasonBadJSON},
	{"missing_field", ingest.ReasonMissingField},
	{"wrong_type", ingest.ReasonBadType},
	{"out_of_range", ingest.ReasonOutOfRange},
	{"future_ts", ingest.ReasonBadTimestamp},
	{"device_mismatch", ingest.ReasonDeviceMismatch},
	{"unknown_field", ingest.ReasonUnknownField},
	{"duplicate_field", ingest.ReasonDuplicateField},
}

// malformed renders variant v of a deliberately bad message from this device,
// built from a valid heartbeat so exactly one thing is wrong. maxPayload is the
// size limit the too_large variant must exceed.
func (s *simDevice) malformed(now time.Time, v int, maxPayload int) message {
	hb := s.heartbeat(now)
	body := string(hb.payload)
	inner := body[1 : len(body)-1] // members without braces
	switch malformedKinds[v%len(malformedKinds)].name {
	case "bad_topic":
		return message{s.prefix + "/" + string(s.dev.Class) + "/" + s.dev.ID + "/selfie", hb.payload}
	case "too_large":
		pad := strings.Repeat("x", maxPayload)
		return message{hb.topic, []byte(`{"fw":"` + pad + `"}`)}
	case "truncated_json":
		return message{hb.topic, hb.payload[:len(hb.payload)/2]}
	case "not_an_object":
		return message{hb.topic, []byte(`[` + strconv.Quote(s.dev.ID) + `, 42]`)}
	case "missing_field":
		var w jw
		s.ts(&w, now)
		w.num("uptime_s", 12, 0)
		return message{hb.topic, w.done()}
	case "wrong_type":
		return message{hb.topic, []byte(`{"uptime_s":"12","fw":"x"}`)}
	case "out_of_range":
		return message{hb.topic, []byte(`{"uptime_s":12,"fw":"x","battery_pct":140}`)}
	case "future_ts":
		return message{hb.topic, []byte(`{"ts":` + strconv.FormatInt(now.Add(time.Hour).UnixMilli(), 10) + `,"uptime_s":12,"fw":"x"}`)}
	case "device_mismatch":
		return message{hb.topic, []byte(`{"device_id":"not-` + s.dev.ID + `",` + inner + `}`)}
	case "unknown_field":
		return message{hb.topic, []byte(`{` + inner + `,"colour":"red"}`)}
	case "duplicate_field":
		return message{hb.topic, []byte(`{"uptime_s":1,"fw":"x","uptime_s":2}`)}
	}
	panic("unreachable")
}
