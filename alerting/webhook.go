package alerting

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the body with the webhook secret>".
const SignatureHeader = "X-Lookout-Signature"

// DeliveryHeader carries the outbox row id: the same delivery retried keeps its id,
// so a receiver that answered too late can drop the duplicate.
const DeliveryHeader = "X-Lookout-Delivery"

// Sign returns the X-Lookout-Signature value for body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a signature header value in constant time; receivers
// (and our tests) use it.
func VerifySignature(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(strings.TrimSpace(header)))
}

// outbox delivers webhook_outbox rows: one POST per row, retried with
// exponential backoff until MaxAttempts, then kept as dead for inspection.
type outbox struct {
	e       *Engine
	client  *http.Client
	results *prometheus.CounterVec
	pruned  atomic.Int64 // unix ms of the last prune
}

func newOutbox(e *Engine, client *http.Client, reg prometheus.Registerer) *outbox {
	o := &outbox{e: e, client: client,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_alerting_webhook_deliveries_total",
			Help: "Webhook POST attempts by result (ok, retry, dead)."}, []string{"result"})}
	reg.MustRegister(o.results)
	return o
}

type outboxRow struct {
	id       int64
	hook     string
	evType   string
	body     []byte
	attempts int
}

// Webhook outbox retention. Pending rows need no cap: each dies after
// Retry.MaxAttempts (about two hours with the defaults), so their number is
// bounded by the event rate over that time. Delivered and dead rows are kept
// only for inspection (sqlite3 var/lookout.db), then deleted.
const (
	webhookKeepDelivered = 24 * time.Hour
	webhookKeepDead      = 7 * 24 * time.Hour
)

// pruneWebhooks deletes delivered rows before ?1 and dead ones last tried before ?2.
const pruneWebhooks = `DELETE FROM webhook_outbox WHERE delivered_at < ? OR (delivered_at IS NULL AND dead = 1 AND next_at < ?)`

// step delivers what is due at now and, at most once a minute, prunes old
// delivered and dead rows.
func (o *outbox) step(ctx context.Context, now time.Time) error {
	_, err := o.runDue(ctx, now)
	if last := o.pruned.Load(); now.UnixMilli()-last >= time.Minute.Milliseconds() && o.pruned.CompareAndSwap(last, now.UnixMilli()) {
		err = errors.Join(err, o.prune(ctx, now))
	}
	return err
}

// prune deletes rows delivered more than webhookKeepDelivered ago and dead
// rows whose last attempt is more than webhookKeepDead old. A dead row is never
// delivered: saying so lets both halves use webhook_outbox_due (no table scan).
func (o *outbox) prune(ctx context.Context, now time.Time) error {
	if _, err := o.e.db.ExecContext(ctx, pruneWebhooks,
		ms(now.Add(-webhookKeepDelivered)), ms(now.Add(-webhookKeepDead))); err != nil {
		return fmt.Errorf("alerting: prune webhook outbox: %w", err)
	}
	return nil
}

// runDue tries every delivery due at now (up to Retry.Batch) and returns how many were delivered.
func (o *outbox) runDue(ctx context.Context, now time.Time) (int, error) {
	cfg := o.e.cfg.Retry
	rows, err := o.e.db.QueryContext(ctx, `SELECT id, webhook, event_type, body, attempts FROM webhook_outbox
		WHERE delivered_at IS NULL AND dead = 0 AND next_at <= ? ORDER BY id LIMIT ?`, ms(now), cfg.Batch)
	if err != nil {
		return 0, fmt.Errorf("alerting: outbox: %w", err)
	}
	var due []outboxRow
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.id, &r.hook, &r.evType, &r.body, &r.attempts); err != nil {
			rows.Close()
			return 0, fmt.Errorf("alerting: outbox: %w", err)
		}
		due = append(due, r)
	}
	rows.Close()
	hooks := map[string]WebhookConfig{}
	for _, w := range o.e.cfg.Webhooks {
		hooks[w.Name] = w
	}
	delivered := 0
	for _, r := range due {
		if ctx.Err() != nil {
			return delivered, ctx.Err()
		}
		w, ok := hooks[r.hook]
		var derr error
		if !ok {
			derr = fmt.Errorf("webhook %q is no longer configured", r.hook)
			r.attempts = cfg.MaxAttempts - 1 // make it dead now
		} else {
			derr = o.post(ctx, w, r)
		}
		if derr == nil {
			delivered++
			o.results.WithLabelValues("ok").Inc()
			if _, err := o.e.db.ExecContext(ctx, `UPDATE webhook_outbox SET delivered_at = ?, attempts = attempts + 1, last_error = '' WHERE id = ?`,
				ms(now), r.id); err != nil {
				return delivered, fmt.Errorf("alerting: outbox: %w", err)
			}
			continue
		}
		attempts := r.attempts + 1
		dead := attempts >= cfg.MaxAttempts
		backoff := retryBackoff(cfg.BaseBackoff, cfg.MaxBackoff, attempts)
		if dead {
			o.results.WithLabelValues("dead").Inc()
		} else {
			o.results.WithLabelValues("retry").Inc()
		}
		if _, err := o.e.db.ExecContext(ctx, `UPDATE webhook_outbox SET attempts = ?, next_at = ?, dead = ?, last_error = ? WHERE id = ?`,
			attempts, ms(now.Add(backoff)), dead, lastError(derr), r.id); err != nil {
			return delivered, fmt.Errorf("alerting: outbox: %w", err)
		}
	}
	return delivered, nil
}

func (o *outbox) post(ctx context.Context, w WebhookConfig, r outboxRow) error {
	ctx, cancel := context.WithTimeout(ctx, o.e.cfg.Retry.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(r.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lookout-webhook/1")
	req.Header.Set(SignatureHeader, Sign(w.Secret, r.body))
	req.Header.Set(DeliveryHeader, strconv.FormatInt(r.id, 10))
	req.Header.Set("X-Lookout-Event", r.evType)
	resp, err := o.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// retryBackoff is the wait after the n-th consecutive failed delivery (n ≥ 1)
// of an outbox (webhooks, MQTT): base, doubling per failure, capped at limit.
func retryBackoff(base, limit time.Duration, n int) time.Duration {
	d := base << min(n-1, 30)
	if d > limit || d <= 0 {
		d = limit
	}
	return d
}

// lastError is a failed delivery's error as an outbox row keeps it: the first
// 300 bytes, enough to tell a refused connection from an HTTP 500.
func lastError(err error) string {
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return msg
}
