package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// AuditEntry is one line of the append-only audit log: who did what to which
// thing, from where, when. SQLite triggers refuse UPDATE and DELETE on the table.
type AuditEntry struct {
	Seq    int64             `json:"seq"`
	At     time.Time         `json:"at"`
	Actor  string            `json:"actor"` // user name, "system", or "-" (anonymous)
	Role   Role              `json:"role"`
	Action string            `json:"action"` // e.g. "alert.ack", "user.create"
	Target map[string]string `json:"target"` // route path values, e.g. {"id": "smoke-001"}
	Remote string            `json:"remote"`
	Status int               `json:"status"`
	Detail string            `json:"detail,omitempty"` // never a secret
}

// Audit appends one entry (At defaults to now).
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = s.clk.Now()
	}
	if e.Target == nil {
		e.Target = map[string]string{}
	}
	tgt, err := json.Marshal(e.Target)
	if err != nil {
		return fmt.Errorf("auth: audit target: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO auth_audit(at, actor, role, action, target, remote, status, detail)
		VALUES(?,?,?,?,?,?,?,?)`, unix(e.At), e.Actor, string(e.Role), e.Action, string(tgt), e.Remote, e.Status, e.Detail); err != nil {
		return fmt.Errorf("auth: audit: %w", err)
	}
	return nil
}

// AuditQuery selects entries newest first; zero fields match everything.
type AuditQuery struct {
	Actor  string
	Action string
	Before int64 // seq; 0 = from the newest
	Limit  int   // default 100, max 1000
}

// AuditList returns entries matching q, newest first.
func (s *Store) AuditList(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.Limit > 1000 {
		q.Limit = 1000
	}
	sqlq := `SELECT seq, at, actor, role, action, target, remote, status, detail FROM auth_audit WHERE 1=1`
	var args []any
	if q.Actor != "" {
		sqlq += ` AND actor=?`
		args = append(args, q.Actor)
	}
	if q.Action != "" {
		sqlq += ` AND action=?`
		args = append(args, q.Action)
	}
	if q.Before > 0 {
		sqlq += ` AND seq<?`
		args = append(args, q.Before)
	}
	sqlq += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, q.Limit)
	rows, err := s.db.QueryContext(ctx, sqlq, args...)
	if err != nil {
		return nil, fmt.Errorf("auth: audit list: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var at int64
		var role, tgt string
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &role, &e.Action, &tgt, &e.Remote, &e.Status, &e.Detail); err != nil {
			return nil, fmt.Errorf("auth: audit list: %w", err)
		}
		e.At, e.Role = fromUnix(at), Role(role)
		if err := json.Unmarshal([]byte(tgt), &e.Target); err != nil {
			return nil, fmt.Errorf("auth: audit row %d: %w", e.Seq, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
