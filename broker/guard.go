package broker

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/auth"
	"github.com/lookoutfire/lookout/clock"
)

// Limits bound what one connection may cost the broker before and after CONNECT.
type Limits struct {
	// ConnectTimeout: CONNECT must be complete this long after accept (and the
	// TLS handshake fits in it too); idle sockets cannot pile up. 0 = 10 s.
	ConnectTimeout time.Duration
	// ConnPerIPPerMinute caps new connections per source IP; 0 = unlimited.
	ConnPerIPPerMinute int
	// Clock drives the per-IP windows (tests use clock.Fake); nil = real time.
	Clock clock.Clock
}

// defaultGuardPacketSize bounds the guard's packet buffer when Options gives no
// MaxPacketSize: the guard holds one whole packet before mochi sees it.
const defaultGuardPacketSize = 1 << 20

// guardMetrics count what the edge refused and the panics it contained.
type guardMetrics struct {
	rejected  *prometheus.CounterVec // reason
	panics    prometheus.Counter
	throttled prometheus.Counter
	// acceptErrors counts failed accepts (e.g. EMFILE) the listener waited out.
	acceptErrors prometheus.Counter
}

func newGuardMetrics(reg prometheus.Registerer) (*guardMetrics, error) {
	m := &guardMetrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_mqtt_guard_closed_total",
			Help: "MQTT connections closed by the packet guard, by reason (malformed, too_large, connect_timeout)."}, []string{"reason"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_mqtt_panics_recovered_total",
			Help: "Panics inside the MQTT broker's connection handling that were contained to one connection. Should stay 0."}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_mqtt_connections_throttled_total",
			Help: "MQTT connections refused at accept because their source IP exceeded its connection rate."}),
		acceptErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_mqtt_accept_errors_total",
			Help: "Failed accepts on an MQTT listener (e.g. out of file descriptors); the listener backs off and keeps serving."}),
	}
	for _, r := range []string{"malformed", "too_large", "connect_timeout"} {
		m.rejected.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.rejected, m.panics, m.throttled, m.acceptErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("broker: metrics: %w", err)
		}
	}
	return m, nil
}

// guardedListener is a mochi listener that owns the accept loop so it can
// (1) throttle connections per source IP, (2) wrap each connection in the
// packet guard, and (3) contain any panic in that connection's goroutine —
// mochi runs a client's whole read loop inside the establish callback, so a
// recover here is the last line if a decoder bug slips past the guard.
type guardedListener struct {
	id, addr  string
	tlsConfig *tls.Config
	limits    Limits
	maxPacket int
	srv       *mqtt.Server
	m         *guardMetrics
	perIP     *auth.WindowLimiter
	// validate is false only in tests that prove the recover net on its own.
	validate bool
	intake   context.Context // parent of each connection's context (guardConn.ctx)

	mu      sync.Mutex
	ln      net.Listener
	log     *slog.Logger
	conns   map[*guardConn]struct{} // every connection being served, CONNECT sent or not
	serving sync.WaitGroup          // the serveConn goroutines; Add under mu while !end
	end     atomic.Bool
}

func newGuardedListener(id, addr string, tlsConfig *tls.Config, limits Limits, maxPacket int, srv *mqtt.Server, m *guardMetrics,
	intake context.Context) *guardedListener {
	if limits.ConnectTimeout <= 0 {
		limits.ConnectTimeout = 10 * time.Second
	}
	if limits.Clock == nil {
		limits.Clock = clock.Real{}
	}
	if maxPacket <= 0 {
		maxPacket = defaultGuardPacketSize
	}
	if intake == nil {
		intake = context.Background()
	}
	l := &guardedListener{id: id, addr: addr, tlsConfig: tlsConfig, limits: limits, maxPacket: maxPacket, srv: srv, m: m,
		validate: true, intake: intake}
	if limits.ConnPerIPPerMinute > 0 {
		l.perIP = auth.NewWindowLimiter(limits.ConnPerIPPerMinute, time.Minute)
	}
	return l
}

func (l *guardedListener) ID() string       { return l.id }
func (l *guardedListener) Protocol() string { return "tcp" }

func (l *guardedListener) Address() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

// Init opens the socket.
func (l *guardedListener) Init(log *slog.Logger) error {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return fmt.Errorf("broker: listen %s: %w", l.addr, err)
	}
	if l.tlsConfig != nil {
		ln = tls.NewListener(ln, l.tlsConfig)
	}
	l.mu.Lock()
	l.ln, l.log = ln, log
	l.mu.Unlock()
	return nil
}

// Serve accepts until Close. Any other accept error (out of file descriptors,
// most often) is waited out, 5 ms doubling to 1 s as net/http does: returning
// would stop the listener for good while the process lives on.
func (l *guardedListener) Serve(establish listeners.EstablishFn) {
	var wait time.Duration
	for !l.end.Load() {
		conn, err := l.ln.Accept()
		if err != nil {
			if l.end.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			wait = min(max(2*wait, 5*time.Millisecond), time.Second)
			l.m.acceptErrors.Inc()
			if l.log != nil && wait == time.Second {
				l.log.Warn("mqtt accept failing; retrying", "addr", l.addr, "err", err)
			}
			time.Sleep(wait)
			continue
		}
		wait = 0
		if l.perIP != nil {
			host, _, _ := net.SplitHostPort(conn.RemoteAddr().String())
			if !l.perIP.Allow(host, l.limits.Clock.Now()) {
				l.m.throttled.Inc()
				_ = conn.Close()
				continue
			}
		}
		gc := newGuardConn(l.intake, conn, l.maxPacket, l.limits.ConnectTimeout, l.m, l.validate)
		if !l.track(gc) {
			_ = conn.Close() // Close swept the connections already
			return
		}
		go l.serveConn(gc, establish)
	}
}

// track records gc for Close's sweep; false once the listener is closing.
func (l *guardedListener) track(gc *guardConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.end.Load() {
		return false
	}
	if l.conns == nil {
		l.conns = make(map[*guardConn]struct{})
	}
	l.conns[gc] = struct{}{}
	l.serving.Add(1)
	return true
}

func (l *guardedListener) serveConn(gc *guardConn, establish listeners.EstablishFn) {
	defer l.serving.Done()
	defer func() {
		l.mu.Lock()
		delete(l.conns, gc)
		l.mu.Unlock()
	}()
	defer func() {
		if p := recover(); p != nil {
			l.log.Error("mqtt connection panicked; connection closed, broker continues",
				"remote", gc.RemoteAddr().String(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			_ = gc.Close()
			l.dropClient(gc)
			l.m.panics.Inc() // counted once contained: the half-dead client is gone
		}
	}()
	if err := establish(l.id, gc); err != nil {
		l.log.Debug("mqtt connection ended", "remote", gc.RemoteAddr().String(), "err", err)
	}
}

// dropClient removes the client whose read loop panicked: mochi's normal
// disconnect path did not run, so its session and subscriptions would linger.
func (l *guardedListener) dropClient(gc *guardConn) {
	for _, cl := range l.srv.Clients.GetAll() {
		if cl.Net.Conn == net.Conn(gc) {
			cl.Stop(errors.New("panic in connection handler"))
			l.srv.UnsubscribeClient(cl)
			l.srv.Clients.Delete(cl.ID)
		}
	}
}

// Close stops accepting, disconnects this listener's clients and returns once
// every connection it served has ended.
//
// It does not call mochi's closeClients: in v2.7.9 that path
// (Clients.GetByListener) takes the clients read lock twice, and a client
// disconnecting in between deadlocks the whole broker (mochi-mqtt/server#488).
// The clients are disconnected here from one GetAll snapshot instead (see
// disconnect for clients that stopped reading). Connections that never sent
// CONNECT are closed too, so a stop does not wait out their CONNECT deadline.
// Waiting for the served connections keeps mochi's ClientsWg.Add (made when a
// connection starts) from racing its ClientsWg.Wait, which panics.
func (l *guardedListener) Close(listeners.CloseFn) {
	l.mu.Lock()
	l.end.Store(true)
	if l.ln != nil {
		_ = l.ln.Close()
	}
	l.mu.Unlock()
	if l.srv != nil { // nil only in listener-level tests
		var mine []*mqtt.Client
		for _, cl := range l.srv.Clients.GetAll() {
			if cl.Net.Listener == l.id && !cl.Closed() {
				mine = append(mine, cl)
			}
		}
		disconnect(l.srv, mine, packets.ErrServerShuttingDown)
	}
	l.mu.Lock()
	for gc := range l.conns {
		_ = gc.Close()
	}
	l.mu.Unlock()
	l.serving.Wait()
}

// disconnectGrace is how long disconnect lets DISCONNECT packets be written
// before it closes the sockets under them.
const disconnectGrace = 2 * time.Second

// disconnect sends each client a DISCONNECT with code and closes it. mochi's
// DisconnectClient waits for the client's write lock, which a client that
// stopped reading holds for good inside a blocked socket Write (with keepalive
// 0 there is no deadline). After disconnectGrace the sockets are closed, which
// fails those writes, frees the locks and lets the disconnects finish.
func disconnect(srv *mqtt.Server, clients []*mqtt.Client, code packets.Code) {
	if len(clients) == 0 {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, cl := range clients {
			_ = srv.DisconnectClient(cl, code)
		}
	}()
	select {
	case <-done:
		return
	case <-time.After(disconnectGrace):
	}
	for _, cl := range clients {
		if cl.Net.Conn != nil {
			_ = cl.Net.Conn.Close()
		}
	}
	<-done
}

// guardConn hands mochi only whole packets that passed checkPacket. It reads
// the fixed header itself, refuses anything over the size limit before
// buffering it, and enforces the CONNECT deadline.
type guardConn struct {
	net.Conn
	ctx       context.Context // ends at Close: the Handler's context for this client's publishes
	cancel    context.CancelFunc
	br        *bufio.Reader
	maxPacket int
	m         *guardMetrics
	validate  bool

	mu              sync.Mutex // deadlines vs. the first packet
	connected       bool
	connectDeadline time.Time

	version byte
	out     []byte // validated bytes not yet read by mochi
	off     int
	err     error
}

func newGuardConn(parent context.Context, c net.Conn, maxPacket int, connectTimeout time.Duration, m *guardMetrics, validate bool) *guardConn {
	gc := &guardConn{Conn: c, br: bufio.NewReaderSize(c, 4096), maxPacket: maxPacket, m: m, validate: validate,
		connectDeadline: time.Now().Add(connectTimeout)}
	gc.ctx, gc.cancel = context.WithCancel(parent)
	_ = c.SetReadDeadline(gc.connectDeadline)
	return gc
}

// ConnectionState exposes the TLS state (client certificate) to the auth hook.
func (c *guardConn) ConnectionState() tls.ConnectionState {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

// SetDeadline / SetReadDeadline: before CONNECT has arrived the connect
// deadline wins, whatever mochi asks for.
func (c *guardConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

func (c *guardConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	if !c.connected && (t.IsZero() || t.After(c.connectDeadline)) {
		t = c.connectDeadline
	}
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

// Read serves validated bytes, reading and checking the next packet when empty.
func (c *guardConn) Read(p []byte) (int, error) {
	if c.off >= len(c.out) {
		if c.err != nil {
			return 0, c.err
		}
		if err := c.next(); err != nil {
			c.err = err
			return 0, err
		}
	}
	n := copy(p, c.out[c.off:])
	c.off += n
	return n, nil
}

func (c *guardConn) fail(reason string, err error) error {
	c.m.rejected.WithLabelValues(reason).Inc()
	_ = c.Close()
	return err
}

// Close closes the connection and ends its context (see Handler).
func (c *guardConn) Close() error {
	c.cancel()
	return c.Conn.Close()
}

func (c *guardConn) next() error {
	if cap(c.out) > 64<<10 {
		c.out = nil // do not keep a big buffer on an idle connection
	}
	c.out, c.off = c.out[:0], 0
	h, err := c.br.ReadByte()
	if err != nil {
		return c.readErr(err)
	}
	c.out = append(c.out, h)
	remaining, mult := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return c.fail("malformed", malformed("remaining length longer than 4 bytes"))
		}
		b, err := c.br.ReadByte()
		if err != nil {
			return c.readErr(err)
		}
		c.out = append(c.out, b)
		remaining += int(b&0x7f) * mult
		mult *= 128
		if b&0x80 == 0 {
			break
		}
	}
	if len(c.out)+remaining > c.maxPacket {
		return c.fail("too_large", fmt.Errorf("mqtt packet of %d bytes exceeds %d: %w", len(c.out)+remaining, c.maxPacket, ErrMalformed))
	}
	hdr := len(c.out)
	c.out = append(c.out, make([]byte, remaining)...)
	if _, err := io.ReadFull(c.br, c.out[hdr:]); err != nil {
		return c.readErr(err)
	}
	if c.validate {
		v, err := checkPacket(c.version, h, c.out[hdr:])
		if err != nil {
			return c.fail("malformed", err)
		}
		c.version = v
	} else if c.version == 0 {
		c.version = 4
	}
	c.mu.Lock()
	c.connected = true
	c.mu.Unlock()
	return nil
}

func (c *guardConn) readErr(err error) error {
	var ne net.Error
	c.mu.Lock()
	connected := c.connected
	c.mu.Unlock()
	if !connected && errors.As(err, &ne) && ne.Timeout() {
		return c.fail("connect_timeout", fmt.Errorf("no CONNECT within the connect timeout: %w", err))
	}
	return err
}
