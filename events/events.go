// Package events is the one seam through which domain packages announce what
// happened (an alert raised, a device went offline, a stream came up, a hotspot
// report changed) without knowing who listens: the SSE hub, webhooks, MQTT.
package events

import "time"

// Event is one announcement. Type is dotted and stable ("alert.raised",
// "device.offline", "stream.up", "hotspot.report"), because clients filter on it.
type Event struct {
	ID   int64     `json:"id"` // assigned by the hub; monotonic, used for SSE Last-Event-ID
	Type string    `json:"type"`
	At   time.Time `json:"at"`
	Data any       `json:"data"`
}

// Publisher accepts events. Implementations must not block the caller for long:
// they persist or queue and return.
type Publisher interface {
	Publish(typ string, data any)
}

// Discard is a Publisher that drops everything; for tests and tools.
type Discard struct{}

// Publish does nothing.
func (Discard) Publish(string, any) {}

// Func adapts a function to Publisher.
type Func func(typ string, data any)

// Publish calls f.
func (f Func) Publish(typ string, data any) { f(typ, data) }
