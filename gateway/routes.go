package main

import (
	"net/http"

	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/console"
	"github.com/lookoutfire/lookout/web"
)

// routes is THE route table: every /api/v1 endpoint (and page) with the role it
// requires. The guard enforces it; the role × endpoint test walks it. A new
// endpoint is one new row here — nowhere else decides who may call it.
func (a *App) routes() []web.Route {
	const (
		get  = http.MethodGet
		post = http.MethodPost
		put  = http.MethodPut
		del  = http.MethodDelete
	)
	rs := []web.Route{
		// --- devices and health (registry) ---
		{Method: get, Pattern: "/api/v1/devices", Role: auth.RoleMaintenance, Handler: a.devices.HandleList},
		{Method: post, Pattern: "/api/v1/devices", Role: auth.RoleMaintenance, Handler: a.devices.HandleCreate, Audit: "device.create"},
		{Method: get, Pattern: "/api/v1/devices/{id}", Role: auth.RoleMaintenance, Handler: a.devices.HandleGet},
		{Method: put, Pattern: "/api/v1/devices/{id}", Role: auth.RoleMaintenance, Handler: a.devices.HandleUpdate, Audit: "device.update"},
		{Method: del, Pattern: "/api/v1/devices/{id}", Role: auth.RoleMaintenance, Handler: a.devices.HandleDelete, Audit: "device.delete"},
		{Method: get, Pattern: "/api/v1/health/zones", Role: auth.RoleMaintenance, Handler: a.devices.HandleZones},
		// --- geo ---
		{Method: put, Pattern: "/api/v1/geo/{layer}", Role: auth.RoleAdmin, Handler: a.geoLayers.HandlePut, MaxBody: a.cfg.Geo.MaxLayerBytes, Audit: "geo.layer.replace"},
		{Method: get, Pattern: "/api/v1/geo/{layer}", Role: auth.RoleAny, Handler: a.geoLayers.HandleGet},
		{Method: get, Pattern: "/api/v1/geo/locate", Role: auth.RoleAny, Handler: a.geoLayers.HandleLocate},
		// --- alerting ---
		{Method: get, Pattern: "/api/v1/alerts", Role: auth.RoleAny, Handler: a.alerts.HandleList},
		{Method: get, Pattern: "/api/v1/alerts/{id}", Role: auth.RoleAny, Handler: a.alerts.HandleGet},
		{Method: post, Pattern: "/api/v1/alerts/{id}/ack", Role: auth.RoleOperator, Handler: a.alerts.HandleAck, MaxBody: 16 << 10, Audit: "alert.ack"},
		{Method: post, Pattern: "/api/v1/alerts/{id}/clear", Role: auth.RoleOperator, Handler: a.alerts.HandleClear, MaxBody: 16 << 10, Audit: "alert.clear"},
		{Method: get, Pattern: "/api/v1/alerts/{id}/cap", Role: auth.RoleOperator, Handler: a.alerts.HandleCAP},
		{Method: get, Pattern: "/api/v1/cap/feed", Role: auth.RoleOperator, Handler: a.alerts.HandleCAPFeed},
		{Method: get, Pattern: "/api/v1/incidents", Role: auth.RoleOperator, Handler: a.alerts.HandleIncidents},
		{Method: post, Pattern: "/api/v1/incidents/{id}/close", Role: auth.RoleOperator, Handler: a.alerts.HandleCloseIncident, MaxBody: 16 << 10, Audit: "incident.close"},
		{Method: get, Pattern: "/api/v1/events", Role: auth.RoleAny, Handler: a.alerts.HandleEvents, QueryToken: true},
		{Method: get, Pattern: "/api/v1/fire-danger", Role: auth.RoleAny, Handler: a.alerts.HandleDanger},
		// --- hotspots ---
		{Method: post, Pattern: "/api/v1/hotspots/import", Role: auth.RoleVerifier, Handler: a.hotspots.HandleImport, MaxBody: a.hotspots.ImportBodyLimit(), Audit: "hotspot.import"},
		{Method: get, Pattern: "/api/v1/hotspots/reports", Role: auth.RoleVerifier, Handler: a.hotspots.HandleList},
		{Method: get, Pattern: "/api/v1/hotspots/reports/{id}", Role: auth.RoleVerifier, Handler: a.hotspots.HandleGet},
		{Method: post, Pattern: "/api/v1/hotspots/reports/{id}/assign", Role: auth.RoleVerifier, Handler: a.hotspots.HandleAssign, MaxBody: 4 << 10, Audit: "hotspot.assign"},
		{Method: post, Pattern: "/api/v1/hotspots/reports/{id}/verify", Role: auth.RoleVerifier, Handler: a.hotspots.HandleVerify, MaxBody: 4 << 10, Audit: "hotspot.verify"},
		{Method: post, Pattern: "/api/v1/hotspots/reports/{id}/close", Role: auth.RoleVerifier, Handler: a.hotspots.HandleClose, MaxBody: 16 << 10, Audit: "hotspot.close"},
		{Method: post, Pattern: "/api/v1/hotspots/reports/{id}/reopen", Role: auth.RoleVerifier, Handler: a.hotspots.HandleReopen, MaxBody: 4 << 10, Audit: "hotspot.reopen"},
		{Method: post, Pattern: "/api/v1/hotspots/reports/{id}/photos", Role: auth.RoleVerifier, Handler: a.hotspots.HandlePhotos, MaxBody: a.hotspots.PhotoBodyLimit(), Audit: "hotspot.photo"},
		{Method: get, Pattern: "/api/v1/hotspots/photos/{id}", Role: auth.RoleVerifier, Handler: a.hotspots.HandlePhoto},
		{Method: get, Pattern: "/api/v1/hotspots/export.csv", Role: auth.RoleVerifier, Handler: a.hotspots.HandleCSV},
		{Method: get, Pattern: "/api/v1/hotspots/export.geojson", Role: auth.RoleVerifier, Handler: a.hotspots.HandleGeoJSON},
		{Method: get, Pattern: "/api/v1/hotspots/stats", Role: auth.RoleVerifier, Handler: a.hotspots.HandleStats},
		// --- video ---
		{Method: post, Pattern: "/api/v1/streams/{camera}/whip", Role: auth.RoleCamera, Handler: a.video.HandleWHIP, MaxBody: 64 << 10, Audit: "stream.publish"},
		{Method: del, Pattern: "/api/v1/streams/{camera}/whip/{session}", Role: auth.RoleCamera, Handler: a.video.HandleWHIPDelete},
		{Method: post, Pattern: "/api/v1/streams/{camera}/whep", Role: auth.RoleOperator, Handler: a.video.HandleWHEP, MaxBody: 64 << 10, Audit: "stream.view"},
		{Method: del, Pattern: "/api/v1/streams/{camera}/whep/{session}", Role: auth.RoleOperator, Handler: a.video.HandleWHEPDelete},
		{Method: get, Pattern: "/api/v1/streams", Role: auth.RoleAny, Handler: a.video.HandleList},
		{Method: get, Pattern: "/live/{camera}", Role: auth.RoleOperator, Handler: a.video.HandleViewerPage, QueryToken: true},
		// --- control-room page (public shell: its data comes from the rows above) ---
		{Method: get, Pattern: "/console", Role: auth.RolePublic, Handler: console.Handle},
		{Method: get, Pattern: "/{$}", Role: auth.RolePublic, Handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "console", http.StatusFound)
		}},
		// --- security (users, tokens, credentials, audit) ---
		{Method: post, Pattern: "/api/v1/login", Role: auth.RolePublic, Handler: a.sec.http.HandleLogin, MaxBody: 4 << 10, Audit: "login"},
		{Method: post, Pattern: "/api/v1/logout", Role: auth.RoleAny, Handler: a.sec.http.HandleLogout, MaxBody: 1 << 10, Audit: "logout"},
		{Method: get, Pattern: "/api/v1/me", Role: auth.RoleAny, Handler: a.sec.http.HandleMe},
		{Method: put, Pattern: "/api/v1/me/password", Role: auth.RoleAny, Handler: a.sec.http.HandleChangeOwnPassword, MaxBody: 4 << 10, Audit: "user.password"},
		{Method: get, Pattern: "/api/v1/users", Role: auth.RoleAdmin, Handler: a.sec.http.HandleListUsers},
		{Method: post, Pattern: "/api/v1/users", Role: auth.RoleAdmin, Handler: a.sec.http.HandleCreateUser, MaxBody: 4 << 10, Audit: "user.create"},
		{Method: put, Pattern: "/api/v1/users/{name}", Role: auth.RoleAdmin, Handler: a.sec.http.HandleUpdateUser, MaxBody: 4 << 10, Audit: "user.update"},
		{Method: del, Pattern: "/api/v1/users/{name}", Role: auth.RoleAdmin, Handler: a.sec.http.HandleDeleteUser, Audit: "user.delete"},
		{Method: get, Pattern: "/api/v1/tokens", Role: auth.RoleAny, Handler: a.sec.http.HandleListTokens},
		{Method: post, Pattern: "/api/v1/tokens", Role: auth.RoleAny, Handler: a.sec.http.HandleCreateToken, MaxBody: 4 << 10, Audit: "token.create"},
		{Method: del, Pattern: "/api/v1/tokens/{id}", Role: auth.RoleAny, Handler: a.sec.http.HandleRevokeToken, Audit: "token.revoke"},
		{Method: post, Pattern: "/api/v1/devices/{id}/credentials", Role: auth.RoleMaintenance, Handler: a.sec.http.HandleIssueDeviceCredentials, MaxBody: 1 << 10, Audit: "device.credentials.issue"},
		{Method: del, Pattern: "/api/v1/devices/{id}/credentials", Role: auth.RoleMaintenance, Handler: a.sec.http.HandleRevokeDeviceCredentials, Audit: "device.credentials.revoke"},
		{Method: get, Pattern: "/api/v1/mqtt/accounts", Role: auth.RoleAdmin, Handler: a.sec.http.HandleListMQTTAccounts},
		{Method: post, Pattern: "/api/v1/mqtt/accounts", Role: auth.RoleAdmin, Handler: a.sec.http.HandleCreateMQTTAccount, MaxBody: 4 << 10, Audit: "mqtt.account.create"},
		{Method: del, Pattern: "/api/v1/mqtt/accounts/{username}", Role: auth.RoleAdmin, Handler: a.sec.http.HandleDeleteMQTTAccount, Audit: "mqtt.account.delete"},
		{Method: get, Pattern: "/api/v1/audit", Role: auth.RoleAdmin, Handler: a.sec.http.HandleAudit},
	}
	return rs
}
