package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/auth/httpauth"
	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/registry"
)

// security is the App's auth state. It is built even with auth.insecure_dev
// (the routes exist either way); insecure dev only swaps the guard and the
// broker hooks for open ones.
type security struct {
	store *auth.Store
	mqtt  *auth.MQTTAuth
	http  *httpauth.Service
}

// registryLookup adapts the device registry to auth.DeviceLookup.
type registryLookup struct{ r *registry.Registry }

func (l registryLookup) DeviceClass(id string) (string, bool) {
	d, ok := l.r.Get(id)
	if !ok {
		return "", false
	}
	return string(d.Class), true
}

// setupSecurity builds users/tokens/audit, MQTT device auth and the HTTP guard,
// creates the bootstrap admin (password logged once, on first start only) and
// the simulator's credentials files (MQTT passwords, and WHIP camera tokens in
// sim-camera-tokens.yaml next to them). Call it after the registry is open and
// before the broker is built.
func (a *App) setupSecurity(ctx context.Context) error {
	cfg := a.cfg.Auth
	st, err := auth.OpenStore(ctx, a.db, cfg, a.clk)
	if err != nil {
		return err
	}
	lookup := registryLookup{a.devices}
	log := a.log.With("component", "auth")
	ma, err := auth.NewMQTTAuth(st, lookup, a.cfg.Ingest.TopicPrefix, cfg, a.clk, a.reg, log)
	if err != nil {
		return err
	}
	proxies, err := auth.ParseTrustedProxies(a.cfg.HTTP.TrustedProxies)
	if err != nil {
		return fmt.Errorf("http.trusted_proxies: %w", err)
	}
	if proxies, err = proxies.WithHeader(a.cfg.HTTP.ForwardedHeader); err != nil {
		return fmt.Errorf("http.forwarded_header: %w", err)
	}
	svc, err := httpauth.New(httpauth.Options{Store: st, Devices: lookup, MQTT: revoker{ma, a}, Proxies: proxies, Config: cfg,
		Prefix: a.cfg.Ingest.TopicPrefix, Clock: a.clk, Registerer: a.reg, Log: log})
	if err != nil {
		return err
	}
	a.sec = &security{store: st, mqtt: ma, http: svc}
	if cfg.InsecureDev {
		a.log.Warn("AUTH IS OFF (auth.insecure_dev / --insecure-dev): every HTTP route is open and the MQTT broker accepts anyone. Never expose this gateway.")
		a.guard = openGuard{}
		return nil
	}
	a.guard = svc
	pw, err := st.BootstrapAdmin(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	if pw != "" {
		a.log.Warn("created the first admin account; this password is shown ONCE (change it: PUT /api/v1/me/password)",
			"user", cfg.BootstrapAdmin, "password", pw)
	}
	if cfg.SimCredentials != "" {
		path := cfg.SimCredentials
		if !filepath.IsAbs(path) {
			path = filepath.Join(a.cfg.DataDir, path)
		}
		devs := a.devices.List(registry.Filter{})
		ids := make([]string, 0, len(devs))
		var cams []string
		for _, d := range devs {
			ids = append(ids, d.ID)
			if d.Class == ingest.ClassCamera {
				cams = append(cams, d.ID)
			}
		}
		n, err := st.SimCredentials(ctx, ids, path)
		if err != nil {
			return fmt.Errorf("simulator credentials: %w", err)
		}
		if n > 0 {
			a.log.Info("issued MQTT credentials for the simulator", "devices", n, "file", path)
		}
		a.simCameraTokens(ctx, cams, filepath.Join(filepath.Dir(path), simCameraTokensFile))
	}
	return nil
}

// simCameraTokensFile sits next to the simulator's MQTT credentials and holds
// one WHIP camera token per registered camera ("camera id: token"), for
// firmware-sim --video --camera-tokens.
const simCameraTokensFile = "sim-camera-tokens.yaml"

// simCameraTokens mints the simulator's camera tokens, owned by the bootstrap
// admin. A failure (say the admin account was removed) only costs the demo its
// video, so it is logged rather than stopping the gateway.
func (a *App) simCameraTokens(ctx context.Context, cams []string, path string) {
	owner := a.cfg.Auth.BootstrapAdmin
	if owner == "" || len(cams) == 0 {
		return
	}
	n, err := a.sec.store.SimCameraTokens(ctx, owner, cams, path)
	if err != nil {
		a.log.Warn("simulator camera tokens not issued; firmware-sim --video cannot publish", "err", err)
		return
	}
	if n > 0 {
		a.log.Info("issued WHIP camera tokens for the simulator", "cameras", n, "file", path)
	}
}

// revoker is what the credential routes call after a revoke or rotation: the
// cached verification is dropped and, with the embedded broker, the account's
// open connections are closed, so old credentials stop working at once rather
// than at the next reconnect. (An external Mosquitto keeps them until it
// reloads its password file.)
type revoker struct {
	ma *auth.MQTTAuth
	a  *App
}

// Forget implements httpauth.MQTTForgetter.
func (r revoker) Forget(user string) {
	r.ma.Forget(user)
	if r.a.broker != nil {
		if n := r.a.broker.Disconnect(user); n > 0 {
			r.a.log.Info("mqtt connections closed after a credential change", "user", user, "connections", n)
		}
	}
}
