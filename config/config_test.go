package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lookout.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsValidate(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

// File, then env, then --set: each later source wins.
func TestLoadPrecedence(t *testing.T) {
	p := writeFile(t, "http:\n  addr: 127.0.0.1:9000\ninflux:\n  batch_size: 100\n  flush_interval: 2s\nregistry:\n  unknown_devices: register\n")
	env := []string{"LOOKOUT_INFLUX_BATCH_SIZE=200", "LOOKOUT_UNKNOWN_DEVICES=reject", "LOOKOUT_MQTT_URL=tcp://127.0.0.1:1884", "PATH=/bin"}
	c, err := Load(p, true, env, []string{"influx.batch_size=300"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != "127.0.0.1:9000" {
		t.Errorf("http.addr = %q (file)", c.HTTP.Addr)
	}
	if c.Influx.FlushInterval != 2*time.Second {
		t.Errorf("influx.flush_interval = %v (file)", c.Influx.FlushInterval)
	}
	if c.Influx.BatchSize != 300 {
		t.Errorf("influx.batch_size = %d, want the flag's 300", c.Influx.BatchSize)
	}
	if c.Registry.UnknownDevices != "reject" {
		t.Errorf("registry.unknown_devices = %q, want the alias env's reject", c.Registry.UnknownDevices)
	}
	if c.MQTT.URL != "tcp://127.0.0.1:1884" {
		t.Errorf("mqtt.url = %q (env)", c.MQTT.URL)
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name, file string
		env, sets  []string
		want       string
	}{
		{"unknown yaml key", "influx:\n  batchsize: 3\n", nil, nil, "batchsize"},
		{"bad batch size", "", []string{"LOOKOUT_INFLUX_BATCH_SIZE=0"}, nil, "influx.batch_size"},
		{"env not a number", "", []string{"LOOKOUT_SPOOL_MAX_BYTES=lots"}, nil, "spool.max_bytes"},
		{"bad policy", "", []string{"LOOKOUT_UNKNOWN_DEVICES=maybe"}, nil, "registry.unknown_devices"},
		{"bad mqtt url", "", nil, []string{"mqtt.url=http://x"}, "mqtt.url"},
		{"no such flag key", "", nil, []string{"nope.key=1"}, "nope.key"},
		{"bad duration", "", nil, []string{"influx.timeout=soon"}, "influx.timeout"},
		{"tls half", "", nil, []string{"http.tls_cert=/x.pem"}, "http.tls_cert"},
		{"bad proxy cidr (env)", "", []string{"LOOKOUT_HTTP_TRUSTED_PROXIES=10.0.0.0/8,10.0.0.0/33"}, nil, "http.trusted_proxies"},
		{"bad proxy cidr (file)", "http:\n  trusted_proxies: [proxy.internal]\n", nil, nil, "http.trusted_proxies"},
		{"proxy trusting everyone", "", nil, []string{"http.trusted_proxies=0.0.0.0/0"}, "http.trusted_proxies"},
		{"NaN from env", "", []string{"LOOKOUT_ALERTING_CAMERA_MIN_SCORE=NaN"}, nil, "alerting.camera.min_score: must be a finite number"},
		{"NaN from yaml", "hotspot:\n  near_forest_m: .nan\n", nil, nil, "hotspot.near_forest_m: must be a finite number"},
		{"infinity from a flag", "", nil, []string{"geo.search_radius_m=+Inf"}, "geo.search_radius_m"},
		{"reconnect without backoff", "", []string{"LOOKOUT_MQTT_CONNECT_RETRY=0s"}, nil, "mqtt.connect_retry"},
		{"shared group of two levels", "", nil, []string{"mqtt.shared_group=a/b"}, "mqtt.shared_group"},
		{"shared group wildcard", "", nil, []string{"mqtt.shared_group=g#"}, "mqtt.shared_group"},
		{"topic prefix of two levels", "", []string{"LOOKOUT_INGEST_TOPIC_PREFIX=site/fire"}, nil, "ingest.topic_prefix"},
		{"topic prefix wildcard", "", nil, []string{"ingest.topic_prefix=+"}, "ingest.topic_prefix"},
		{"auth off from env", "", []string{"LOOKOUT_AUTH_INSECURE_DEV=true"}, nil, "auth.insecure_dev (from LOOKOUT_AUTH_INSECURE_DEV): only a command-line flag"},
		{"auth off from the file", "auth:\n  insecure_dev: true\n", nil, nil, "auth.insecure_dev: only a command-line flag"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.file)
			_, err := Load(p, true, tc.env, tc.sets)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %q", err, tc.want)
			}
		})
	}
}

// http.trusted_proxies defaults to empty (trust nobody) and takes a YAML list
// or a comma-separated env value.
func TestTrustedProxies(t *testing.T) {
	if d := Default(); len(d.HTTP.TrustedProxies) != 0 {
		t.Fatalf("default trusted_proxies = %q, want empty", d.HTTP.TrustedProxies)
	}
	c, err := Load(writeFile(t, "http:\n  trusted_proxies: [10.0.0.0/8, \"2001:db8::1\"]\n"), true, nil, nil)
	if err != nil || strings.Join(c.HTTP.TrustedProxies, " ") != "10.0.0.0/8 2001:db8::1" {
		t.Fatalf("file: %q %v", c.HTTP.TrustedProxies, err)
	}
	c, err = Load("", false, []string{"LOOKOUT_HTTP_TRUSTED_PROXIES=192.0.2.10, 10.1.0.0/16"}, nil)
	if err != nil || strings.Join(c.HTTP.TrustedProxies, " ") != "192.0.2.10 10.1.0.0/16" {
		t.Fatalf("env: %q %v", c.HTTP.TrustedProxies, err)
	}
}

// http.forwarded_header defaults to X-Forwarded-For, takes Forwarded, and
// refuses any other header by name.
func TestForwardedHeader(t *testing.T) {
	if d := Default(); d.HTTP.ForwardedHeader != "X-Forwarded-For" {
		t.Fatalf("default forwarded_header = %q", d.HTTP.ForwardedHeader)
	}
	c, err := Load("", false, []string{"LOOKOUT_HTTP_FORWARDED_HEADER=Forwarded"}, nil)
	if err != nil || c.HTTP.ForwardedHeader != "Forwarded" {
		t.Fatalf("env: %q %v", c.HTTP.ForwardedHeader, err)
	}
	_, err = Load(writeFile(t, "http:\n  forwarded_header: X-Real-IP\n"), true, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "http.forwarded_header") || !strings.Contains(err.Error(), "X-Real-IP") {
		t.Fatalf("X-Real-IP: err = %v, want one naming the key and the value", err)
	}
}

func TestMissingFileOnlyAnErrorWhenExplicit(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.yaml")
	if _, err := Load(missing, false, nil, nil); err != nil {
		t.Errorf("implicit missing file: %v", err)
	}
	if _, err := Load(missing, true, nil, nil); err == nil {
		t.Error("explicit missing file accepted")
	}
}

func TestEmptyFileIsFine(t *testing.T) {
	if _, err := Load(writeFile(t, ""), true, nil, nil); err != nil {
		t.Fatal(err)
	}
}

// auth.insecure_dev is set by a flag only (gateway serve --insecure-dev, or
// --set); the file and the environment cannot turn authentication off.
func TestInsecureDevIsFlagOnly(t *testing.T) {
	c, err := Load("", false, nil, []string{"auth.insecure_dev=true"})
	if err != nil || !c.Auth.InsecureDev {
		t.Fatalf("--set auth.insecure_dev=true: %v %v", c.Auth.InsecureDev, err)
	}
	if c, err := Load(writeFile(t, "auth:\n  insecure_dev: false\n"), true, nil, nil); err != nil || c.Auth.InsecureDev {
		t.Fatalf("the default spelled out in the file: %v %v", c.Auth.InsecureDev, err)
	}
	if c, err := Load("", false, []string{"LOOKOUT_AUTH_INSECURE_DEV=false"}, nil); err != nil || c.Auth.InsecureDev {
		t.Fatalf("the default spelled out in the environment: %v %v", c.Auth.InsecureDev, err)
	}
	for _, k := range Keys() {
		if strings.HasPrefix(k, "auth.insecure_dev\t") && strings.Contains(k, "LOOKOUT_") {
			t.Errorf("Keys() offers an env name for a flag-only key: %q", k)
		}
	}
}
