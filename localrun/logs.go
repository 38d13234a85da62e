package localrun

import (
	"sync"
	"time"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/server"
)

// logGroups holds each invocation's console output until the invocation ends, so that the
// request log shows one line per call with its output under it, even when calls overlap.
type logGroups struct {
	ev      DevEvents
	mu      sync.Mutex
	pending map[string][]engine.Record
	started map[string]time.Time
	done    map[string]time.Time // recently finished: their late logs print on their own
}

func newLogGroups(ev DevEvents) *logGroups {
	return &logGroups{ev: ev, pending: map[string][]engine.Record{}, started: map[string]time.Time{}, done: map[string]time.Time{}}
}

// Record takes a log record of the environment's.
func (g *logGroups) Record(r engine.Record) {
	g.mu.Lock()
	if r.RequestID == "" || !g.done[r.RequestID].IsZero() {
		g.mu.Unlock()
		g.ev.Log(r)
		return
	}
	g.pending[r.RequestID] = append(g.pending[r.RequestID], r)
	if _, ok := g.started[r.RequestID]; !ok {
		g.started[r.RequestID] = time.Now()
	}
	orphans := g.orphansLocked()
	g.mu.Unlock()
	for _, o := range orphans {
		g.ev.Log(o)
	}
}

// orphansLocked releases groups whose invocation never reported (a minute is far past any timeout).
func (g *logGroups) orphansLocked() []engine.Record {
	var out []engine.Record
	cutoff := time.Now().Add(-time.Minute)
	for rid, t := range g.started {
		if t.Before(cutoff) {
			out = append(out, g.pending[rid]...)
			delete(g.pending, rid)
			delete(g.started, rid)
		}
	}
	for rid, t := range g.done {
		if t.Before(cutoff) {
			delete(g.done, rid)
		}
	}
	return out
}

// Invocation reports a finished call with the output it produced.
func (g *logGroups) Invocation(inv server.Invocation) {
	g.mu.Lock()
	recs := g.pending[inv.RequestID]
	delete(g.pending, inv.RequestID)
	delete(g.started, inv.RequestID)
	if inv.RequestID != "" {
		g.done[inv.RequestID] = time.Now()
	}
	g.mu.Unlock()
	g.ev.Invocation(inv, recs)
}

// flushAll prints whatever is still held (at shutdown).
func (g *logGroups) flushAll() {
	g.mu.Lock()
	var out []engine.Record
	for rid, recs := range g.pending {
		out = append(out, recs...)
		delete(g.pending, rid)
	}
	g.mu.Unlock()
	for _, r := range out {
		g.ev.Log(r)
	}
}
