package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fnhq/fn/project"
)

// version is one loadable revision of a bundle.
type version struct {
	n    int64
	file string
	hash string
	cfg  project.FunctionConfig
	slot *spareSlot // the kind of spare this version's workers start from (slotFor)
}

// pool holds the workers of one bundle. A wx pool is exclusive: a worker runs one invocation at
// a time and the pool grows to MaxInstances on concurrent demand. A lean pool is shared: its
// workers take many invocations at once.
type pool struct {
	e         *Engine
	name      string
	exclusive bool

	mu        sync.Mutex
	cur       *version
	freshFrom int64 // workers on a version below this must be replaced, not reloaded
	workers   map[*worker]struct{}
	idle      []*worker
	starting  int
	waiters   []chan struct{}
	swapping  chan struct{}
	replacing bool
	closed    bool
	crashes   crashLog // recent unexpected deaths: crash-loop backoff (priority.go)

	// ready is closed once the pool has a version to serve, or failed to get its first one
	// (loadErr) or was closed: invocations that arrive during the first load wait for it.
	ready        chan struct{}
	loadErr      error
	readyWaiters atomic.Int32 // invocations waiting for ready (tests)
}

func newPool(e *Engine, name string) *pool {
	return &pool{e: e, name: name, exclusive: e.cfg.Dialect != project.Lean, workers: map[*worker]struct{}{}, ready: make(chan struct{})}
}

// setCurLocked makes v the version served.
func (p *pool) setCurLocked(v *version) {
	p.cur = v
	p.markReadyLocked()
}

func (p *pool) markReadyLocked() {
	select {
	case <-p.ready:
	default:
		close(p.ready)
	}
}

// failFirstLoad records why the pool never got a version and lets its waiters go.
func (p *pool) failFirstLoad(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil && p.loadErr == nil {
		p.loadErr = err
		p.markReadyLocked()
	}
}

// serving returns the version to serve, waiting while the first load runs.
func (p *pool) serving(ctx context.Context) (*version, error) {
	select {
	case <-p.ready:
	default:
		p.readyWaiters.Add(1)
		defer p.readyWaiters.Add(-1)
		select {
		case <-p.ready:
		case <-ctx.Done():
			return nil, &FunctionError{Kind: KindTimeout, Message: fmt.Sprintf("%s is still loading", p.name)}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil {
		return p.cur, nil
	}
	if fe, ok := p.loadErr.(*FunctionError); ok {
		return nil, &FunctionError{Kind: KindLoad, Message: fmt.Sprintf("%s failed to load: %s", p.name, fe.Message), Stack: fe.Stack}
	}
	if p.loadErr != nil {
		return nil, &FunctionError{Kind: KindLoad, Message: fmt.Sprintf("%s failed to load: %v", p.name, p.loadErr)}
	}
	return nil, ErrClosed
}

func (p *pool) current() *version {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// usesIdle reports whether the pool hands out whole workers from an idle list (one invocation
// per worker); otherwise workers are shared up to perWorker invocations each.
func (p *pool) usesIdle() bool { return p.exclusive && p.perWorker() == 1 }

// perWorker is how many invocations one worker takes at once: 1 for wx (unless the function
// sets concurrency), unbounded (0) for lean.
func (p *pool) perWorker() int {
	if !p.exclusive {
		return 0
	}
	if p.cur != nil && p.cur.cfg.Concurrency > 1 {
		return p.cur.cfg.Concurrency
	}
	return 1
}

func (p *pool) maxWorkers() int {
	if !p.exclusive {
		return p.e.cfg.LeanInstances
	}
	if p.cur != nil && p.cur.cfg.MaxInstances > 0 {
		return p.cur.cfg.MaxInstances
	}
	return project.DefaultMaxInstances
}

// wakeLocked wakes every goroutine waiting for a worker or for a swap to end.
func (p *pool) wakeLocked() {
	for _, ch := range p.waiters {
		close(ch)
	}
	p.waiters = nil
}

// wakeOneLocked wakes the longest waiting goroutine: a worker back in the idle list serves one
// caller, and waking all of them (32 callers on 4 workers) costs more than the call.
func (p *pool) wakeOneLocked() {
	if len(p.waiters) > 0 {
		close(p.waiters[0])
		p.waiters = p.waiters[1:]
	}
}

// leaveLocked takes a waiter that gave up off the list; one that had been woken already passes
// its wake on, so that an idle worker is not left waiting while others wait for it.
func (p *pool) leaveLocked(ch chan struct{}) {
	for i, c := range p.waiters {
		if c == ch {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			return
		}
	}
	p.wakeOneLocked()
}

// waitLocked queues a waiter: at the back, or at the front for one that was woken and lost the
// worker to a caller that came meanwhile (wakeOneLocked wakes the front one).
func (p *pool) waitLocked(front bool) chan struct{} {
	ch := make(chan struct{})
	if front {
		p.waiters = append([]chan struct{}{ch}, p.waiters...)
	} else {
		p.waiters = append(p.waiters, ch)
	}
	return ch
}

// spec builds the start parameters of a worker for version v.
func (p *pool) spec(v *version) workerSpec {
	return p.e.workerSpec(p.name, v.cfg.Memory, v.cfg.Env)
}

// workerSpec builds a worker's start parameters: the inherited variables (hostEnv), the engine's
// env, then the function's env.
func (e *Engine) workerSpec(name string, memory int, fnEnv map[string]string) workerSpec {
	cfg := e.cfg
	env := hostEnv(cfg.InheritEnv, cfg.ScratchDir, os.Environ())
	if cfg.Dialect == project.WX {
		// wx-server-sdk refuses to start without credentials; the emulator ignores signatures.
		env = append(env, "TENCENTCLOUD_SECRETID=AKIDfnlocal000000000000000000000000", "TENCENTCLOUD_SECRETKEY=fnlocal0000000000000000000000000",
			"TCB_ENV="+cfg.EnvID, "SCF_NAMESPACE="+cfg.EnvID)
	}
	for k, val := range cfg.Env {
		env = append(env, k+"="+val)
	}
	for k, val := range fnEnv {
		env = append(env, k+"="+val)
	}
	s := workerSpec{node: cfg.Node, runner: e.runner, dir: cfg.Dir, env: env, memoryMB: memory, name: name, sandbox: cfg.Sandbox, cache: cfg.CodeCacheDir, bundles: cfg.CodeCacheBundles}
	if cfg.Inspect != "" && (cfg.InspectOnly == "" || cfg.InspectOnly == name) {
		if e.inspect.Add(1) == 1 {
			s.inspect = cfg.Inspect
		} else {
			host := cfg.Inspect
			if i := strings.LastIndex(host, ":"); i >= 0 {
				host = host[:i]
			} else {
				host = "127.0.0.1"
			}
			s.inspect = host + ":0"
		}
	}
	return s
}

// inheritedEnv are the variables of fn's environment a worker gets: what Node and the programs a
// function may run need to work (Windows' among them), nothing that could hold a secret.
var inheritedEnv = map[string]bool{
	"PATH": true, "HOME": true, "LANG": true, "LANGUAGE": true, "TZ": true, "TMPDIR": true, "USER": true, "LOGNAME": true,
	// Windows
	"Path": true, "PATHEXT": true, "SYSTEMROOT": true, "SystemRoot": true, "WINDIR": true, "COMSPEC": true, "TEMP": true, "TMP": true,
	"USERPROFILE": true, "APPDATA": true, "LOCALAPPDATA": true,
}

// hostEnv is the part of fn's environment (environ) a worker starts with. With inherit, all of
// it but fn's own settings and NODE_OPTIONS; otherwise the allowlist. A scratch directory
// replaces HOME and the temporary directory.
func hostEnv(inherit bool, scratch string, environ []string) []string {
	env := make([]string, 0, 16)
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if scratch != "" && (k == "HOME" || k == "TMPDIR" || k == "USERPROFILE" || k == "TEMP" || k == "TMP") {
			continue
		}
		switch {
		case strings.HasPrefix(k, "FN_") || k == "NODE_OPTIONS":
		case inherit || inheritedEnv[k] || strings.HasPrefix(k, "LC_"):
			env = append(env, kv)
		}
	}
	if scratch != "" {
		env = append(env, "HOME="+scratch, "TMPDIR="+scratch, "USERPROFILE="+scratch, "TEMP="+scratch, "TMP="+scratch)
	}
	return env
}

// spawn starts a worker and loads version v into it.
func (p *pool) spawn(ctx context.Context, v *version) (*worker, error) {
	nice, err := p.crashBackoff(ctx)
	if err != nil {
		return nil, err
	}
	if w := p.takeSpare(ctx, v, nice); w != nil {
		// a pre-started worker: Node is up already, only the bundle (and its env) are missing
		w.spec.name = p.name
		w.owner.Store(p)
		env, _ := json.Marshal(v.cfg.Env)
		err := p.loadWith(ctx, w, v, env)
		if err == nil {
			return w, nil
		}
		w.kill()
		<-w.done
		var fe *FunctionError
		if errors.As(err, &fe) && fe.Kind == KindLoad {
			return nil, err // the bundle itself is broken: a fresh worker would fail the same way
		}
	}
	spec := p.spec(v)
	spec.nice = nice
	w, err := startWorker(ctx, spec, p.e.log, p.e.workerDied)
	if err != nil {
		return nil, err
	}
	w.owner.Store(p)
	if err := p.load(ctx, w, v); err != nil {
		w.kill()
		<-w.done
		return nil, err
	}
	return w, nil
}

// load evaluates version v inside worker w.
func (p *pool) load(ctx context.Context, w *worker, v *version) error {
	return p.loadWith(ctx, w, v, nil)
}

// loadWith loads version v, first setting env in the worker's process environment.
func (p *pool) loadWith(ctx context.Context, w *worker, v *version, env json.RawMessage) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var rp loadedMsg
	if err := w.call(ctx, newLoadMsg(p.name, v.file, v.n, string(p.e.cfg.Dialect), env, v.cfg.ModuleDir), &rp); err != nil {
		return err
	}
	if !rp.OK {
		fe := &FunctionError{Kind: KindLoad, Message: "the bundle failed to load"}
		if rp.Error != nil {
			fe.Message = rp.Error.Message
			fe.Stack = rp.Error.Stack
		}
		return fe
	}
	w.version = v.n
	if rp.Names != nil {
		p.e.setNames(rp.Names)
	}
	return nil
}

// reload brings an idle worker to the current version in place, or reports that it cannot.
func (p *pool) reload(ctx context.Context, w *worker, v *version) bool {
	if w.version == v.n {
		return true
	}
	if w.version < p.freshFrom || w.reloads >= p.e.cfg.MaxReloads {
		return false
	}
	if err := p.load(ctx, w, v); err != nil {
		return false
	}
	w.reloads++
	return true
}

// pickSharedLocked takes a shared worker for one more invocation: the least busy one, below the
// per-worker limit if there is one; nil when the caller should start a worker or wait.
func (p *pool) pickSharedLocked(v *version, limit int) *worker {
	var best *worker
	for w := range p.workers {
		if w.alive() && !w.retired.Load() && w.suspect.Load() == 0 && w.version == v.n && (best == nil || w.inflight.Load() < best.inflight.Load()) {
			best = w
		}
	}
	if best == nil || limit > 0 && int(best.inflight.Load()) >= limit {
		return nil
	}
	if limit > 0 || best.inflight.Load() == 0 || len(p.workers)+p.starting >= p.maxWorkers() {
		best.inflight.Add(1)
		return best
	}
	return nil
}

// acquireNow is acquire's common case, a worker free at once on the current version, without
// waiting, starting or reloading one; nil otherwise. Callers try it first so that the queue
// deadline (a timer and a context per call) is made only when they have to wait.
func (p *pool) acquireNow() *worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.cur
	if p.closed || p.swapping != nil || v == nil {
		return nil
	}
	limit := p.perWorker()
	if limit != 1 {
		return p.pickSharedLocked(v, limit)
	}
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	w := p.idle[n-1]
	if !w.alive() || w.version != v.n {
		return nil // acquire retires or reloads it
	}
	p.idle = p.idle[:n-1]
	w.inflight.Add(1)
	return w
}

// acquire returns a worker on the current version: for an exclusive pool one that runs nothing
// else until release; for a shared pool the least busy one.
func (p *pool) acquire(ctx context.Context) (*worker, error) {
	woken := false // a caller woken for a worker that another took first keeps its place
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if p.swapping != nil {
			ch := p.swapping
			p.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		v := p.cur
		limit := p.perWorker()
		if limit == 1 {
			if n := len(p.idle); n > 0 {
				w := p.idle[n-1]
				p.idle = p.idle[:n-1]
				p.mu.Unlock()
				if !w.alive() {
					continue
				}
				if !p.reload(ctx, w, v) {
					p.retire(w)
					continue
				}
				w.inflight.Add(1)
				return w, nil
			}
		} else if w := p.pickSharedLocked(v, limit); w != nil {
			p.mu.Unlock()
			return w, nil
		}
		if len(p.workers)+p.starting < p.maxWorkers() {
			p.starting++
			p.mu.Unlock()
			p.e.makeRoom()
			w, err := p.spawn(ctx, v)
			p.mu.Lock()
			p.starting--
			if err != nil {
				first := len(p.workers) == 0
				p.wakeLocked()
				p.mu.Unlock()
				var fe *FunctionError
				if errors.As(err, &fe) && fe.Kind == KindLoad && first {
					// a lazily registered bundle loads on its first call: say it is a load failure
					le := p.e.asLoadError(fe)
					return nil, &FunctionError{Kind: KindLoad, Message: fmt.Sprintf("function %s failed to load: %s", p.name, le.Message), Stack: le.Stack}
				}
				return nil, err
			}
			if p.closed || p.cur != v {
				p.mu.Unlock()
				w.stop(time.Second)
				continue
			}
			p.workers[w] = struct{}{}
			w.inflight.Add(1)
			p.mu.Unlock()
			return w, nil
		}
		ch := p.waitLocked(woken)
		p.mu.Unlock()
		select {
		case <-ch:
			woken = true
		case <-ctx.Done():
			p.mu.Lock()
			p.leaveLocked(ch)
			p.mu.Unlock()
			return nil, ctx.Err()
		}
	}
}

// release hands a worker back after an invocation. A worker retired by a swap while it was busy
// stops once its last invocation is done.
func (p *pool) release(w *worker) {
	n := w.inflight.Add(-1)
	w.lastUsed.Store(time.Now().UnixNano())
	p.mu.Lock()
	defer p.mu.Unlock()
	_, member := p.workers[w]
	switch {
	case !member || p.closed:
	case w.retired.Load() || !w.alive():
		if n == 0 {
			delete(p.workers, w)
			if w.alive() {
				p.e.stopLater(w)
			} // a dead worker is reaped by its own goroutine, which also starts a replacement
		}
	case p.usesIdle():
		p.idle = append(p.idle, w)
		if p.swapping == nil {
			p.wakeOneLocked()
			return
		}
	}
	p.wakeLocked()
}

// retire removes a worker and stops it in the background.
func (p *pool) retire(w *worker) {
	p.mu.Lock()
	delete(p.workers, w)
	p.wakeLocked()
	p.mu.Unlock()
	p.e.stopLater(w)
}

// onDeath runs when a worker's process has exited. An unexpected death starts one replacement
// (single-flight) so that the next caller finds a warm worker.
func (p *pool) onDeath(w *worker) {
	p.mu.Lock()
	_, member := p.workers[w]
	delete(p.workers, w)
	for i, iw := range p.idle {
		if iw == w {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			break
		}
	}
	// release may have removed a dead worker already: the death is still unexpected unless the
	// worker was retired or stopped on purpose
	unexpected := !w.retired.Load() && !p.closed
	if unexpected {
		p.crashes.note(time.Now())
	}
	start := unexpected && !p.replacing && p.cur != nil && len(p.workers)+p.starting < p.maxWorkers()
	if start {
		p.replacing = true
		p.starting++
	}
	v := p.cur
	p.wakeLocked()
	p.mu.Unlock()
	if member && !w.retired.Load() {
		p.e.note(p.name, "error", "worker "+strconv.Itoa(w.pid)+" died: "+w.deathError().Message)
	}
	if !start {
		return
	}
	p.e.background(func() {
		nw, err := p.spawn(context.Background(), v)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.starting--
		p.replacing = false
		if err != nil || p.closed || p.cur != v {
			if nw != nil {
				p.e.stopLater(nw)
			}
			p.wakeLocked()
			return
		}
		p.workers[nw] = struct{}{}
		if p.usesIdle() {
			p.idle = append(p.idle, nw)
		}
		p.wakeLocked()
	})
}

// swap makes v the pool's version. The fast path re-evaluates the bundle inside an existing
// worker; otherwise (first load, fresh requested, worker config changed) a new worker loads it.
// On failure the previous version keeps serving. New invocations wait while a swap runs.
func (p *pool) swap(ctx context.Context, v *version, opts LoadOptions) (fast bool, err error) {
	p.mu.Lock()
	for p.swapping != nil {
		ch := p.swapping
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		p.mu.Lock()
	}
	if opts.Lazy && len(p.workers) == 0 && p.starting == 0 {
		p.setCurLocked(v)
		p.freshFrom = v.n
		p.mu.Unlock()
		return false, nil
	}
	gate := make(chan struct{})
	p.swapping = gate
	prev := p.cur
	canFast := p.e.cfg.FastReload && !opts.Fresh && prev != nil && sameWorkerConfig(prev.cfg, v.cfg)
	var probe *worker
	if canFast {
		probe = p.probeLocked(ctx)
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.swapping = nil
		close(gate)
		p.wakeLocked()
		p.mu.Unlock()
	}()

	if probe != nil && probe.alive() && probe.reloads < p.e.cfg.MaxReloads {
		lerr := p.load(ctx, probe, v)
		p.mu.Lock()
		if p.usesIdle() {
			p.idle = append(p.idle, probe)
		}
		if lerr != nil {
			p.mu.Unlock()
			var fe *FunctionError
			if errors.As(lerr, &fe) && fe.Kind == KindLoad {
				return false, lerr
			}
			// the worker could not take the reload (stuck or dead): fall back to a fresh worker.
		} else {
			probe.reloads++
			p.setCurLocked(v)
			others := p.othersLocked(probe)
			p.mu.Unlock()
			if !p.usesIdle() {
				for _, w := range others {
					if !p.reload(ctx, w, v) {
						p.retire(w)
					}
				}
			}
			return true, nil
		}
	}

	w, err := p.spawn(ctx, v)
	if err != nil {
		return false, err
	}
	// Old workers are retired: idle ones stop now, busy ones finish their invocations on the old
	// code and stop on release.
	p.mu.Lock()
	p.setCurLocked(v)
	p.freshFrom = v.n
	var old []*worker
	for ow := range p.workers {
		ow.retired.Store(true)
		if ow.inflight.Load() == 0 {
			old = append(old, ow)
			delete(p.workers, ow)
		}
	}
	p.idle = p.idle[:0]
	p.workers[w] = struct{}{}
	if p.usesIdle() {
		p.idle = append(p.idle, w)
	}
	p.mu.Unlock()
	for _, ow := range old {
		p.e.stopLater(ow)
	}
	return false, nil
}

// probeLocked picks the worker that validates a fast reload. For an exclusive pool it waits (new
// invocations are held back by the swap gate) until a busy worker is released, for at most 2 s.
func (p *pool) probeLocked(ctx context.Context) *worker {
	if !p.usesIdle() {
		for w := range p.workers {
			if w.alive() && !w.retired.Load() {
				return w
			}
		}
		return nil
	}
	limit := time.NewTimer(2 * time.Second)
	defer limit.Stop()
	for {
		if n := len(p.idle); n > 0 {
			w := p.idle[n-1]
			p.idle = p.idle[:n-1]
			return w
		}
		if len(p.workers) == 0 {
			return nil
		}
		ch := p.waitLocked(false)
		p.mu.Unlock()
		select {
		case <-ch:
			p.mu.Lock()
		case <-limit.C:
			p.mu.Lock()
			return nil
		case <-ctx.Done():
			p.mu.Lock()
			return nil
		}
	}
}

func (p *pool) othersLocked(except *worker) []*worker {
	var ws []*worker
	for w := range p.workers {
		if w != except && w.alive() {
			ws = append(ws, w)
		}
	}
	return ws
}

// retireIdle stops workers idle for longer than d, keeping at least one (none with IdleRetireAll).
func (p *pool) retireIdle(d time.Duration) {
	keep := 1
	if p.e.cfg.IdleRetireAll && p.exclusive {
		keep = 0
	}
	p.mu.Lock()
	if len(p.idle) <= keep {
		p.mu.Unlock()
		return
	}
	sort.Slice(p.idle, func(i, j int) bool { return p.idle[i].lastUsed.Load() < p.idle[j].lastUsed.Load() })
	cutoff := time.Now().Add(-d).UnixNano()
	var stop []*worker
	for len(p.idle) > keep && p.idle[0].lastUsed.Load() < cutoff {
		w := p.idle[0]
		p.idle = p.idle[1:]
		delete(p.workers, w)
		stop = append(stop, w)
	}
	p.mu.Unlock()
	for _, w := range stop {
		w.stop(time.Second)
	}
}

// close stops the pool: new acquires fail, in-flight invocations get up to grace, then every
// worker is stopped and reaped.
func (p *pool) close(grace time.Duration) {
	p.mu.Lock()
	p.closed = true
	if p.cur == nil && p.loadErr == nil {
		p.loadErr = ErrClosed
	}
	p.markReadyLocked()
	p.wakeLocked()
	p.mu.Unlock()
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		busy := false
		p.mu.Lock()
		for w := range p.workers {
			if w.inflight.Load() > 0 && w.alive() {
				busy = true
			}
		}
		p.mu.Unlock()
		if !busy {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.mu.Lock()
	ws := make([]*worker, 0, len(p.workers))
	for w := range p.workers {
		ws = append(ws, w)
	}
	p.workers = map[*worker]struct{}{}
	p.idle = nil
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func(w *worker) { defer wg.Done(); w.stop(time.Second) }(w)
	}
	wg.Wait()
}
