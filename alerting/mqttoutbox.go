package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/clock"
)

// MQTT outbox limits. They are constants, not settings: an operator has nothing
// to tune that the metrics would not tell them first.
const (
	// mqttOutboxMax caps the rows waiting for the broker (about 1 KB each).
	// Overflow policy: the oldest rows are dropped and counted
	// (lookout_alerting_mqtt_outbox_dropped_total), so after a long outage
	// subscribers get the latest state of every alert rather than stale history.
	mqttOutboxMax = 10000
	// mqttBaseBackoff is the wait after the first failed publish, doubled per
	// consecutive failure up to mqttMaxBackoff. The cap is short because these
	// are fire alerts: once the broker is back they should flow within seconds.
	mqttBaseBackoff = time.Second
	mqttMaxBackoff  = 30 * time.Second
	// mqttPublishTimeout bounds one publish (the wait for its acknowledgement).
	mqttPublishTimeout = 10 * time.Second
	// mqttPage is how many rows one query reads while draining.
	mqttPage = 64
)

// mqttMessage is an alert announcement to queue for MQTT in the same
// transaction as its event.
type mqttMessage struct {
	topic string
	alert Alert
}

// mqttAlert is the MQTT payload: the alert and the event that announced it.
// EventID is the event-log id (the SSE id); delivery is at least once (a PUBACK
// lost before the row is deleted means one more publish), so subscribers that
// care drop repeats by it.
type mqttAlert struct {
	Event   string `json:"event"`
	EventID int64  `json:"event_id"`
	Alert
}

// mqttTopicSafe keeps a zone id from putting a wildcard in the topic name: that
// is a protocol error (MQTT 3.1.1 §4.7.1) a broker answers by disconnecting, so
// the message would sit at the outbox head and stop every one behind it.
var mqttTopicSafe = strings.NewReplacer("+", "_", "#", "_", "\x00", "_")

func mqttTopic(prefix string, a Alert) string {
	zone := a.Zone
	if zone == "" {
		zone = "unknown"
	}
	return prefix + "/" + string(a.Severity) + "/" + mqttTopicSafe.Replace(zone)
}

// mqttOutbox delivers mqtt_outbox rows in id order, so the messages of one
// alert (raised, updated, acked, cleared) reach the broker in the order they
// happened. A row is deleted only after MQTTPublisher.PublishAlert returned
// nil; a failure stops the pass and the whole outbox waits out the backoff,
// because a broker that refused one message is down for the next one too.
type mqttOutbox struct {
	db  *sql.DB
	pub MQTTPublisher
	max int // rows kept; a field so tests can shrink it

	wake chan struct{} // capacity 1: "a row was queued"

	mu       sync.Mutex // one delivery pass at a time: a row is never in two publishes at once
	failures int        // consecutive failed publishes (under mu)
	retryAt  time.Time  // no publish before this (under mu)

	pending   atomic.Int64 // rows in the table, for the gauge and to let an idle loop skip its query
	pendingG  prometheus.GaugeFunc
	results   *prometheus.CounterVec
	droppedCt prometheus.Counter
}

func newMQTTOutbox(ctx context.Context, db *sql.DB, pub MQTTPublisher, reg prometheus.Registerer) (*mqttOutbox, error) {
	o := &mqttOutbox{db: db, pub: pub, max: mqttOutboxMax, wake: make(chan struct{}, 1)}
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM mqtt_outbox`).Scan(&n); err != nil {
		return nil, fmt.Errorf("alerting: mqtt outbox: %w", err)
	}
	o.pending.Store(n)
	o.pendingG = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lookout_alerting_mqtt_outbox_pending",
		Help: "Alert messages persisted and not yet acknowledged by the MQTT broker."},
		func() float64 { return float64(o.pending.Load()) })
	o.results = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_alerting_mqtt_deliveries_total",
		Help: "MQTT alert publishes by result (ok: acknowledged and removed; retry: failed, kept for the next try)."},
		[]string{"result"})
	o.droppedCt = prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_alerting_mqtt_outbox_dropped_total",
		Help: "Undelivered MQTT alert messages dropped, oldest first, because the outbox held its cap of " +
			strconv.Itoa(mqttOutboxMax) + "."})
	reg.MustRegister(o.pendingG, o.results, o.droppedCt)
	return o, nil
}

// enqueue adds m inside the caller's transaction (the one that logs its event)
// and trims the oldest rows beyond the cap. It returns how many it trimmed;
// the caller reports them with committed once the transaction commits.
func (o *mqttOutbox) enqueue(ctx context.Context, tx *sql.Tx, m mqttMessage, typ string, eventID int64, at time.Time) (int64, error) {
	payload, err := json.Marshal(mqttAlert{Event: typ, EventID: eventID, Alert: m.alert})
	if err != nil {
		return 0, fmt.Errorf("mqtt payload: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO mqtt_outbox (alert_id, event_id, topic, payload, created_at) VALUES (?,?,?,?,?)`,
		m.alert.ID, eventID, m.topic, payload, ms(at)); err != nil {
		return 0, fmt.Errorf("mqtt outbox: %w", err)
	}
	// Rows leave only from the head (delivery is in id order, and so is this
	// trim), so the rows still queued have consecutive ids and "within max of
	// the newest id" is the newest max rows (a gap could only keep fewer). Both
	// lookups are on the primary key: O(log n), where counting or OFFSET would
	// read the whole table (~7 ms at the cap) on every alert.
	res, err := tx.ExecContext(ctx, `DELETE FROM mqtt_outbox WHERE id <= (SELECT MAX(id) FROM mqtt_outbox) - ?`, o.max)
	if err != nil {
		return 0, fmt.Errorf("mqtt outbox trim: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("mqtt outbox trim: %w", err)
	}
	return n, nil
}

// committed accounts for one enqueued row and the dropped ones, and wakes the
// delivery loop.
func (o *mqttOutbox) committed(dropped int64) {
	o.pending.Add(1 - dropped)
	if dropped > 0 {
		o.droppedCt.Add(float64(dropped))
	}
	select {
	case o.wake <- struct{}{}:
	default: // a wake-up is already pending; it covers this row too
	}
}

// mqttBackoff is the wait after the n-th consecutive failed publish.
func mqttBackoff(failures int) time.Duration {
	return retryBackoff(mqttBaseBackoff, mqttMaxBackoff, failures)
}

type mqttRow struct {
	id      int64
	topic   string
	payload []byte
}

// deliver publishes the queued rows in order until the outbox is empty or a
// publish fails, and returns how many were acknowledged. After a failure it
// does nothing until the backoff has passed at now; the failure is returned
// (wrapped) so the loop can log it, and the row keeps its place at the head.
func (o *mqttOutbox) deliver(ctx context.Context, now time.Time) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if now.Before(o.retryAt) {
		return 0, nil
	}
	delivered := 0
	for {
		page, err := o.head(ctx)
		if err != nil {
			return delivered, err
		}
		for _, r := range page {
			if err := ctx.Err(); err != nil {
				return delivered, err
			}
			pctx, cancel := context.WithTimeout(ctx, mqttPublishTimeout)
			perr := o.pub.PublishAlert(pctx, r.topic, r.payload)
			cancel()
			if perr != nil {
				if err := ctx.Err(); err != nil { // shutting down: not the broker's failure
					return delivered, err
				}
				return delivered, o.failed(ctx, r, now, perr)
			}
			o.failures, o.retryAt = 0, time.Time{}
			o.results.WithLabelValues("ok").Inc()
			delivered++
			// The broker has the message: remove it even if ctx just ended, or a
			// shutdown here would publish it a second time after the restart.
			res, err := o.db.ExecContext(context.WithoutCancel(ctx), `DELETE FROM mqtt_outbox WHERE id = ?`, r.id)
			if err != nil {
				return delivered, fmt.Errorf("alerting: mqtt outbox: delete %d: %w", r.id, err)
			}
			if n, err := res.RowsAffected(); err == nil {
				o.pending.Add(-n) // 0 when enqueue's trim dropped it meanwhile
			}
		}
		if len(page) < mqttPage {
			return delivered, nil
		}
	}
}

func (o *mqttOutbox) head(ctx context.Context) ([]mqttRow, error) {
	rows, err := o.db.QueryContext(ctx, `SELECT id, topic, payload FROM mqtt_outbox ORDER BY id LIMIT ?`, mqttPage)
	if err != nil {
		return nil, fmt.Errorf("alerting: mqtt outbox: %w", err)
	}
	defer rows.Close()
	var out []mqttRow
	for rows.Next() {
		var r mqttRow
		if err := rows.Scan(&r.id, &r.topic, &r.payload); err != nil {
			return nil, fmt.Errorf("alerting: mqtt outbox: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("alerting: mqtt outbox: %w", err)
	}
	return out, nil
}

// failed records a failed publish (under mu) and starts the backoff.
func (o *mqttOutbox) failed(ctx context.Context, r mqttRow, now time.Time, perr error) error {
	o.failures++
	o.retryAt = now.Add(mqttBackoff(o.failures))
	o.results.WithLabelValues("retry").Inc()
	if _, err := o.db.ExecContext(ctx, `UPDATE mqtt_outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?`,
		lastError(perr), r.id); err != nil {
		return fmt.Errorf("alerting: mqtt outbox: %w (after publish error: %w)", err, perr)
	}
	return fmt.Errorf("alerting: mqtt publish %s (retry in %s): %w", r.topic, o.retryAt.Sub(now), perr)
}

// run delivers when a row is queued and every tick (for the backoff), until
// ctx ends. It is its own loop so a slow broker never delays escalation timers.
func (o *mqttOutbox) run(ctx context.Context, clk clock.Clock, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if o.pending.Load() > 0 {
			if _, err := o.deliver(ctx, clk.Now()); err != nil && ctx.Err() == nil {
				log.Warn("alerting: mqtt outbox", "pending", o.pending.Load(), "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		case <-t.C:
		}
	}
}
