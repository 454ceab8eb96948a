package alerting

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := []struct {
		key string
		mod func(*Config)
	}{
		{"queue_size", func(c *Config) { c.QueueSize = 0 }},
		{"elec.residual_ma", func(c *Config) { c.Elec.ResidualMA = 0 }},
		{"camera.min_score", func(c *Config) { c.Camera.MinScore = 1.5 }},
		{"camera.window", func(c *Config) { c.Camera.Window = 0 }},
		{"health.offline_severity", func(c *Config) { c.Health.OfflineSeverity = "loud" }},
		{"escalation.min_severity", func(c *Config) { c.Escalation.MinSeverity = "" }},
		{"fire_danger.timezone", func(c *Config) { c.FireDanger.Timezone = "Mars/Olympus" }},
		{"fire_danger.breakpoints", func(c *Config) { c.FireDanger.Breakpoints = []float64{5, 10, 10, 30} }},
		{"fire_danger.breakpoints", func(c *Config) { c.FireDanger.Breakpoints = []float64{5, 10} }},
		{"fire_danger.alert_level", func(c *Config) { c.FireDanger.AlertLevel = 6 }},
		{"notify.cap_scope", func(c *Config) { c.Notify.CAPScope = "Everyone" }},
		{"webhook_retry.max_backoff", func(c *Config) { c.Retry.MaxBackoff = c.Retry.BaseBackoff / 2 }},
		{"webhooks[0].url", func(c *Config) { c.Webhooks = []WebhookConfig{{Name: "a", URL: "ftp://x", Secret: "s"}} }},
		{"webhooks[0].secret", func(c *Config) { c.Webhooks = []WebhookConfig{{Name: "a", URL: "http://127.0.0.1/x"}} }},
		{"webhooks[1].name", func(c *Config) {
			c.Webhooks = []WebhookConfig{{Name: "a", URL: "http://h/x", Secret: "s"}, {Name: "a", URL: "http://h/y", Secret: "s"}}
		}},
	}
	for _, tc := range tests {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.key+":") {
			t.Errorf("%s: err = %v", tc.key, err)
		}
	}
}
