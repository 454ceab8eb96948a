package auth

import (
	"errors"
	"fmt"
	"time"
)

// Config holds the auth settings (YAML section "auth"). Env overrides are
// derived from the path (LOOKOUT_AUTH_<KEY>).
type Config struct {
	// InsecureDev turns every check off: HTTP routes are open and the embedded
	// broker accepts anyone. Only for local experiments; set by `serve
	// --insecure-dev` (or `--set`) only, never from the file or the environment.
	InsecureDev bool `yaml:"insecure_dev" env:"-"`

	SessionTTL time.Duration `yaml:"session_ttl"` // lifetime of a login session cookie
	TokenTTL   time.Duration `yaml:"token_ttl"`   // default lifetime of an API token (0 = no expiry)
	// Login throttling: attempts per client IP per minute, and failed attempts
	// per user name before that name is locked for login_lockout.
	LoginPerIPPerMinute  int           `yaml:"login_per_ip_per_minute"`
	LoginFailuresPerUser int           `yaml:"login_failures_per_user"`
	LoginLockout         time.Duration `yaml:"login_lockout"`
	// BootstrapAdmin is created with a random password (printed once) when no
	// user exists yet; "" = create nobody.
	BootstrapAdmin string `yaml:"bootstrap_admin"`

	// DeviceHashIterations is the PBKDF2-SHA512 iteration count for new MQTT
	// passwords (Mosquitto's $7$ format; mosquitto_passwd uses 101).
	DeviceHashIterations int `yaml:"device_hash_iterations"`
	// Verified MQTT credentials are remembered (as a keyed digest, never the
	// password) so thousands of reconnects do not each pay for PBKDF2.
	CredentialCacheTTL  time.Duration `yaml:"credential_cache_ttl"`
	CredentialCacheSize int           `yaml:"credential_cache_size"`
	// SimCredentials, when set, issues MQTT credentials at startup to every
	// registered device that has none and writes "device id: password" to this
	// YAML file (relative to data_dir, mode 0600) for firmware-sim. Demo aid:
	// set it to "" in production and issue credentials through the API.
	// Next to it the gateway writes sim-camera-tokens.yaml ("camera id: WHIP
	// camera token", owned by bootstrap_admin) for firmware-sim --video.
	SimCredentials string `yaml:"sim_credentials"`

	// Embedded broker edge limits.
	MQTTConnectTimeout     time.Duration `yaml:"mqtt_connect_timeout"`        // CONNECT must arrive within this
	MQTTConnPerIPPerMinute int           `yaml:"mqtt_conn_per_ip_per_minute"` // new connections per source IP
	MQTTMaxPacketSize      int           `yaml:"mqtt_max_packet_size"`        // bytes, whole packet
	MQTTReceiveMaximum     int           `yaml:"mqtt_receive_maximum"`        // QoS>0 publishes in flight per client
	// RefusalLogInterval rate-limits "connection/publish refused" log lines per device.
	RefusalLogInterval time.Duration `yaml:"refusal_log_interval"`
}

// DefaultConfig returns the settings that make `make run` work with auth on.
func DefaultConfig() Config {
	return Config{
		SessionTTL:             12 * time.Hour,
		TokenTTL:               90 * 24 * time.Hour,
		LoginPerIPPerMinute:    20,
		LoginFailuresPerUser:   5,
		LoginLockout:           15 * time.Minute,
		BootstrapAdmin:         "admin",
		DeviceHashIterations:   DefaultPBKDF2Iterations,
		CredentialCacheTTL:     15 * time.Minute,
		CredentialCacheSize:    100000,
		SimCredentials:         "sim-credentials.yaml",
		MQTTConnectTimeout:     10 * time.Second,
		MQTTConnPerIPPerMinute: 600,
		MQTTMaxPacketSize:      512 << 10,
		MQTTReceiveMaximum:     64,
		RefusalLogInterval:     time.Minute,
	}
}

// Validate reports the first bad setting, naming its key relative to the section.
func (c Config) Validate() error {
	switch {
	case c.SessionTTL < time.Minute:
		return errors.New("session_ttl: must be >= 1m")
	case c.TokenTTL < 0:
		return errors.New("token_ttl: must be >= 0")
	case c.LoginPerIPPerMinute < 1:
		return errors.New("login_per_ip_per_minute: must be >= 1")
	case c.LoginFailuresPerUser < 1:
		return errors.New("login_failures_per_user: must be >= 1")
	case c.LoginLockout < time.Second:
		return errors.New("login_lockout: must be >= 1s")
	case c.BootstrapAdmin != "" && !ValidUsername(c.BootstrapAdmin):
		return fmt.Errorf("bootstrap_admin: %q is not a valid user name", c.BootstrapAdmin)
	case c.DeviceHashIterations < 1 || c.DeviceHashIterations > 10_000_000:
		return errors.New("device_hash_iterations: must be 1..10000000")
	case c.CredentialCacheTTL < 0:
		return errors.New("credential_cache_ttl: must be >= 0")
	case c.CredentialCacheSize < 0:
		return errors.New("credential_cache_size: must be >= 0")
	case c.MQTTConnectTimeout < 100*time.Millisecond:
		return errors.New("mqtt_connect_timeout: must be >= 100ms")
	case c.MQTTConnPerIPPerMinute < 1:
		return errors.New("mqtt_conn_per_ip_per_minute: must be >= 1")
	case c.MQTTMaxPacketSize < 1024 || c.MQTTMaxPacketSize > 256<<20:
		return errors.New("mqtt_max_packet_size: must be 1KiB..256MiB")
	case c.MQTTReceiveMaximum < 1 || c.MQTTReceiveMaximum > 65535:
		return errors.New("mqtt_receive_maximum: must be 1..65535")
	case c.RefusalLogInterval < 0:
		return errors.New("refusal_log_interval: must be >= 0")
	}
	return nil
}
