package httpauth

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/errs"
	"github.com/lookoutfire/lookout/web"
)

var errUnknownDevice = fmt.Errorf("device %w", errs.ErrNotFound)

func principal(r *http.Request) auth.Principal {
	p, _ := auth.PrincipalFrom(r.Context())
	return p
}

func noteAudit(r *http.Request, format string, args ...any) {
	if ri := auth.Info(r.Context()); ri != nil {
		ri.AuditDetail = fmt.Sprintf(format, args...)
	}
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type loginReply struct {
	User      string    `json:"user"`
	Role      auth.Role `json:"role"`
	ExpiresAt time.Time `json:"expires_at"`
}

// HandleLogin checks a password and sets the session cookie (HttpOnly,
// SameSite=Strict, Secure over TLS, also TLS ended by a trusted proxy). Throttled per IP and per user name;
// failures are logged with the name and address, never the password.
func (s *Service) HandleLogin(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := web.Decode(r, &req); err != nil {
		web.Error(w, r, err)
		return
	}
	ip := s.clientIP(r)
	now := s.clk.Now()
	if err := s.limiter.Allow(ip, req.Username, now); err != nil {
		s.logins.WithLabelValues("throttled").Inc()
		s.log.Warn("login throttled", "user", logName(req.Username), "remote", ip)
		setRetryAfter(w, err)
		web.Error(w, r, err)
		return
	}
	u, err := s.store.CheckPassword(r.Context(), req.Username, req.Password)
	if err != nil {
		if errors.Is(err, errs.ErrUnauthorized) {
			s.limiter.Failed(req.Username, now)
			s.logins.WithLabelValues("bad_credentials").Inc()
			s.log.Warn("login failed", "user", logName(req.Username), "remote", ip)
		}
		web.Error(w, r, err)
		return
	}
	s.limiter.Succeeded(req.Username)
	secret, exp, err := s.store.NewSession(r.Context(), u.Name)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	s.logins.WithLabelValues("ok").Inc()
	if ri := auth.Info(r.Context()); ri != nil {
		ri.Principal = auth.Principal{Name: u.Name, Role: u.Role, Via: "session"}
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: secret, Path: "/", Expires: exp, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.secure(r)})
	web.JSON(w, http.StatusOK, loginReply{User: u.Name, Role: u.Role, ExpiresAt: exp})
}

// logName keeps attacker-chosen user names short and printable in the log.
func logName(s string) string {
	if auth.ValidUsername(s) {
		return s
	}
	return strconv.QuoteToASCII(truncate(s, 64))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// HandleLogout ends the cookie's session and clears the cookie.
func (s *Service) HandleLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		if err := s.store.EndSession(r.Context(), c.Value); err != nil {
			web.Error(w, r, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.secure(r)})
	w.WriteHeader(http.StatusNoContent)
}

// HandleMe returns the caller.
func (s *Service) HandleMe(w http.ResponseWriter, r *http.Request) {
	web.JSON(w, http.StatusOK, principal(r))
}

type passwordChange struct {
	Current string `json:"current"`
	New     string `json:"new"`
}

// HandleChangeOwnPassword lets a person change their password (the current one
// is required, so a stolen session alone cannot lock the owner out). Wrong
// current passwords count towards the same per-IP and per-user limits as logins.
func (s *Service) HandleChangeOwnPassword(w http.ResponseWriter, r *http.Request) {
	var req passwordChange
	if err := web.Decode(r, &req); err != nil {
		web.Error(w, r, err)
		return
	}
	p := principal(r)
	// Throttled like a login: a stolen session or token must not become a
	// way to guess the current password at full speed.
	now := s.clk.Now()
	if err := s.limiter.Allow(s.clientIP(r), p.Name, now); err != nil {
		setRetryAfter(w, err)
		web.Error(w, r, err)
		return
	}
	if _, err := s.store.CheckPassword(r.Context(), p.Name, req.Current); err != nil {
		if errors.Is(err, errs.ErrUnauthorized) {
			s.limiter.Failed(p.Name, now)
			// 400, not 401: the session is fine, the form field is wrong.
			err = fmt.Errorf("current password does not match: %w", errs.ErrInvalid)
		}
		web.Error(w, r, err)
		return
	}
	s.limiter.Succeeded(p.Name)
	if err := s.store.UpdateUser(r.Context(), p.Name, auth.UserUpdate{Password: &req.New}); err != nil {
		web.Error(w, r, err)
		return
	}
	noteAudit(r, "password changed")
	w.WriteHeader(http.StatusNoContent)
}

// HandleListUsers lists accounts (admin).
func (s *Service) HandleListUsers(w http.ResponseWriter, r *http.Request) {
	us, err := s.store.ListUsers(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, us)
}

type newUser struct {
	Name     string    `json:"name"`
	Role     auth.Role `json:"role"`
	Password string    `json:"password"`
}

// HandleCreateUser adds an account (admin).
func (s *Service) HandleCreateUser(w http.ResponseWriter, r *http.Request) {
	var req newUser
	if err := web.Decode(r, &req); err != nil {
		web.Error(w, r, err)
		return
	}
	if err := s.store.CreateUser(r.Context(), req.Name, req.Role, req.Password); err != nil {
		web.Error(w, r, err)
		return
	}
	noteAudit(r, "name=%s role=%s", req.Name, req.Role)
	u, err := s.store.GetUser(r.Context(), req.Name)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusCreated, u)
}

// HandleUpdateUser changes role, password or disabled (admin).
func (s *Service) HandleUpdateUser(w http.ResponseWriter, r *http.Request) {
	var req auth.UserUpdate
	if err := web.Decode(r, &req); err != nil {
		web.Error(w, r, err)
		return
	}
	name := r.PathValue("name")
	if err := s.store.UpdateUser(r.Context(), name, req); err != nil {
		web.Error(w, r, err)
		return
	}
	detail := ""
	if req.Role != nil {
		detail += "role=" + string(*req.Role) + " "
	}
	if req.Password != nil {
		detail += "password changed "
	}
	if req.Disabled != nil {
		detail += "disabled=" + strconv.FormatBool(*req.Disabled)
	}
	noteAudit(r, "%s", detail)
	u, err := s.store.GetUser(r.Context(), name)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, u)
}

// HandleDeleteUser removes an account (admin).
func (s *Service) HandleDeleteUser(w http.ResponseWriter, r *http.Request) {
	if err := s.store.DeleteUser(r.Context(), r.PathValue("name")); err != nil {
		web.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// HandleListTokens lists the caller's tokens (an admin with ?all=1: everyone's).
func (s *Service) HandleListTokens(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	owner := p.Name
	if p.Role == auth.RoleAdmin && r.URL.Query().Get("all") == "1" {
		owner = ""
	}
	ts, err := s.store.ListTokens(r.Context(), owner)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, ts)
}

type newToken struct {
	Name     string    `json:"name"`
	Role     auth.Role `json:"role,omitempty"`
	Device   string    `json:"device,omitempty"`
	TTLHours float64   `json:"ttl_hours,omitempty"`
}

type tokenReply struct {
	auth.Token
	Secret string `json:"token"`
	Note   string `json:"note"`
}

// HandleCreateToken mints an API token for scripts, or a camera token (WHIP)
// for maintenance/admin. The secret is in this reply only.
func (s *Service) HandleCreateToken(w http.ResponseWriter, r *http.Request) {
	var req newToken
	if err := web.Decode(r, &req); err != nil {
		web.Error(w, r, err)
		return
	}
	if req.TTLHours < 0 || req.TTLHours > 24*3650 {
		web.Error(w, r, fmt.Errorf("ttl_hours must be 0..87600: %w", errs.ErrInvalid))
		return
	}
	if req.Role == auth.RoleCamera {
		if class, ok := s.devices.DeviceClass(req.Device); !ok || class != "camera" {
			web.Error(w, r, fmt.Errorf("camera token: %q is not a registered camera: %w", req.Device, errs.ErrInvalid))
			return
		}
	}
	p := principal(r)
	t, secret, err := s.store.CreateToken(r.Context(), p.Name, p.Role, auth.TokenRequest{Name: req.Name, Role: req.Role,
		Device: req.Device, TTL: time.Duration(req.TTLHours * float64(time.Hour))})
	if err != nil {
		web.Error(w, r, err)
		return
	}
	noteAudit(r, "token=%s role=%s device=%s", t.ID, t.Role, t.Device)
	web.JSON(w, http.StatusCreated, tokenReply{Token: t, Secret: secret, Note: "shown once; send as Authorization: Bearer <token>"})
}

// HandleRevokeToken deletes one of the caller's tokens (an admin: anyone's).
func (s *Service) HandleRevokeToken(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	owner := p.Name
	if p.Role == auth.RoleAdmin {
		owner = ""
	}
	if err := s.store.RevokeToken(r.Context(), r.PathValue("id"), owner); err != nil {
		web.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type credentialReply struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	ClientID      string `json:"client_id"`
	PublishPrefix string `json:"publish_prefix,omitempty"`
	CommandTopic  string `json:"command_topic,omitempty"`
	Note          string `json:"note"`
}

// HandleIssueDeviceCredentials issues or rotates a registered device's MQTT
// password and returns it once. The old password stops working at once.
func (s *Service) HandleIssueDeviceCredentials(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	class, ok := s.devices.DeviceClass(id)
	if !ok {
		web.Error(w, r, fmt.Errorf("%s: %w", id, errUnknownDevice))
		return
	}
	pw, err := s.store.IssueMQTT(r.Context(), id, auth.MQTTDevice)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	if s.mqtt != nil {
		s.mqtt.Forget(id)
	}
	noteAudit(r, "issued/rotated")
	w.Header().Set("Cache-Control", "no-store")
	web.JSON(w, http.StatusCreated, credentialReply{Username: id, Password: pw, ClientID: id,
		PublishPrefix: s.prefix + "/" + class + "/" + id + "/", CommandTopic: auth.CommandTopic(s.prefix, id),
		Note: "the password is shown once; rotating issues a new one"})
}

// HandleRevokeDeviceCredentials deletes a device's MQTT credentials.
func (s *Service) HandleRevokeDeviceCredentials(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.store.RevokeMQTT(r.Context(), id, auth.MQTTDevice); err != nil {
		web.Error(w, r, err)
		return
	}
	if s.mqtt != nil {
		s.mqtt.Forget(id)
	}
	w.WriteHeader(http.StatusNoContent)
}

type newMQTTAccount struct {
	Username string        `json:"username"`
	Kind     auth.MQTTKind `json:"kind"`   // gateway or monitor
	Rotate   bool          `json:"rotate"` // replace an existing account's password
}

// HandleListMQTTAccounts lists MQTT accounts (no hashes) (admin).
func (s *Service) HandleListMQTTAccounts(w http.ResponseWriter, r *http.Request) {
	cs, err := s.store.ListMQTT(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, cs)
}

// HandleCreateMQTTAccount issues a gateway or read-only monitor MQTT account
// (admin); device accounts go through the device credentials route. An
// existing account gets a new password only when the request says
// "rotate": true (its clients are disconnected): a create that collides with a
// name in use is a 409, not a silent outage of whatever uses that name.
func (s *Service) HandleCreateMQTTAccount(w http.ResponseWriter, r *http.Request) {
	var req newMQTTAccount
	if err := web.Decode(r, &req); err != nil {
		web.Error(w, r, err)
		return
	}
	if req.Kind != auth.MQTTGateway && req.Kind != auth.MQTTMonitor {
		web.Error(w, r, fmt.Errorf("kind must be gateway or monitor: %w", errs.ErrInvalid))
		return
	}
	if _, ok := s.devices.DeviceClass(req.Username); ok {
		web.Error(w, r, fmt.Errorf("%q is a device id: %w", req.Username, errs.ErrConflict))
		return
	}
	issue := s.store.CreateMQTT
	if req.Rotate {
		issue = s.store.RotateMQTT
	}
	pw, err := issue(r.Context(), req.Username, req.Kind)
	switch {
	case errors.Is(err, auth.ErrMQTTExists):
		web.Error(w, r, fmt.Errorf("MQTT account %q exists; send \"rotate\": true to give it a new password (its clients are disconnected): %w",
			req.Username, errs.ErrConflict))
		return
	case req.Rotate && errors.Is(err, auth.ErrCredNotFound):
		web.Error(w, r, fmt.Errorf("MQTT account %q: nothing to rotate: %w", req.Username, errs.ErrNotFound))
		return
	case err != nil:
		web.Error(w, r, err)
		return
	}
	if s.mqtt != nil {
		s.mqtt.Forget(req.Username)
	}
	noteAudit(r, "kind=%s rotate=%t", req.Kind, req.Rotate)
	w.Header().Set("Cache-Control", "no-store")
	web.JSON(w, http.StatusCreated, credentialReply{Username: req.Username, Password: pw, ClientID: req.Username,
		Note: "the password is shown once; client id must be the username or start with username@"})
}

// HandleDeleteMQTTAccount deletes an MQTT account of any kind (admin).
func (s *Service) HandleDeleteMQTTAccount(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("username")
	if err := s.store.RevokeMQTT(r.Context(), name, ""); err != nil {
		web.Error(w, r, err)
		return
	}
	if s.mqtt != nil {
		s.mqtt.Forget(name)
	}
	w.WriteHeader(http.StatusNoContent)
}

// HandleAudit returns audit entries newest first (admin):
// ?actor=&action=&before=<seq>&limit=.
func (s *Service) HandleAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	aq := auth.AuditQuery{Actor: q.Get("actor"), Action: q.Get("action")}
	for key, dst := range map[string]*int64{"before": &aq.Before} {
		if v := q.Get(key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				web.Error(w, r, fmt.Errorf("%s: want a non-negative integer: %w", key, errs.ErrInvalid))
				return
			}
			*dst = n
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			web.Error(w, r, fmt.Errorf("limit: want 1..1000: %w", errs.ErrInvalid))
			return
		}
		aq.Limit = n
	}
	es, err := s.store.AuditList(r.Context(), aq)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, es)
}

// setRetryAfter tells a throttled client when to come back (a user lockout
// lasts auth.login_lockout, not a minute).
func setRetryAfter(w http.ResponseWriter, err error) {
	secs := 60
	var te *auth.ThrottleError
	if errors.As(err, &te) {
		secs = max(1, int(math.Ceil(te.RetryAfter.Seconds())))
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
}
