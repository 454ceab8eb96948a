package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/alerting"
	"github.com/lookoutfire/lookout/auth"
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

// Deleting a device revokes its MQTT account and camera tokens: the same id
// registered again starts with no secrets.
func TestDeletedDeviceCredentialsRevoked(t *testing.T) {
	a := testApp(t)
	ctx := context.Background()
	if err := a.sec.store.CreateUser(ctx, "boss", auth.RoleAdmin, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"cam-del", "cam-keep"} {
		if err := a.devices.Create(ctx, registry.Device{ID: id, Class: "camera", Name: id, Lat: 31.4, Lon: 106.9}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.sec.store.IssueMQTT(ctx, id, auth.MQTTDevice); err != nil {
			t.Fatal(err)
		}
		if _, _, err := a.sec.store.CreateToken(ctx, "boss", auth.RoleAdmin, auth.TokenRequest{Name: "cam", Role: auth.RoleCamera, Device: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.devices.Delete(ctx, "cam-del"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.sec.store.GetMQTT(ctx, "cam-del"); !errors.Is(err, auth.ErrCredNotFound) {
		t.Errorf("MQTT account of the deleted device: %v, want gone", err)
	}
	if _, err := a.sec.store.GetMQTT(ctx, "cam-keep"); err != nil {
		t.Errorf("the other camera's account: %v", err)
	}
	toks, err := a.sec.store.ListTokens(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks {
		if tk.Device == "cam-del" {
			t.Errorf("camera token %s of the deleted device survived", tk.ID)
		}
	}
	if len(toks) != 1 {
		t.Errorf("%d tokens left, want cam-keep's only", len(toks))
	}
}
