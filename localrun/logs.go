package localrun

import (
	"sync"
	"time"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/server"
)

// groupWait is how long a call's output waits for the call to be reported (far past any
// timeout), and how long a finished call's late output is still recognised as late.
const groupWait = time.Minute

// maxDone bounds the finished calls remembered for their late output: 16 384 ids, about 3 MB,
// a minute's worth up to ~270 calls/s (2 s of a load test at 8 000/s). Past that the oldest are
// forgotten sooner, and a late line of one of those waits groupWait before it prints, as output
// of an unreported call does.
const maxDone = 1 << 14

// logGroups holds each invocation's console output until the invocation ends, so that the
// request log shows one line per call with its output under it, even when calls overlap.
//
// started and done keep their ids in a queue in time order as well, so that what expires is
// found at the queue's front, and what has left the map since is dropped there. The maps alone
// had to be walked whole on every record: a function that logs a line per call took fn dev from
// 5 000 to 2 000 calls/s within 20 s. And done was only ever trimmed there, so that calls that
// logged nothing grew it without bound (22 MB of fn dev's live heap after 18 s at c = 32). A
// call in flight for long keeps the finished ones queued behind it, for a minute at most.
type logGroups struct {
	ev      DevEvents
	now     func() time.Time // time.Now; tests set it
	base    time.Time        // the queues' times are durations since it (monotonic: a clock step moves nothing)
	mu      sync.Mutex
	pending map[string][]engine.Record
	started map[string]int64 // ns since base
	done    map[string]int64 // recently finished (ns since base): their late logs print on their own
	starts  queue            // started, in the order of their first record
	dones   queue            // done, in the order they finished
}

// stamp is an id and the time (ns since base) that a map held for it when it was queued.
type stamp struct {
	rid string
	t   int64
}

// queue is a FIFO of stamps. An entry whose map value has changed since (the call finished,
// or finished again) is stale, and is dropped when it reaches the front.
type queue struct {
	items []stamp
	head  int
}

func (q *queue) push(s stamp) { q.items = append(q.items, s) }

func (q *queue) len() int { return len(q.items) - q.head }

func (q *queue) front() stamp { return q.items[q.head] }

func (q *queue) pop() {
	q.items[q.head] = stamp{}
	q.head++
	if q.head > 1024 && q.head*2 >= len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
}

// expire drops the front entries that are stale (m holds another time for their id, or none)
// or due; a due entry that is still live is handed to drop first.
func (q *queue) expire(m map[string]int64, due func(t int64) bool, drop func(rid string)) {
	for q.len() > 0 {
		s := q.front()
		if t, ok := m[s.rid]; ok && t == s.t {
			if !due(t) {
				return
			}
			drop(s.rid)
		}
		q.pop()
	}
}

func newLogGroups(ev DevEvents) *logGroups {
	return &logGroups{ev: ev, now: time.Now, base: time.Now(), pending: map[string][]engine.Record{}, started: map[string]int64{}, done: map[string]int64{}}
}

func (g *logGroups) clock() int64 { return int64(g.now().Sub(g.base)) }

// Record takes a log record of the environment's.
func (g *logGroups) Record(r engine.Record) {
	g.mu.Lock()
	now := g.clock()
	// a finished call is looked up before anything expires: a timer of a call that ended long
	// ago, in a fn dev that was idle since, still prints its line at once
	_, late := g.done[r.RequestID]
	orphans := g.expireLocked(now)
	if r.RequestID == "" || late {
		g.mu.Unlock()
		g.print(orphans)
		g.ev.Log(r)
		return
	}
	g.pending[r.RequestID] = append(g.pending[r.RequestID], r)
	if _, ok := g.started[r.RequestID]; !ok {
		g.started[r.RequestID] = now
		g.starts.push(stamp{r.RequestID, now})
	}
	g.mu.Unlock()
	g.print(orphans)
}

func (g *logGroups) print(recs []engine.Record) {
	for _, r := range recs {
		g.ev.Log(r)
	}
}

// expireLocked releases the groups whose invocation never reported, and forgets the finished
// calls that are no longer recent (or too many).
func (g *logGroups) expireLocked(now int64) []engine.Record {
	var out []engine.Record
	cutoff := now - int64(groupWait)
	// an entry whose call has reported since is dropped as soon as it is at the front: calls end
	// in about the order they start, so the queue holds little more than the calls in flight
	g.starts.expire(g.started, func(t int64) bool { return t < cutoff }, func(rid string) {
		out = append(out, g.pending[rid]...)
		delete(g.pending, rid)
		delete(g.started, rid)
	})
	g.dones.expire(g.done, func(t int64) bool { return t < cutoff || len(g.done) > maxDone }, func(rid string) {
		delete(g.done, rid)
	})
	return out
}

// Invocation reports a finished call with the output it produced.
func (g *logGroups) Invocation(inv server.Invocation) {
	g.mu.Lock()
	now := g.clock()
	orphans := g.expireLocked(now)
	recs := g.pending[inv.RequestID]
	delete(g.pending, inv.RequestID)
	delete(g.started, inv.RequestID)
	if inv.RequestID != "" {
		g.done[inv.RequestID] = now
		g.dones.push(stamp{inv.RequestID, now})
	}
	g.mu.Unlock()
	g.print(orphans)
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
	g.print(out)
}
