// Package auth decides who may do what: people (users with roles, sessions, API
// tokens), devices (MQTT credentials and ACLs) and the audit trail of every
// state-changing act.
package auth

// Role is what a person (or script token) is allowed to do. Every /api/v1 route
// declares exactly one required role in the gateway's route table.
type Role string

// Roles. Admin may do everything; the others are disjoint duties.
const (
	RolePublic      Role = "public"      // no authentication (login, health)
	RoleAny         Role = "any"         // any authenticated user
	RoleOperator    Role = "operator"    // alerts, incidents, video
	RoleMaintenance Role = "maintenance" // devices, health
	RoleVerifier    Role = "verifier"    // hotspot reports
	RoleAdmin       Role = "admin"       // users, layers, config, audit
)
