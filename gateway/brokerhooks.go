package main

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	mochiauth "github.com/mochi-mqtt/server/v2/hooks/auth"
)

// brokerHooks returns the embedded broker's authentication/ACL/guard hooks.
// Until device identity is wired (security), every client is allowed.
func (a *App) brokerHooks() []mqtt.Hook {
	return []mqtt.Hook{new(mochiauth.AllowHook)}
}
