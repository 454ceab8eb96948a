// Package auth decides who may do what: people (users with roles, sessions, API
// tokens), devices (MQTT credentials and ACLs) and the audit trail of every
// state-changing act.
package auth

import "context"

// Role is what a person (or script token) is allowed to do. Every /api/v1 route
// declares exactly one required role in the gateway's route table.
type Role string

// Roles. Admin may do everything; the others are disjoint duties.
const (
	RolePublic      Role = "public"      // no authentication (login, health)
	RoleAny         Role = "any"         // any authenticated person (not a camera token)
	RoleOperator    Role = "operator"    // alerts, incidents, video
	RoleMaintenance Role = "maintenance" // devices, health
	RoleVerifier    Role = "verifier"    // hotspot reports
	RoleAdmin       Role = "admin"       // users, layers, config, audit
	// RoleCamera is held only by camera tokens (WHIP publishing); a camera token
	// names its device, so a stolen one speaks for one camera only.
	RoleCamera Role = "camera"
)

// PersonRoles are the roles a user account may hold.
var PersonRoles = []Role{RoleOperator, RoleMaintenance, RoleVerifier, RoleAdmin}

// ValidPersonRole reports whether r may be given to a user.
func ValidPersonRole(r Role) bool {
	for _, x := range PersonRoles {
		if x == r {
			return true
		}
	}
	return false
}

// Principal is who is calling: a user by session or token, or a camera token.
type Principal struct {
	Name    string `json:"name"`             // user name (for a camera token: the issuing user)
	Role    Role   `json:"role"`             // effective role of this credential
	Device  string `json:"device,omitempty"` // camera tokens: the device they speak for
	Via     string `json:"via"`              // "session" or "token"
	TokenID string `json:"token_id,omitempty"`
}

// Allows reports whether p may call a route requiring role. Admin may do
// everything; RoleAny admits every person role; RoleCamera admits camera tokens.
func (p Principal) Allows(required Role) bool {
	switch {
	case required == RolePublic:
		return true
	case p.Role == "":
		return false
	case p.Role == RoleAdmin:
		return true
	case required == RoleAny:
		return p.Role != RoleCamera
	}
	return p.Role == required
}

// ctxKey is the private context key for request-scoped auth state.
type ctxKey struct{}

// RequestInfo is what the HTTP guard knows about a request: the caller, and
// audit details a handler may add (e.g. login sets the actor once the password
// checked out; a user update notes which fields changed).
type RequestInfo struct {
	Principal   Principal
	AuditDetail string
	// ClientIP is TrustedProxies.ClientIP of the request, worked out once by
	// the guard so handlers keying anything per client agree with the audit log.
	ClientIP string
}

// WithRequestInfo attaches ri to ctx (the guard does this for every route).
func WithRequestInfo(ctx context.Context, ri *RequestInfo) context.Context {
	return context.WithValue(ctx, ctxKey{}, ri)
}

// Info returns the request's auth state, or nil outside a guarded route.
func Info(ctx context.Context) *RequestInfo {
	ri, _ := ctx.Value(ctxKey{}).(*RequestInfo)
	return ri
}

// PrincipalFrom returns the authenticated caller, if any. Handlers that must
// narrow further (a camera token may publish only its own device's stream) use it.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	ri := Info(ctx)
	if ri == nil || ri.Principal.Role == "" {
		return Principal{}, false
	}
	return ri.Principal, true
}
