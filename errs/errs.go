// Package errs holds the few error kinds that callers across Lookout branch on.
//
// Domain packages wrap these in their own sentinels (for example
// `var ErrDeviceNotFound = fmt.Errorf("device %w", errs.ErrNotFound)`), and only
// the HTTP edge (package web) turns a kind into a status code, so domain code
// never needs to know about HTTP.
package errs

import "errors"

var (
	// ErrNotFound: the named thing does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the caller's input is malformed or out of range.
	ErrInvalid = errors.New("invalid")
	// ErrConflict: the request clashes with current state (duplicate id, wrong lifecycle step).
	ErrConflict = errors.New("conflict")
	// ErrUnauthorized: no or bad credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: credentials are fine but the role does not allow it.
	ErrForbidden = errors.New("forbidden")
	// ErrTooLarge: the body or upload exceeds its limit.
	ErrTooLarge = errors.New("too large")
	// ErrUnavailable: a dependency or capacity limit stops us now; retry later.
	ErrUnavailable = errors.New("unavailable")
	// ErrRateLimited: the caller is sending too fast.
	ErrRateLimited = errors.New("rate limited")
)
