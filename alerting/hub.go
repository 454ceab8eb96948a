package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/events"
)

// Hub is the gateway's event bus: every event is appended to a persisted log
// (so SSE clients resume with Last-Event-ID across restarts), queued in the webhook
// outbox and, for alert announcements, the MQTT outbox in the same transaction
// (so neither is lost), and fanned out to live SSE clients. It implements
// events.Publisher for registry, video and hotspot.
type Hub struct {
	db       *sql.DB
	clk      clock.Clock
	cfg      NotifyConfig
	webhooks []WebhookConfig
	mq       *mqttOutbox // nil without an MQTT publisher
	log      *slog.Logger

	mu      sync.Mutex // serialises append+fan-out so clients see ids in order
	clients map[*sseClient]struct{}

	clientsGauge prometheus.Gauge
	dropped      prometheus.Counter
	publishErrs  prometheus.Counter
}

var _ events.Publisher = (*Hub)(nil)

type sseClient struct {
	ch      chan events.Event
	dropped chan struct{}
	types   []string // event type prefixes the client asked for (?types=); empty = all
}

// wants reports whether the client asked for events of type typ. The hub
// filters before queueing, so a burst of events a client does not want (the
// registry's device.* transitions for thousands of devices at once) neither
// fills its buffer, which would drop it, nor delays the alerts behind them.
func (c *sseClient) wants(typ string) bool {
	if len(c.types) == 0 {
		return true
	}
	for _, p := range c.types {
		if strings.HasPrefix(typ, p) {
			return true
		}
	}
	return false
}

func newHub(db *sql.DB, clk clock.Clock, cfg NotifyConfig, hooks []WebhookConfig, log *slog.Logger, reg prometheus.Registerer) *Hub {
	h := &Hub{db: db, clk: clk, cfg: cfg, webhooks: hooks, log: log, clients: map[*sseClient]struct{}{},
		clientsGauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lookout_alerting_sse_clients", Help: "Connected SSE clients."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_alerting_sse_dropped_clients_total",
			Help: "SSE clients disconnected because their buffer filled (slow readers)."}),
		publishErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_alerting_publish_errors_total",
			Help: "Events that could not be persisted (they still reach live SSE clients)."}),
	}
	reg.MustRegister(h.clientsGauge, h.dropped, h.publishErrs)
	return h
}

// Publish appends an event and fans it out. It never blocks on a slow client:
// a client whose buffer is full is dropped and counted (it resumes with
// Last-Event-ID).
func (h *Hub) Publish(typ string, data any) {
	if _, err := h.publish(context.Background(), typ, data, nil); err != nil {
		h.publishErrs.Inc()
		h.log.Error("alerting: publish event", "type", typ, "err", err)
	}
}

// publishAlert is Publish for an alert announcement that also goes to MQTT:
// the MQTT message is queued in the event's transaction. If that transaction
// fails, the MQTT message is lost with the event (counted in publishErrs).
func (h *Hub) publishAlert(typ string, a Alert, topic string) {
	if _, err := h.publish(context.Background(), typ, a, &mqttMessage{topic: topic, alert: a}); err != nil {
		h.publishErrs.Inc()
		h.log.Error("alerting: publish event", "type", typ, "alert", a.ID, "err", err)
	}
}

func webhookWants(w WebhookConfig, typ string) bool {
	if len(w.Events) == 0 {
		return strings.HasPrefix(typ, "alert.") || strings.HasPrefix(typ, "incident.")
	}
	for _, p := range w.Events {
		if p == "*" || strings.HasPrefix(typ, p) {
			return true
		}
	}
	return false
}

func (h *Hub) publish(ctx context.Context, typ string, data any, mq *mqttMessage) (events.Event, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ev := events.Event{Type: typ, At: h.clk.Now(), Data: data}
	raw, err := json.Marshal(data)
	if err != nil {
		return ev, fmt.Errorf("alerting: event %s: %w", typ, err)
	}
	var mqDropped int64
	queuedMQ := false
	err = func() error {
		tx, err := h.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		res, err := tx.ExecContext(ctx, `INSERT INTO event_log (type, at, data) VALUES (?,?,?)`, typ, ms(ev.At), string(raw))
		if err != nil {
			return err
		}
		if ev.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		var body []byte
		for _, w := range h.webhooks {
			if !webhookWants(w, typ) {
				continue
			}
			if body == nil {
				if body, err = json.Marshal(ev); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_outbox (webhook, event_id, event_type, body, next_at) VALUES (?,?,?,?,?)`,
				w.Name, ev.ID, typ, body, ms(ev.At)); err != nil {
				return err
			}
		}
		if mq != nil && h.mq != nil {
			if mqDropped, err = h.mq.enqueue(ctx, tx, *mq, typ, ev.ID, ev.At); err != nil {
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		queuedMQ = mq != nil && h.mq != nil
		return nil
	}()
	if err != nil {
		err = fmt.Errorf("alerting: persist event %s: %w", typ, err)
	}
	if queuedMQ {
		h.mq.committed(mqDropped)
	}
	for c := range h.clients {
		if !c.wants(typ) {
			continue
		}
		select {
		case c.ch <- ev:
		default:
			delete(h.clients, c)
			close(c.dropped)
			h.dropped.Inc()
			h.clientsGauge.Dec()
		}
	}
	return ev, err
}

func (h *Hub) subscribe() *sseClient { return h.subscribeTypes(nil) }

// subscribeTypes adds a live client that receives the events whose type has
// one of the prefixes (all events when there are none).
func (h *Hub) subscribeTypes(prefixes []string) *sseClient {
	c := &sseClient{ch: make(chan events.Event, h.cfg.SSEBuffer), dropped: make(chan struct{}), types: prefixes}
	h.mu.Lock()
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	h.clientsGauge.Inc()
	return c
}

func (h *Hub) unsubscribe(c *sseClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		h.clientsGauge.Dec()
	}
}

// replay reads persisted events after id, in order.
func (h *Hub) replay(ctx context.Context, after int64, limit int) ([]events.Event, error) {
	rows, err := h.db.QueryContext(ctx, `SELECT id, type, at, data FROM event_log WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("alerting: replay: %w", err)
	}
	defer rows.Close()
	var out []events.Event
	for rows.Next() {
		var ev events.Event
		var at int64
		var data string
		if err := rows.Scan(&ev.ID, &ev.Type, &at, &data); err != nil {
			return nil, fmt.Errorf("alerting: replay: %w", err)
		}
		ev.At = fromMS(at)
		ev.Data = json.RawMessage(data)
		out = append(out, ev)
	}
	return out, rows.Err()
}

// prune keeps the newest EventLogKeep events.
func (h *Hub) prune(ctx context.Context) error {
	_, err := h.db.ExecContext(ctx, `DELETE FROM event_log WHERE id <= (SELECT MAX(id) FROM event_log) - ?`, h.cfg.EventLogKeep)
	if err != nil {
		return fmt.Errorf("alerting: prune events: %w", err)
	}
	return nil
}

func writeSSE(w http.ResponseWriter, ev events.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.ID, ev.Type, b)
	return err
}

// ServeSSE is GET /api/v1/events: a text/event-stream of every event. With a
// Last-Event-ID header (or ?last_event_id=) the missed events are replayed from
// the persisted log first; `?types=alert.,incident.` keeps only those prefixes.
func (h *Hub) ServeSSE(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	var types []string
	if t := r.URL.Query().Get("types"); t != "" {
		types = strings.Split(t, ",")
	}
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("last_event_id")
	}
	// An id past the newest event was not issued by this log (a wiped data
	// directory, another gateway): such a client resumes from the newest, or
	// every live event would be skipped until the ids caught up. Read before
	// subscribing, so that what is published meanwhile is replayed.
	var newest int64
	if lastID != "" {
		if err := h.db.QueryRowContext(r.Context(), `SELECT COALESCE(MAX(id), 0) FROM event_log`).Scan(&newest); err != nil {
			h.log.Error("alerting: sse replay", "err", err)
			http.Error(w, "event log unavailable", http.StatusInternalServerError)
			return
		}
	}
	c := h.subscribeTypes(types)
	defer h.unsubscribe(c)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": lookout events\n\n")
	var sent int64 = -1
	if lastID != "" {
		after, err := strconv.ParseInt(lastID, 10, 64)
		if err == nil && after >= 0 {
			sent = min(after, newest)
			for budget := h.cfg.ReplayMax; budget > 0; {
				evs, err := h.replay(r.Context(), sent, min(budget, 500))
				if err != nil {
					h.log.Error("alerting: sse replay", "err", err)
					return
				}
				for _, ev := range evs {
					if c.wants(ev.Type) {
						if writeSSE(w, ev) != nil {
							return
						}
					}
					sent = ev.ID
				}
				budget -= len(evs)
				if len(evs) < 500 {
					break
				}
			}
		}
	}
	fl.Flush()
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.dropped:
			return
		case <-heartbeat.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
			fl.Flush()
		case ev := <-c.ch:
			// Write this event and what else is already queued (at most one
			// buffer's worth), then flush once: no event waits for a later one,
			// and a burst costs one flush instead of one per event.
			for n, more := 1, true; more; n++ {
				if ev.ID == 0 || ev.ID > sent { // the hub already filtered by type
					if writeSSE(w, ev) != nil {
						return
					}
				}
				more = false
				if n < cap(c.ch) {
					select {
					case ev = <-c.ch:
						more = true
					default:
					}
				}
			}
			fl.Flush()
		}
	}
}
