package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/auth/httpauth"
	"github.com/lookoutfire/lookout/config"
	"github.com/lookoutfire/lookout/internal/testenv"
	"github.com/lookoutfire/lookout/registry"
	"github.com/lookoutfire/lookout/web"
)

// testApp builds a real App (auth on) on a temp data dir; nothing listens.
func testApp(t *testing.T, mods ...func(*config.Config)) *App {
	t.Helper()
	t.Chdir(testenv.ModuleRoot()) // default config paths (seeds/…) are relative to the repo
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.MQTT.EmbeddedAddr = "127.0.0.1:0" // the broker binds in NewApp: never collide with a running gateway
	cfg.Registry.Seed = ""
	cfg.Auth.SimCredentials = ""
	cfg.Auth.BootstrapAdmin = ""
	for _, m := range mods {
		m(&cfg)
	}
	a, err := NewApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// creds holds one credential per role: a bearer token for each person role
// and a camera token; the header to send for it.
type creds map[auth.Role]string

func makeCreds(t *testing.T, a *App) creds {
	t.Helper()
	ctx := context.Background()
	if err := a.devices.Create(ctx, registry.Device{ID: "cam-01", Class: "camera", Name: "cam", Lat: 45, Lon: 8}); err != nil {
		t.Fatalf("register camera: %v", err)
	}
	c := creds{}
	for _, r := range auth.PersonRoles {
		name := "u-" + string(r)
		if err := a.sec.store.CreateUser(ctx, name, r, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		_, secret, err := a.sec.store.CreateToken(ctx, name, r, auth.TokenRequest{Name: "test"})
		if err != nil {
			t.Fatal(err)
		}
		c[r] = secret
	}
	_, cam, err := a.sec.store.CreateToken(ctx, "u-admin", auth.RoleAdmin, auth.TokenRequest{Name: "cam", Role: auth.RoleCamera, Device: "cam-01"})
	if err != nil {
		t.Fatal(err)
	}
	c[auth.RoleCamera] = cam
	return c
}

// concretePath fills a ServeMux pattern's wildcards.
func concretePath(pattern string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(pattern, '{')
		if i < 0 {
			b.WriteString(pattern)
			return b.String()
		}
		j := strings.IndexByte(pattern[i:], '}')
		b.WriteString(pattern[:i])
		b.WriteString("x1")
		pattern = pattern[i+j+1:]
	}
}

// wrongRoles are credentials that must NOT pass a route requiring r.
func wrongRoles(r auth.Role) []auth.Role {
	var out []auth.Role
	for _, x := range append(append([]auth.Role{}, auth.PersonRoles...), auth.RoleCamera) {
		if !(auth.Principal{Role: x}).Allows(r) {
			out = append(out, x)
		}
	}
	return out
}

// do sends one request and returns the status; a 401/403 counts as the
// guard's only when it carries httpauth.RefusedHeader (a handler may answer
// 401/403 for its own reasons, e.g. a wrong password at login).
func do(t *testing.T, h http.Handler, method, path, token string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(endOnFlush{rec, cancel}, req)
	if (rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden) && rec.Header().Get(httpauth.RefusedHeader) == "" {
		return -rec.Code // the handler's own refusal, not the guard's
	}
	return rec.Code
}

// endOnFlush ends the request at its first flush: an event stream (SSE)
// flushes once it is open, and is then answered as far as do cares.
type endOnFlush struct {
	*httptest.ResponseRecorder
	end context.CancelFunc
}

func (e endOnFlush) Flush() {
	e.ResponseRecorder.Flush()
	e.end()
}

// TestRoleTable walks EVERY row of the route table: no credentials → 401, each
// role the row does not admit → 403, each role it admits (and admin) → neither.
func TestRoleTable(t *testing.T) {
	a := testApp(t)
	c := makeCreds(t, a)
	rows := a.routes()
	if len(rows) == 0 {
		t.Fatal("empty route table")
	}
	for _, rt := range rows {
		rt := rt
		t.Run(rt.Method+" "+rt.Pattern, func(t *testing.T) {
			if rt.Role == "" {
				t.Fatalf("route declares no role")
			}
			h := apiMux([]web.Route{rt}, a.guard)
			path := concretePath(rt.Pattern)
			if rt.Role == auth.RolePublic {
				if code := do(t, h, rt.Method, path, ""); code == http.StatusUnauthorized || code == http.StatusForbidden {
					t.Fatalf("public route answered %d without credentials", code)
				}
				return
			}
			if code := do(t, h, rt.Method, path, ""); code != http.StatusUnauthorized {
				t.Fatalf("no credentials: %d, want 401", code)
			}
			if code := do(t, h, rt.Method, path, "lk_not-a-real-token"); code != http.StatusUnauthorized {
				t.Fatalf("bad token: %d, want 401", code)
			}
			for _, r := range wrongRoles(rt.Role) {
				if code := do(t, h, rt.Method, path, c[r]); code != http.StatusForbidden {
					t.Errorf("role %s: %d, want 403", r, code)
				}
			}
			for r, tok := range c {
				if !(auth.Principal{Role: r}).Allows(rt.Role) {
					continue
				}
				if code := do(t, h, rt.Method, path, tok); code == http.StatusUnauthorized || code == http.StatusForbidden {
					t.Errorf("role %s: %d, want neither 401 nor 403", r, code)
				}
			}
		})
	}
}

// auditExempt are state-changing rows that deliberately write no audit entry;
// each needs a reason.
var auditExempt = map[string]string{
	"DELETE /api/v1/streams/{camera}/whip/{session}": "WebRTC session teardown is signalling, not a change of record",
	"DELETE /api/v1/streams/{camera}/whep/{session}": "WebRTC session teardown is signalling, not a change of record",
}

// TestStateChangingRoutesAreAudited: every non-GET row names an audit action,
// and the guard writes it (actor, role, action, path values, remote) after a
// 2xx — and not after a refusal.
func TestStateChangingRoutesAreAudited(t *testing.T) {
	a := testApp(t)
	c := makeCreds(t, a)
	ctx := context.Background()
	for _, rt := range a.routes() {
		if rt.Method == http.MethodGet || rt.Method == http.MethodHead {
			continue
		}
		key := rt.Method + " " + rt.Pattern
		t.Run(key, func(t *testing.T) {
			if rt.Audit == "" {
				if _, ok := auditExempt[key]; !ok {
					t.Fatalf("state-changing route has no Audit action")
				}
				return
			}
			// The domain handler is replaced by a stub: this tests the guard's
			// audit contract for the row, not the domain's validation.
			status := http.StatusNoContent
			stub := rt
			stub.Handler = func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }
			h := apiMux([]web.Route{stub}, a.guard)
			token, actor := c[auth.RoleAdmin], "u-admin"
			if rt.Role == auth.RolePublic {
				token, actor = "", "-"
			}
			before, _ := a.sec.store.AuditList(ctx, auth.AuditQuery{Action: rt.Audit, Limit: 1000})
			status = http.StatusBadRequest
			do(t, h, rt.Method, concretePath(rt.Pattern), token)
			if rt.Role != auth.RolePublic {
				do(t, h, rt.Method, concretePath(rt.Pattern), "") // refused: 401
			}
			status = http.StatusNoContent
			if code := do(t, h, rt.Method, concretePath(rt.Pattern), token); code != http.StatusNoContent {
				t.Fatalf("stubbed call answered %d", code)
			}
			after, err := a.sec.store.AuditList(ctx, auth.AuditQuery{Action: rt.Audit, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before)+1 {
				t.Fatalf("audit entries for %s: %d → %d, want exactly one more (only the 2xx call)", rt.Audit, len(before), len(after))
			}
			e := after[0]
			if e.Actor != actor || e.Status != http.StatusNoContent || e.Remote == "" {
				t.Fatalf("entry %+v", e)
			}
			for _, n := range patternWildcards(rt.Pattern) {
				if e.Target[n] != "x1" {
					t.Fatalf("target %v lacks path value %s", e.Target, n)
				}
			}
		})
	}
}

func patternWildcards(p string) []string {
	var out []string
	for {
		i := strings.IndexByte(p, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(p[i:], '}')
		out = append(out, strings.TrimSuffix(p[i+1:i+j], "..."))
		p = p[i+j+1:]
	}
}

// TestInsecureDevOpensRoutes: the documented flag is the one way to turn auth off.
func TestInsecureDevOpensRoutes(t *testing.T) {
	t.Chdir(testenv.ModuleRoot())
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.MQTT.EmbeddedAddr = "127.0.0.1:0"
	cfg.Registry.Seed = ""
	if _, err := config.Load("", false, []string{"LOOKOUT_AUTH_INSECURE_DEV=true"}, nil); err == nil {
		t.Fatal("the environment turned auth off: only the flag may")
	}
	cfg.Auth.InsecureDev = true
	a, err := NewApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	h := apiMux(a.routes(), a.guard)
	if code := do(t, h, http.MethodGet, "/api/v1/users", ""); code != http.StatusOK {
		t.Fatalf("insecure dev: GET /api/v1/users = %d", code)
	}
	// And the flag parses into the setting.
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c, err := loadConfig(fs, []string{"--insecure-dev", "--data-dir", filepath.Join(t.TempDir(), "d")}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Auth.InsecureDev {
		t.Fatal("--insecure-dev did not set auth.insecure_dev")
	}
	if config.Default().Auth.InsecureDev {
		t.Fatal("auth is off by default")
	}
}

// ?token= works only where a header cannot be sent: the live-view page opened
// from a link and the event stream (EventSource); elsewhere it is no credential.
func TestQueryTokenOnlyWhereNeeded(t *testing.T) {
	a := testApp(t)
	c := makeCreds(t, a)
	h := apiMux(a.routes(), a.guard)
	tok := url.QueryEscape(c[auth.RoleOperator])
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/live/cam-01?token=" + tok, http.StatusOK},
		{"/api/v1/events?token=" + tok, http.StatusOK},
		{"/api/v1/alerts?token=" + tok, http.StatusUnauthorized},
		{"/api/v1/devices?token=" + tok, http.StatusUnauthorized},
	} {
		if got := do(t, h, http.MethodGet, tc.path, ""); got != tc.want {
			t.Errorf("GET %s: %d, want %d", strings.Split(tc.path, "?")[0], got, tc.want)
		}
	}
}

// A camera token acts for its own camera only, on WHIP publish and delete.
func TestCameraTokenOwnCameraOnly(t *testing.T) {
	a := testApp(t)
	c := makeCreds(t, a)
	h := apiMux(a.routes(), a.guard)
	for _, tc := range []struct {
		method, path string
	}{
		{http.MethodPost, "/api/v1/streams/cam-02/whip"},
		{http.MethodDelete, "/api/v1/streams/cam-02/whip/0123456789abcdef"},
	} {
		if got := do(t, h, tc.method, tc.path, c[auth.RoleCamera]); got != -http.StatusForbidden {
			t.Errorf("%s %s with cam-01's token: %d, want the handler's 403", tc.method, tc.path, got)
		}
	}
	// Its own camera gets past that check (404: no such session).
	if got := do(t, h, http.MethodDelete, "/api/v1/streams/cam-01/whip/0123456789abcdef", c[auth.RoleCamera]); got == -http.StatusForbidden || got == http.StatusForbidden {
		t.Errorf("DELETE on its own camera: %d", got)
	}
}
