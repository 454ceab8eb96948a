package hotspot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lookoutfire/lookout/errs"
	"github.com/lookoutfire/lookout/web"
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

// Starting verification needs the verifier's name (a verifying report cannot be started
// again, so a name left out could never be added): refused, also over HTTP, naming it.
func TestVerifyNeedsVerifier(t *testing.T) {
	e, srv := httpEnv(t, nil)
	r := forestReport(t, e)
	ctx := context.Background()
	for _, v := range []string{"", "  "} {
		if _, err := e.svc.StartVerifying(ctx, r.ID, "li", VerifyRequest{Verifier: v}); !errors.Is(err, ErrBadRequest) ||
			!errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "verifier") {
			t.Errorf("verifier %q: %v", v, err)
		}
	}
	url := fmt.Sprintf("%s/api/v1/hotspots/reports/%d/verify", srv.URL, r.ID)
	resp, err := http.Post(url, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	var eb web.ErrorBody
	json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(eb.Error.Message, "verifier: required") {
		t.Fatalf("POST verify {}: %d %q", resp.StatusCode, eb.Error.Message)
	}
	if r2, _ := e.svc.Report(ctx, r.ID); r2.Status != StatusAssigned || r2.Verifier != "" || r2.VerifyingAt != nil {
		t.Fatalf("after refused verify: %+v", r2)
	}
	var v Report
	if st := postJSON(t, url, VerifyRequest{Verifier: "Li Wei"}, &v); st != 200 || v.Status != StatusVerifying || v.Verifier != "Li Wei" {
		t.Fatalf("verify: %d %+v", st, v)
	}
}

// Reopen clears the whole close-out, the verifier too, but not Overdue: a report closed
// late, reopened and closed again on time still counts as overdue, not verified on time.
// Its fresh deadline escalates again.
func TestReopenClearsVerifierKeepsOverdue(t *testing.T) {
	e := newEnv(t, nil)
	r := forestReport(t, e) // deadline t0+1h
	ctx := context.Background()
	if _, err := e.svc.StartVerifying(ctx, r.ID, "li", VerifyRequest{Verifier: "Li Wei"}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RunDue(ctx, e.clk.Advance(90*time.Minute)); err != nil {
		t.Fatal(err)
	}
	c, err := e.svc.Close(ctx, r.ID, "li", goodClose(e.clk.Now()))
	if err != nil || !c.Overdue || c.Verifier != "Li Wei" {
		t.Fatalf("late close: %+v %v", c, err)
	}
	o, err := e.svc.Reopen(ctx, r.ID, "chief", ReopenRequest{Reason: "smoke again"})
	if err != nil || o.Verifier != "" || o.VerifyingAt != nil || o.VerifiedAt != nil || o.Outcome != "" || o.Note != "" ||
		o.CorrectedLat != nil || o.ClosedAt != nil || o.EscalatedAt != nil || !o.Overdue ||
		!o.Deadline.Equal(e.clk.Now().Add(time.Hour)) {
		t.Fatalf("reopened: %+v %v", o, err)
	}
	// The fresh deadline escalates once more.
	if err := e.svc.RunDue(ctx, e.clk.Advance(61*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := len(e.esc.raised()); n != 2 {
		t.Fatalf("%d overdue alerts, want 2 (one per missed deadline)", n)
	}
	// Reopened again and closed on time: still not verified on time.
	if _, err := e.svc.Close(ctx, r.ID, "li", goodClose(e.clk.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Reopen(ctx, r.ID, "chief", ReopenRequest{Reason: "again"}); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(10 * time.Minute)
	req := goodClose(e.clk.Now())
	req.Verifier = "Wang Fang"
	c, err = e.svc.Close(ctx, r.ID, "wang", req)
	if err != nil || !c.Overdue || c.Verifier != "Wang Fang" {
		t.Fatalf("on-time close after reopen: %+v %v", c, err)
	}
	st, err := e.svc.Stats(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Total.Received != 1 || st.Total.Closed != 1 || st.Total.VerifiedOnTime != 0 || st.Total.Overdue != 1 {
		t.Fatalf("stats %+v", st.Total)
	}
}

// Closing an overdue report clears its hotspot_overdue alert, so the 叫应 chain stops;
// a report that never escalated has nothing to clear. A failed clear is retried by the
// next deadline step.
func TestCloseResolvesOverdueAlert(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	r := forestReport(t, e)
	if err := e.svc.RunDue(ctx, e.clk.Advance(61*time.Minute)); err != nil || len(e.esc.raised()) != 1 {
		t.Fatalf("escalation: %v %d", err, len(e.esc.raised()))
	}
	if got := e.esc.resolved(); len(got) != 0 {
		t.Fatalf("resolved %v before the close", got)
	}
	if _, err := e.svc.Close(ctx, r.ID, "li", goodClose(e.clk.Now())); err != nil {
		t.Fatal(err)
	}
	if got := e.esc.resolved(); len(got) != 1 || got[0] != r.ID {
		t.Fatalf("resolved %v after the close, want [%d]", got, r.ID)
	}
	if err := e.svc.RunDue(ctx, e.clk.Advance(24*time.Hour)); err != nil || len(e.esc.raised()) != 1 {
		t.Fatalf("after close: %v, %d alerts", err, len(e.esc.raised()))
	}

	// Closed in time: no alert was raised, none is cleared.
	e2 := newEnv(t, nil)
	r2 := forestReport(t, e2)
	if _, err := e2.svc.Close(ctx, r2.ID, "li", goodClose(e2.clk.Now())); err != nil {
		t.Fatal(err)
	}
	if got := e2.esc.resolved(); len(got) != 0 {
		t.Fatalf("resolved %v for a report never escalated", got)
	}

	// Alerting down at the close: the close stands, the next step clears the alert.
	e3 := newEnv(t, nil)
	r3 := forestReport(t, e3)
	e3.svc.RunDue(ctx, e3.clk.Advance(61*time.Minute))
	e3.esc.failResolveN = 1
	if c, err := e3.svc.Close(ctx, r3.ID, "li", goodClose(e3.clk.Now())); err != nil || c.Status != StatusClosed {
		t.Fatalf("close with alerting down: %+v %v", c, err)
	}
	if got := e3.esc.resolved(); len(got) != 0 {
		t.Fatalf("resolved %v", got)
	}
	if err := e3.svc.RunDue(ctx, e3.clk.Advance(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := e3.esc.resolved(); len(got) != 1 || got[0] != r3.ID {
		t.Fatalf("resolved %v after the retry, want [%d]", got, r3.ID)
	}
}

// A merge folds overdue reports into one: an absorbed report's alert is cleared when
// the survivor already carries the escalation; when only the absorbed one escalated,
// its alert goes on (the survivor inherits the escalation, so nothing is raised twice)
// and closing the survivor clears it.
func TestMergeResolvesAbsorbedOverdueAlerts(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 3, 14, 1, 0, 0, 0, time.UTC)
	t.Run("both escalated", func(t *testing.T) {
		e := newEnv(t, nil)
		e.importString(t, viirsHeader+viirsRow(25.05, 100.40, at, "N", 1))
		e.clk.Advance(10 * time.Minute)
		e.importString(t, viirsHeader+viirsRow(25.05, 100.43, at, "N", 2))
		a, b := reportAt(t, e, 25.05, 100.40), reportAt(t, e, 25.05, 100.43)
		if err := e.svc.RunDue(ctx, e.clk.Advance(4*time.Hour)); err != nil || len(e.esc.raised()) != 2 {
			t.Fatalf("escalations: %v %+v", err, e.esc.raised())
		}
		e.clk.Advance(time.Minute)
		later := at.Add(5 * time.Hour)
		if res := e.importString(t, viirsHeader+viirsRow(25.05, 100.41, later, "N20", 3)+viirsRow(25.05, 100.42, later, "N20", 4)); res.ReportsMerged != 1 {
			t.Fatalf("bridge: %+v", res)
		}
		if got := e.esc.resolved(); len(got) != 1 || got[0] != b.ID {
			t.Fatalf("resolved %v after the merge, want [%d]", got, b.ID)
		}
		if _, err := e.svc.Close(ctx, a.ID, "zhao", goodClose(e.clk.Now())); err != nil {
			t.Fatal(err)
		}
		if got := e.esc.resolved(); !slices.Contains(got, a.ID) {
			t.Fatalf("resolved %v after the close, want %d among them", got, a.ID)
		}
	})
	t.Run("only the absorbed one escalated", func(t *testing.T) {
		e := newEnv(t, nil)
		e.importString(t, viirsHeader+viirsRow(25.22, 100.27, at, "N", 1)) // T2, elsewhere: 4 h
		e.clk.Advance(10 * time.Minute)
		e.importString(t, viirsHeader+viirsRow(25.22, 100.24, at, "N", 1)) // F1: 1 h
		a, b := reportAt(t, e, 25.22, 100.27), reportAt(t, e, 25.22, 100.24)
		if a.ID == b.ID || a.ID > b.ID || a.Class != ClassElsewhere || b.Class != ClassForest {
			t.Fatalf("setup: %+v %+v", a, b)
		}
		if err := e.svc.RunDue(ctx, e.clk.Advance(65*time.Minute)); err != nil || len(e.esc.raised()) != 1 || e.esc.raised()[0].ReportID != b.ID {
			t.Fatalf("escalations: %v %+v", err, e.esc.raised())
		}
		e.clk.Advance(5 * time.Minute)
		later := at.Add(5 * time.Hour)
		if res := e.importString(t, viirsHeader+viirsRow(25.22, 100.25, later, "N20", 3)+viirsRow(25.22, 100.26, later, "N20", 4)); res.ReportsMerged != 1 {
			t.Fatalf("bridge: %+v", res)
		}
		if got := e.esc.resolved(); len(got) != 0 {
			t.Fatalf("resolved %v: the only live escalation was cleared by the merge", got)
		}
		if err := e.svc.RunDue(ctx, e.clk.Advance(time.Hour)); err != nil || len(e.esc.raised()) != 1 {
			t.Fatalf("survivor escalated again: %v %+v", err, e.esc.raised())
		}
		if _, err := e.svc.Close(ctx, a.ID, "zhao", goodClose(e.clk.Now())); err != nil {
			t.Fatal(err)
		}
		if got := e.esc.resolved(); !slices.Contains(got, b.ID) {
			t.Fatalf("resolved %v after closing the survivor, want %d among them", got, b.ID)
		}
	})
}

// A merge whose carrier is the absorbed report clears the survivor's own alert; when
// that clear fails, RunDue retries it although the survivor is (of course) still open.
func TestMergeClearOfTheSurvivorIsRetried(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 3, 14, 1, 0, 0, 0, time.UTC)
	e := newEnv(t, nil)
	e.importString(t, viirsHeader+viirsRow(25.22, 100.27, at, "N", 1)) // T2, elsewhere: 4 h
	e.clk.Advance(10 * time.Minute)
	e.importString(t, viirsHeader+viirsRow(25.22, 100.24, at, "N", 1)) // F1: 1 h
	a, b := reportAt(t, e, 25.22, 100.27), reportAt(t, e, 25.22, 100.24)
	if err := e.svc.RunDue(ctx, e.clk.Advance(65*time.Minute)); err != nil { // b escalates
		t.Fatal(err)
	}
	if err := e.svc.RunDue(ctx, e.clk.Advance(4*time.Hour)); err != nil || len(e.esc.raised()) != 2 { // then a
		t.Fatalf("escalations: %v %+v", err, e.esc.raised())
	}
	e.esc.failResolveN = 1
	later := at.Add(6 * time.Hour)
	if res := e.importString(t, viirsHeader+viirsRow(25.22, 100.25, later, "N20", 3)+viirsRow(25.22, 100.26, later, "N20", 4)); res.ReportsMerged != 1 {
		t.Fatalf("bridge: %+v", res)
	}
	if got := e.esc.resolved(); len(got) != 0 {
		t.Fatalf("resolved %v: the clear was to fail", got)
	}
	if err := e.svc.RunDue(ctx, e.clk.Advance(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := e.esc.resolved(); len(got) != 1 || got[0] != a.ID {
		t.Fatalf("resolved %v after the retry, want the survivor %d (b=%d carries the escalation)", got, a.ID, b.ID)
	}
}

// A merge keeps the most advanced open status among the merged reports (verifying >
// assigned > new) with its verifier, and the assignee when the survivor has none; verify
// and close on a merged report's id act on the report it was merged into.
func TestMergeKeepsFieldWorkAndForwards(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 3, 14, 1, 0, 0, 0, time.UTC)
	later := at.Add(5 * time.Hour)

	// Survivor assigned (T2's Zhao Min), the younger report being verified by a field team.
	e := newEnv(t, nil)
	e.importString(t, viirsHeader+viirsRow(25.05, 100.40, at, "N", 1))
	e.clk.Advance(10 * time.Minute)
	e.importString(t, viirsHeader+viirsRow(25.05, 100.43, at, "N", 2))
	a, b := reportAt(t, e, 25.05, 100.40), reportAt(t, e, 25.05, 100.43)
	e.clk.Advance(5 * time.Minute)
	vb, err := e.svc.StartVerifying(ctx, b.ID, "team", VerifyRequest{Verifier: "Field Team B"})
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(5 * time.Minute)
	e.importString(t, viirsHeader+viirsRow(25.05, 100.41, later, "N20", 3)+viirsRow(25.05, 100.42, later, "N20", 4))
	s, _ := e.svc.Report(ctx, a.ID)
	if s.Status != StatusVerifying || s.Verifier != "Field Team B" || s.VerifyingAt == nil || !s.VerifyingAt.Equal(*vb.VerifyingAt) ||
		s.Assignee != "Zhao Min" {
		t.Fatalf("survivor %+v", s)
	}
	// The field team closes "their" report: it closes the survivor.
	c, err := e.svc.Close(ctx, b.ID, "team", CloseRequest{Outcome: "农事用火", Verifier: "Field Team B", VerifiedAt: e.clk.Now(), Note: "straw"})
	if err != nil || c.ID != a.ID || c.Status != StatusClosed || c.Outcome != "农事用火" {
		t.Fatalf("close via merged id: %+v %v", c, err)
	}
	if m, _ := e.svc.Report(ctx, b.ID); m.Status != StatusMerged || m.MergedInto != a.ID {
		t.Fatalf("merged report %+v", m)
	}
	hist, _ := e.svc.History(ctx, b.ID)
	if last := hist[len(hist)-1]; last.Action != "forwarded" || last.Actor != "team" || !strings.Contains(string(last.Detail), "closed") {
		t.Errorf("merged report's history ends with %+v", last)
	}
	// Once the survivor is closed, the merged id answers 409 naming it.
	_, err = e.svc.StartVerifying(ctx, b.ID, "team", VerifyRequest{Verifier: "x"})
	if !errors.Is(err, ErrWrongStatus) || !strings.Contains(err.Error(), "merged into "+itoa(a.ID)) {
		t.Fatalf("verify via merged id of a closed report: %v", err)
	}
	// Reassigning or reopening a merged id is still refused.
	if _, err := e.svc.Assign(ctx, b.ID, "chief", AssignRequest{Assignee: "x"}); !errors.Is(err, ErrWrongStatus) {
		t.Fatalf("assign via merged id: %v", err)
	}

	// Survivor new (outside every zone), the younger report assigned to T2's duty contact.
	e = newEnv(t, nil)
	e.importString(t, viirsHeader+viirsRow(25.2, 100.515, at, "N", 1))
	e.clk.Advance(10 * time.Minute)
	e.importString(t, viirsHeader+viirsRow(25.2, 100.485, at, "N", 2))
	a, b = reportAt(t, e, 25.2, 100.515), reportAt(t, e, 25.2, 100.485)
	if a.Status != StatusNew || b.Status != StatusAssigned || a.ID > b.ID {
		t.Fatalf("setup %+v %+v", a, b)
	}
	e.importString(t, viirsHeader+viirsRow(25.2, 100.495, later, "N20", 3)+viirsRow(25.2, 100.505, later, "N20", 4))
	s, _ = e.svc.Report(ctx, a.ID)
	if s.Status != StatusAssigned || s.Assignee != "Zhao Min" || s.AssigneePhone != "200" || s.Unit != "T2" {
		t.Fatalf("survivor %+v", s)
	}
	v, err := e.svc.StartVerifying(ctx, b.ID, "zhao", VerifyRequest{Verifier: "Zhao Min"})
	if err != nil || v.ID != a.ID || v.Status != StatusVerifying || v.Verifier != "Zhao Min" {
		t.Fatalf("verify via merged id: %+v %v", v, err)
	}
}

// An import that merges a report while RunDue has claimed it overdue but not yet
// raised its alert waits for the alert: it then decides about it like any other
// (here the earlier report carries the escalation and the absorbed one's alert is
// cleared), so no second alert is left escalating for one fire.
func TestMergeWaitsForAClaimedAlert(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 3, 14, 1, 0, 0, 0, time.UTC)
	e := newEnv(t, nil)
	e.importString(t, viirsHeader+viirsRow(25.05, 100.40, at, "N", 1))
	e.clk.Advance(10 * time.Minute)
	e.importString(t, viirsHeader+viirsRow(25.05, 100.43, at, "N", 2))
	a, b := reportAt(t, e, 25.05, 100.40), reportAt(t, e, 25.05, 100.43)
	if a.ID >= b.ID {
		t.Fatalf("setup: %+v %+v", a, b)
	}
	later := at.Add(5 * time.Hour)
	merged := make(chan ImportResult, 1)
	var once sync.Once
	e.esc.mu.Lock()
	e.esc.onRaise = func(al OverdueAlert) {
		if al.ReportID != b.ID {
			return
		}
		once.Do(func() {
			// b is claimed, its alert not raised yet: a bridging import arrives now
			go func() {
				res, err := e.svc.Import(ctx, "bridge.csv", strings.NewReader(viirsHeader+viirsRow(25.05, 100.41, later, "N20", 3)+viirsRow(25.05, 100.42, later, "N20", 4)), nil)
				if err != nil {
					t.Error(err)
				}
				merged <- res
			}()
			select {
			case res := <-merged: // the merge ran inside the claim: put it back for the check below
				merged <- res
			case <-time.After(500 * time.Millisecond):
			}
		})
	}
	e.esc.mu.Unlock()
	if err := e.svc.RunDue(ctx, e.clk.Advance(4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var res ImportResult
	select {
	case res = <-merged:
	case <-time.After(30 * time.Second):
		t.Fatal("the bridging import never finished")
	}
	if res.ReportsMerged != 1 {
		t.Fatalf("bridge: %+v", res)
	}
	if got := e.esc.standing(); !slices.Equal(got, []int64{a.ID}) {
		t.Fatalf("alerts standing for reports %v, want only [%d] (the merge's carrier)", got, a.ID)
	}
}
