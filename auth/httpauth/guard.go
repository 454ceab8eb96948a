// Package httpauth is the HTTP face of package auth: the guard that enforces
// each route table row (authentication, role, body limit, audit entry) and the
// handlers for login, users, tokens, device credentials and the audit log.
// It is separate from auth because package web imports auth (for Role).
package httpauth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/errs"
	"github.com/lookoutfire/lookout/web"
)

// CookieName is the session cookie.
const CookieName = "lookout_session"

// RefusedHeader is set on replies the guard itself refused (value: the reason),
// so a client — or a test — can tell "the route table said no" from a handler's
// own 401/403 (e.g. a wrong password at login).
const RefusedHeader = "X-Lookout-Auth-Refused"

var (
	errNoCredentials = fmt.Errorf("authentication required: %w", errs.ErrUnauthorized)
	errBadCredential = fmt.Errorf("invalid or expired credentials: %w", errs.ErrUnauthorized)
	errWrongRole     = fmt.Errorf("your role does not allow this: %w", errs.ErrForbidden)
	errCrossOrigin   = fmt.Errorf("cross-origin request refused: %w", errs.ErrForbidden)
)

// MQTTForgetter drops cached MQTT verifications after a rotation (*auth.MQTTAuth).
type MQTTForgetter interface{ Forget(user string) }

// Service holds the guard and the security handlers.
type Service struct {
	store   *auth.Store
	limiter *auth.LoginLimiter
	devices auth.DeviceLookup
	mqtt    MQTTForgetter
	cfg     auth.Config
	proxies auth.TrustedProxies
	prefix  string
	clk     clock.Clock
	log     *slog.Logger

	denied    *prometheus.CounterVec
	logins    *prometheus.CounterVec
	auditFail prometheus.Counter
}

// Options wire a Service.
type Options struct {
	Store      *auth.Store
	Devices    auth.DeviceLookup   // device credentials are issued only to registered devices
	MQTT       MQTTForgetter       // may be nil (external broker)
	Proxies    auth.TrustedProxies // X-Forwarded-For is believed only from these (http.trusted_proxies)
	Config     auth.Config
	Prefix     string // MQTT topic prefix, for the credential reply
	Clock      clock.Clock
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// New builds the service.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Devices == nil {
		return nil, errors.New("httpauth: store and devices are required")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	s := &Service{store: o.Store, limiter: auth.NewLoginLimiter(o.Config), devices: o.Devices, mqtt: o.MQTT,
		cfg: o.Config, proxies: o.Proxies, prefix: o.Prefix, clk: o.Clock, log: o.Log,
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_http_auth_denied_total",
			Help: "HTTP requests refused by the guard, by reason."}, []string{"reason"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_logins_total",
			Help: "Login attempts by result (ok, bad_credentials, throttled)."}, []string{"result"}),
		auditFail: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_audit_write_failures_total",
			Help: "Audit entries that could not be written after a successful state change. Should stay 0."}),
	}
	for _, r := range []string{"no_credentials", "bad_credentials", "wrong_role", "cross_origin"} {
		s.denied.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "bad_credentials", "throttled"} {
		s.logins.WithLabelValues(r)
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.denied, s.logins, s.auditFail} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("httpauth: metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Store exposes the underlying store (bootstrap, CLI).
func (s *Service) Store() *auth.Store { return s.store }

// RunDue purges expired sessions/tokens and stale limiter state.
func (s *Service) RunDue(ctx context.Context, now time.Time) error {
	s.limiter.RunDue(now)
	return s.store.RunDue(ctx, now)
}

// Run calls RunDue every minute until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.RunDue(ctx, s.clk.Now()); err != nil {
				s.log.Warn("auth housekeeping", "err", err)
			}
		}
	}
}

// Wrap enforces one route table row: body limit, authentication (bearer token,
// session cookie, or ?token= on GET for viewer pages), the role, and an audit
// entry after a 2xx reply when the row names an action.
func (s *Service) Wrap(rt web.Route) http.Handler {
	limit := rt.MaxBody
	if limit <= 0 {
		limit = web.DefaultMaxBody
	}
	names := patternNames(rt.Pattern)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		ri := &auth.RequestInfo{ClientIP: s.proxies.ClientIP(r)}
		// A public route that changes state (the login) is refused cross-origin
		// too: a form on another site could otherwise log the victim's browser
		// into the attacker's account (login CSRF). Clients that send no Origin
		// (devices, scripts) are not affected.
		if rt.Role == auth.RolePublic && !s.sameOrigin(r) {
			s.denied.WithLabelValues("cross_origin").Inc()
			w.Header().Set(RefusedHeader, "cross_origin")
			web.Error(w, r, errCrossOrigin)
			return
		}
		if rt.Role != auth.RolePublic {
			p, via, err := s.authenticate(r, rt.QueryToken)
			if err != nil {
				reason := "bad_credentials"
				if errors.Is(err, errNoCredentials) {
					reason = "no_credentials"
				}
				s.denied.WithLabelValues(reason).Inc()
				w.Header().Set(RefusedHeader, reason)
				w.Header().Set("WWW-Authenticate", `Bearer realm="lookout"`)
				web.Error(w, r, err)
				return
			}
			if via == "session" && !s.sameOrigin(r) {
				s.denied.WithLabelValues("cross_origin").Inc()
				w.Header().Set(RefusedHeader, "cross_origin")
				web.Error(w, r, errCrossOrigin)
				return
			}
			if !p.Allows(rt.Role) {
				s.denied.WithLabelValues("wrong_role").Inc()
				w.Header().Set(RefusedHeader, "wrong_role")
				web.Error(w, r, errWrongRole)
				return
			}
			ri.Principal = p
		}
		r = r.WithContext(auth.WithRequestInfo(r.Context(), ri))
		if rt.Audit == "" {
			rt.Handler(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		rt.Handler(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK // nothing written: net/http sends 200
		}
		if sw.status >= 200 && sw.status < 300 {
			target := make(map[string]string, len(names))
			for _, n := range names {
				target[n] = r.PathValue(n)
			}
			actor := ri.Principal.Name
			if actor == "" {
				actor = "-"
			}
			e := auth.AuditEntry{Actor: actor, Role: ri.Principal.Role, Action: rt.Audit, Target: target,
				Remote: ri.ClientIP, Status: sw.status, Detail: ri.AuditDetail}
			// The reply is sent; the entry must still be written even if the
			// client went away, so do not use the request context.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
			if err := s.store.Audit(ctx, e); err != nil {
				s.auditFail.Inc()
				s.log.Error("audit entry not written", "action", rt.Audit, "actor", actor, "err", err)
			}
			cancel()
		}
	})
}

func (s *Service) authenticate(r *http.Request, queryToken bool) (auth.Principal, string, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return auth.Principal{}, "", errBadCredential
		}
		p, err := s.store.TokenPrincipal(ctx, strings.TrimSpace(tok))
		if err != nil {
			return p, "", wrapCred(err)
		}
		return p, "token", nil
	}
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		p, err := s.store.SessionPrincipal(ctx, c.Value)
		if err != nil {
			return p, "", wrapCred(err)
		}
		return p, "session", nil
	}
	// Viewer pages are opened from links; a token in the query is accepted on
	// the routes that ask for it (web.Route.QueryToken), for GET only.
	if q := r.URL.Query().Get("token"); q != "" && queryToken && r.Method == http.MethodGet {
		p, err := s.store.TokenPrincipal(ctx, q)
		if err != nil {
			return p, "", wrapCred(err)
		}
		return p, "token", nil
	}
	return auth.Principal{}, "", errNoCredentials
}

func wrapCred(err error) error {
	if errors.Is(err, errs.ErrUnauthorized) {
		return errBadCredential
	}
	return err // storage failure: a 500, not a 401
}

// sameOrigin refuses cookie-authenticated state changes from another origin
// (defence in depth next to SameSite=Strict). Requests without Origin (curl,
// same-origin GETs in older browsers) pass. Behind a trusted proxy that
// rewrites Host (nginx's default), the X-Forwarded-Host it sets is the
// gateway's public name and counts as well.
func (s *Service) sameOrigin(r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
		return true
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	fh := s.proxies.Forwarded(r, "X-Forwarded-Host")
	return fh != "" && strings.EqualFold(u.Host, fh)
}

// secure reports whether the client reached us over TLS: directly, or through a
// trusted proxy that terminated it (X-Forwarded-Proto: https). Session cookies
// are marked Secure then.
func (s *Service) secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(s.proxies.Forwarded(r, "X-Forwarded-Proto"), "https")
}

// clientIP is the request's client address: the guard's, or worked out here
// when the handler runs outside a guarded route.
func (s *Service) clientIP(r *http.Request) string {
	if ri := auth.Info(r.Context()); ri != nil && ri.ClientIP != "" {
		return ri.ClientIP
	}
	return s.proxies.ClientIP(r)
}

// patternNames lists the wildcard names of a ServeMux pattern ("{id}", "{path...}").
func patternNames(p string) []string {
	var out []string
	for {
		i := strings.IndexByte(p, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(p[i:], '}')
		if j < 0 {
			return out
		}
		name := strings.TrimSuffix(p[i+1:i+j], "...")
		if name != "$" && name != "" {
			out = append(out, name)
		}
		p = p[i+j+1:]
	}
}

// statusWriter records the status; it keeps Flush (SSE) and Hijack working and
// exposes Unwrap for http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("hijack not supported")
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
