package engine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fnhq/fn/project"
)

// A spare is a worker started ahead of need: Node is up and the runner loaded, but no bundle.
// When a pool needs a worker it takes the spare (only its bundle and env remain to load, a few
// milliseconds instead of a Node start), and a new spare starts in the background (the first
// ones after the engine's first load). There is
// one plain spare per engine, for functions with the default memory limit; --inspect turns it off.
//
// With Config.SDKSpare a second spare has the project's SDK (wx-server-sdk, or leanengine) required
// already, which is most of an SDK user's start. It goes only to a bundle that requires that
// package from the project's node_modules (dev builds leave it external) and sets no env of its
// own, so that the SDK's module state is what the function would have built itself: evaluated
// once in its own instance, with the same process.env.

// spareSlot keeps at most one spare of one kind.
type spareSlot struct {
	preload  string // package required before ready; "" for the plain spare
	ch       chan *worker
	starting bool // under Engine.spareMu
	gen      int  // under Engine.spareMu: a spare started before the latest drop is not used
}

func (e *Engine) spareEnabled() bool { return (e.cfg.Spare || e.cfg.Prestart) && e.cfg.Inspect == "" }

// sdkPackage is the package an SDK spare preloads for the engine's dialect.
func (e *Engine) sdkPackage() string {
	if e.cfg.Dialect == project.Lean {
		return "leanengine"
	}
	return "wx-server-sdk"
}

// newSpareSlots makes the plain slot and, with SDKSpare and the SDK installed in the project, the
// SDK slot.
func (e *Engine) newSpareSlots() []*spareSlot {
	slots := []*spareSlot{{ch: make(chan *worker, 1)}}
	if e.cfg.SDKSpare {
		if _, err := os.Stat(filepath.Join(e.cfg.Dir, "node_modules", e.sdkPackage(), "package.json")); err == nil {
			slots = append(slots, &spareSlot{preload: e.sdkPackage(), ch: make(chan *worker, 1)})
		}
	}
	return slots
}

// fillSpare starts the missing spares (single-flight per slot). An SDK spare starts only while
// some function would take it: a project that has the SDK installed but whose functions do not
// require it keeps no Node with the SDK loaded.
func (e *Engine) fillSpare() {
	if !e.spareEnabled() || !e.cfg.Spare {
		return
	}
	for i, s := range e.spares {
		if i == 0 || e.slotWanted(s) {
			e.fillSlot(s)
		} else {
			e.dropSlot(s) // no function takes it (any more)
		}
	}
}

// slotWanted reports whether a function's current version starts its workers from slot s.
func (e *Engine) slotWanted(s *spareSlot) bool {
	for _, p := range e.poolList() {
		if v := p.current(); v != nil && v.slot == s {
			return true
		}
	}
	return false
}

func (e *Engine) fillSlot(s *spareSlot) {
	if !e.spareEnabled() {
		return
	}
	e.spareMu.Lock()
	if s.starting || len(s.ch) > 0 || e.spareClosed {
		e.spareMu.Unlock()
		return
	}
	s.starting = true
	gen := s.gen
	e.spareWG.Add(1)
	e.spareMu.Unlock()
	go func() {
		defer e.spareWG.Done()
		spec := e.workerSpec("", project.DefaultMemory, nil)
		spec.preload = s.preload
		w, err := startWorker(e.spareCtx, spec, e.log, e.workerDied)
		e.spareMu.Lock()
		s.starting = false
		closed, stale := e.spareClosed, s.gen != gen
		e.spareMu.Unlock()
		if err != nil {
			return
		}
		if closed || stale {
			w.stop(time.Second)
			if stale && (s.preload == "" || e.slotWanted(s)) {
				e.fillSlot(s)
			}
			return
		}
		select {
		case s.ch <- w:
		default:
			w.stop(time.Second)
		}
	}()
}

// newVersion makes the next version of bundle b, loaded from file, and decides once which kind
// of spare its workers start from.
func (e *Engine) newVersion(file string, b Bundle) *version {
	v := &version{n: e.version.Add(1), file: file, hash: b.Hash, cfg: b.Config}
	v.slot = e.slotFor(v)
	return v
}

// slotFor picks the spare kind for version v: the SDK spare for a bundle that requires the SDK
// from the project and brings no env, the plain one otherwise.
func (e *Engine) slotFor(v *version) *spareSlot {
	for _, s := range e.spares[1:] {
		if len(v.cfg.Env) == 0 && requiresProjectPackage(v, s.preload) {
			return s
		}
	}
	return e.spares[0]
}

// requiresProjectPackage reports whether a dev bundle requires pkg by name (esbuild's output, or
// the in-place loader of lean cloud code) and would find the project's copy (a wx function folder with its own copy of the package resolves that one).
func requiresProjectPackage(v *version, pkg string) bool {
	if v.cfg.ModuleDir != "" {
		if _, err := os.Stat(filepath.Join(v.cfg.ModuleDir, "node_modules", pkg)); err == nil {
			return false
		}
	}
	b, err := os.ReadFile(v.file)
	if err != nil {
		return false
	}
	for _, form := range []string{`require("%s")`, `require('%s')`, `require.resolve("%s"`, `require.resolve('%s'`} {
		if bytes.Contains(b, []byte(strings.Replace(form, "%s", pkg, 1))) {
			return true
		}
	}
	return false
}

// takeSpare hands out the spare for version v with the given memory limit, if there is one;
// when that spare is being started it waits for it rather than starting a second Node.
func (e *Engine) takeSpare(ctx context.Context, v *version) *worker {
	if !e.spareEnabled() || v.cfg.Memory != project.DefaultMemory {
		return nil
	}
	s := v.slot
	defer func() {
		// during the engine's first load a new spare would compete with the workers loading
		// (Load starts the spares when it ends)
		if e.loadedOnce.Load() && e.cfg.Spare {
			e.fillSlot(s)
		}
	}()
	for {
		e.spareMu.Lock()
		starting := s.starting
		e.spareMu.Unlock()
		if !starting {
			select {
			case w := <-s.ch:
				if w.alive() {
					return w
				}
				continue
			default:
				return nil
			}
		}
		select {
		case w := <-s.ch:
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

// dropSDKSpares stops the SDK spares (they hold packages that changed) and starts new ones.
func (e *Engine) dropSDKSpares() {
	for _, s := range e.spares[1:] {
		e.dropSlot(s)
		if e.cfg.Spare && e.loadedOnce.Load() && e.slotWanted(s) {
			e.fillSlot(s) // otherwise the end of the load starts it
		}
	}
}

// dropSlot stops slot s's spare; one being started stops once it is up.
func (e *Engine) dropSlot(s *spareSlot) {
	e.spareMu.Lock()
	s.gen++
	e.spareMu.Unlock()
	select {
	case w := <-s.ch:
		e.stopLater(w)
	default:
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

// closeSpare stops the spares and prevents new ones.
func (e *Engine) closeSpare() {
	e.spareMu.Lock()
	e.spareClosed = true
	e.spareMu.Unlock()
	e.spareCancel()  // a spare being started is killed at once…
	e.spareWG.Wait() // …and reaped by its starter
	for _, s := range e.spares {
		for done := false; !done; {
			select {
			case w := <-s.ch:
				w.stop(time.Second)
			default:
				done = true
			}
		}
	}
}

// SpareReady reports whether every spare is waiting (benchmarks).
func (e *Engine) SpareReady() bool {
	for _, s := range e.spares {
		if len(s.ch) == 0 {
			return false
		}
	}
	return true
}
