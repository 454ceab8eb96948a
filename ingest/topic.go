package ingest

import "strings"

// MaxDeviceIDLen bounds a device id. Ids become topic levels, InfluxDB tags and
// file names, so they are short and drawn from a conservative alphabet.
const MaxDeviceIDLen = 64

// Kinds says which kinds class c may publish. Keeping this table next to
// ParseTopic means an impossible pair (a smoke alarm "detection") is refused at
// the topic, before anyone looks at the payload.
func (c Class) Kinds() []Kind {
	switch c {
	case ClassSmoke, ClassStation, ClassElec:
		return []Kind{KindTelemetry, KindEvent, KindHeartbeat}
	case ClassCamera:
		return []Kind{KindDetection, KindEvent, KindHeartbeat}
	}
	return nil
}

// Sends reports whether a device of class c may publish messages of kind k.
func (c Class) Sends(k Kind) bool {
	for _, x := range c.Kinds() {
		if x == k {
			return true
		}
	}
	return false
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	switch k {
	case KindTelemetry, KindEvent, KindHeartbeat, KindDetection:
		return true
	}
	return false
}

// ValidDeviceID reports whether id is an acceptable device id:
// ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$. The alphabet excludes the MQTT wildcards
// and separators (+ # /), spaces and anything that would need escaping in line
// protocol or a file name.
func ValidDeviceID(id string) bool {
	if len(id) == 0 || len(id) > MaxDeviceIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ParseTopic splits prefix/{class}/{device_id}/{kind} and checks each level:
// a known class, a device id from the allowed alphabet, and a kind that class
// may send. Errors are *Reject with ReasonBadTopic and Field naming the level
// ("prefix", "class", "device_id", "kind"). The device id is a substring of
// topic (no allocation).
func ParseTopic(prefix, topic string) (Class, string, Kind, error) {
	rest := topic
	if prefix != "" {
		if len(topic) <= len(prefix) || topic[len(prefix)] != '/' || topic[:len(prefix)] != prefix {
			return "", "", "", Rejectf(ReasonBadTopic, "prefix", "topic %s does not start with %q", quoteTrunc(topic), prefix+"/")
		}
		rest = topic[len(prefix)+1:]
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return "", "", "", Rejectf(ReasonBadTopic, "kind", "topic %s: want %s/{class}/{device_id}/{kind}", quoteTrunc(topic), prefix)
	}
	class := Class(rest[:i])
	rest = rest[i+1:]
	j := strings.IndexByte(rest, '/')
	if j < 0 {
		return "", "", "", Rejectf(ReasonBadTopic, "kind", "topic %s: want %s/{class}/{device_id}/{kind}", quoteTrunc(topic), prefix)
	}
	dev := rest[:j]
	kind := Kind(rest[j+1:])
	if strings.IndexByte(string(kind), '/') >= 0 {
		return "", "", "", Rejectf(ReasonBadTopic, "kind", "topic %s has more than 4 levels", quoteTrunc(topic))
	}
	if !class.Valid() {
		return "", "", "", Rejectf(ReasonBadTopic, "class", "unknown class %s (want smoke, station, elec or camera)", quoteTrunc(string(class)))
	}
	if !ValidDeviceID(dev) {
		return "", "", "", Rejectf(ReasonBadTopic, "device_id", "device id %s: want 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit", quoteTrunc(dev))
	}
	if !kind.Valid() {
		return "", "", "", Rejectf(ReasonBadTopic, "kind", "unknown kind %s (want telemetry, event, heartbeat or detection)", quoteTrunc(string(kind)))
	}
	if !class.Sends(kind) {
		return "", "", "", Rejectf(ReasonBadTopic, "kind", "class %s does not send %s (it sends %v)", class, kind, class.Kinds())
	}
	return class, dev, kind, nil
}
