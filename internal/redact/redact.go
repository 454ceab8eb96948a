// Package redact masks secrets in values that are logged or served: a broker
// or database URL may carry a password in its user info (paho and the InfluxDB
// client both accept that form), and /readyz and the logs must not repeat it.
package redact

import "net/url"

// URL is raw with any password replaced by "xxxxx" (url.URL.Redacted), or
// "(unparsable url)" when raw does not parse, so nothing of it leaks either.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}
