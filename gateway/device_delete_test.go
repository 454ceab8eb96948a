package main

import (
	"context"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/alerting"
	"github.com/lookoutfire/lookout/registry"
)

// Deleting a device clears its offline alert (it will never come back online
// to clear it); its other alerts stay for a person.
func TestDeletedDeviceOfflineAlertCleared(t *testing.T) {
	a := testApp(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.alerts.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	if err := a.devices.Create(ctx, registry.Device{ID: "smk-del", Class: "smoke", Name: "gone", Lat: 31.4, Lon: 106.9}); err != nil {
		t.Fatal(err)
	}
	a.alerts.DeviceHealth(alerting.HealthEvent{DeviceID: "smk-del", Class: "smoke", From: "online", To: "offline", At: time.Now()})
	if _, err := a.alerts.Raise(ctx, alerting.Raise{Source: "smk-del", Type: alerting.TypeSmokeAlarm, Severity: alerting.Critical}); err != nil {
		t.Fatal(err)
	}
	active := func(typ string) bool {
		l, err := a.alerts.List(ctx, alerting.Filter{States: []alerting.State{alerting.ActiveUnack, alerting.ActiveAck}})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range l {
			if x.Source == "smk-del" && x.Type == typ {
				return true
			}
		}
		return false
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitUntil("the offline alert", func() bool { return active(alerting.TypeOffline) })
	if err := a.devices.Delete(ctx, "smk-del"); err != nil {
		t.Fatal(err)
	}
	waitUntil("the offline alert cleared", func() bool { return !active(alerting.TypeOffline) })
	if !active(alerting.TypeSmokeAlarm) {
		t.Error("the smoke alarm was cleared with the device")
	}
}
