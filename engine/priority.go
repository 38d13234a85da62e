package engine

import (
	"context"
	"sync"
	"time"
)

// CPU priority of workers. Under a fault storm in one app (synchronous loops, heaps run out,
// crash loops) the misbehaving workers would take the CPU from every other app's calls. Two
// rules keep them behind: a call that runs past SlowCallAfter lowers its worker's priority
// (nice NiceDemoted on the worker's whole process group, every thread and child included) until
// it ends, and a function whose workers keep dying starts its replacements late (crashBackoff)
// and at that priority. Short calls, the normal case, never pay anything beyond one timer.
// Raising nice needs no privilege; lowering it back does (root, CAP_SYS_NICE or RLIMIT_NICE):
// without it a demoted worker stays demoted until it is replaced.

// SlowCallAfter is how long a call runs at normal priority before its worker is demoted.
var SlowCallAfter = 100 * time.Millisecond

// NiceDemoted is the nice value of a demoted worker (the lowest priority).
const NiceDemoted = 19

// priority is a worker's CPU priority state.
type priority struct {
	mu   sync.Mutex
	slow int  // calls in flight past SlowCallAfter
	base int  // the nice value the worker runs at when no call is slow
	cur  int  // the nice value last applied
	sink bool // lowering failed (unprivileged): the worker stays at cur
}

// setNiceLocked applies n to the worker's process group.
func (w *worker) setNiceLocked(n int) {
	if n == w.prio.cur || (n < w.prio.cur && w.prio.sink) || w.pid <= 0 {
		return
	}
	err := setGroupNice(w.pid, n)
	if err != nil {
		if n < w.prio.cur {
			w.prio.sink = true
		}
		return
	}
	w.prio.cur = n
}

// startNice sets the worker's base priority (a crash-looping function's replacement).
func (w *worker) startNice(n int) {
	w.prio.mu.Lock()
	defer w.prio.mu.Unlock()
	w.prio.base = n
	if w.prio.slow == 0 {
		w.setNiceLocked(n)
	}
}

// watchSlow demotes the worker if the call it is about to run takes longer than SlowCallAfter;
// the returned function (call it when the call ends) restores the priority.
func (w *worker) watchSlow() (end func()) {
	fired, done := false, false
	t := time.AfterFunc(SlowCallAfter, func() {
		w.prio.mu.Lock()
		defer w.prio.mu.Unlock()
		if done {
			return
		}
		fired = true
		w.prio.slow++
		w.setNiceLocked(NiceDemoted)
	})
	return func() {
		t.Stop()
		w.prio.mu.Lock()
		defer w.prio.mu.Unlock()
		done = true
		if fired {
			if w.prio.slow--; w.prio.slow == 0 {
				w.setNiceLocked(w.prio.base)
			}
		}
	}
}

// niceness is the worker's applied nice value (tests).
func (w *worker) niceness() int {
	w.prio.mu.Lock()
	defer w.prio.mu.Unlock()
	return w.prio.cur
}

// Crash loops: a function whose workers died CrashLoopDeaths times within CrashLoopWindow
// starts each further worker after a delay that doubles with every further death (from
// crashBackoffBase to crashBackoffMax), at NiceDemoted. Deaths age out of the window, so a
// function that stopped crashing starts its workers at once again.
const (
	CrashLoopWindow  = 10 * time.Second
	CrashLoopDeaths  = 3
	crashBackoffBase = 100 * time.Millisecond
	crashBackoffMax  = 2 * time.Second
)

// crashLog holds the recent unexpected deaths of one pool's workers.
type crashLog struct{ at []time.Time }

// note records a death at now.
func (c *crashLog) note(now time.Time) {
	c.prune(now)
	if len(c.at) < 64 {
		c.at = append(c.at, now)
	}
}

func (c *crashLog) prune(now time.Time) {
	i := 0
	for i < len(c.at) && now.Sub(c.at[i]) > CrashLoopWindow {
		i++
	}
	c.at = c.at[i:]
}

// backoff is how long the next worker waits before it starts, and at which nice value it runs.
func (c *crashLog) backoff(now time.Time) (delay time.Duration, nice int) {
	c.prune(now)
	n := len(c.at)
	if n < CrashLoopDeaths {
		return 0, 0
	}
	delay = crashBackoffBase
	for i := CrashLoopDeaths; i < n && delay < crashBackoffMax; i++ {
		delay *= 2
	}
	return min(delay, crashBackoffMax), NiceDemoted
}

// crashBackoff waits out the pool's crash-loop delay before a worker starts and returns the
// nice value it should start at.
func (p *pool) crashBackoff(ctx context.Context) (nice int, err error) {
	p.mu.Lock()
	delay, nice := p.crashes.backoff(time.Now())
	p.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return nice, nil
}

// takeSpare is Engine.takeSpare at the pool's nice value.
func (p *pool) takeSpare(ctx context.Context, v *version, nice int) *worker {
	w := p.e.takeSpare(ctx, v)
	if w != nil && nice > 0 {
		w.startNice(nice)
	}
	return w
}
