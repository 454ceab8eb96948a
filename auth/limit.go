package auth

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/lookoutfire/lookout/errs"
)

// ErrThrottled is returned when a login or connection is refused for rate.
var ErrThrottled = fmt.Errorf("too many attempts: %w", errs.ErrRateLimited)

// maxLimiterKeys bounds every limiter's table. Overflow policy: expired keys are
// purged; if the table is still full, new keys are refused (fail closed) and the
// caller counts it — an attacker spraying source addresses cannot grow memory.
const maxLimiterKeys = 100_000

// WindowLimiter allows at most N events per key per fixed window. It takes the
// time as an argument so tests drive it with a fake clock.
type WindowLimiter struct {
	mu     sync.Mutex
	n      int
	window time.Duration
	keys   map[string]*window
	max    int
}

type window struct {
	start time.Time
	count int
}

// NewWindowLimiter allows n events per key per window.
func NewWindowLimiter(n int, win time.Duration) *WindowLimiter {
	return &WindowLimiter{n: n, window: win, keys: map[string]*window{}, max: maxLimiterKeys}
}

// Allow records one event for key at now and reports whether it is within the limit.
func (l *WindowLimiter) Allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.keys[key]
	if w == nil || now.Sub(w.start) >= l.window || now.Before(w.start) {
		if w == nil && len(l.keys) >= l.max {
			l.purgeLocked(now)
			if len(l.keys) >= l.max {
				return false
			}
		}
		w = &window{start: now}
		l.keys[key] = w
	}
	w.count++
	return w.count <= l.n
}

// RunDue drops finished windows.
func (l *WindowLimiter) RunDue(now time.Time) {
	l.mu.Lock()
	l.purgeLocked(now)
	l.mu.Unlock()
}

func (l *WindowLimiter) purgeLocked(now time.Time) {
	for k, w := range l.keys {
		if now.Sub(w.start) >= l.window {
			delete(l.keys, k)
		}
	}
}

// Len reports tracked keys (for tests and a gauge).
func (l *WindowLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// LoginLimiter throttles logins per source IP (all attempts) and per user name
// (failures: after N, the name is locked for a while even from other IPs, which
// stops distributed guessing of one account).
type LoginLimiter struct {
	perIP    *WindowLimiter
	failures int
	lockout  time.Duration

	mu    sync.Mutex
	users map[string]*failState
}

type failState struct {
	count       int
	first       time.Time
	lockedUntil time.Time
}

// NewLoginLimiter builds the limiter from the auth config.
func NewLoginLimiter(cfg Config) *LoginLimiter {
	return &LoginLimiter{perIP: NewWindowLimiter(cfg.LoginPerIPPerMinute, time.Minute),
		failures: cfg.LoginFailuresPerUser, lockout: cfg.LoginLockout, users: map[string]*failState{}}
}

// ThrottleError is ErrThrottled with how long to wait, for Retry-After.
type ThrottleError struct {
	Why        string
	RetryAfter time.Duration
}

func (e *ThrottleError) Error() string {
	return fmt.Sprintf("%s: %v; try again in %s", e.Why, ErrThrottled, e.RetryAfter.Round(time.Second))
}

// Unwrap makes a ThrottleError an ErrThrottled (and so errs.ErrRateLimited).
func (e *ThrottleError) Unwrap() error { return ErrThrottled }

// Allow is called before checking a password; a *ThrottleError (an
// ErrThrottled) means "do not even try" and says for how long.
func (l *LoginLimiter) Allow(ip, user string, now time.Time) error {
	if !l.perIP.Allow(SourceKey(ip), now) {
		return &ThrottleError{Why: "too many attempts from " + ip, RetryAfter: l.perIP.window}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.users[user]; f != nil && now.Before(f.lockedUntil) {
		return &ThrottleError{Why: "user locked after repeated wrong passwords", RetryAfter: f.lockedUntil.Sub(now)}
	}
	return nil
}

// Failed records a failed password for user.
func (l *LoginLimiter) Failed(user string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.users[user]
	if f == nil || now.Sub(f.first) >= l.lockout {
		if f == nil && len(l.users) >= maxLimiterKeys {
			l.purgeLocked(now)
			if len(l.users) >= maxLimiterKeys {
				return // table full of live entries: per-IP limit still applies
			}
		}
		f = &failState{first: now}
		l.users[user] = f
	}
	f.count++
	if f.count >= l.failures {
		f.lockedUntil = now.Add(l.lockout)
		f.count, f.first = 0, now
	}
}

// Succeeded clears user's failure count.
func (l *LoginLimiter) Succeeded(user string) {
	l.mu.Lock()
	delete(l.users, user)
	l.mu.Unlock()
}

// RunDue purges stale state.
func (l *LoginLimiter) RunDue(now time.Time) {
	l.perIP.RunDue(now)
	l.mu.Lock()
	l.purgeLocked(now)
	l.mu.Unlock()
}

func (l *LoginLimiter) purgeLocked(now time.Time) {
	for k, f := range l.users {
		if now.Sub(f.first) >= l.lockout && !now.Before(f.lockedUntil) {
			delete(l.users, k)
		}
	}
}

// SourceKey is the rate-limit key of a client address: the address itself for
// IPv4, its /64 for IPv6 — one host usually holds a whole /64 and could
// otherwise step around a per-address limit by changing addresses.
func SourceKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}
