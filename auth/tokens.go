package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Token describes an API token (the secret itself is shown once, at creation).
type Token struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Device    string    `json:"device,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	LastUsed  time.Time `json:"last_used_at,omitzero"`
}

// TokenPrefix starts every API token so secret scanners and people recognise it.
const TokenPrefix = "lk_"

// TokenRequest asks for a new token. A person may mint tokens for their own role
// only; an admin may mint any role, including camera tokens (which must name
// their device).
type TokenRequest struct {
	Name   string        `json:"name"`
	Role   Role          `json:"role,omitempty"` // default: the owner's role
	Device string        `json:"device,omitempty"`
	TTL    time.Duration `json:"-"` // 0 = config token_ttl
}

// CreateToken mints a token for owner (acting with ownerRole) and returns it
// with its secret. The secret is stored only as a digest.
func (s *Store) CreateToken(ctx context.Context, owner string, ownerRole Role, req TokenRequest) (Token, string, error) {
	if req.Role == "" {
		req.Role = ownerRole
	}
	if req.Name == "" || len(req.Name) > 100 {
		return Token{}, "", fmt.Errorf("token name must be 1-100 bytes: %w", ErrInvalidInput)
	}
	switch {
	case req.Role == RoleCamera:
		if !ValidUsername(req.Device) {
			return Token{}, "", fmt.Errorf("a camera token needs a valid device id: %w", ErrInvalidInput)
		}
		if ownerRole != RoleAdmin && ownerRole != RoleMaintenance {
			return Token{}, "", fmt.Errorf("only maintenance or admin may mint camera tokens: %w", ErrNotAllowed)
		}
	case !ValidPersonRole(req.Role):
		return Token{}, "", fmt.Errorf("role %q: %w", req.Role, ErrInvalidInput)
	case req.Device != "":
		return Token{}, "", fmt.Errorf("device is only for camera tokens: %w", ErrInvalidInput)
	case ownerRole != RoleAdmin && req.Role != ownerRole:
		return Token{}, "", fmt.Errorf("a token cannot carry more than its owner's role: %w", ErrNotAllowed)
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = s.cfg.TokenTTL
	}
	now := s.clk.Now()
	t := Token{ID: RandomSecret(9), User: owner, Name: req.Name, Role: req.Role, Device: req.Device, CreatedAt: now.UTC()}
	var exp int64
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl).UTC()
		exp = unix(t.ExpiresAt)
	}
	secret := TokenPrefix + RandomSecret(32)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO auth_tokens(id, hash, user, name, role, device, created_at, expires_at)
		VALUES(?,?,?,?,?,?,?,?)`, t.ID, digest(secret), owner, t.Name, string(t.Role), t.Device, unix(now), exp); err != nil {
		return Token{}, "", fmt.Errorf("auth: create token: %w", err)
	}
	return t, secret, nil
}

// TokenPrincipal resolves a bearer token. The effective role is the token's,
// but never more than its owner currently holds (a demoted owner's admin token
// stops being admin).
func (s *Store) TokenPrincipal(ctx context.Context, secret string) (Principal, error) {
	if !strings.HasPrefix(secret, TokenPrefix) {
		return Principal{}, ErrBadCredentials
	}
	var id, user, role, device, urole string
	var exp int64
	var dis int
	err := s.db.QueryRowContext(ctx, `SELECT t.id, t.user, t.role, t.device, t.expires_at, u.role, u.disabled
		FROM auth_tokens t JOIN auth_users u ON u.name = t.user WHERE t.hash=?`, digest(secret)).
		Scan(&id, &user, &role, &device, &exp, &urole, &dis)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, ErrBadCredentials
	}
	if err != nil {
		return Principal{}, fmt.Errorf("auth: token: %w", err)
	}
	now := s.clk.Now()
	if dis != 0 || (exp > 0 && unix(now) >= exp) {
		return Principal{}, ErrBadCredentials
	}
	r := Role(role)
	owner := Role(urole)
	switch {
	case owner == RoleAdmin:
	case r == RoleCamera && owner == RoleMaintenance:
	case r == owner:
	default:
		return Principal{}, ErrBadCredentials
	}
	// last_used_at is informational; coarse (once a minute) to spare writes.
	_, _ = s.db.ExecContext(ctx, `UPDATE auth_tokens SET last_used_at=? WHERE id=? AND last_used_at < ?`,
		unix(now), id, unix(now.Add(-time.Minute)))
	return Principal{Name: user, Role: r, Device: device, Via: "token", TokenID: id}, nil
}

// ListTokens returns owner's tokens ("" = everybody's).
func (s *Store) ListTokens(ctx context.Context, owner string) ([]Token, error) {
	q := `SELECT id, user, name, role, device, created_at, expires_at, last_used_at FROM auth_tokens`
	var args []any
	if owner != "" {
		q += ` WHERE user=?`
		args = append(args, owner)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("auth: list tokens: %w", err)
	}
	defer rows.Close()
	out := []Token{}
	for rows.Next() {
		var t Token
		var role string
		var c, e, l int64
		if err := rows.Scan(&t.ID, &t.User, &t.Name, &role, &t.Device, &c, &e, &l); err != nil {
			return nil, fmt.Errorf("auth: list tokens: %w", err)
		}
		t.Role, t.CreatedAt, t.ExpiresAt, t.LastUsed = Role(role), fromUnix(c), fromUnix(e), fromUnix(l)
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken deletes a token; with owner != "" only that owner's token.
func (s *Store) RevokeToken(ctx context.Context, id, owner string) error {
	q := `DELETE FROM auth_tokens WHERE id=?`
	args := []any{id}
	if owner != "" {
		q += ` AND user=?`
		args = append(args, owner)
	}
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("auth: revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s: %w", id, ErrTokenNotFound)
	}
	return nil
}

// RevokeDevice removes what lets a device in: its MQTT account (device kind
// only) and every camera token that speaks for it. Called when the device is
// deleted from the registry, so a unit registered later under the same id
// starts without the old unit's secrets. It returns how many it removed.
func (s *Store) RevokeDevice(ctx context.Context, id string) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("auth: revoke device: %w", err)
	}
	defer tx.Rollback()
	n := 0
	for _, q := range []string{`DELETE FROM auth_mqtt WHERE username=? AND kind='device'`, `DELETE FROM auth_tokens WHERE device=?`} {
		res, err := tx.ExecContext(ctx, q, id)
		if err != nil {
			return 0, fmt.Errorf("auth: revoke device: %w", err)
		}
		k, _ := res.RowsAffected()
		n += int(k)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("auth: revoke device: %w", err)
	}
	return n, nil
}
