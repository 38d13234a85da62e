package engine

import (
	"context"
	"time"

	"github.com/fnhq/fn/project"
)

// A spare is a worker started ahead of need: Node is up and the runner loaded, but no bundle.
// When a pool needs a worker it takes the spare (only its bundle and env remain to load, a few
// milliseconds instead of a Node start), and a new spare starts in the background. There is
// one spare per engine, for functions with the default memory limit; --inspect turns it off.

func (e *Engine) spareEnabled() bool { return e.cfg.Spare && e.cfg.Inspect == "" }

// fillSpare starts a spare unless one exists or is starting (single-flight).
func (e *Engine) fillSpare() {
	if !e.spareEnabled() {
		return
	}
	e.spareMu.Lock()
	if e.spareStarting || len(e.spare) > 0 || e.spareClosed {
		e.spareMu.Unlock()
		return
	}
	e.spareStarting = true
	e.spareWG.Add(1)
	e.spareMu.Unlock()
	go func() {
		defer e.spareWG.Done()
		w, err := startWorker(e.spareCtx, e.workerSpec("", project.DefaultMemory, nil), e.log, e.workerDied)
		e.spareMu.Lock()
		e.spareStarting = false
		closed := e.spareClosed
		e.spareMu.Unlock()
		if err != nil {
			return
		}
		if closed {
			w.stop(time.Second)
			return
		}
		select {
		case e.spare <- w:
		default:
			w.stop(time.Second)
		}
	}()
}

// takeSpare hands out the spare for a function with the given memory limit, if there is one;
// when a spare is being started it waits for it rather than starting a second Node.
func (e *Engine) takeSpare(ctx context.Context, memory int) *worker {
	if !e.spareEnabled() || memory != project.DefaultMemory {
		return nil
	}
	defer e.fillSpare()
	for {
		e.spareMu.Lock()
		starting := e.spareStarting
		e.spareMu.Unlock()
		if !starting {
			select {
			case w := <-e.spare:
				if w.alive() {
					return w
				}
				continue
			default:
				return nil
			}
		}
		select {
		case w := <-e.spare:
			if w.alive() {
				return w
			}
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond):
			// re-check: the start may have failed
		}
	}
}

// workerDied routes a worker's death to its pool; a spare that dies is simply replaced.
func (e *Engine) workerDied(w *worker) {
	if p := w.owner.Load(); p != nil {
		p.onDeath(w)
		return
	}
	e.fillSpare()
}

// closeSpare stops the spare and prevents new ones.
func (e *Engine) closeSpare() {
	e.spareMu.Lock()
	e.spareClosed = true
	e.spareMu.Unlock()
	e.spareCancel()  // a spare being started is killed at once…
	e.spareWG.Wait() // …and reaped by its starter
	for {
		select {
		case w := <-e.spare:
			w.stop(time.Second)
		default:
			return
		}
	}
}

// SpareReady reports whether a spare worker is waiting (benchmarks).
func (e *Engine) SpareReady() bool { return len(e.spare) > 0 }
