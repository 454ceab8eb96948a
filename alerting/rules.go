package alerting

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/lookoutfire/lookout/ingest"
)

// Evaluate runs the rules for one reading synchronously. Observe queues readings
// for it; tests and tools call it directly.
func (e *Engine) Evaluate(ctx context.Context, r ingest.Reading) error {
	switch r.Class {
	case ingest.ClassSmoke:
		return e.smokeRules(ctx, r)
	case ingest.ClassElec:
		return e.elecRules(ctx, r)
	case ingest.ClassCamera:
		if r.Kind == ingest.KindDetection {
			return e.cameraRule(ctx, r)
		}
	case ingest.ClassStation:
		return e.stationRule(ctx, r)
	}
	return nil
}

func (e *Engine) raiseFor(ctx context.Context, r ingest.Reading, typ string, sev Severity, msg string, details map[string]any) error {
	_, err := e.Raise(ctx, Raise{Source: r.DeviceID, Type: typ, Severity: sev, Zone: r.Zone, Forest: r.Forest,
		Lat: r.Lat, Lon: r.Lon, Message: msg, Details: details, At: r.Time})
	return err
}

// smokeRules: alarm → critical; tamper, low battery, fault → warning for
// maintenance; alarm_cleared clears the alarm; restore clears alarm, tamper and
// fault. Telemetry alarm=false does not clear: only the device's explicit event
// does, so a heartbeat cannot silence a latched alarm.
func (e *Engine) smokeRules(ctx context.Context, r ingest.Reading) error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if v, ok := r.Bool("alarm"); ok && v {
		add(e.raiseFor(ctx, r, TypeSmokeAlarm, Critical, "smoke alarm 烟感报警", nil))
	}
	if v, ok := r.Bool("tamper"); ok && v {
		add(e.raiseFor(ctx, r, TypeTamper, Warning, "smoke alarm removed or tampered", nil))
	}
	if b, ok := r.Float("battery_pct"); ok {
		switch {
		case b <= e.cfg.Smoke.LowBatteryPct:
			add(e.raiseFor(ctx, r, TypeLowBattery, Warning, fmt.Sprintf("battery %.0f%%", b), map[string]any{"battery_pct": b}))
		case b > e.cfg.Smoke.LowBatteryPct+e.cfg.Smoke.BatteryMarginPct:
			add(e.Resolve(ctx, r.DeviceID, TypeLowBattery, fmt.Sprintf("battery %.0f%%", b)))
		}
	}
	if ev, ok := r.String("event"); ok {
		switch ev {
		case "alarm":
			add(e.raiseFor(ctx, r, TypeSmokeAlarm, Critical, "smoke alarm 烟感报警", nil))
		case "tamper":
			add(e.raiseFor(ctx, r, TypeTamper, Warning, "smoke alarm removed or tampered", nil))
		case "low_battery":
			add(e.raiseFor(ctx, r, TypeLowBattery, Warning, "low battery", nil))
		case "fault":
			add(e.raiseFor(ctx, r, TypeFault, Warning, "device fault", nil))
		case "alarm_cleared":
			add(e.Resolve(ctx, r.DeviceID, TypeSmokeAlarm, "device reported alarm_cleared"))
		case "restore":
			for _, t := range []string{TypeSmokeAlarm, TypeTamper, TypeFault} {
				add(e.Resolve(ctx, r.DeviceID, t, "device reported restore"))
			}
		}
	}
	return errors.Join(errs...)
}

// elecRules: residual current and cable temperature with hysteresis (raise at
// ≥ threshold on any channel, clear only when every channel is below threshold −
// margin; in between nothing changes), arc fault → critical (latched: cleared by
// an operator), the monitor's own alarm flag → major.
func (e *Engine) elecRules(ctx context.Context, r ingest.Reading) error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	band := func(field, typ, unit string, threshold, margin float64) {
		vals, ok := r.Floats(field)
		if !ok || len(vals) == 0 {
			if v, ok1 := r.Float(field); ok1 {
				vals, ok = []float64{v}, true
			}
		}
		if !ok || len(vals) == 0 {
			return
		}
		peak := slices.Max(vals)
		ch := slices.Index(vals, peak) + 1
		switch {
		case peak >= threshold:
			add(e.raiseFor(ctx, r, typ, Major, fmt.Sprintf("%s %.0f %s on channel %d (threshold %.0f)", typ, peak, unit, ch, threshold),
				map[string]any{field: vals, "channel": ch, "threshold": threshold}))
		case peak < threshold-margin:
			add(e.Resolve(ctx, r.DeviceID, typ, fmt.Sprintf("%s back to %.0f %s", typ, peak, unit)))
		}
	}
	band("residual_current_ma", TypeResidual, "mA", e.cfg.Elec.ResidualMA, e.cfg.Elec.ResidualMarginMA)
	band("cable_temp_c", TypeCableTemp, "°C", e.cfg.Elec.CableTempC, e.cfg.Elec.CableTempMarginC)
	if v, ok := r.Bool("arc_fault"); ok && v {
		add(e.raiseFor(ctx, r, TypeArcFault, Critical, "arc fault 电弧故障", nil))
	}
	if v, ok := r.Bool("alarm"); ok && v {
		add(e.raiseFor(ctx, r, TypeElecAlarm, Major, "electrical fire monitor alarm", nil))
	}
	if ev, ok := r.String("event"); ok && (ev == "restore" || ev == "alarm_cleared") {
		add(e.Resolve(ctx, r.DeviceID, TypeElecAlarm, "device reported "+ev))
	}
	return errors.Join(errs...)
}

// EvaluateHealth turns registry connectivity changes into one alert per outage:
// raised when a device goes offline, cleared when it is back online. Going
// offline again while the alert is active only bumps its count.
func (e *Engine) EvaluateHealth(ctx context.Context, h HealthEvent) error {
	switch {
	case h.To == "offline":
		sev, _ := ParseSeverity(e.cfg.Health.OfflineSeverity)
		_, err := e.Raise(ctx, Raise{Source: h.DeviceID, Type: TypeOffline, Severity: sev, Zone: h.Zone,
			Message: fmt.Sprintf("%s device offline (was %s)", h.Class, h.From), At: h.At,
			Details: map[string]any{"class": h.Class, "from": h.From}})
		return err
	case h.To == "online":
		return e.Resolve(ctx, h.DeviceID, TypeOffline, "device back online")
	case h.To == HealthDeleted:
		// Removed from the registry: nobody expects it to report again. Its
		// other alerts (a smoke alarm) stay for a person to clear.
		return e.Resolve(ctx, h.DeviceID, TypeOffline, "device deleted from the registry")
	}
	return nil
}
