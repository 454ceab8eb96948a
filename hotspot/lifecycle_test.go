package hotspot

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lookoutfire/lookout/errs"
)

// forestReport imports one forest pixel (deadline t0+1h) and returns its report.
func forestReport(t *testing.T, e *testEnv) Report {
	t.Helper()
	e.importString(t, viirsHeader+viirsRow(25.22, 100.2, t0.Add(-2*time.Hour), "N", 8))
	return reportAt(t, e, 25.22, 100.2)
}

func goodClose(at time.Time) CloseRequest {
	return CloseRequest{Outcome: "林火", Verifier: "Li Wei", VerifiedAt: at, Note: "small ground fire, put out"}
}

func TestDeadlineEscalatesOnce(t *testing.T) {
	e := newEnv(t, nil)
	r := forestReport(t, e)
	ctx := context.Background()
	if r.Deadline == nil || !r.Deadline.Equal(t0.Add(time.Hour)) {
		t.Fatalf("deadline %v", r.Deadline)
	}
	// Before the deadline: nothing.
	if err := e.svc.RunDue(ctx, e.clk.Advance(59*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := len(e.esc.raised()); n != 0 {
		t.Fatalf("%d alerts before the deadline", n)
	}
	// At the deadline: exactly one, however often the step runs afterwards.
	for i := 0; i < 5; i++ {
		if err := e.svc.RunDue(ctx, e.clk.Advance(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	got := e.esc.raised()
	if len(got) != 1 {
		t.Fatalf("%d alerts, want 1", len(got))
	}
	a := got[0]
	if a.ReportID != r.ID || a.Source != "hotspot:"+itoa(r.ID) || a.Zone != "v11" || a.Class != ClassForest ||
		a.Severity != "major" || !a.Deadline.Equal(t0.Add(time.Hour)) || a.Assignee != "Li Wei" || !strings.Contains(a.Message, "超时") {
		t.Errorf("alert %+v", a)
	}
	r2, _ := e.svc.Report(ctx, r.ID)
	if !r2.Overdue || r2.EscalatedAt == nil || !r2.EscalatedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("after escalation %+v", r2)
	}
	if v := testutil.ToFloat64(e.svc.m.escalations); v != 1 {
		t.Errorf("escalation counter %v", v)
	}
	if ov := listAll(t, e, ListFilter{Overdue: true}); len(ov) != 1 || ov[0].ID != r.ID {
		t.Errorf("overdue filter %+v", ov)
	}
	// Closing late keeps it counted overdue; a closed report is not escalated again.
	if _, err := e.svc.Close(ctx, r.ID, "li", goodClose(e.clk.Now())); err != nil {
		t.Fatal(err)
	}
	e.svc.RunDue(ctx, e.clk.Advance(24*time.Hour))
	if n := len(e.esc.raised()); n != 1 {
		t.Fatalf("%d alerts after close", n)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestDeadlineConcurrentStepsRaiseOnce(t *testing.T) {
	e := newEnv(t, nil)
	r := forestReport(t, e)
	now := e.clk.Advance(2 * time.Hour)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.svc.RunDue(context.Background(), now); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := e.esc.raised(); len(got) != 1 || got[0].ReportID != r.ID {
		t.Fatalf("concurrent steps raised %d alerts", len(got))
	}
}

func TestDeadlineRaiseFailureRetried(t *testing.T) {
	e := newEnv(t, nil)
	r := forestReport(t, e)
	e.esc.failN = 1
	err := e.svc.RunDue(context.Background(), e.clk.Advance(61*time.Minute))
	if err == nil || len(e.esc.raised()) != 0 {
		t.Fatalf("failed raise: err %v, alerts %d", err, len(e.esc.raised()))
	}
	if r2, _ := e.svc.Report(context.Background(), r.ID); r2.EscalatedAt != nil {
		t.Fatalf("claim kept after a failed raise: %+v", r2)
	}
	if err := e.svc.RunDue(context.Background(), e.clk.Advance(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := len(e.esc.raised()); n != 1 {
		t.Fatalf("%d alerts after retry", n)
	}
}

func TestHeatSourceHasNoDeadline(t *testing.T) {
	e := newEnv(t, nil)
	e.importString(t, viirsHeader+viirsRow(25.4, 100.01, t0.Add(-time.Hour), "N", 1))
	e.svc.RunDue(context.Background(), e.clk.Advance(72*time.Hour))
	if n := len(e.esc.raised()); n != 0 {
		t.Fatalf("heat source escalated %d times", n)
	}
}

func TestCloseNeedsValidOutcome(t *testing.T) {
	e := newEnv(t, nil)
	r := forestReport(t, e)
	ctx := context.Background()
	lat, lon := 25.221, 100.201
	tests := []struct {
		name string
		mod  func(*CloseRequest)
	}{
		{"no outcome", func(c *CloseRequest) { c.Outcome = "" }},
		{"outcome not in the list", func(c *CloseRequest) { c.Outcome = "fire" }},
		{"near miss", func(c *CloseRequest) { c.Outcome = "林火 " }},
		{"no verifier", func(c *CloseRequest) { c.Verifier = " " }},
		{"no time", func(c *CloseRequest) { c.VerifiedAt = time.Time{} }},
		{"time in the future", func(c *CloseRequest) { c.VerifiedAt = t0.Add(time.Hour) }},
		{"no note", func(c *CloseRequest) { c.Note = "" }},
		{"half a position", func(c *CloseRequest) { c.CorrectedLat = &lat }},
		{"position out of range", func(c *CloseRequest) { bad := 200.0; c.CorrectedLat, c.CorrectedLon = &lat, &bad }},
	}
	for _, tc := range tests {
		req := goodClose(t0)
		tc.mod(&req)
		if _, err := e.svc.Close(ctx, r.ID, "li", req); !errors.Is(err, ErrBadClose) || !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("%s: err %v", tc.name, err)
		}
	}
	if r2, _ := e.svc.Report(ctx, r.ID); r2.Status != StatusAssigned {
		t.Fatalf("status %s after refused closes", r2.Status)
	}
	// Every listed outcome is accepted (on fresh reports).
	if len(Outcomes()) != 11 {
		t.Fatalf("%d outcomes", len(Outcomes()))
	}
	for i, o := range Outcomes() {
		e2 := newEnv(t, nil)
		rr := forestReport(t, e2)
		req := goodClose(t0.Add(-time.Duration(i) * time.Minute))
		req.Outcome = o
		req.CorrectedLat, req.CorrectedLon = &lat, &lon
		c, err := e2.svc.Close(ctx, rr.ID, "li", req)
		if err != nil || c.Status != StatusClosed || c.Outcome != o || c.ClosedAt == nil || c.Overdue ||
			*c.CorrectedLat != lat || !c.VerifiedAt.Equal(req.VerifiedAt) {
			t.Fatalf("close with %s: %+v %v", o, c, err)
		}
	}
}

func TestLifecycleTransitionsAndReopenAudited(t *testing.T) {
	e := newEnv(t, nil)
	r := forestReport(t, e)
	ctx := context.Background()
	if _, err := e.svc.Reopen(ctx, r.ID, "x", ReopenRequest{Reason: "r"}); !errors.Is(err, ErrWrongStatus) {
		t.Fatalf("reopen an open report: %v", err)
	}
	e.clk.Advance(5 * time.Minute)
	v, err := e.svc.StartVerifying(ctx, r.ID, "li", VerifyRequest{Verifier: "Li Wei"})
	if err != nil || v.Status != StatusVerifying || v.VerifyingAt == nil {
		t.Fatalf("verify: %+v %v", v, err)
	}
	a, err := e.svc.Assign(ctx, r.ID, "chief", AssignRequest{Assignee: "Wang Fang", Phone: "301"})
	if err != nil || a.Status != StatusAssigned || a.Assignee != "Wang Fang" || a.Unit != "V11" {
		t.Fatalf("reassign: %+v %v", a, err)
	}
	if _, err := e.svc.Assign(ctx, r.ID, "chief", AssignRequest{}); !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("assign nobody: %v", err)
	}
	e.clk.Advance(10 * time.Minute)
	c, err := e.svc.Close(ctx, r.ID, "wang", CloseRequest{Outcome: "误报", Verifier: "Wang Fang", VerifiedAt: e.clk.Now(), Note: "sun glint on a roof"})
	if err != nil || c.Status != StatusClosed {
		t.Fatalf("close: %+v %v", c, err)
	}
	if _, err := e.svc.Close(ctx, r.ID, "wang", goodClose(e.clk.Now())); !errors.Is(err, ErrWrongStatus) || !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("close twice: %v", err)
	}
	if _, err := e.svc.Reopen(ctx, r.ID, "chief", ReopenRequest{Reason: " "}); !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("reopen without reason: %v", err)
	}
	e.clk.Advance(time.Hour)
	o, err := e.svc.Reopen(ctx, r.ID, "chief", ReopenRequest{Reason: "smoke seen again from tower 2"})
	if err != nil || o.Status != StatusAssigned || o.Outcome != "" || o.ClosedAt != nil || o.Overdue || o.EscalatedAt != nil {
		t.Fatalf("reopen: %+v %v", o, err)
	}
	if !o.Deadline.Equal(e.clk.Now().Add(time.Hour)) {
		t.Errorf("reopened deadline %v, want %v", o.Deadline, e.clk.Now().Add(time.Hour))
	}
	hist, err := e.svc.History(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, h := range hist {
		actions = append(actions, h.Action+":"+h.Actor+":"+string(h.From)+">"+string(h.To))
	}
	want := "created:system:>new assigned:system:new>assigned verifying:li:assigned>verifying assigned:chief:verifying>assigned " +
		"closed:wang:assigned>closed reopened:chief:closed>assigned"
	if strings.Join(actions, " ") != want {
		t.Fatalf("history\n got %s\nwant %s", strings.Join(actions, " "), want)
	}
	last := hist[len(hist)-1]
	var d struct {
		Reason   string `json:"reason"`
		Previous struct {
			Outcome, Verifier, Note string
		} `json:"previous"`
	}
	if err := json.Unmarshal(last.Detail, &d); err != nil || d.Reason != "smoke seen again from tower 2" ||
		d.Previous.Outcome != "误报" || d.Previous.Verifier != "Wang Fang" || d.Previous.Note != "sun glint on a roof" {
		t.Fatalf("reopen detail %s %v", last.Detail, err)
	}
	if !last.At.Equal(e.clk.Now()) {
		t.Errorf("reopen at %v", last.At)
	}
	if _, err := e.svc.Close(ctx, 9999, "x", goodClose(t0)); !errors.Is(err, ErrReportNotFound) || !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("unknown report: %v", err)
	}
}
