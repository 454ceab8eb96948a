package testenv

import (
	"bytes"
	"strings"
	"sync"
)

// SyncBuffer is a log sink that a component's goroutines write and a test
// reads at the same time (bytes.Buffer alone is not safe for that).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Count returns how many times sub occurs in what was written.
func (s *SyncBuffer) Count(sub string) int { return strings.Count(s.String(), sub) }
