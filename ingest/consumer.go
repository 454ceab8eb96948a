package ingest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/internal/redact"
)

// ConsumerOptions configure the client of an external broker (Mosquitto, EMQX).
type ConsumerOptions struct {
	URL          string
	ClientID     string // fixed, so the broker keeps our persistent session
	Username     string
	Password     string
	TLS          *tls.Config
	SharedGroup  string // "" = plain subscription; else $share/<group>/<prefix>/#
	QoS          byte
	KeepAlive    time.Duration
	ConnectRetry time.Duration // max reconnect backoff
	QueueSize    int           // bounded hand-off queue between paho and the pipeline
	BatchSize    int           // messages per pipeline batch (one spool write)
	Prefix       string        // "fire"
	Reserved     []string      // second-level topics we publish ourselves and must skip
}

// Consumer subscribes to device topics on an external broker with a persistent
// session (clean session off, fixed client id, QoS 1) and feeds the pipeline.
//
// paho delivers messages in order on one goroutine; our handler only hands each
// message to a bounded queue (it never does I/O), and a worker acknowledges a
// message only after the pipeline made it durable or dead-lettered it. Overflow
// policy: the handler blocks when the queue is full. Because unacknowledged
// messages count against the broker's in-flight window, size queue_size above the
// broker's max in-flight (Mosquitto max_inflight_messages, EMQX max_inflight) and
// the handler never blocks in practice: a slow spool simply stops the acks, and
// the broker holds the backlog.
type Consumer struct {
	opts   ConsumerOptions
	p      *Pipeline
	log    *slog.Logger
	client atomic.Pointer[paho.Client] // set by Run; read by Publish from other goroutines
	queue  chan paho.Message

	connected atomic.Bool
	depth     prometheus.GaugeFunc
	reconns   prometheus.Counter
}

// NewConsumer prepares the client; Run connects.
func NewConsumer(opts ConsumerOptions, p *Pipeline, reg prometheus.Registerer, log *slog.Logger) (*Consumer, error) {
	if opts.URL == "" || opts.ClientID == "" {
		return nil, errors.New("ingest: consumer needs a broker URL and a client id")
	}
	if opts.QueueSize < 1 {
		opts.QueueSize = 4096
	}
	if opts.BatchSize < 1 {
		opts.BatchSize = 512
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Consumer{opts: opts, p: p, log: log, queue: make(chan paho.Message, opts.QueueSize)}
	c.depth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lookout_ingest_queue_depth",
		Help: "Messages received from the external broker and not yet durable (bounded by ingest.queue_size)."},
		func() float64 { return float64(len(c.queue)) })
	c.reconns = prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_mqtt_connects_total",
		Help: "Successful (re)connections to the external broker."})
	if reg != nil {
		for _, col := range []prometheus.Collector{c.depth, c.reconns} {
			if err := reg.Register(col); err != nil {
				return nil, fmt.Errorf("ingest: metrics: %w", err)
			}
		}
	}
	return c, nil
}

// Filter is the subscription filter, with the shared-subscription prefix if any.
func (c *Consumer) Filter() string {
	f := c.opts.Prefix + "/#"
	if c.opts.SharedGroup != "" {
		f = "$share/" + c.opts.SharedGroup + "/" + f
	}
	return f
}

// Connected reports whether the broker connection is up (for /readyz).
func (c *Consumer) Connected() bool { return c.connected.Load() }

// Publish sends a gateway message (dead letters) at QoS 1 without waiting:
// paho retries it across reconnects.
func (c *Consumer) Publish(topic string, payload []byte) error {
	cl := c.client.Load()
	if cl == nil {
		return errors.New("ingest: consumer not connected")
	}
	(*cl).Publish(topic, 1, false, payload)
	return nil
}

// PublishWait sends at QoS 1 and returns once the broker has acknowledged the
// message (PUBACK), or with an error when ctx ends first or the publish fails.
// Callers that delete a message from an outbox on success need this form: a
// nil from Publish only means paho queued it in memory.
func (c *Consumer) PublishWait(ctx context.Context, topic string, payload []byte) error {
	cl := c.client.Load()
	if cl == nil {
		return errors.New("ingest: consumer not connected")
	}
	tok := (*cl).Publish(topic, 1, false, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("ingest: publish %s: %w", topic, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run connects (retrying), consumes until ctx ends, then disconnects. Messages
// not yet durable at shutdown are left unacknowledged for the broker to resend.
func (c *Consumer) Run(ctx context.Context) error {
	o := paho.NewClientOptions().AddBroker(c.opts.URL).SetClientID(c.opts.ClientID).
		SetCleanSession(false).SetResumeSubs(true).SetOrderMatters(true).SetAutoAckDisabled(true).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(c.opts.ConnectRetry).SetKeepAlive(c.opts.KeepAlive).
		SetMessageChannelDepth(uint(c.opts.QueueSize))
	if c.opts.Username != "" {
		o.SetUsername(c.opts.Username).SetPassword(c.opts.Password)
	}
	if c.opts.TLS != nil {
		o.SetTLSConfig(c.opts.TLS)
	}
	if !strings.HasPrefix(c.opts.URL, "ws") {
		o.SetCustomOpenConnectionFn(dialBuffered)
	}
	handler := func(_ paho.Client, m paho.Message) {
		select {
		case c.queue <- m:
		case <-ctx.Done():
		}
	}
	// A persistent session delivers queued messages right after CONNACK, before
	// our SUBSCRIBE is answered: the default handler catches those.
	o.SetDefaultPublishHandler(handler)
	o.SetOnConnectHandler(func(cl paho.Client) {
		c.reconns.Inc()
		tok := cl.Subscribe(c.Filter(), c.opts.QoS, handler)
		go func() {
			if tok.WaitTimeout(30*time.Second) && tok.Error() == nil {
				c.connected.Store(true)
				c.log.Info("mqtt subscribed", "broker", redact.URL(c.opts.URL), "filter", c.Filter(), "client_id", c.opts.ClientID)
				return
			}
			c.log.Error("mqtt subscribe failed", "filter", c.Filter(), "err", tok.Error())
		}()
	})
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		c.connected.Store(false)
		c.log.Warn("mqtt connection lost; reconnecting", "broker", redact.URL(c.opts.URL), "err", err)
	})
	cl := paho.NewClient(o)
	c.client.Store(&cl)
	tok := cl.Connect()
	go func() {
		tok.Wait()
		if err := tok.Error(); err != nil {
			c.log.Error("mqtt connect", "broker", redact.URL(c.opts.URL), "err", err)
		}
	}()
	c.work(ctx)
	c.connected.Store(false)
	cl.Disconnect(250)
	return nil
}

// dialBuffered opens the broker connection with buffering on both sides.
// paho reads each packet with several tiny reads (fixed header byte, each
// remaining-length byte, then the body) and writes every PUBACK with its own
// write: unbuffered, a backlog drain spends most of its CPU in syscalls. Reads go
// through a bufio.Reader; writes are coalesced by a flusher goroutine that sends
// whatever accumulated since its last write (an ack waits at most one goroutine
// hand-off, never a timer). WebSocket URLs keep paho's own dialer.
func dialBuffered(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d := &net.Dialer{Timeout: o.ConnectTimeout}
	var conn net.Conn
	var err error
	switch uri.Scheme {
	case "tcp", "mqtt":
		conn, err = d.Dial("tcp", uri.Host)
	case "ssl", "tls", "mqtts", "tcps":
		conn, err = tls.DialWithDialer(d, "tcp", uri.Host, o.TLSConfig)
	default:
		return nil, fmt.Errorf("ingest: buffered dial: unsupported scheme %q", uri.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return newBufferedConn(conn), nil
}

// maxPendingWrite bounds the write buffer: past it, Write waits for the flusher
// (backpressure to paho instead of unbounded memory).
const maxPendingWrite = 256 << 10

// bufferedConn is a net.Conn with a read buffer and a coalescing writer.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader

	mu      sync.Mutex
	space   *sync.Cond // signalled when pending shrinks or the conn fails
	pending []byte
	err     error // first write error; sticky
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newBufferedConn(c net.Conn) *bufferedConn {
	b := &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, 64<<10), kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	b.space = sync.NewCond(&b.mu)
	go b.flusher()
	return b
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Write queues p for the flusher and returns; a failed earlier flush is reported here.
func (c *bufferedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	for c.err == nil && len(c.pending) >= maxPendingWrite {
		c.space.Wait()
	}
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	c.pending = append(c.pending, p...)
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (c *bufferedConn) flusher() {
	defer close(c.done)
	var out []byte
	for {
		select {
		case <-c.kick:
		case <-c.stop:
			c.flush(&out)
			return
		}
		c.flush(&out)
	}
}

// flush writes everything pending in one syscall (buffers swap, so Write never
// waits on the network while a flush is in progress).
func (c *bufferedConn) flush(out *[]byte) {
	c.mu.Lock()
	*out, c.pending = c.pending, (*out)[:0]
	c.space.Broadcast()
	failed := c.err != nil
	c.mu.Unlock()
	if len(*out) == 0 || failed {
		return
	}
	if _, err := c.Conn.Write(*out); err != nil {
		c.mu.Lock()
		c.err = err
		c.space.Broadcast()
		c.mu.Unlock()
		_ = c.Conn.Close() // the reader fails too, and paho reconnects
	}
}

// Close flushes what is pending (up to a second) and closes the connection.
func (c *bufferedConn) Close() error {
	c.once.Do(func() { close(c.stop) })
	select {
	case <-c.done:
	case <-time.After(time.Second):
	}
	c.mu.Lock()
	if c.err == nil {
		c.err = net.ErrClosed
	}
	c.space.Broadcast()
	c.mu.Unlock()
	return c.Conn.Close()
}

// work drains the queue in batches: one pipeline call (one spool write) per
// batch, then acks in order.
func (c *Consumer) work(ctx context.Context) {
	batch := make([]paho.Message, 0, c.opts.BatchSize)
	msgs := make([]Message, 0, c.opts.BatchSize)
	prefix := c.opts.Prefix + "/"
	for {
		batch, msgs = batch[:0], msgs[:0]
		select {
		case <-ctx.Done():
			return
		case m := <-c.queue:
			batch = append(batch, m)
		}
	fill:
		for len(batch) < c.opts.BatchSize {
			select {
			case m := <-c.queue:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		for _, m := range batch {
			if c.reserved(m.Topic(), prefix) {
				continue
			}
			msgs = append(msgs, Message{Topic: m.Topic(), Payload: m.Payload()})
		}
		if len(msgs) > 0 && !c.store(ctx, msgs) {
			return // unacked: the broker redelivers to our session
		}
		for _, m := range batch {
			m.Ack()
		}
	}
}

// store makes msgs durable (or dead-letters them), retrying a failed spool
// append every second; false means ctx ended first and nothing may be acked.
// The messages are decoded once: only the append is retried, so a reject is
// counted and dead-lettered once however long the spool keeps failing.
func (c *Consumer) store(ctx context.Context, msgs []Message) bool {
	b := c.p.prepareBatch(msgs)
	defer c.p.release(b)
	for {
		err := c.p.store(ctx, b)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		c.log.Error("ingest batch not stored; retrying", "err", err, "messages", len(msgs))
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Second):
		}
	}
}

func (c *Consumer) reserved(topic, prefix string) bool {
	if !strings.HasPrefix(topic, prefix) {
		return true
	}
	rest := topic[len(prefix):]
	for _, r := range c.opts.Reserved {
		if strings.HasPrefix(rest, r+"/") || rest == r {
			return true
		}
	}
	return false
}
