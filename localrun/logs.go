package localrun

import (
	"fmt"
	"sync"
	"time"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/logstream"
	"github.com/fnhq/fn/server"
)

// logGroups holds each invocation's console output until the invocation ends, so that the
// request log shows one line per call with its output under it, even when calls overlap.
type logGroups struct {
	ev      DevEvents
	ring    *logstream.Ring // what fn logs reads from fn dev
	mu      sync.Mutex
	pending map[string][]engine.Record
	started map[string]time.Time
	done    map[string]time.Time // recently finished: their late logs print on their own
	keep    map[string]bool      // fn invoke asked for this call's logs
	kept    map[string][]engine.Record
}

func newLogGroups(ev DevEvents) *logGroups {
	return &logGroups{ev: ev, ring: logstream.NewRing(10000), pending: map[string][]engine.Record{}, started: map[string]time.Time{}, done: map[string]time.Time{},
		keep: map[string]bool{}, kept: map[string][]engine.Record{}}
}

// record takes a log record from the engine.
func (g *logGroups) record(r engine.Record) {
	g.ring.Add(logstream.Record{Time: r.Time, Env: "dev", Function: r.Function, RequestID: r.RequestID, Level: r.Level, Message: r.Message})
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

// invocation reports a finished call with the output it produced.
func (g *logGroups) invocation(inv server.Invocation) {
	level := "info"
	msg := fmt.Sprintf("%s %d %.1fms", inv.Function, inv.Status, float64(inv.Duration.Microseconds())/1000)
	if !inv.OK {
		level, msg = "error", msg+" "+inv.Error
	}
	g.ring.Add(logstream.Record{Time: inv.Time, Env: "dev", Function: inv.Function, RequestID: inv.RequestID, Level: level, Message: msg,
		Invocation: true, Status: inv.Status, DurationMs: float64(inv.Duration.Microseconds()) / 1000})
	g.mu.Lock()
	recs := g.pending[inv.RequestID]
	delete(g.pending, inv.RequestID)
	delete(g.started, inv.RequestID)
	if inv.RequestID != "" {
		g.done[inv.RequestID] = time.Now()
	}
	if g.keep[inv.RequestID] {
		g.kept[inv.RequestID] = recs
	}
	g.mu.Unlock()
	g.ev.Invocation(inv, recs)
}

// capture asks to keep a call's logs for captured.
func (g *logGroups) capture(rid string) {
	g.mu.Lock()
	g.keep[rid] = true
	g.mu.Unlock()
}

func (g *logGroups) captured(rid string) []engine.Record {
	g.mu.Lock()
	defer g.mu.Unlock()
	recs := g.kept[rid]
	delete(g.kept, rid)
	delete(g.keep, rid)
	if recs == nil {
		recs = []engine.Record{}
	}
	return recs
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
