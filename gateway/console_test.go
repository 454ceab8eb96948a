package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lookoutfire/lookout/alerting"
	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/internal/testenv"
)

// An operator opens the gateway's root in a real browser, lands on the
// console, logs in with the form, sees an alert appear live (raised after the
// page loaded, so only the event stream can have brought it) and acknowledges
// it with the button: the alert is then acknowledged by that user, on the
// server. The page's inline script runs under its hash-based CSP, or nothing
// of this would happen.
func TestConsoleInBrowser(t *testing.T) {
	a := testApp(t)
	c := makeCreds(t, a)
	srv := httptest.NewServer(apiMux(a.routes(), a.guard))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bctx := testenv.Browser(t, ctx)
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}

	do("open the root", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#login")))
	loc, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil || !strings.HasSuffix(loc, "/console") {
		t.Fatalf("root led to %q (%v), want the console", loc, err)
	}
	do("wrong password",
		chromedp.SendKeys(chromedp.CSS("#user"), "u-operator"),
		chromedp.SendKeys(chromedp.CSS("#password"), "not the password"),
		chromedp.Click(chromedp.CSS("#loginButton")),
		chromedp.WaitVisible(chromedp.CSS("#loginError:not(:empty)")))
	if msg := text("#loginError"); msg == "" || strings.Contains(msg, "not logged in") {
		t.Fatalf("wrong password says %q", msg)
	}
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`(document.getElementById("password").value = "") === ""`)); err != nil {
		t.Fatalf("clear the password: %v", err)
	}
	do("log in",
		chromedp.SendKeys(chromedp.CSS("#password"), "correct horse battery"),
		chromedp.Click(chromedp.CSS("#loginButton")),
		chromedp.WaitVisible(chromedp.CSS("#app")))
	if me := text("#me"); !strings.Contains(me, "u-operator") {
		t.Fatalf("header names %q", me)
	}
	// wait for the event stream, so the alert below can only arrive through it
	_, err = chromedp.Run(bctx, chromedp.Poll[bool](`document.getElementById("live").textContent === "live"`,
		chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		t.Fatalf("event stream never live (%q): %v", text("#live"), err)
	}

	al, err := a.alerts.Raise(context.Background(), alerting.Raise{Source: "smk-console", Type: alerting.TypeSmokeAlarm,
		Severity: alerting.Critical, Lat: 30.1, Lon: 120.1, Message: "smoke <b>in</b> the archive", At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	row := fmt.Sprintf(`tr[data-alert="%d"]`, al.ID)
	do("alert appears", chromedp.WaitVisible(chromedp.CSS(row)))
	if msg := text(row + " td:nth-child(5)"); msg != "smoke <b>in</b> the archive" {
		t.Fatalf("message cell %q: device text must be shown as text, not markup", msg)
	}
	// A newer minor alert lists below the critical one: most severe first.
	minor, err := a.alerts.Raise(context.Background(), alerting.Raise{Source: "elec-console", Type: "residual_current",
		Severity: alerting.Minor, Message: "leak", At: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	do("minor alert appears", chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-alert="%d"]`, minor.ID))))
	first, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector("#alerts tr[data-alert]").dataset.alert`))
	if err != nil || first != fmt.Sprint(al.ID) {
		t.Fatalf("first alert row is %q (%v), want the critical %d above the newer minor %d", first, err, al.ID, minor.ID)
	}
	do("ack", chromedp.Click(chromedp.CSS(row+" button.ack")),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-alert="%d"][data-state="active_ack"]`, al.ID))))

	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/alerts/%d", srv.URL, al.ID), nil)
	req.Header.Set("Authorization", "Bearer "+c[auth.RoleOperator])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got alerting.Alert
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("get alert: %d %v", resp.StatusCode, err)
	}
	if got.State != alerting.ActiveAck || got.AckedBy != "u-operator" {
		t.Fatalf("alert after the button: state %s by %q, want active_ack by u-operator", got.State, got.AckedBy)
	}

	// Each duty sees its own lists: a maintenance user the device health (the
	// registered camera has never been seen), a verifier the hotspot reports;
	// neither sees the operators' alerts.
	relogin := func(user string) {
		t.Helper()
		do("log out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login")))
		if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](
			`(document.getElementById("user").value = "", document.getElementById("password").value = "") === ""`)); err != nil {
			t.Fatalf("clear the form: %v", err)
		}
		do("log in as "+user,
			chromedp.SendKeys(chromedp.CSS("#user"), user),
			chromedp.SendKeys(chromedp.CSS("#password"), "correct horse battery"),
			chromedp.Click(chromedp.CSS("#loginButton")),
			chromedp.WaitVisible(chromedp.CSS("#app")))
	}
	hidden := func(sel string) bool {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.querySelector(`+"`"+sel+"`"+`).hidden`))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return v
	}
	relogin("u-maintenance")
	do("device health", chromedp.WaitVisible(chromedp.CSS(`#zones tr[data-zone="all zones"]`)))
	if got := text(`#zones tr[data-zone="all zones"] td:nth-child(2)`); got != "0 / 1" {
		t.Errorf("maintenance: all zones online %q, want 0 / 1 (cam-01, never seen)", got)
	}
	if !hidden("#alertsSection") || !hidden("#hotspotsSection") || hidden("#healthSection") {
		t.Errorf("maintenance sees alerts %v, hotspots %v, health %v", !hidden("#alertsSection"), !hidden("#hotspotsSection"), !hidden("#healthSection"))
	}
	relogin("u-verifier")
	do("hotspot reports", chromedp.WaitVisible(chromedp.CSS(`#hotspots td.empty`)))
	if !hidden("#alertsSection") || hidden("#hotspotsSection") || !hidden("#healthSection") {
		t.Errorf("verifier sees alerts %v, hotspots %v, health %v", !hidden("#alertsSection"), !hidden("#hotspotsSection"), !hidden("#healthSection"))
	}
}

// The console is served with a policy that lets only its own script run.
func TestConsolePolicy(t *testing.T) {
	a := testApp(t)
	h := apiMux(a.routes(), a.guard)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/console", nil))
	csp := rec.Header().Get("Content-Security-Policy")
	if rec.Code != http.StatusOK || !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'sha256-") ||
		strings.Contains(csp, "unsafe-eval") || !strings.Contains(rec.Body.String(), "Lookout console") {
		t.Fatalf("GET /console: %d, CSP %q", rec.Code, csp)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != "/console" {
		t.Fatalf("GET /: %d to %q, want a redirect to the console", rec.Code, rec.Header().Get("Location"))
	}
}
