// Package lease decides which replica runs a timer's scheduled fire: exactly one claim per
// (timer, scheduled time) wins, so N replicas running the same schedule fire it once. The memory
// backend serves one process; the PostgreSQL one a cluster.
package lease

import (
	"context"
	"sync"
	"time"
)

// Lease is a timer-fire claim backend.
type Lease interface {
	// Claim reports whether the caller won the fire of timer key scheduled at at. Exactly one
	// of any number of concurrent or later claims of the same (key, at) wins.
	Claim(ctx context.Context, key string, at time.Time) (bool, error)
}

// Memory is the lease of a single process.
type Memory struct {
	mu      sync.Mutex
	claimed map[string]time.Time // key → latest claimed fire time
}

// NewMemory returns an empty in-process lease.
func NewMemory() *Memory { return &Memory{claimed: map[string]time.Time{}} }

// Claim wins once per (key, at); fire times at or before the latest claimed one of key lose, as
// a schedule only moves forward.
func (m *Memory) Claim(ctx context.Context, key string, at time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if last, ok := m.claimed[key]; ok && !at.After(last) {
		return false, nil
	}
	m.claimed[key] = at
	return true, nil
}
