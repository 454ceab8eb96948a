package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"gopkg.in/yaml.v3"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/errs"
	"github.com/lookoutfire/lookout/store"
)

type devMap map[string]string

func (m devMap) DeviceClass(id string) (string, bool) { c, ok := m[id]; return c, ok }

func openTestStore(t testing.TB, clk clock.Clock) *Store {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := OpenStore(context.Background(), db, DefaultConfig(), clk)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

var t0 = time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC)

func TestUsersAndLastAdmin(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, clock.NewFake(t0))
	if err := st.CreateUser(ctx, "root", RoleAdmin, "long enough pw"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, pw string
		role     Role
		kind     error
	}{
		{"root", "long enough pw", RoleAdmin, errs.ErrConflict},
		{"bad name", "long enough pw", RoleOperator, errs.ErrInvalid},
		{"op", "short", RoleOperator, errs.ErrInvalid},
		{"op", "long enough pw", "superuser", errs.ErrInvalid},
		{"op", "long enough pw", RoleCamera, errs.ErrInvalid},
	} {
		if err := st.CreateUser(ctx, c.name, c.role, c.pw); !errors.Is(err, c.kind) {
			t.Errorf("CreateUser(%q,%q,%q) = %v, want %v", c.name, c.role, c.pw, err, c.kind)
		}
	}
	op := RoleOperator
	if err := st.UpdateUser(ctx, "root", UserUpdate{Role: &op}); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("demoting the last admin: %v", err)
	}
	if err := st.DeleteUser(ctx, "root"); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("deleting the last admin: %v", err)
	}
	if _, err := st.CheckPassword(ctx, "root", "long enough pw"); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{"root", "wrong password"}, {"nobody", "long enough pw"}} {
		if _, err := st.CheckPassword(ctx, c[0], c[1]); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("CheckPassword%v = %v", c, err)
		}
	}
}

func TestSessionsExpireAndEndOnPasswordChange(t *testing.T) {
	ctx := context.Background()
	fc := clock.NewFake(t0)
	st := openTestStore(t, fc)
	if err := st.CreateUser(ctx, "ana", RoleVerifier, "long enough pw"); err != nil {
		t.Fatal(err)
	}
	s1, _, _ := st.NewSession(ctx, "ana")
	p, err := st.SessionPrincipal(ctx, s1)
	if err != nil || p.Name != "ana" || p.Role != RoleVerifier {
		t.Fatalf("%+v %v", p, err)
	}
	fc.Advance(DefaultConfig().SessionTTL)
	if _, err := st.SessionPrincipal(ctx, s1); !errors.Is(err, ErrBadCredentials) {
		t.Fatal("expired session accepted")
	}
	s2, _, _ := st.NewSession(ctx, "ana")
	pw := "another long pw"
	if err := st.UpdateUser(ctx, "ana", UserUpdate{Password: &pw}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SessionPrincipal(ctx, s2); !errors.Is(err, ErrBadCredentials) {
		t.Fatal("session survived a password change")
	}
	if err := st.RunDue(ctx, fc.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestTokensCarryNoMoreThanTheirOwner(t *testing.T) {
	ctx := context.Background()
	fc := clock.NewFake(t0)
	st := openTestStore(t, fc)
	for _, u := range []struct {
		n string
		r Role
	}{{"adm", RoleAdmin}, {"mnt", RoleMaintenance}, {"op", RoleOperator}} {
		if err := st.CreateUser(ctx, u.n, u.r, "long enough pw"); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		owner string
		as    Role
		req   TokenRequest
		kind  error
	}{
		{"op", RoleOperator, TokenRequest{Name: "s"}, nil},
		{"op", RoleOperator, TokenRequest{Name: "s", Role: RoleAdmin}, errs.ErrForbidden},
		{"op", RoleOperator, TokenRequest{Name: "s", Role: RoleCamera, Device: "cam-1"}, errs.ErrForbidden},
		{"mnt", RoleMaintenance, TokenRequest{Name: "s", Role: RoleCamera, Device: "cam-1"}, nil},
		{"mnt", RoleMaintenance, TokenRequest{Name: "s", Role: RoleCamera}, errs.ErrInvalid},
		{"adm", RoleAdmin, TokenRequest{Name: "s", Role: RoleVerifier}, nil},
		{"adm", RoleAdmin, TokenRequest{Name: ""}, errs.ErrInvalid},
	}
	for i, c := range cases {
		tk, secret, err := st.CreateToken(ctx, c.owner, c.as, c.req)
		if c.kind != nil {
			if !errors.Is(err, c.kind) {
				t.Errorf("case %d: %v, want %v", i, err, c.kind)
			}
			continue
		}
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		p, err := st.TokenPrincipal(ctx, secret)
		if err != nil || p.Role != tk.Role || p.Name != c.owner || p.Device != c.req.Device {
			t.Fatalf("case %d: principal %+v %v", i, p, err)
		}
	}
	// A token is revoked, expires, and loses power when its owner is demoted.
	_, sec, _ := st.CreateToken(ctx, "mnt", RoleMaintenance, TokenRequest{Name: "x", TTL: time.Hour})
	op := RoleOperator
	if err := st.UpdateUser(ctx, "mnt", UserUpdate{Role: &op}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.TokenPrincipal(ctx, sec); !errors.Is(err, ErrBadCredentials) {
		t.Fatal("maintenance token still valid after demotion to operator")
	}
	tk, sec, _ := st.CreateToken(ctx, "op", RoleOperator, TokenRequest{Name: "y", TTL: time.Hour})
	fc.Advance(time.Hour)
	if _, err := st.TokenPrincipal(ctx, sec); !errors.Is(err, ErrBadCredentials) {
		t.Fatal("expired token accepted")
	}
	if err := st.RevokeToken(ctx, tk.ID, "adm"); !errors.Is(err, errs.ErrNotFound) {
		t.Fatal("revoked someone else's token as a non-owner")
	}
	if _, err := st.TokenPrincipal(ctx, "not-a-token"); !errors.Is(err, ErrBadCredentials) {
		t.Fatal(err)
	}
}

func TestAuditIsAppendOnly(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, clock.NewFake(t0))
	for i, a := range []string{"alert.ack", "user.create", "alert.ack"} {
		if err := st.Audit(ctx, AuditEntry{Actor: "ana", Role: RoleOperator, Action: a, Target: map[string]string{"id": string(rune('a' + i))}, Remote: "127.0.0.1", Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	es, err := st.AuditList(ctx, AuditQuery{Action: "alert.ack"})
	if err != nil || len(es) != 2 || es[0].Target["id"] != "c" || es[1].Seq >= es[0].Seq {
		t.Fatalf("%+v %v", es, err)
	}
	if _, err := st.db.Exec(`UPDATE auth_audit SET actor='mallory'`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("UPDATE allowed: %v", err)
	}
	if _, err := st.db.Exec(`DELETE FROM auth_audit`); err == nil {
		t.Fatal("DELETE allowed")
	}
}

func TestLoginLimiter(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LoginPerIPPerMinute, cfg.LoginFailuresPerUser, cfg.LoginLockout = 5, 3, 10*time.Minute
	l := NewLoginLimiter(cfg)
	now := t0
	for i := 0; i < 5; i++ {
		if err := l.Allow("10.0.0.1", "u"+string(rune('a'+i)), now); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if err := l.Allow("10.0.0.1", "other", now); !errors.Is(err, errs.ErrRateLimited) {
		t.Fatal("6th attempt from one IP in a minute allowed")
	}
	if err := l.Allow("10.0.0.1", "other", now.Add(time.Minute)); err != nil {
		t.Fatal("window did not reset")
	}
	// Three failures lock the name, from any IP, for the lockout.
	for i := 0; i < 3; i++ {
		l.Failed("ana", now)
	}
	if err := l.Allow("10.9.9.9", "ana", now.Add(time.Second)); !errors.Is(err, errs.ErrRateLimited) {
		t.Fatal("locked user allowed")
	}
	if err := l.Allow("10.9.9.9", "ana", now.Add(10*time.Minute)); err != nil {
		t.Fatal("lock did not end")
	}
	l.RunDue(now.Add(time.Hour))
}

func TestMQTTACL(t *testing.T) {
	m := &MQTTAuth{prefix: "fire"}
	dev := m.Identity("smoke-a", MQTTDevice, "smoke")
	mon := m.Identity("ops", MQTTMonitor, "")
	gw := m.Identity("gw", MQTTGateway, "")
	cases := []struct {
		id      MQTTIdentity
		op      string // pub, sub, read
		topic   string
		allowed bool
	}{
		{dev, "pub", "fire/smoke/smoke-a/telemetry", true},
		{dev, "pub", "fire/smoke/smoke-a/event", true},
		{dev, "pub", "fire/smoke/smoke-b/event", false},
		{dev, "pub", "fire/camera/smoke-a/event", false},
		{dev, "pub", "fire/smoke/smoke-a", false},
		{dev, "pub", "fire/smoke/smoke-a-x/event", false},
		{dev, "pub", "fire/cmd/smoke-a", false},
		{dev, "pub", "fire/deadletter/x", false},
		{dev, "sub", "fire/cmd/smoke-a", true},
		{dev, "sub", "fire/cmd/smoke-a/#", true},
		{dev, "sub", "fire/cmd/+", false},
		{dev, "sub", "fire/cmd/smoke-b", false},
		{dev, "sub", "fire/#", false},
		{dev, "sub", "$share/g/fire/cmd/smoke-a", false},
		{dev, "read", "fire/cmd/smoke-a", true},
		{dev, "read", "fire/cmd/smoke-ab", false},
		{mon, "pub", "fire/smoke/smoke-a/event", false},
		{mon, "sub", "fire/#", true},
		{mon, "sub", "#", false},
		{mon, "sub", "$SYS/#", false},
		{mon, "sub", "$share/lookout/fire/#", false}, // would take readings away from the gateway's group
		{mon, "read", "fire/alerts/x", true},
		{gw, "pub", "fire/deadletter/bad_topic", true},
		{gw, "sub", "$share/lookout/fire/#", true},
		{gw, "pub", "other/x", false},
	}
	for _, c := range cases {
		var got bool
		switch c.op {
		case "pub":
			got = c.id.MayPublish(c.topic)
		case "sub":
			got = c.id.MaySubscribe(c.topic)
		case "read":
			got = c.id.MayRead(c.topic)
		}
		if got != c.allowed {
			t.Errorf("%s %s %s = %v, want %v", c.id.Username, c.op, c.topic, got, c.allowed)
		}
	}
}

// TestCredentialCache: a verified password is served from the cache until the
// TTL ends or the stored hash changes (rotation), and a wrong password is never
// a cache hit.
func TestCredentialCache(t *testing.T) {
	ctx := context.Background()
	fc := clock.NewFake(t0)
	st := openTestStore(t, fc)
	reg := prometheus.NewRegistry()
	m, err := NewMQTTAuth(st, devMap{"smoke-a": "smoke"}, "fire", DefaultConfig(), fc, reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := st.IssueMQTT(ctx, "smoke-a", MQTTDevice)
	req := ConnectRequest{Username: "smoke-a", Password: []byte(pw), ClientID: "smoke-a"}
	hits := func() float64 { return testutil.ToFloat64(m.cacheHits.WithLabelValues("hit")) }
	for i := 0; i < 3; i++ {
		if _, err := m.Authenticate(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if hits() != 2 {
		t.Fatalf("hits %v, want 2", hits())
	}
	bad := req
	bad.Password = []byte(pw + "x")
	if _, err := m.Authenticate(ctx, bad); !errors.Is(err, errs.ErrUnauthorized) {
		t.Fatal("wrong password accepted")
	}
	fc.Advance(DefaultConfig().CredentialCacheTTL)
	m.Authenticate(ctx, req)
	if hits() != 2 {
		t.Fatal("expired entry hit")
	}
	newPw, _ := st.IssueMQTT(ctx, "smoke-a", MQTTDevice)
	if _, err := m.Authenticate(ctx, req); err == nil {
		t.Fatal("old password works after rotation")
	}
	req.Password = []byte(newPw)
	if _, err := m.Authenticate(ctx, req); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.refused.WithLabelValues(ReasonBadPassword)); got != 2 {
		t.Fatalf("bad_password refusals %v", got)
	}
}

func TestSimCredentialsFile(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, clock.NewFake(t0))
	path := filepath.Join(t.TempDir(), "sim-credentials.yaml")
	n, err := st.SimCredentials(ctx, []string{"smoke-a", "cam-1"}, path)
	if err != nil || n != 2 {
		t.Fatalf("%d %v", n, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	read := func() map[string]string {
		b, _ := os.ReadFile(path)
		m := map[string]string{}
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	first := read()
	c, _ := st.GetMQTT(ctx, "smoke-a")
	if ok, _ := VerifyMosquitto(c.Hash, first["smoke-a"]); !ok {
		t.Fatal("file password does not verify")
	}
	// Second start: nothing to do; a new device is added, others kept.
	if n, _ := st.SimCredentials(ctx, []string{"smoke-a", "cam-1"}, path); n != 0 {
		t.Fatalf("re-issued %d", n)
	}
	if n, _ := st.SimCredentials(ctx, []string{"smoke-a", "cam-1", "st-9"}, path); n != 1 {
		t.Fatal("new device not issued")
	}
	if read()["smoke-a"] != first["smoke-a"] {
		t.Fatal("existing password rotated needlessly")
	}
}

func TestBootstrapAdminOnce(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, clock.NewFake(t0))
	pw, err := st.BootstrapAdmin(ctx)
	if err != nil || pw == "" {
		t.Fatalf("%q %v", pw, err)
	}
	if u, err := st.CheckPassword(ctx, "admin", pw); err != nil || u.Role != RoleAdmin {
		t.Fatal(err)
	}
	if pw2, _ := st.BootstrapAdmin(ctx); pw2 != "" {
		t.Fatal("second bootstrap printed a password")
	}
	es, _ := st.AuditList(ctx, AuditQuery{Action: "user.bootstrap"})
	if len(es) != 1 || es[0].Actor != "system" {
		t.Fatalf("%+v", es)
	}
}

// Password checks beyond the concurrency bound wait for a slot, and give up
// when their request ends, instead of each taking 19 MiB at once.
func TestPasswordChecksAreBounded(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, clock.NewFake(t0))
	if err := st.CreateUser(ctx, "root", RoleAdmin, "long enough pw"); err != nil {
		t.Fatal(err)
	}
	if cap(st.hashing) < 2 {
		t.Fatalf("%d concurrent checks allowed", cap(st.hashing))
	}
	for i := 0; i < cap(st.hashing); i++ { // every slot busy
		st.hashing <- struct{}{}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := st.CheckPassword(short, "root", "long enough pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("check with every slot busy: %v, want the request's deadline", err)
	}
	done := make(chan error, 1)
	go func() { _, err := st.CheckPassword(ctx, "root", "long enough pw"); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("check ran with every slot busy: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	<-st.hashing // one slot frees
	if err := <-done; err != nil {
		t.Fatalf("check after a slot freed: %v", err)
	}
	if len(st.hashing) != cap(st.hashing)-1 {
		t.Fatalf("slots in use %d, want the check's returned", len(st.hashing))
	}
}

func TestSourceKey(t *testing.T) {
	for ip, want := range map[string]string{
		"192.0.2.7":                 "192.0.2.7",
		"::ffff:192.0.2.7":          "192.0.2.7",
		"2001:db8:1:2:aaaa::1":      "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff::9": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":           "2001:db8:1:3::/64",
		"not an ip":                 "not an ip",
	} {
		if got := SourceKey(ip); got != want {
			t.Errorf("SourceKey(%q) = %q, want %q", ip, got, want)
		}
	}
	// Stepping through addresses of one /64 does not escape the per-IP limit.
	cfg := DefaultConfig()
	cfg.LoginPerIPPerMinute = 3
	l := NewLoginLimiter(cfg)
	var throttled int
	for i := 1; i <= 5; i++ {
		if l.Allow(fmt.Sprintf("2001:db8:1:2::%x", i), "root", t0) != nil {
			throttled++
		}
	}
	if throttled != 2 {
		t.Errorf("5 attempts from one /64 with a limit of 3: %d throttled, want 2", throttled)
	}
}

// CreateMQTT and RotateMQTT are single statements: of concurrent creates of
// one name exactly one wins, and a rotation never re-creates a deleted account.
func TestCreateAndRotateMQTTAreAtomic(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, clock.NewFake(t0))
	const n = 8
	errsC := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := st.CreateMQTT(ctx, "gw2", MQTTGateway)
			errsC <- err
		}()
	}
	wg.Wait()
	close(errsC)
	won := 0
	for err := range errsC {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrMQTTExists):
			t.Errorf("losing create: %v, want ErrMQTTExists", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent creates succeeded, want 1", won)
	}
	if _, err := st.CreateMQTT(ctx, "gw2", MQTTMonitor); !errors.Is(err, ErrMQTTKind) {
		t.Errorf("create over another kind: %v, want ErrMQTTKind", err)
	}
	before, _ := st.GetMQTT(ctx, "gw2")
	if _, err := st.RotateMQTT(ctx, "gw2", MQTTGateway); err != nil {
		t.Fatal(err)
	}
	if after, _ := st.GetMQTT(ctx, "gw2"); after.Hash == before.Hash {
		t.Error("rotation kept the old hash")
	}
	if _, err := st.RotateMQTT(ctx, "gw2", MQTTMonitor); !errors.Is(err, ErrMQTTKind) {
		t.Errorf("rotate as another kind: %v, want ErrMQTTKind", err)
	}
	if err := st.RevokeMQTT(ctx, "gw2", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RotateMQTT(ctx, "gw2", MQTTGateway); !errors.Is(err, ErrCredNotFound) {
		t.Errorf("rotate of a deleted account: %v, want ErrCredNotFound", err)
	}
	if _, err := st.GetMQTT(ctx, "gw2"); !errors.Is(err, ErrCredNotFound) {
		t.Error("the rotation re-created the deleted account")
	}
}
