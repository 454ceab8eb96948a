package auth

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/errs"
	"github.com/lookoutfire/lookout/store"
)

// Sentinels; each wraps an errs kind so the HTTP edge maps it without knowing auth.
var (
	ErrBadCredentials = fmt.Errorf("bad credentials: %w", errs.ErrUnauthorized)
	ErrUserNotFound   = fmt.Errorf("user %w", errs.ErrNotFound)
	ErrUserExists     = fmt.Errorf("user already exists: %w", errs.ErrConflict)
	ErrLastAdmin      = fmt.Errorf("the last enabled admin cannot be removed or demoted: %w", errs.ErrConflict)
	ErrTokenNotFound  = fmt.Errorf("token %w", errs.ErrNotFound)
	ErrCredNotFound   = fmt.Errorf("mqtt credentials %w", errs.ErrNotFound)
	ErrMQTTKind       = fmt.Errorf("mqtt account kind cannot change: %w", errs.ErrConflict)
	ErrMQTTExists     = fmt.Errorf("mqtt account already exists: %w", errs.ErrConflict)
	ErrInvalidInput   = fmt.Errorf("auth input %w", errs.ErrInvalid)
	ErrNotAllowed     = fmt.Errorf("not allowed: %w", errs.ErrForbidden)
)

// migrations: append only (store.Migrate identifies steps by index).
var migrations = []string{
	`CREATE TABLE auth_users (
		name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL,
		disabled INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)`,
	`CREATE TABLE auth_sessions (
		id_hash BLOB PRIMARY KEY, user TEXT NOT NULL REFERENCES auth_users(name) ON DELETE CASCADE,
		created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)`,
	`CREATE TABLE auth_tokens (
		id TEXT PRIMARY KEY, hash BLOB NOT NULL UNIQUE,
		user TEXT NOT NULL REFERENCES auth_users(name) ON DELETE CASCADE,
		name TEXT NOT NULL, role TEXT NOT NULL, device TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, last_used_at INTEGER NOT NULL DEFAULT 0)`,
	`CREATE TABLE auth_mqtt (
		username TEXT PRIMARY KEY, kind TEXT NOT NULL, hash TEXT NOT NULL, created_at INTEGER NOT NULL)`,
	`CREATE TABLE auth_audit (
		seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,
		action TEXT NOT NULL, target TEXT NOT NULL, remote TEXT NOT NULL, status INTEGER NOT NULL, detail TEXT NOT NULL)`,
	`CREATE TRIGGER auth_audit_no_update BEFORE UPDATE ON auth_audit
		BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`,
	`CREATE TRIGGER auth_audit_no_delete BEFORE DELETE ON auth_audit
		BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`,
	`CREATE INDEX auth_audit_actor ON auth_audit(actor, seq)`,
}

// Store keeps users, sessions, API tokens, MQTT credentials and the audit log
// in the gateway's SQLite database. Secrets are never stored: passwords as
// argon2id/PBKDF2 hashes, session ids and tokens as SHA-256 digests (they are
// long random strings, so a fast digest suffices).
type Store struct {
	db  *sql.DB
	cfg Config
	clk clock.Clock
	// dummy is verified against when a user does not exist, so a login for an
	// unknown name costs the same as a wrong password.
	dummy string
	// hashing holds one token per argon2id check in progress: each takes 19 MiB
	// and a core for tens of milliseconds, so a burst of logins from many
	// addresses (each under the per-IP limit) waits here instead of taking
	// the gateway's memory. Overflow policy: wait, until the request ends.
	hashing chan struct{}
}

// passwordChecksPerCPU bounds concurrent password checks (see Store.hashing).
const passwordChecksPerCPU = 2

// OpenStore migrates the auth tables and returns the store.
func OpenStore(ctx context.Context, db *sql.DB, cfg Config, clk clock.Clock) (*Store, error) {
	if err := store.Migrate(ctx, db, "auth", migrations); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	dummy, err := HashPassword(RandomSecret(16))
	if err != nil {
		return nil, err
	}
	return &Store{db: db, cfg: cfg, clk: clk, dummy: dummy,
		hashing: make(chan struct{}, passwordChecksPerCPU*runtime.GOMAXPROCS(0))}, nil
}

// User is a person's account (never carries the hash out of the store).
type User struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func digest(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func unix(t time.Time) int64 { return t.UnixMilli() }
func fromUnix(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// CreateUser adds a person with a role and password.
func (s *Store) CreateUser(ctx context.Context, name string, role Role, password string) error {
	if !ValidUsername(name) {
		return fmt.Errorf("user name %q: want 1-64 of A-Z a-z 0-9 . _ -: %w", name, ErrInvalidInput)
	}
	if !ValidPersonRole(role) {
		return fmt.Errorf("role %q: want operator, maintenance, verifier or admin: %w", role, ErrInvalidInput)
	}
	if err := validPassword(password); err != nil {
		return err
	}
	h, err := HashPassword(password)
	if err != nil {
		return err
	}
	now := unix(s.clk.Now())
	_, err = s.db.ExecContext(ctx, `INSERT INTO auth_users(name, role, hash, created_at, updated_at) VALUES(?,?,?,?,?)`,
		name, string(role), h, now, now)
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") || strings.Contains(err.Error(), "PRIMARY KEY") {
			return fmt.Errorf("%s: %w", name, ErrUserExists)
		}
		return fmt.Errorf("auth: create user: %w", err)
	}
	return nil
}

// GetUser returns one user.
func (s *Store) GetUser(ctx context.Context, name string) (User, error) {
	var u User
	var role string
	var dis int
	var c, up int64
	err := s.db.QueryRowContext(ctx, `SELECT name, role, disabled, created_at, updated_at FROM auth_users WHERE name=?`, name).
		Scan(&u.Name, &role, &dis, &c, &up)
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("%s: %w", name, ErrUserNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("auth: get user: %w", err)
	}
	u.Role, u.Disabled, u.CreatedAt, u.UpdatedAt = Role(role), dis != 0, fromUnix(c), fromUnix(up)
	return u, nil
}

// ListUsers returns every user sorted by name.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, role, disabled, created_at, updated_at FROM auth_users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("auth: list users: %w", err)
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		var u User
		var role string
		var dis int
		var c, up int64
		if err := rows.Scan(&u.Name, &role, &dis, &c, &up); err != nil {
			return nil, fmt.Errorf("auth: list users: %w", err)
		}
		u.Role, u.Disabled, u.CreatedAt, u.UpdatedAt = Role(role), dis != 0, fromUnix(c), fromUnix(up)
		out = append(out, u)
	}
	return out, rows.Err()
}

// CountUsers reports how many accounts exist (bootstrap creates the first).
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("auth: count users: %w", err)
	}
	return n, nil
}

// UserUpdate changes some of a user's fields; nil fields stay.
type UserUpdate struct {
	Role     *Role   `json:"role,omitempty"`
	Password *string `json:"password,omitempty"`
	Disabled *bool   `json:"disabled,omitempty"`
}

// UpdateUser applies u in one transaction. Demoting or disabling the last
// enabled admin is refused (the gateway would lock everybody out). A password
// change or disabling ends the user's sessions.
func (s *Store) UpdateUser(ctx context.Context, name string, u UserUpdate) error {
	if u.Role != nil && !ValidPersonRole(*u.Role) {
		return fmt.Errorf("role %q: %w", *u.Role, ErrInvalidInput)
	}
	var hash string
	if u.Password != nil {
		if err := validPassword(*u.Password); err != nil {
			return err
		}
		h, err := HashPassword(*u.Password)
		if err != nil {
			return err
		}
		hash = h
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("auth: update user: %w", err)
	}
	defer tx.Rollback()
	role, dis, err := userState(ctx, tx, name)
	if errors.Is(err, ErrUserNotFound) {
		return err
	} else if err != nil {
		return fmt.Errorf("auth: update user: %w", err)
	}
	losesAdmin := Role(role) == RoleAdmin && dis == 0 &&
		((u.Role != nil && *u.Role != RoleAdmin) || (u.Disabled != nil && *u.Disabled))
	if losesAdmin {
		if err := lastAdminCheck(ctx, tx, name); err != nil {
			return err
		}
	}
	now := unix(s.clk.Now())
	if u.Role != nil {
		role = string(*u.Role)
	}
	if u.Disabled != nil {
		dis = 0
		if *u.Disabled {
			dis = 1
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE auth_users SET role=?, disabled=?, updated_at=? WHERE name=?`, role, dis, now, name); err != nil {
		return fmt.Errorf("auth: update user: %w", err)
	}
	if hash != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE auth_users SET hash=? WHERE name=?`, hash, name); err != nil {
			return fmt.Errorf("auth: update user: %w", err)
		}
	}
	if hash != "" || dis == 1 || u.Role != nil {
		if _, err := tx.ExecContext(ctx, `DELETE FROM auth_sessions WHERE user=?`, name); err != nil {
			return fmt.Errorf("auth: update user: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("auth: update user: %w", err)
	}
	return nil
}

// userState reads a user's role and disabled flag (1 = disabled) inside tx;
// ErrUserNotFound when there is no such user.
func userState(ctx context.Context, tx *sql.Tx, name string) (role string, dis int, err error) {
	err = tx.QueryRowContext(ctx, `SELECT role, disabled FROM auth_users WHERE name=?`, name).Scan(&role, &dis)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, fmt.Errorf("%s: %w", name, ErrUserNotFound)
	}
	return role, dis, err
}

func lastAdminCheck(ctx context.Context, tx *sql.Tx, except string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_users WHERE role='admin' AND disabled=0 AND name<>?`, except).Scan(&n); err != nil {
		return fmt.Errorf("auth: admin count: %w", err)
	}
	if n == 0 {
		return ErrLastAdmin
	}
	return nil
}

// DeleteUser removes an account with its sessions and tokens.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("auth: delete user: %w", err)
	}
	defer tx.Rollback()
	role, dis, err := userState(ctx, tx, name)
	if errors.Is(err, ErrUserNotFound) {
		return err
	} else if err != nil {
		return fmt.Errorf("auth: delete user: %w", err)
	}
	if Role(role) == RoleAdmin && dis == 0 {
		if err := lastAdminCheck(ctx, tx, name); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM auth_users WHERE name=?`, name); err != nil {
		return fmt.Errorf("auth: delete user: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("auth: delete user: %w", err)
	}
	return nil
}

// CheckPassword verifies a login. Unknown users, disabled users and wrong
// passwords are the same ErrBadCredentials, and cost the same time.
func (s *Store) CheckPassword(ctx context.Context, name, password string) (User, error) {
	select {
	case s.hashing <- struct{}{}:
		defer func() { <-s.hashing }()
	case <-ctx.Done():
		return User{}, fmt.Errorf("auth: check password: %w", ctx.Err())
	}
	var hash, role string
	var dis int
	err := s.db.QueryRowContext(ctx, `SELECT hash, role, disabled FROM auth_users WHERE name=?`, name).Scan(&hash, &role, &dis)
	if errors.Is(err, sql.ErrNoRows) {
		_, _ = VerifyPassword(s.dummy, password)
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, fmt.Errorf("auth: check password: %w", err)
	}
	ok, err := VerifyPassword(hash, password)
	if err != nil {
		return User{}, fmt.Errorf("auth: user %s: %w", name, err)
	}
	if !ok || dis != 0 {
		return User{}, ErrBadCredentials
	}
	return User{Name: name, Role: Role(role)}, nil
}

// NewSession starts a login session and returns its secret (the cookie value).
func (s *Store) NewSession(ctx context.Context, user string) (string, time.Time, error) {
	secret := RandomSecret(32)
	now := s.clk.Now()
	exp := now.Add(s.cfg.SessionTTL)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO auth_sessions(id_hash, user, created_at, expires_at) VALUES(?,?,?,?)`,
		digest(secret), user, unix(now), unix(exp)); err != nil {
		return "", time.Time{}, fmt.Errorf("auth: new session: %w", err)
	}
	return secret, exp, nil
}

// SessionPrincipal resolves a session cookie; expired, unknown or disabled → ErrBadCredentials.
func (s *Store) SessionPrincipal(ctx context.Context, secret string) (Principal, error) {
	var user, role string
	var dis int
	var exp int64
	err := s.db.QueryRowContext(ctx, `SELECT s.user, u.role, u.disabled, s.expires_at FROM auth_sessions s
		JOIN auth_users u ON u.name = s.user WHERE s.id_hash=?`, digest(secret)).Scan(&user, &role, &dis, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, ErrBadCredentials
	}
	if err != nil {
		return Principal{}, fmt.Errorf("auth: session: %w", err)
	}
	if dis != 0 || unix(s.clk.Now()) >= exp {
		return Principal{}, ErrBadCredentials
	}
	return Principal{Name: user, Role: Role(role), Via: "session"}, nil
}

// EndSession deletes a session (logout). Unknown sessions are not an error.
func (s *Store) EndSession(ctx context.Context, secret string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM auth_sessions WHERE id_hash=?`, digest(secret)); err != nil {
		return fmt.Errorf("auth: end session: %w", err)
	}
	return nil
}

// RunDue deletes expired sessions and tokens; call it periodically.
func (s *Store) RunDue(ctx context.Context, now time.Time) error {
	ms := unix(now)
	if _, err := s.db.ExecContext(ctx, `DELETE FROM auth_sessions WHERE expires_at <= ?`, ms); err != nil {
		return fmt.Errorf("auth: purge sessions: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM auth_tokens WHERE expires_at > 0 AND expires_at <= ?`, ms); err != nil {
		return fmt.Errorf("auth: purge tokens: %w", err)
	}
	return nil
}
