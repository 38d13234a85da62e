package logsink

import (
	"context"
	"sync"
	"time"

	"github.com/fnhq/fn/api"
)

// Memory is the in-process sink: the newest keep records of each app, lost with the process.
type Memory struct {
	mu     sync.Mutex
	keep   int
	next   int64
	recs   []api.LogRecord // id order; may hold more than keep per app until the next trim
	trimAt int             // len(recs) that triggers the next trim
	subs   map[*subscription]struct{}
	closed bool
}

var _ Sink = (*Memory)(nil)

// NewMemory returns an empty sink keeping the newest keep records of each app (at least 1).
func NewMemory(keep int) *Memory {
	keep = max(keep, 1)
	return &Memory{keep: keep, next: 1, trimAt: 2 * keep, subs: map[*subscription]struct{}{}}
}

// Append implements Sink.
func (m *Memory) Append(recs ...api.LogRecord) []api.LogRecord {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	out := make([]api.LogRecord, len(recs))
	for i, r := range recs {
		r = prepare(r, m.next, now)
		m.next++
		out[i] = r
		m.recs = append(m.recs, r)
		fanOut(m.subs, r)
	}
	if len(m.recs) >= m.trimAt {
		m.trim()
	}
	return out
}

// trim drops records beyond keep per app. It runs when the slice has doubled since the last
// trim, so its cost spreads over the appends in between.
func (m *Memory) trim() {
	seen := map[string]int{}
	kept := make([]api.LogRecord, 0, len(m.recs))
	for i := len(m.recs) - 1; i >= 0; i-- {
		r := m.recs[i]
		if seen[r.App]++; seen[r.App] <= m.keep {
			kept = append(kept, r)
		}
	}
	for i, j := 0, len(kept)-1; i < j; i, j = i+1, j-1 {
		kept[i], kept[j] = kept[j], kept[i]
	}
	m.recs = kept
	m.trimAt = max(2*len(kept), 2*m.keep)
}

// Query implements Sink.
func (m *Memory) Query(ctx context.Context, f Filter, limit int) ([]api.LogRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	// newest first, so that records past keep (not trimmed yet) are recognised and skipped
	seen := map[string]int{}
	var out []api.LogRecord
	for i := len(m.recs) - 1; i >= 0; i-- {
		r := m.recs[i]
		if r.ID <= f.After {
			break
		}
		if seen[r.App]++; seen[r.App] > m.keep || !f.Match(r) {
			continue
		}
		out = append(out, r)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return limitRecords(out, f, limit), nil
}

// limitRecords cuts an id-ordered result to limit: the oldest after f.After, else the newest.
func limitRecords(recs []api.LogRecord, f Filter, limit int) []api.LogRecord {
	if limit <= 0 || len(recs) <= limit {
		return recs
	}
	if f.After > 0 {
		return recs[:limit]
	}
	return recs[len(recs)-limit:]
}

// Subscribe implements Sink.
func (m *Memory) Subscribe(f Filter) (<-chan api.LogRecord, func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return closedChan(), func() {}
	}
	sub := subscribe(m.subs, f)
	return sub.ch, func() {
		m.mu.Lock()
		unsubscribe(m.subs, sub)
		m.mu.Unlock()
	}
}

// Close implements Sink.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for sub := range m.subs {
		unsubscribe(m.subs, sub)
	}
	m.recs = nil
	return nil
}
