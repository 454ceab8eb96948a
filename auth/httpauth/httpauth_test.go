package httpauth

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/store"
	"github.com/lookoutfire/lookout/web"
)

type devs map[string]string

func (d devs) DeviceClass(id string) (string, bool) { c, ok := d[id]; return c, ok }

func newService(t *testing.T, fc *clock.Fake) (*Service, http.Handler) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := auth.DefaultConfig()
	cfg.LoginPerIPPerMinute, cfg.LoginFailuresPerUser = 10, 3
	st, err := auth.OpenStore(context.Background(), db, cfg, fc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Store: st, Devices: devs{"smoke-a": "smoke"}, Config: cfg, Prefix: "fire", Clock: fc,
		Registerer: prometheus.NewRegistry(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(context.Background(), "ana", auth.RoleMaintenance, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, rt := range []web.Route{
		{Method: "POST", Pattern: "/api/v1/login", Role: auth.RolePublic, Handler: s.HandleLogin, Audit: "login"},
		{Method: "GET", Pattern: "/api/v1/me", Role: auth.RoleAny, Handler: s.HandleMe},
		{Method: "POST", Pattern: "/api/v1/logout", Role: auth.RoleAny, Handler: s.HandleLogout, Audit: "logout"},
		{Method: "POST", Pattern: "/api/v1/devices/{id}/credentials", Role: auth.RoleMaintenance, Handler: s.HandleIssueDeviceCredentials, Audit: "device.credentials.issue"},
	} {
		mux.Handle(rt.Method+" "+rt.Pattern, s.Wrap(rt))
	}
	return s, mux
}

func login(h http.Handler, ip, user, pw string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(`{"username":"`+user+`","password":"`+pw+`"}`))
	req.RemoteAddr = ip + ":5555"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestLoginSessionCookie(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC))
	s, h := newService(t, fc)
	rec := login(h, "10.0.0.1", "ana", "correct horse battery")
	if rec.Code != 200 {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	var c *http.Cookie
	for _, x := range rec.Result().Cookies() {
		if x.Name == CookieName {
			c = x
		}
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure {
		t.Fatalf("cookie %+v (want HttpOnly, SameSite=Strict, not Secure over plain HTTP)", c)
	}
	me := func(origin string) int {
		req := httptest.NewRequest("GET", "/api/v1/me", nil)
		req.AddCookie(c)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if me("") != 200 {
		t.Fatal("session cookie not accepted")
	}
	// Cross-origin state change with the cookie is refused.
	req := httptest.NewRequest("POST", "/api/v1/devices/smoke-a/credentials", nil)
	req.Host = "gw.local"
	req.Header.Set("Origin", "https://evil.example")
	req.AddCookie(c)
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	if rr.Code != 403 || rr.Header().Get(RefusedHeader) != "cross_origin" {
		t.Fatalf("cross-origin POST: %d", rr.Code)
	}
	// Same-origin: the secret is returned once and audited without the secret.
	req = httptest.NewRequest("POST", "/api/v1/devices/smoke-a/credentials", nil)
	req.AddCookie(c)
	rr = httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	if rr.Code != 201 || !strings.Contains(rr.Body.String(), `"password"`) || rr.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("credentials: %d %s", rr.Code, rr.Body)
	}
	es, _ := s.store.AuditList(context.Background(), auth.AuditQuery{})
	if len(es) != 2 || es[0].Action != "device.credentials.issue" || es[0].Actor != "ana" || es[0].Target["id"] != "smoke-a" ||
		es[1].Action != "login" || es[1].Actor != "ana" || es[1].Remote != "10.0.0.1" {
		t.Fatalf("audit %+v", es)
	}
	fc.Advance(13 * time.Hour)
	if me("") != 401 {
		t.Fatal("session outlived session_ttl")
	}
}

func TestLoginRateLimit(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC))
	_, h := newService(t, fc)
	// Per user: 3 failures lock "ana" even with the right password, from any IP.
	for i := 0; i < 3; i++ {
		if rec := login(h, "10.0.0.2", "ana", "wrong password!"); rec.Code != 401 {
			t.Fatalf("failure %d: %d", i, rec.Code)
		}
	}
	if rec := login(h, "10.0.0.3", "ana", "correct horse battery"); rec.Code != 429 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("locked user: %d", rec.Code)
	}
	fc.Advance(auth.DefaultConfig().LoginLockout)
	if rec := login(h, "10.0.0.3", "ana", "correct horse battery"); rec.Code != 200 {
		t.Fatalf("after lockout: %d", rec.Code)
	}
	// Per IP: 10 attempts a minute, whatever the names.
	for i := 0; i < 10; i++ {
		login(h, "10.0.0.4", "user"+string(rune('a'+i)), "whatever pass")
	}
	if rec := login(h, "10.0.0.4", "ana", "correct horse battery"); rec.Code != 429 {
		t.Fatalf("11th attempt from one IP: %d", rec.Code)
	}
	if rec := login(h, "10.0.0.5", "ana", "correct horse battery"); rec.Code != 200 {
		t.Fatalf("another IP: %d", rec.Code)
	}
}

func TestStrictJSONAndBodyLimit(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC))
	s, _ := newService(t, fc)
	h := s.Wrap(web.Route{Method: "POST", Pattern: "/api/v1/login", Role: auth.RolePublic, Handler: s.HandleLogin, MaxBody: 64})
	for body, want := range map[string]int{
		`{"username":"ana","password":"x","admin":true}`:                   400,
		`{"username":"ana","password":"correct horse battery"} {}`:         400,
		`{"username":"ana","password":"` + strings.Repeat("x", 100) + `"}`: 413,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(body)))
		if rec.Code != want || !strings.Contains(rec.Body.String(), `"code"`) {
			t.Errorf("%.40s…: %d %s, want %d", body, rec.Code, rec.Body, want)
		}
	}
}

func TestPatternNames(t *testing.T) {
	for p, want := range map[string]string{
		"/api/v1/devices/{id}/credentials":  "id",
		"/api/v1/streams/{camera}/whep/{s}": "camera,s",
		"/files/{path...}":                  "path",
		"/api/v1/audit":                     "",
		"/x/{$}":                            "",
	} {
		if got := strings.Join(patternNames(p), ","); got != want {
			t.Errorf("%s: %q want %q", p, got, want)
		}
	}
}
