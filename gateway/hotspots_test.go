package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/alerting"
	"github.com/lookoutfire/lookout/hotspot"
)

// An overdue hotspot report raises a hotspot_overdue alert that the 叫应 chain
// escalates; closing the report clears the alert and no one is called after.
func TestHotspotCloseClearsOverdueAlert(t *testing.T) {
	a := testApp(t)
	ctx := context.Background()
	acq := time.Now().UTC().Add(-30 * time.Minute)
	csv := "latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,bright_ti5,frp,daynight\n" +
		fmt.Sprintf("31.575,106.93,341.2,0.39,0.36,%s,%s,N20,VIIRS,n,2.0NRT,290.1,5.3,D\n", acq.Format("2006-01-02"), acq.Format("1504"))
	if _, err := a.hotspots.Import(ctx, "test", strings.NewReader(csv), nil); err != nil {
		t.Fatal(err)
	}
	reports, err := a.hotspots.List(ctx, hotspot.ListFilter{})
	if err != nil || len(reports) != 1 || reports[0].Deadline == nil {
		t.Fatalf("reports %+v %v", reports, err)
	}
	r := reports[0]
	if err := a.hotspots.RunDue(ctx, r.Deadline.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	alert := func() alerting.AlertView {
		t.Helper()
		list, err := a.alerts.List(ctx, alerting.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, al := range list {
			if al.Source == fmt.Sprintf("hotspot:%d", r.ID) && al.Type == "hotspot_overdue" {
				v, err := a.alerts.Get(ctx, al.ID)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
		}
		t.Fatalf("no hotspot_overdue alert for report %d in %+v", r.ID, list)
		return alerting.AlertView{}
	}
	if v := alert(); !v.Active() || len(v.Calls) == 0 {
		t.Fatalf("overdue alert not active or nobody called: %+v", v)
	}

	if _, err := a.hotspots.Close(ctx, r.ID, "li", hotspot.CloseRequest{Outcome: "农事用火", Verifier: "张三",
		VerifiedAt: time.Now().UTC(), Note: "straw burning by the field"}); err != nil {
		t.Fatal(err)
	}
	v := alert()
	if v.Active() || v.Escalation == nil || !v.Escalation.Done || v.Escalation.Reason != "cleared" {
		t.Fatalf("after close: state %s, escalation %+v", v.State, v.Escalation)
	}
	calls := len(v.Calls)
	if err := a.alerts.RunDue(ctx, time.Now().Add(6*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if v := alert(); len(v.Calls) != calls {
		t.Fatalf("%d calls after the close, want %d", len(v.Calls), calls)
	}
}
