// Package clock lets deadlines, escalations and health checks run on an
// injectable time source, so tests can fast-forward hours in microseconds.
//
// Components that act on time expose a deterministic step (e.g. RunDue(ctx, now))
// and a background loop that calls it with Clock.Now(); tests call the step directly
// after moving a Fake.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time. Everything inside Lookout is UTC.
type Clock interface {
	Now() time.Time
}

// Real is the wall clock.
type Real struct{}

// Now returns the current UTC time.
func (Real) Now() time.Time { return time.Now().UTC() }

// Fake is a manually driven clock for tests. The zero value starts at the zero time;
// use NewFake for a sensible start.
type Fake struct {
	mu sync.Mutex
	t  time.Time
}

// NewFake returns a Fake clock set to t.
func NewFake(t time.Time) *Fake { return &Fake{t: t.UTC()} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

// Set moves the clock to t.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	f.t = t.UTC()
	f.mu.Unlock()
}

// Advance moves the clock forward by d and returns the new time.
func (f *Fake) Advance(d time.Duration) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
	return f.t
}
