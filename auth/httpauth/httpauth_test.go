package httpauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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

// newService builds the service with the login routes; proxies are
// http.trusted_proxies (none by default).
func newService(t *testing.T, fc *clock.Fake, proxies ...string) (*Service, http.Handler) {
	t.Helper()
	tp, err := auth.ParseTrustedProxies(proxies)
	if err != nil {
		t.Fatal(err)
	}
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
	s, err := New(Options{Store: st, Devices: devs{"smoke-a": "smoke"}, Proxies: tp, Config: cfg, Prefix: "fire", Clock: fc,
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
		{Method: "PUT", Pattern: "/api/v1/me/password", Role: auth.RoleAny, Handler: s.HandleChangeOwnPassword},
		{Method: "DELETE", Pattern: "/api/v1/devices/{id}/credentials", Role: auth.RoleMaintenance, Handler: s.HandleRevokeDeviceCredentials, Audit: "device.credentials.revoke"},
		{Method: "POST", Pattern: "/api/v1/mqtt/accounts", Role: auth.RoleAdmin, Handler: s.HandleCreateMQTTAccount, Audit: "mqtt.account.create"},
	} {
		mux.Handle(rt.Method+" "+rt.Pattern, s.Wrap(rt))
	}
	return s, mux
}

func login(h http.Handler, ip, user, pw string, xff ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(`{"username":"`+user+`","password":"`+pw+`"}`))
	req.RemoteAddr = net.JoinHostPort(ip, "5555")
	for _, v := range xff {
		req.Header.Add("X-Forwarded-For", v)
	}
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

// Behind a trusted proxy the per-IP login limit counts the forwarded client, so
// one client's burst does not lock out everyone behind the same proxy, and a
// client cannot dodge the limit by prepending made-up X-Forwarded-For entries.
// From an untrusted peer the header is ignored and the peer is counted.
func TestLoginRateLimitBehindProxy(t *testing.T) {
	const proxy, other = "127.0.0.1", "::1"
	fc := clock.NewFake(time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC))
	s, h := newService(t, fc, "127.0.0.0/8")
	// 10 wrong-password attempts (the per-IP budget) from client A via the
	// proxy, each with a different spoofed leftmost entry, and a different
	// user name so the per-user lockout stays out of the way.
	for i := 0; i < 10; i++ {
		spoof := fmt.Sprintf("203.0.113.%d, 198.51.100.7", i+1)
		if rec := login(h, proxy, fmt.Sprintf("user%d", i), "whatever pass", spoof); rec.Code != 401 {
			t.Fatalf("attempt %d from A: %d", i, rec.Code)
		}
	}
	if rec := login(h, proxy, "ana", "correct horse battery", "6.6.6.6", "198.51.100.7"); rec.Code != 429 {
		t.Fatalf("11th attempt from client A via the proxy: %d, want 429 (limit keyed on A)", rec.Code)
	}
	// Client B behind the same proxy has its own budget.
	if rec := login(h, proxy, "ana", "correct horse battery", "198.51.100.8"); rec.Code != 200 {
		t.Fatalf("client B via the proxy: %d, want 200 (proxy address not the key)", rec.Code)
	}
	es, err := s.store.AuditList(context.Background(), auth.AuditQuery{Action: "login"})
	if err != nil || len(es) != 1 || es[0].Remote != "198.51.100.8" {
		t.Fatalf("audit of B's login: %+v %v, want remote 198.51.100.8", es, err)
	}
	// An untrusted peer's X-Forwarded-For is ignored: rotating it does not
	// buy more attempts, and the budget is the peer's own.
	for i := 0; i < 10; i++ {
		login(h, other, fmt.Sprintf("user%d", i), "whatever pass", fmt.Sprintf("198.51.100.%d", 100+i))
	}
	if rec := login(h, other, "ana", "correct horse battery", "198.51.100.200"); rec.Code != 429 {
		t.Fatalf("11th attempt from an untrusted peer: %d, want 429 (limit keyed on the peer)", rec.Code)
	}
}

// Without trusted proxies a real loopback connection is keyed on the TCP peer
// even when it claims another address; with 127.0.0.0/8 trusted, on the client
// the proxy names.
func TestLoginClientOverTCP(t *testing.T) {
	for _, tc := range []struct {
		name    string
		proxies []string
		want    string
	}{
		{"no trusted proxies", nil, "127.0.0.1"},
		{"loopback trusted", []string{"127.0.0.0/8"}, "198.51.100.8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := clock.NewFake(time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC))
			s, h := newService(t, fc, tc.proxies...)
			srv := httptest.NewServer(h)
			defer srv.Close()
			req, err := http.NewRequest("POST", srv.URL+"/api/v1/login", strings.NewReader(`{"username":"ana","password":"correct horse battery"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Forwarded-For", "198.51.100.8")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("login: %d", resp.StatusCode)
			}
			es, err := s.store.AuditList(context.Background(), auth.AuditQuery{Action: "login"})
			if err != nil || len(es) != 1 || es[0].Remote != tc.want {
				t.Fatalf("audit %+v %v, want remote %s", es, err, tc.want)
			}
		})
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

// The device credentials routes (maintenance) touch device accounts only: a
// gateway account cannot be revoked through them, nor turned into a device
// account by registering a device of the same name and rotating "its" password.
func TestDeviceCredentialRoutesLeaveOtherAccountsAlone(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC))
	s, h := newService(t, fc)
	ctx := context.Background()
	for _, name := range []string{"lookout-gw", "smoke-a"} { // smoke-a is also a registered device id
		if _, err := s.store.IssueMQTT(ctx, name, auth.MQTTGateway); err != nil {
			t.Fatal(err)
		}
	}
	tok := loginToken(t, h)
	do := func(method, path string) int {
		req := httptest.NewRequest(method, path, nil)
		req.AddCookie(tok)
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		return rr.Code
	}
	if code := do("DELETE", "/api/v1/devices/lookout-gw/credentials"); code != 404 {
		t.Errorf("revoke a gateway account through the device route: %d, want 404", code)
	}
	if code := do("POST", "/api/v1/devices/smoke-a/credentials"); code != 409 {
		t.Errorf("rotate a gateway account through the device route: %d, want 409", code)
	}
	for _, name := range []string{"lookout-gw", "smoke-a"} {
		if c, err := s.store.GetMQTT(ctx, name); err != nil || c.Kind != auth.MQTTGateway {
			t.Errorf("%s after the attempts: %+v %v, want the gateway account unchanged", name, c, err)
		}
	}
	// A device account is still issued and revoked as before.
	if err := s.store.RevokeMQTT(ctx, "smoke-a", ""); err != nil {
		t.Fatal(err)
	}
	if code := do("POST", "/api/v1/devices/smoke-a/credentials"); code != 201 {
		t.Errorf("issue a device account: %d", code)
	}
	if code := do("DELETE", "/api/v1/devices/smoke-a/credentials"); code != 204 {
		t.Errorf("revoke a device account: %d", code)
	}
}

// POST /api/v1/mqtt/accounts creates; an existing account is rotated only
// when asked ("rotate": true), so a name collision cannot silently cut off
// the gateway or monitor that uses it.
func TestMQTTAccountCreateAndRotate(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC))
	s, h := newService(t, fc)
	ctx := context.Background()
	if err := s.store.CreateUser(ctx, "root", auth.RoleAdmin, "admin horse battery"); err != nil {
		t.Fatal(err)
	}
	var tok *http.Cookie
	for _, c := range login(h, "10.0.0.8", "root", "admin horse battery").Result().Cookies() {
		if c.Name == CookieName {
			tok = c
		}
	}
	if tok == nil {
		t.Fatal("admin login failed")
	}
	post := func(body string) (int, string) {
		req := httptest.NewRequest("POST", "/api/v1/mqtt/accounts", strings.NewReader(body))
		req.AddCookie(tok)
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		return rr.Code, rr.Body.String()
	}
	hash := func(name string) string {
		c, err := s.store.GetMQTT(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return c.Hash
	}
	if code, body := post(`{"username":"ops-gw","kind":"gateway"}`); code != 201 || !strings.Contains(body, `"password"`) {
		t.Fatalf("create: %d %s", code, body)
	}
	first := hash("ops-gw")
	for _, tc := range []struct {
		body    string
		code    int
		rotated bool
		want    string
	}{
		{`{"username":"ops-gw","kind":"gateway"}`, 409, false, `send \"rotate\": true`},
		{`{"username":"ops-gw","kind":"monitor","rotate":true}`, 409, false, "kind cannot change"},
		{`{"username":"ops-gw","kind":"monitor"}`, 409, false, "is a gateway account, not monitor"},
		{`{"username":"ops-gw","kind":"gateway","rotate":true}`, 201, true, `"password"`},
		{`{"username":"nobody","kind":"gateway","rotate":true}`, 404, false, "nothing to rotate"},
	} {
		before := hash("ops-gw")
		code, body := post(tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.body, code, body, tc.code, tc.want)
		}
		if changed := hash("ops-gw") != before; changed != tc.rotated {
			t.Errorf("%s: password changed %v, want %v", tc.body, changed, tc.rotated)
		}
	}
	if hash("ops-gw") == first {
		t.Error("the rotation did not change the password")
	}
	if _, err := s.store.GetMQTT(ctx, "nobody"); !errors.Is(err, auth.ErrCredNotFound) {
		t.Errorf("a rotate of a missing account created it: %v", err)
	}
}

func TestLoginRefusedCrossOrigin(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC))
	_, h := newService(t, fc)
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"https://evil.example", 403}, // a text/plain form posted from another site
		{"http://gw.local", 200},      // the console itself
		{"", 200},                     // scripts and devices send no Origin
	} {
		req := httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(`{"username":"ana","password":"correct horse battery"}`))
		req.Host = "gw.local"
		req.Header.Set("Content-Type", "text/plain")
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		if rr.Code != tc.want {
			t.Errorf("login with Origin %q: %d, want %d", tc.origin, rr.Code, tc.want)
		}
	}
}

// loginToken logs ana (maintenance) in and returns the session cookie.
func loginToken(t *testing.T, h http.Handler) *http.Cookie {
	t.Helper()
	rec := login(h, "10.0.0.9", "ana", "correct horse battery")
	for _, c := range rec.Result().Cookies() {
		if c.Name == CookieName {
			return c
		}
	}
	t.Fatalf("login: %d %s", rec.Code, rec.Body)
	return nil
}

// Guessing the current password through PUT /api/v1/me/password is throttled
// like a login (3 failures per user in this fixture), and the right one then
// waits for the lockout like a login would.
func TestPasswordChangeIsThrottled(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC))
	_, h := newService(t, fc)
	tok := loginToken(t, h)
	change := func(current string) int {
		req := httptest.NewRequest("PUT", "/api/v1/me/password", strings.NewReader(`{"current":"`+current+`","new":"another long passphrase"}`))
		req.AddCookie(tok)
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		return rr.Code
	}
	var codes []int
	for i := 0; i < 5; i++ {
		codes = append(codes, change(fmt.Sprintf("guess %d", i)))
	}
	if fmt.Sprint(codes) != "[400 400 400 429 429]" {
		t.Fatalf("wrong current passwords: %v, want three 400s then 429", codes)
	}
	if code := change("correct horse battery"); code != 429 {
		t.Fatalf("right password during the lockout: %d, want 429", code)
	}
	fc.Advance(time.Hour)
	if code := change("correct horse battery"); code != 204 {
		t.Fatalf("right password after the lockout: %d, want 204", code)
	}
}

// Behind a trusted proxy that rewrites Host and ends TLS, the console's own
// requests still pass the origin check and its session cookie is Secure; the
// same headers from anyone else change nothing.
func TestBehindAProxyThatRewritesHost(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC))
	_, h := newService(t, fc, "10.0.0.2")
	for _, tc := range []struct {
		name, peer string
		wantCode   int
		wantSecure bool
	}{
		{"through the proxy", "10.0.0.2", 200, true},
		{"headers from a client", "10.0.0.99", 403, false},
	} {
		req := httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(`{"username":"ana","password":"correct horse battery"}`))
		req.RemoteAddr = tc.peer + ":5555"
		req.Host = "127.0.0.1:8080" // nginx's proxy_pass host
		req.Header.Set("Origin", "https://fire.example.cn")
		req.Header.Set("X-Forwarded-Host", "fire.example.cn")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		if rr.Code != tc.wantCode {
			t.Errorf("%s: login %d, want %d", tc.name, rr.Code, tc.wantCode)
			continue
		}
		if tc.wantCode != 200 {
			continue
		}
		var secure bool
		for _, c := range rr.Result().Cookies() {
			if c.Name == CookieName {
				secure = c.Secure
			}
		}
		if secure != tc.wantSecure {
			t.Errorf("%s: cookie Secure %v, want %v", tc.name, secure, tc.wantSecure)
		}
	}
}

// A locked user is told when to come back: the lockout's remaining time, not a minute.
func TestLockoutRetryAfter(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC))
	_, h := newService(t, fc)
	for i := 0; i < 3; i++ {
		if rec := login(h, fmt.Sprintf("10.0.1.%d", i), "ana", "wrong password"); rec.Code != 401 {
			t.Fatalf("failure %d: %d", i, rec.Code)
		}
	}
	fc.Advance(5 * time.Minute)
	rec := login(h, "10.0.2.1", "ana", "correct horse battery")
	lockout := auth.DefaultConfig().LoginLockout
	if want := fmt.Sprint(int((lockout - 5*time.Minute).Seconds())); rec.Code != 429 || rec.Header().Get("Retry-After") != want {
		t.Fatalf("locked login: %d Retry-After %q, want 429 and %s", rec.Code, rec.Header().Get("Retry-After"), want)
	}
	if !strings.Contains(rec.Body.String(), "try again in 10m0s") {
		t.Errorf("message %s does not say when", rec.Body)
	}
}
