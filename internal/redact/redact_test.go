package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for raw, want := range map[string]string{
		"tcp://lookout-gw:S3cretPW@127.0.0.1:1883": "tcp://lookout-gw:xxxxx@127.0.0.1:1883",
		"http://127.0.0.1:8086":                    "http://127.0.0.1:8086",
		"http://u:p@[::1]:8086/x?y=1":              "http://u:xxxxx@[::1]:8086/x?y=1",
		"ssl://user@broker:8883":                   "ssl://user@broker:8883",
		"tcp://%zz:S3cretPW@x":                     "(unparsable url)",
	} {
		if got := URL(raw); got != want || strings.Contains(got, "S3cret") {
			t.Errorf("URL(%q) = %q, want %q", raw, got, want)
		}
	}
}
