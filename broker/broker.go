// Package broker runs the embedded MQTT broker (mochi-mqtt) that field devices
// connect to when no external broker is configured, and hands every device
// publish to the ingest pipeline in-process — synchronously, before the broker
// sends PUBACK, so a QoS 1 message is acknowledged only once its reading is
// durable or dead-lettered.
package broker

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/errs"
)

// Handler consumes one device publish. It returns nil once the message is durable
// or dead-lettered (the broker then acknowledges it); any error means "not
// handled": the broker withholds the acknowledgement and (QoS 1/2, and unless
// the error wraps errs.ErrTooLarge) closes the connection, so the device
// resends once it has reconnected. A handler that
// may block (a full spool) must give up when ctx ends: when the broker closes
// the publishing client's connection (a session takeover: the device, waiting
// for a PINGRESP its blocked read loop cannot send, reconnected) or stops.
type Handler func(ctx context.Context, topic string, payload []byte) error

// Options configure the embedded broker.
type Options struct {
	Addr      string      // plain TCP listener, e.g. 127.0.0.1:1883; "" = none
	TLSAddr   string      // TLS listener, e.g. :8883; "" = none
	TLSConfig *tls.Config // required with TLSAddr
	Prefix    string      // device topic prefix ("fire"); only topics under it reach the Handler
	// Reserved second-level topics under Prefix that the gateway itself publishes
	// (dead letters, alerts) and that must not be consumed as readings.
	Reserved []string
	Hooks    []mqtt.Hook // extra hooks (authentication, ACL, packet guard), added before the ingest hook
	Logger   *slog.Logger
	// MaxPacketSize caps any MQTT packet (0 = broker default, unlimited).
	MaxPacketSize uint32
	// ReceiveMaximum caps QoS>0 messages in flight per client.
	ReceiveMaximum uint16
	// Limits bound each connection at the edge (CONNECT deadline, per-IP rate);
	// every listener runs behind the packet guard (guard.go) regardless.
	Limits Limits
	// Registerer receives the guard's metrics; nil = not exported.
	Registerer prometheus.Registerer
}

// Broker is the embedded broker.
type Broker struct {
	srv          *mqtt.Server
	opts         Options
	guardMetrics *guardMetrics
	intake       context.Context // parent of every Handler context; ended by Close
	stopIntake   context.CancelFunc
	closeOnce    sync.Once // mochi's Close panics when called twice
	closeErr     error
}

// New builds a broker; Start opens its listeners.
func New(opts Options, h Handler) (*Broker, error) {
	if h == nil {
		return nil, errors.New("broker: nil handler")
	}
	if opts.Addr == "" && opts.TLSAddr == "" {
		return nil, errors.New("broker: no listener address")
	}
	if opts.TLSAddr != "" && opts.TLSConfig == nil {
		return nil, errors.New("broker: tls listener without tls config")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	caps := mqtt.NewDefaultServerCapabilities()
	if opts.MaxPacketSize > 0 {
		caps.MaximumPacketSize = opts.MaxPacketSize
	}
	if opts.ReceiveMaximum > 0 {
		caps.ReceiveMaximum = opts.ReceiveMaximum
	}
	srv := mqtt.New(&mqtt.Options{
		InlineClient: true,
		Capabilities: caps,
		Logger:       slog.New(packetLogFilter{opts.Logger.Handler()}).With("component", "mqtt-broker"),
	})
	b := &Broker{srv: srv, opts: opts}
	b.intake, b.stopIntake = context.WithCancel(context.Background())
	gm, err := newGuardMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	b.guardMetrics = gm
	for _, hk := range opts.Hooks {
		if err := srv.AddHook(hk, nil); err != nil {
			return nil, fmt.Errorf("broker: add hook %s: %w", hk.ID(), err)
		}
	}
	if err := srv.AddHook(new(flowHook), nil); err != nil {
		return nil, fmt.Errorf("broker: add flow hook: %w", err)
	}
	if err := srv.AddHook(&ingestHook{prefix: opts.Prefix + "/", reserved: opts.Reserved, handle: h, log: opts.Logger,
		srv: srv, intake: b.intake}, nil); err != nil {
		return nil, fmt.Errorf("broker: add ingest hook: %w", err)
	}
	if opts.Addr != "" {
		if err := srv.AddListener(newGuardedListener("tcp", opts.Addr, nil, opts.Limits, int(opts.MaxPacketSize), srv, gm, b.intake)); err != nil {
			return nil, fmt.Errorf("broker: listener %s: %w", opts.Addr, err)
		}
	}
	if opts.TLSAddr != "" {
		if err := srv.AddListener(newGuardedListener("tls", opts.TLSAddr, opts.TLSConfig, opts.Limits, int(opts.MaxPacketSize), srv, gm, b.intake)); err != nil {
			return nil, fmt.Errorf("broker: listener %s: %w", opts.TLSAddr, err)
		}
	}
	return b, nil
}

// Server exposes the mochi server for hooks that need it (e.g. to count clients).
func (b *Broker) Server() *mqtt.Server { return b.srv }

// Start opens the listeners and serves in the background.
func (b *Broker) Start() error {
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("broker: serve: %w", err)
	}
	return nil
}

// Publish sends a message from the gateway itself (dead letters, alerts). It
// bypasses ACLs, like any inline client.
func (b *Broker) Publish(topic string, payload []byte, retain bool, qos byte) error {
	return b.srv.Publish(topic, payload, retain, qos)
}

// Clients reports connected client count (for /readyz and metrics).
func (b *Broker) Clients() int { return b.srv.Clients.Len() }

// Disconnect closes every connection of the account username (its
// credentials were revoked or rotated: a revoke must not wait for the client
// to reconnect) and returns how many it closed.
func (b *Broker) Disconnect(username string) int {
	var theirs []*mqtt.Client
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Inline || string(cl.Properties.Username) != username {
			continue
		}
		theirs = append(theirs, cl)
	}
	disconnect(b.srv, theirs, packets.ErrNotAuthorized)
	return len(theirs)
}

// Close ends intake (every Handler context: mochi's Close waits for every
// client's read loop, and one blocked in the Handler on a full spool would
// otherwise hold it until InfluxDB is back; the publish then goes unacked and
// the device sends it again later), stops the listeners and disconnects
// clients.
// Calls after the first return the first one's result.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.stopIntake()
		// Every client at once, before the listeners close one by one: a
		// session takeover on one listener waits for the old connection, on
		// another listener, to be closed.
		var all []*mqtt.Client
		for _, cl := range b.srv.Clients.GetAll() {
			if !cl.Net.Inline && !cl.Closed() {
				all = append(all, cl)
			}
		}
		disconnect(b.srv, all, packets.ErrServerShuttingDown)
		b.closeErr = b.srv.Close()
	})
	return b.closeErr
}

// flowHook works around a deadlock in mochi-mqtt v2.7.9: after every packet
// from a client whose send quota is above zero, mochi calls
// Inflight.NextImmediate, which takes the client's in-flight read lock twice;
// a QoS 1/2 delivery to that client queued in between (Inflight.Set, from any
// other publisher) deadlocks both, and then every publisher to it. The quota
// is the client's MQTT 5 Receive Maximum, so the hook sets it to 0 ("none
// given") at CONNECT, before mochi copies it into a taken-over session. The
// broker then does not hold its QoS deliveries to that client to the
// client's Receive Maximum. Clients that give none (every MQTT 3.1.1 client,
// paho.mqtt.golang, the gateway's own consumer) are unaffected.
type flowHook struct{ mqtt.HookBase }

func (h *flowHook) ID() string { return "lookout-flow" }

func (h *flowHook) Provides(b byte) bool { return b == mqtt.OnConnect }

func (h *flowHook) OnConnect(cl *mqtt.Client, _ packets.Packet) error {
	cl.Properties.Props.ReceiveMaximum = 0
	cl.State.Inflight.ResetSendQuota(0)
	return nil
}

// ingestHook hands device publishes to the pipeline before the broker acks them.
type ingestHook struct {
	mqtt.HookBase
	prefix   string
	reserved []string
	handle   Handler
	log      *slog.Logger
	srv      *mqtt.Server
	intake   context.Context // for clients not on a guarded listener
}

func (h *ingestHook) ID() string { return "lookout-ingest" }

func (h *ingestHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnPublish}, []byte{b})
}

// OnPublish runs on the publishing client's read loop, before PUBACK. Blocking
// here (a full spool) stops reading from that client: backpressure, not loss.
// At shutdown the handler gives up (Intake ends) and the packet is rejected.
func (h *ingestHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline || !strings.HasPrefix(pk.TopicName, h.prefix) {
		return pk, nil
	}
	rest := pk.TopicName[len(h.prefix):]
	for _, r := range h.reserved {
		if strings.HasPrefix(rest, r+"/") || rest == r {
			return pk, nil
		}
	}
	ctx := h.intake
	if gc, ok := cl.Net.Conn.(*guardConn); ok {
		ctx = gc.ctx
	}
	if err := h.handle(ctx, pk.TopicName, pk.Payload); err != nil {
		h.log.Warn("reading not stored; withholding ack and closing the connection", "client", cl.ID,
			"topic", pk.TopicName, "err", err)
		// mochi would keep the connection open without the PUBACK, and an
		// MQTT client resends only after a reconnect: close it (unless it is
		// already going), so the device does that now. Not for QoS 0 (never
		// resent) nor for a record that can never fit (resending cannot help,
		// and a reconnect loop would eat the per-IP connection budget).
		if ctx.Err() == nil && pk.FixedHeader.Qos > 0 && !errors.Is(err, errs.ErrTooLarge) {
			go disconnect(h.srv, []*mqtt.Client{cl}, packets.ErrServerBusy)
		}
		return pk, packets.ErrRejectPacket
	}
	// Readings are never retained (docs/protocol.md: devices must not set the
	// flag): a retained one would greet every later subscriber as if current.
	pk.FixedHeader.Retain = false
	return pk, nil
}

// packetLogFilter tames one line of mochi's: "error processing packet" is
// logged at warn for every refused publish with the whole packet, payload
// included (up to the packet size limit). Refusals are counted and logged,
// rate-limited and without payloads, by the auth hook; here the line drops
// to debug and loses the packet.
type packetLogFilter struct{ slog.Handler }

func (h packetLogFilter) Handle(ctx context.Context, r slog.Record) error {
	if r.Message != "error processing packet" {
		return h.Handler.Handle(ctx, r)
	}
	if !h.Handler.Enabled(ctx, slog.LevelDebug) {
		return nil
	}
	q := slog.NewRecord(r.Time, slog.LevelDebug, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "pk" {
			q.AddAttrs(a)
		}
		return true
	})
	return h.Handler.Handle(ctx, q)
}

func (h packetLogFilter) WithAttrs(as []slog.Attr) slog.Handler {
	return packetLogFilter{h.Handler.WithAttrs(as)}
}

func (h packetLogFilter) WithGroup(name string) slog.Handler {
	return packetLogFilter{h.Handler.WithGroup(name)}
}
