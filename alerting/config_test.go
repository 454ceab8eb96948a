package alerting

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
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
		{"escalation.level_deadlines.province", func(c *Config) {
			c.Escalation.LevelDeadlines = map[string]map[string]time.Duration{"province": {"critical": time.Minute}}
		}},
		{"escalation.level_deadlines.grid.urgent", func(c *Config) {
			c.Escalation.LevelDeadlines = map[string]map[string]time.Duration{"grid": {"critical": time.Minute, "urgent": time.Minute}}
		}},
		{"escalation.level_deadlines.town.major", func(c *Config) {
			c.Escalation.LevelDeadlines = map[string]map[string]time.Duration{"town": {"major": 0}}
		}},
		{"escalation.level_deadlines.county.critical", func(c *Config) {
			c.Escalation.LevelDeadlines = map[string]map[string]time.Duration{"county": {"critical": -time.Minute}}
		}},
		{"escalation.level_deadlines.village", func(c *Config) { // "Village" sorts first and takes the level
			c.Escalation.LevelDeadlines = map[string]map[string]time.Duration{"Village": {"major": time.Minute}, "village": {"major": time.Minute}}
		}},
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

// level_deadlines is a YAML map of maps; durations parse as in the rest of the file.
func TestLevelDeadlinesFromYAML(t *testing.T) {
	const doc = `
escalation:
  level_deadlines:
    grid: {critical: 3m, major: 15m}
    county:
      critical: 10m
`
	c := DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Escalation.levelDeadlines()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[Severity]time.Duration{
		"grid":   {Critical: 3 * time.Minute, Major: 15 * time.Minute},
		"county": {Critical: 10 * time.Minute},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("level deadlines = %v, want %v", got, want)
	}
	if c.Escalation.CriticalDeadline != 5*time.Minute {
		t.Errorf("critical_deadline changed to %v", c.Escalation.CriticalDeadline)
	}
}
