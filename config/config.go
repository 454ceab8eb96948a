// Package config loads Lookout's one configuration struct: defaults, then the
// YAML file (lookout.yaml), then LOOKOUT_* environment variables, then flags —
// and validates it, naming the offending key in every error.
//
// Environment names are derived from the YAML path: `influx.url` is
// LOOKOUT_INFLUX_URL, `mqtt.embedded_addr` is LOOKOUT_MQTT_EMBEDDED_ADDR. A field may
// add an alias with an `env:"…"` tag (registry.unknown_devices is also
// LOOKOUT_UNKNOWN_DEVICES). Flags set any key with --set path=value.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lookoutfire/lookout/alerting"
	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/geo"
	"github.com/lookoutfire/lookout/hotspot"
	"github.com/lookoutfire/lookout/ingest"
	"github.com/lookoutfire/lookout/registry"
	"github.com/lookoutfire/lookout/spool"
	"github.com/lookoutfire/lookout/tsdb"
	"github.com/lookoutfire/lookout/video"
	"github.com/lookoutfire/lookout/web"
)

// Config is everything the gateway needs to start.
type Config struct {
	DataDir  string          `yaml:"data_dir"`  // state database, spool, snapshots, photos
	LogLevel string          `yaml:"log_level"` // debug, info, warn, error
	HTTP     HTTPConfig      `yaml:"http"`
	MQTT     MQTTConfig      `yaml:"mqtt"`
	Ingest   ingest.Config   `yaml:"ingest"`
	Spool    spool.Config    `yaml:"spool"`
	Influx   tsdb.Config     `yaml:"influx"`
	Registry registry.Config `yaml:"registry"`
	Geo      geo.Config      `yaml:"geo"`
	Alerting alerting.Config `yaml:"alerting"`
	Hotspot  hotspot.Config  `yaml:"hotspot"`
	Video    video.Config    `yaml:"video"`
	Auth     auth.Config     `yaml:"auth"`
}

// HTTPConfig is the "http" section.
type HTTPConfig struct {
	Addr    string `yaml:"addr"`     // API, web pages, WHIP/WHEP
	OpsAddr string `yaml:"ops_addr"` // /healthz, /readyz, /metrics (open, no auth); "" = served on addr
	TLSCert string `yaml:"tls_cert"` // PEM certificate; with tls_key enables HTTPS
	TLSKey  string `yaml:"tls_key"`  // PEM private key
	Pprof   bool   `yaml:"pprof"`    // serve /debug/pprof/ with the ops endpoints (profiling; keep off in production)
	// TrustedProxies lists the reverse proxies (CIDRs or addresses) whose
	// X-Forwarded-For is believed for login rate limits and audit entries;
	// empty = the TCP peer is always the client. Env: comma-separated.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ForwardedHeader is the header those proxies write the client chain to:
	// X-Forwarded-For or Forwarded (RFC 7239). Only that one is read.
	ForwardedHeader string `yaml:"forwarded_header"`
}

// MQTTConfig is the "mqtt" section.
type MQTTConfig struct {
	URL             string        `yaml:"url"`               // external broker (tcp://, ssl://); "" = embedded broker
	EmbeddedAddr    string        `yaml:"embedded_addr"`     // embedded broker TCP listener
	EmbeddedTLSAddr string        `yaml:"embedded_tls_addr"` // embedded broker TLS listener (needs tls_cert/tls_key); "" = off
	TLSCert         string        `yaml:"tls_cert"`          // embedded broker TLS certificate
	TLSKey          string        `yaml:"tls_key"`           // embedded broker TLS key
	TLSCA           string        `yaml:"tls_ca"`            // CA for client certificates (device CN = device id) and for ssl:// URLs
	ClientID        string        `yaml:"client_id"`         // fixed client id for the persistent session
	Username        string        `yaml:"username"`          // gateway's own broker user (external broker)
	Password        string        `yaml:"password"`
	SharedGroup     string        `yaml:"shared_group"` // "" = plain subscription; else $share/<group>/fire/#
	QoS             byte          `yaml:"qos"`          // subscription QoS (1)
	KeepAlive       time.Duration `yaml:"keep_alive"`
	ConnectRetry    time.Duration `yaml:"connect_retry"` // max backoff between reconnects
}

// Default returns the configuration that `make run` works with.
func Default() Config {
	return Config{
		DataDir:  "var/lookout",
		LogLevel: "info",
		HTTP:     HTTPConfig{Addr: "127.0.0.1:8080", OpsAddr: "", ForwardedHeader: auth.HeaderXForwardedFor},
		MQTT: MQTTConfig{EmbeddedAddr: "127.0.0.1:1883", ClientID: "lookout-gateway", QoS: 1,
			KeepAlive: 30 * time.Second, ConnectRetry: 10 * time.Second},
		Ingest:   ingest.DefaultConfig(),
		Spool:    spool.DefaultConfig(),
		Influx:   tsdb.DefaultConfig(),
		Registry: registry.DefaultConfig(),
		Geo:      defaultGeo(),
		Alerting: defaultAlerting(),
		Hotspot:  hotspot.DefaultConfig(),
		Video:    video.DefaultConfig(),
		Auth:     auth.DefaultConfig(),
	}
}

// defaultAlerting calls the demo county's top zone (seeds/zones.geojson) for
// alerts outside every zone; production configs name their own.
func defaultAlerting() alerting.Config {
	a := alerting.DefaultConfig()
	a.Escalation.FallbackZone = "qs"
	return a
}

// defaultGeo loads the demo county shipped in seeds/, so `make run` has forests,
// zones and masks; production configs point these at their own layers.
func defaultGeo() geo.Config {
	g := geo.DefaultConfig()
	g.Forests.Path = "seeds/forests.geojson"
	g.Zones.Path = "seeds/zones.geojson"
	g.Masks.Path = "seeds/masks.geojson"
	return g
}

// Validate checks every section; the error names the key (e.g. "influx.batch_size: …").
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("data_dir: must be set")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return errors.New("log_level: must be debug, info, warn or error")
	}
	if c.HTTP.Addr == "" {
		return errors.New("http.addr: must be set")
	}
	if (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == "") {
		return errors.New("http.tls_cert: tls_cert and tls_key go together")
	}
	tp, err := auth.ParseTrustedProxies(c.HTTP.TrustedProxies)
	if err != nil {
		return fmt.Errorf("http.trusted_proxies: %w", err)
	}
	if _, err := tp.WithHeader(c.HTTP.ForwardedHeader); err != nil {
		return fmt.Errorf("http.forwarded_header: %w", err)
	}
	if c.MQTT.URL == "" && c.MQTT.EmbeddedAddr == "" {
		return errors.New("mqtt.embedded_addr: must be set when mqtt.url is empty")
	}
	if c.MQTT.URL != "" && !hasAnyPrefix(c.MQTT.URL, "tcp://", "ssl://", "tls://", "mqtt://", "mqtts://", "ws://", "wss://") {
		return errors.New("mqtt.url: must start with tcp://, ssl://, mqtt://, mqtts://, ws:// or wss://")
	}
	if c.MQTT.EmbeddedTLSAddr != "" && (c.MQTT.TLSCert == "" || c.MQTT.TLSKey == "") {
		return errors.New("mqtt.embedded_tls_addr: needs mqtt.tls_cert and mqtt.tls_key")
	}
	if c.MQTT.ClientID == "" {
		return errors.New("mqtt.client_id: must be set")
	}
	if c.MQTT.QoS > 2 {
		return errors.New("mqtt.qos: must be 0, 1 or 2")
	}
	if c.MQTT.KeepAlive < time.Second {
		return errors.New("mqtt.keep_alive: must be >= 1s")
	}
	if c.MQTT.ConnectRetry < time.Second {
		return errors.New("mqtt.connect_retry: must be >= 1s")
	}
	if strings.ContainsAny(c.MQTT.SharedGroup, "/+#\x00") {
		return errors.New("mqtt.shared_group: one topic level: no '/', '+' or '#'")
	}
	// NaN passes every "x < 0" check below it and then changes behaviour
	// quietly (NaN thresholds compare false); no setting means infinity.
	if p := nonFinite(reflect.ValueOf(c).Elem(), ""); p != "" {
		return fmt.Errorf("%s: must be a finite number", p)
	}
	sections := []struct {
		name string
		v    interface{ Validate() error }
	}{
		{"ingest", c.Ingest}, {"spool", c.Spool}, {"influx", c.Influx}, {"registry", c.Registry},
		{"geo", c.Geo}, {"alerting", c.Alerting}, {"hotspot", c.Hotspot}, {"video", c.Video}, {"auth", c.Auth},
	}
	for _, s := range sections {
		if err := s.v.Validate(); err != nil {
			return fmt.Errorf("%s.%w", s.name, err)
		}
	}
	return nil
}

// nonFinite returns the YAML path of the first NaN or infinite float in v
// (structs, lists and maps included), or "".
func nonFinite(v reflect.Value, path string) string {
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			return path
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			p := path
			switch {
			case name == "-":
				continue
			case opts == "inline":
			case name == "":
				p = joinPath(path, strings.ToLower(f.Name))
			default:
				p = joinPath(path, name)
			}
			if bad := nonFinite(v.Field(i), p); bad != "" {
				return bad
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			if bad := nonFinite(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); bad != "" {
				return bad
			}
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			if bad := nonFinite(it.Value(), joinPath(path, fmt.Sprint(it.Key()))); bad != "" {
				return bad
			}
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return nonFinite(v.Elem(), path)
		}
	}
	return ""
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// SpoolDir is the effective spool directory.
func (c *Config) SpoolDir() string {
	if c.Spool.Dir != "" {
		return c.Spool.Dir
	}
	return filepath.Join(c.DataDir, "spool")
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Load builds the configuration: defaults, then file (if path is non-empty; a
// missing file is an error only when explicit is true), then env, then sets
// ("path=value" pairs from flags), then Validate.
func Load(path string, explicit bool, env []string, sets []string) (Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			dec := yaml.NewDecoder(bytes.NewReader(b))
			dec.KnownFields(true)
			if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // an empty file is fine
				return c, fmt.Errorf("config %s: %w", path, err)
			}
			if p := flagOnlySet(&c); p != "" {
				return c, fmt.Errorf("config %s: %s: only a command-line flag can set this", path, p)
			}
		case os.IsNotExist(err) && !explicit:
		default:
			return c, fmt.Errorf("config: %w", err)
		}
	}
	if err := ApplyEnv(&c, env); err != nil {
		return c, err
	}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return c, fmt.Errorf("--set %q: want path=value", s)
		}
		if err := Set(&c, k, v); err != nil {
			return c, err
		}
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// leaf is one settable field with its YAML path.
type leaf struct {
	path  string
	alias string
	v     reflect.Value
}

func leaves(v reflect.Value, prefix string, out *[]leaf) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		fv := v.Field(i)
		if opts == "inline" {
			leaves(fv, prefix, out)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
			leaves(fv, p, out)
			continue
		}
		*out = append(*out, leaf{path: p, alias: f.Tag.Get("env"), v: fv})
	}
}

// flagOnly, as a field's env tag, keeps a setting out of the environment and
// the file: only a command-line flag (--set, or a dedicated flag) sets it.
// auth.insecure_dev is one: a stray variable or a copied file must not turn
// authentication off.
const flagOnly = "-"

// flagOnlySet returns the path of a flag-only setting that c holds at other
// than its default, or "".
func flagOnlySet(c *Config) string {
	d := Default()
	var ls, ds []leaf
	leaves(reflect.ValueOf(c).Elem(), "", &ls)
	leaves(reflect.ValueOf(&d).Elem(), "", &ds)
	for i, l := range ls {
		if l.alias == flagOnly && !reflect.DeepEqual(l.v.Interface(), ds[i].v.Interface()) {
			return l.path
		}
	}
	return ""
}

// EnvName is the environment variable for a YAML path.
func EnvName(path string) string {
	return "LOOKOUT_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(path))
}

// Keys lists every settable YAML path with its env names, for docs and `gateway config keys`.
func Keys() []string {
	c := Default()
	var ls []leaf
	leaves(reflect.ValueOf(&c).Elem(), "", &ls)
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		s := l.path + "\t" + EnvName(l.path)
		switch l.alias {
		case "":
		case flagOnly:
			s = l.path + "\t(command-line flag only)"
		default:
			s += "," + l.alias
		}
		out = append(out, s)
	}
	return out
}

// ApplyEnv applies LOOKOUT_* variables from env ("KEY=value" pairs). An alias wins
// over the derived name when both are set.
func ApplyEnv(c *Config, env []string) error {
	m := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "LOOKOUT_") {
			m[k] = v
		}
	}
	var ls []leaf
	leaves(reflect.ValueOf(c).Elem(), "", &ls)
	for _, l := range ls {
		if l.alias == flagOnly {
			// Refused unless it says what is already in force (a hardened
			// deployment may spell out LOOKOUT_AUTH_INSECURE_DEV=false).
			if v, ok := m[EnvName(l.path)]; ok {
				want := reflect.New(l.v.Type()).Elem()
				if err := setValue(want, v); err != nil || !reflect.DeepEqual(want.Interface(), l.v.Interface()) {
					return fmt.Errorf("config: %s (from %s): only a command-line flag can set this", l.path, EnvName(l.path))
				}
			}
			continue
		}
		for _, name := range []string{EnvName(l.path), l.alias} {
			if name == "" {
				continue
			}
			if v, ok := m[name]; ok {
				if err := setValue(l.v, v); err != nil {
					return fmt.Errorf("config: %s (from %s): %w", l.path, name, err)
				}
			}
		}
	}
	return nil
}

// Set assigns one YAML path from a string.
func Set(c *Config, path, value string) error {
	var ls []leaf
	leaves(reflect.ValueOf(c).Elem(), "", &ls)
	for _, l := range ls {
		if l.path == path {
			if err := setValue(l.v, value); err != nil {
				return fmt.Errorf("config: %s: %w", path, err)
			}
			return nil
		}
	}
	return fmt.Errorf("config: %s: no such key", path)
}

func setValue(v reflect.Value, s string) error {
	if v.Type() == reflect.TypeOf(time.Duration(0)) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetFloat(f)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("only lists of strings can be set from env/flags; use the YAML file")
		}
		v.Set(reflect.ValueOf(web.SplitList(s)))
	default:
		return fmt.Errorf("cannot be set from env/flags; use the YAML file")
	}
	return nil
}
