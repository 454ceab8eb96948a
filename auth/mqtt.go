package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/errs"
)

// MQTTKind says what an MQTT account is for; the ACL follows from it.
type MQTTKind string

// MQTT account kinds.
const (
	// MQTTDevice: username = device id; publishes only under {prefix}/{class}/{id}/…
	// and subscribes only to its command topic {prefix}/cmd/{id}.
	MQTTDevice MQTTKind = "device"
	// MQTTGateway: the gateway's own client on an external broker: everything under {prefix}/.
	MQTTGateway MQTTKind = "gateway"
	// MQTTMonitor: an operator's read-only monitoring login: subscribe under {prefix}/, never publish.
	MQTTMonitor MQTTKind = "monitor"
)

// ValidMQTTKind reports whether k is known.
func ValidMQTTKind(k MQTTKind) bool {
	return k == MQTTDevice || k == MQTTGateway || k == MQTTMonitor
}

// MQTTCred is a stored MQTT account: the hash is Mosquitto's $7$ string.
type MQTTCred struct {
	Username  string    `json:"username"`
	Kind      MQTTKind  `json:"kind"`
	Hash      string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}

// IssueMQTT creates or rotates an account's password and returns the new
// password: the only time it exists outside the caller's memory. It never
// changes an existing account's kind (ErrMQTTKind): rotating a device's
// password must not be a way to take over, or demote, a gateway account.
func (s *Store) IssueMQTT(ctx context.Context, username string, kind MQTTKind) (string, error) {
	return s.writeMQTT(ctx, username, kind, `INSERT INTO auth_mqtt(username, kind, hash, created_at) VALUES(?,?,?,?)
		ON CONFLICT(username) DO UPDATE SET hash=excluded.hash, created_at=excluded.created_at WHERE auth_mqtt.kind = excluded.kind`)
}

// CreateMQTT creates an account and returns its password; ErrMQTTExists (or
// ErrMQTTKind for another kind) when the name is taken. One statement, so two
// concurrent creates cannot both succeed.
func (s *Store) CreateMQTT(ctx context.Context, username string, kind MQTTKind) (string, error) {
	return s.writeMQTT(ctx, username, kind, `INSERT INTO auth_mqtt(username, kind, hash, created_at) VALUES(?,?,?,?)
		ON CONFLICT(username) DO NOTHING`)
}

// RotateMQTT gives an existing account of kind a new password and returns it;
// ErrCredNotFound when there is no account of that name, ErrMQTTKind when it
// is of another kind. One statement, so it never re-creates an account that
// was deleted meanwhile.
func (s *Store) RotateMQTT(ctx context.Context, username string, kind MQTTKind) (string, error) {
	return s.writeMQTT(ctx, username, kind, `UPDATE auth_mqtt SET hash=?3, created_at=?4 WHERE username=?1 AND kind=?2`)
}

// writeMQTT runs q (parameters: username, kind, hash, created_at) with a new
// password and, when it changed no row, says why.
func (s *Store) writeMQTT(ctx context.Context, username string, kind MQTTKind, q string) (string, error) {
	if !ValidUsername(username) {
		return "", fmt.Errorf("mqtt username %q: %w", username, ErrInvalidInput)
	}
	if !ValidMQTTKind(kind) {
		return "", fmt.Errorf("mqtt kind %q: %w", kind, ErrInvalidInput)
	}
	pw := RandomSecret(18)
	h, err := MosquittoHash(pw, s.cfg.DeviceHashIterations)
	if err != nil {
		return "", err
	}
	res, err := s.db.ExecContext(ctx, q, username, string(kind), h, unix(s.clk.Now()))
	if err != nil {
		return "", fmt.Errorf("auth: issue mqtt: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return "", fmt.Errorf("auth: issue mqtt: %w", err)
	} else if n == 1 {
		return pw, nil
	}
	switch c, err := s.GetMQTT(ctx, username); {
	case errors.Is(err, ErrCredNotFound):
		return "", err
	case err != nil:
		return "", err
	case c.Kind != kind:
		return "", fmt.Errorf("%s is a %s account, not %s: %w", username, c.Kind, kind, ErrMQTTKind)
	default:
		return "", fmt.Errorf("%s: %w", username, ErrMQTTExists)
	}
}

// GetMQTT returns one account.
func (s *Store) GetMQTT(ctx context.Context, username string) (MQTTCred, error) {
	var c MQTTCred
	var kind string
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT username, kind, hash, created_at FROM auth_mqtt WHERE username=?`, username).
		Scan(&c.Username, &kind, &c.Hash, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("%s: %w", username, ErrCredNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("auth: get mqtt: %w", err)
	}
	c.Kind, c.CreatedAt = MQTTKind(kind), fromUnix(at)
	return c, nil
}

// ListMQTT returns every account sorted by username (hashes included, for
// writing a Mosquitto password file).
func (s *Store) ListMQTT(ctx context.Context) ([]MQTTCred, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT username, kind, hash, created_at FROM auth_mqtt ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("auth: list mqtt: %w", err)
	}
	defer rows.Close()
	out := []MQTTCred{}
	for rows.Next() {
		var c MQTTCred
		var kind string
		var at int64
		if err := rows.Scan(&c.Username, &kind, &c.Hash, &at); err != nil {
			return nil, fmt.Errorf("auth: list mqtt: %w", err)
		}
		c.Kind, c.CreatedAt = MQTTKind(kind), fromUnix(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// RevokeMQTT deletes an account; its client can no longer connect. A
// non-empty kind deletes the account only if it is of that kind (else
// ErrCredNotFound), so the device credentials route cannot remove a gateway's.
func (s *Store) RevokeMQTT(ctx context.Context, username string, kind MQTTKind) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM auth_mqtt WHERE username=? AND (?='' OR kind=?)`, username, string(kind), string(kind))
	if err != nil {
		return fmt.Errorf("auth: revoke mqtt: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s: %w", username, ErrCredNotFound)
	}
	return nil
}

// DeviceLookup finds a registered device's class. The registry implements it
// (through a small adapter in the gateway), so auth does not import registry.
type DeviceLookup interface {
	DeviceClass(id string) (class string, ok bool)
}

// MQTTIdentity is an authenticated MQTT client and what the ACL needs to know.
type MQTTIdentity struct {
	Username string
	Kind     MQTTKind
	Class    string // devices only
	prefix   string
}

// CommandTopic is the one topic a device may subscribe to: {prefix}/cmd/{id}
// ("cmd" is a reserved second level, never consumed as readings).
func CommandTopic(prefix, id string) string { return prefix + "/cmd/" + id }

// MayPublish reports whether the identity may publish to topic.
func (id MQTTIdentity) MayPublish(topic string) bool {
	if strings.ContainsAny(topic, "+#") {
		return false
	}
	switch id.Kind {
	case MQTTDevice:
		own := id.prefix + "/" + id.Class + "/" + id.Username + "/"
		return len(topic) > len(own) && strings.HasPrefix(topic, own)
	case MQTTGateway:
		return strings.HasPrefix(topic, id.prefix+"/")
	}
	return false
}

// MaySubscribe reports whether the identity may subscribe to filter (a shared
// subscription "$share/{group}/…" is judged by its inner filter).
func (id MQTTIdentity) MaySubscribe(filter string) bool {
	if strings.HasPrefix(filter, "$share/") {
		parts := strings.SplitN(filter, "/", 3)
		// Only the gateway shares: a monitor in the gateway's group would take
		// a share of the readings away from ingest.
		if len(parts) != 3 || id.Kind != MQTTGateway {
			return false
		}
		filter = parts[2]
	}
	switch id.Kind {
	case MQTTDevice:
		cmd := CommandTopic(id.prefix, id.Username)
		return filter == cmd || filter == cmd+"/#" ||
			(strings.HasPrefix(filter, cmd+"/") && !strings.ContainsAny(filter, "+#"))
	case MQTTGateway, MQTTMonitor:
		return filter == id.prefix+"/#" || strings.HasPrefix(filter, id.prefix+"/")
	}
	return false
}

// MayRead reports whether a message on topic may be delivered to the identity
// (checked again at delivery, so an allowed wildcard cannot leak other topics).
func (id MQTTIdentity) MayRead(topic string) bool {
	switch id.Kind {
	case MQTTDevice:
		cmd := CommandTopic(id.prefix, id.Username)
		return topic == cmd || strings.HasPrefix(topic, cmd+"/")
	case MQTTGateway, MQTTMonitor:
		return strings.HasPrefix(topic, id.prefix+"/")
	}
	return false
}

// Refusal is why an MQTT client was refused; Reason is a stable label for the
// metric and the log, never containing a secret.
type Refusal struct {
	Reason string
	Detail string
}

// Error names the reason and detail (never a secret).
func (r *Refusal) Error() string { return "mqtt refused: " + r.Reason + ": " + r.Detail }

// Unwrap makes every refusal an errs.ErrUnauthorized.
func (r *Refusal) Unwrap() error { return errs.ErrUnauthorized }

// Refusal reasons.
const (
	ReasonNoCredentials    = "no_credentials"
	ReasonUnknownUser      = "unknown_user"
	ReasonBadPassword      = "bad_password"
	ReasonUnknownDevice    = "unknown_device"
	ReasonClientIDMismatch = "client_id_mismatch"
	ReasonCertMismatch     = "cert_mismatch"
	ReasonACLPublish       = "acl_publish"
	ReasonACLSubscribe     = "acl_subscribe"
	ReasonInternal         = "internal"
)

var refusalReasons = []string{ReasonNoCredentials, ReasonUnknownUser, ReasonBadPassword, ReasonUnknownDevice,
	ReasonClientIDMismatch, ReasonCertMismatch, ReasonACLPublish, ReasonACLSubscribe, ReasonInternal}

// ConnectRequest is what the broker learned from CONNECT and the TLS handshake.
type ConnectRequest struct {
	Username string
	Password []byte
	ClientID string
	// CertCN is the common name of a client certificate verified against the
	// configured CA ("" = none). A device may authenticate by certificate alone.
	CertCN string
	Remote string
	// HasWill and WillTopic describe the CONNECT's will message: the broker
	// publishes it for the client when the connection drops, so its topic must
	// pass the same publish ACL (mochi's will delivery checks nothing).
	HasWill   bool
	WillTopic string
}

// MQTTAuth authenticates MQTT clients against the stored credentials and
// answers ACL questions. Verified credentials are cached as an HMAC under a
// per-process random key (never the password), keyed by the stored hash so a
// rotation invalidates the entry at once.
type MQTTAuth struct {
	store    *Store
	devices  DeviceLookup
	prefix   string
	clk      clock.Clock
	log      *slog.Logger
	ttl      time.Duration
	size     int
	macKey   []byte
	logEvery time.Duration

	mu      sync.Mutex
	cache   map[string]cacheEntry
	lastLog map[string]time.Time

	refused   *prometheus.CounterVec
	cacheHits *prometheus.CounterVec
	evictions prometheus.Counter
}

type cacheEntry struct {
	hash    string
	mac     [32]byte
	expires time.Time
}

// NewMQTTAuth builds the authenticator. prefix is the topic prefix ("fire").
func NewMQTTAuth(st *Store, devices DeviceLookup, prefix string, cfg Config, clk clock.Clock, reg prometheus.Registerer, log *slog.Logger) (*MQTTAuth, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("auth: cache key: %w", err)
	}
	m := &MQTTAuth{store: st, devices: devices, prefix: prefix, clk: clk, log: log, ttl: cfg.CredentialCacheTTL,
		size: cfg.CredentialCacheSize, macKey: key, logEvery: cfg.RefusalLogInterval,
		cache: map[string]cacheEntry{}, lastLog: map[string]time.Time{},
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_mqtt_refusals_total",
			Help: "MQTT connections, publishes and subscriptions refused, by reason."}, []string{"reason"}),
		cacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_mqtt_auth_cache_total",
			Help: "MQTT password checks answered from the verified-credential cache (hit) or by PBKDF2 (miss)."}, []string{"result"}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_mqtt_auth_cache_evictions_total",
			Help: "Verified-credential cache entries dropped because the cache was full."}),
	}
	for _, r := range refusalReasons {
		m.refused.WithLabelValues(r)
	}
	m.cacheHits.WithLabelValues("hit")
	m.cacheHits.WithLabelValues("miss")
	for _, c := range []prometheus.Collector{m.refused, m.cacheHits, m.evictions} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("auth: metrics: %w", err)
		}
	}
	return m, nil
}

// Identity builds an identity without authenticating (for tests and for the
// gateway's own in-process client).
func (m *MQTTAuth) Identity(username string, kind MQTTKind, class string) MQTTIdentity {
	return MQTTIdentity{Username: username, Kind: kind, Class: class, prefix: m.prefix}
}

// Authenticate checks one CONNECT. Devices must use their id as client id, so
// one device cannot take over another's session.
func (m *MQTTAuth) Authenticate(ctx context.Context, req ConnectRequest) (MQTTIdentity, error) {
	id, err := m.authenticate(ctx, req)
	if err != nil {
		var rf *Refusal
		if !errors.As(err, &rf) {
			rf = &Refusal{Reason: ReasonInternal, Detail: err.Error()}
		}
		who := req.Username
		if who == "" {
			who = req.CertCN
		}
		m.Refuse(who, req.Remote, rf)
		return MQTTIdentity{}, err
	}
	return id, nil
}

func (m *MQTTAuth) authenticate(ctx context.Context, req ConnectRequest) (MQTTIdentity, error) {
	user := req.Username
	byCert := false
	if req.CertCN != "" {
		if user != "" && user != req.CertCN {
			return MQTTIdentity{}, &Refusal{ReasonCertMismatch, fmt.Sprintf("certificate CN %q, username %q", req.CertCN, user)}
		}
		user, byCert = req.CertCN, true
	}
	if user == "" {
		return MQTTIdentity{}, &Refusal{ReasonNoCredentials, "anonymous connect"}
	}
	if !ValidUsername(user) {
		return MQTTIdentity{}, &Refusal{ReasonUnknownUser, "malformed username"}
	}
	id := MQTTIdentity{Username: user, prefix: m.prefix}
	if byCert {
		// A CA-signed certificate names a device; no stored password needed.
		id.Kind = MQTTDevice
		if c, err := m.store.GetMQTT(ctx, user); err == nil {
			id.Kind = c.Kind
		} else if !errors.Is(err, errs.ErrNotFound) {
			return MQTTIdentity{}, err
		}
	} else {
		c, err := m.store.GetMQTT(ctx, user)
		if errors.Is(err, errs.ErrNotFound) {
			return MQTTIdentity{}, &Refusal{ReasonUnknownUser, "no credentials issued"}
		}
		if err != nil {
			return MQTTIdentity{}, err
		}
		ok, err := m.verify(user, c.Hash, req.Password)
		if err != nil {
			return MQTTIdentity{}, err
		}
		if !ok {
			return MQTTIdentity{}, &Refusal{ReasonBadPassword, "password does not match"}
		}
		id.Kind = c.Kind
	}
	switch id.Kind {
	case MQTTDevice:
		class, ok := m.devices.DeviceClass(user)
		if !ok {
			return MQTTIdentity{}, &Refusal{ReasonUnknownDevice, "not in the device registry"}
		}
		id.Class = class
		if req.ClientID != user {
			return MQTTIdentity{}, &Refusal{ReasonClientIDMismatch, fmt.Sprintf("client id %q must equal the device id", req.ClientID)}
		}
	default:
		// "@" cannot occur in a device id (or a user name), so no suffix makes
		// a monitor's or the gateway's client id equal a device's and take over
		// its session.
		if req.ClientID != user && !strings.HasPrefix(req.ClientID, user+ClientIDSeparator) {
			return MQTTIdentity{}, &Refusal{ReasonClientIDMismatch, fmt.Sprintf("client id %q must be %q or start with %q",
				req.ClientID, user, user+ClientIDSeparator)}
		}
	}
	if req.HasWill && !id.MayPublish(req.WillTopic) {
		return MQTTIdentity{}, &Refusal{ReasonACLPublish, "will topic " + strconv.Quote(truncateTopic(req.WillTopic))}
	}
	return id, nil
}

// ClientIDSeparator ends the user-name part of a gateway or monitor account's
// client id when it runs several connections ("ops@wall-1", "ops@laptop").
const ClientIDSeparator = "@"

func truncateTopic(t string) string {
	if len(t) > 200 {
		return t[:200] + "…"
	}
	return t
}

func (m *MQTTAuth) mac(user string, pw []byte) [32]byte {
	h := hmac.New(sha256.New, m.macKey)
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write(pw)
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func (m *MQTTAuth) verify(user, hash string, pw []byte) (bool, error) {
	now := m.clk.Now()
	mac := m.mac(user, pw)
	if m.ttl > 0 && m.size > 0 {
		m.mu.Lock()
		e, ok := m.cache[user]
		m.mu.Unlock()
		if ok && e.hash == hash && now.Before(e.expires) && hmac.Equal(e.mac[:], mac[:]) {
			m.cacheHits.WithLabelValues("hit").Inc()
			return true, nil
		}
	}
	m.cacheHits.WithLabelValues("miss").Inc()
	ok, err := VerifyMosquitto(hash, string(pw))
	if err != nil || !ok || m.ttl <= 0 || m.size <= 0 {
		return ok, err
	}
	m.mu.Lock()
	if _, present := m.cache[user]; !present && len(m.cache) >= m.size {
		for k, e := range m.cache { // expired first, else any: bounded, O(1) amortised
			delete(m.cache, k)
			m.evictions.Inc()
			if !now.Before(e.expires) || len(m.cache) < m.size {
				break
			}
		}
	}
	m.cache[user] = cacheEntry{hash: hash, mac: mac, expires: now.Add(m.ttl)}
	m.mu.Unlock()
	return true, nil
}

// Forget drops a cached verification (after a rotation or revocation the
// stored-hash check already misses; this frees the memory at once).
func (m *MQTTAuth) Forget(user string) {
	m.mu.Lock()
	delete(m.cache, user)
	m.mu.Unlock()
}

// Refuse counts a refusal and logs it, at most once per refusal_log_interval
// per (client, reason) so a misconfigured fleet cannot flood the log.
func (m *MQTTAuth) Refuse(who, remote string, rf *Refusal) {
	m.refused.WithLabelValues(rf.Reason).Inc()
	now := m.clk.Now()
	key := who + "\x00" + rf.Reason
	m.mu.Lock()
	last, seen := m.lastLog[key]
	logIt := !seen || now.Sub(last) >= m.logEvery
	if logIt {
		if len(m.lastLog) >= maxLimiterKeys {
			for k, t := range m.lastLog {
				if now.Sub(t) >= m.logEvery {
					delete(m.lastLog, k)
				}
			}
		}
		if len(m.lastLog) < maxLimiterKeys {
			m.lastLog[key] = now
		} else {
			logIt = false
		}
	}
	m.mu.Unlock()
	if logIt {
		m.log.Warn("mqtt refused", "client", who, "reason", rf.Reason, "detail", rf.Detail, "remote", remote)
	}
}
