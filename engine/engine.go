// Package engine runs function code in long-lived Node.js worker processes that it starts,
// supervises and replaces. It speaks newline-delimited JSON with each worker over two extra pipes
// (fd 3 and 4), owns every deadline, captures console output as structured records, maps stack
// traces back to the original sources, and swaps code without dropping in-flight invocations.
//
// One Engine serves one project (or one deployed app environment). fn invoke, fn dev and fn serve
// all use it; it never prints and knows nothing about HTTP.
package engine

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fnhq/fn/project"
)

//go:embed runner.js
var runnerJS []byte

// Error kinds of a failed invocation.
const (
	KindException       = "exception"        // the function threw or rejected
	KindTimeout         = "timeout"          // the deadline passed
	KindCrash           = "crash"            // the worker died (process.exit, uncaught exception, …)
	KindMemory          = "memory"           // the worker exceeded its heap limit
	KindTooLarge        = "too-large"        // the result is over 1 MB
	KindNotSerializable = "not-serializable" // the result cannot be sent as JSON
	KindNotFound        = "not-found"        // no such function
	KindLoad            = "load"             // the bundle failed to load
	KindBadRequest      = "bad-request"      // the call itself is wrong (e.g. data not an object)
)

// FunctionError is why an invocation failed.
type FunctionError struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	Stack   string `json:"stack,omitempty"`
}

func (e *FunctionError) Error() string { return e.Message }

// Record is one log line of a function: a console call or a line of raw stdout/stderr.
type Record struct {
	Time      time.Time `json:"time"`
	Level     string    `json:"level"` // debug, info, warn, error
	Function  string    `json:"function"`
	RequestID string    `json:"requestId,omitempty"`
	Message   string    `json:"message"`
	Stream    string    `json:"stream"` // console, stdout, stderr or fn (the engine's own notes)
	PID       int       `json:"pid"`
}

// Config sets up an Engine.
type Config struct {
	Node    string          // node executable
	Dir     string          // project directory: workers' working directory, base of mapped paths
	Dialect project.Dialect // wx or lean
	EnvID   string          // wx environment id (TCB_ENV); also the lean LEANCLOUD_APP_ENV
	// Env is added to every worker's environment (after the few inherited variables, before each
	// function's own env). The embedding server puts TCB_CONTEXT_CNFG or LEANCLOUD_* here.
	// NODE_* variables reach workers only from here (or a function's env) unless InheritEnv.
	Env map[string]string
	// RunnerDir is where the embedded runner.js is written (default: the user cache directory).
	RunnerDir string
	// Logs receives every log record. It must not block for long.
	Logs func(Record)
	// FastReload re-evaluates changed bundles inside running workers (dev builds, whose packages
	// stay in node_modules). Without it every change starts fresh workers.
	FastReload bool
	// MaxReloads is how many fast reloads a worker takes before it is replaced (default 50).
	MaxReloads int
	// IdleTimeout retires idle workers beyond the first of each function (0: never).
	IdleTimeout time.Duration
	// IdleRetireAll makes IdleTimeout retire the first worker of a wx function too: its next
	// call starts one again (fn serve, whose wx functions load lazily).
	IdleRetireAll bool
	// MaxWorkers caps the engine's workers (0: no cap): before a wx function starts a worker
	// beyond it, the least recently used idle workers of other functions stop.
	MaxWorkers int
	// HealthTimeout bounds the ping after a timeout that decides whether a worker is stuck (200 ms).
	HealthTimeout time.Duration
	// Inspect passes --inspect to workers: "127.0.0.1:9229" gives the first worker that address
	// and later ones a free port.
	Inspect string
	// InspectOnly limits the inspector to one function's workers ("" for every function).
	InspectOnly string
	// LeanInstances is how many workers share a lean project's invocations (default 1).
	LeanInstances int
	// Spare keeps one pre-started worker so that a new worker (a first call, a replacement,
	// a fresh-worker reload) does not wait for Node to start.
	Spare bool
	// Prestart starts the plain spare at New rather than after the first load (the caller builds
	// meanwhile); without Spare it is the only one, never replaced.
	Prestart bool
	// SDKSpare adds a second spare with the project's SDK required (wx-server-sdk or leanengine,
	// from the project's node_modules) for the bundles that require it: dev builds, which leave
	// packages external (spare.go says when it is used).
	SDKSpare bool
	// InheritEnv gives workers fn's whole environment (less FN_* and NODE_OPTIONS), as a
	// developer's own machine may want (fn dev). Without it a worker sees only PATH, the locale
	// and time zone (LANG, LC_*, TZ), HOME and the temporary directory, plus Env and each
	// function's env: a server's secrets stay out of function code.
	InheritEnv bool
	// ScratchDir, when set, is the workers' HOME and TMPDIR (created if missing), so that
	// function code writes nowhere else by default.
	ScratchDir string
	// Sandbox, when set, may rewrite each worker's command before it starts (cmd.Path is node,
	// cmd.Dir the working directory, cmd.Env final): fn serve starts workers through its
	// confining trampoline (package sandbox). An error fails that worker's start.
	Sandbox func(*exec.Cmd) error
	// CodeCacheDir, when set, keeps V8's compiled code of the CommonJS files workers require from
	// node_modules (an SDK: hundreds of files), so that a new worker compiles less of it. The
	// workers create it and write it (it must be writable by them and private to the app);
	// stale, corrupt or unwritable entries only cost the time they would have saved. Node 22.1+
	// keeps its own compile cache there (module.enableCompileCache).
	CodeCacheDir string
	// CodeCacheBundles adds the bundles themselves to the code cache, keyed by their content: fn
	// serve, whose released bundles (packages included) never change. Not for bundles rebuilt at
	// every save (fn dev), which would only churn the cache.
	CodeCacheBundles bool
}

// Bundle is one loadable unit: a wx function, or a lean project's cloud code.
type Bundle struct {
	Name   string                 // function name (wx) or project.LeanBundleName
	File   string                 // absolute path of the bundle
	Hash   string                 // content hash; an unchanged hash is not reloaded
	Config project.FunctionConfig // timeout, memory, max instances, env
}

// Engine runs the bundles of one project.
type Engine struct {
	cfg    Config
	runner string
	mapper *mapper

	snapMu sync.Mutex
	snaps  map[string][]string // fn dev's bundle snapshots per bundle, newest last

	mu    sync.Mutex
	pools map[string]*pool
	// failed holds why a bundle that never loaded failed, so that its callers hear that
	// instead of "not found"
	failed  map[string]*FunctionError
	names   []string // lean: function names in the registry
	closed  bool
	version atomic.Int64
	inspect atomic.Int32
	callers sync.Map // WX_API_TOKEN → WXCaller, while the invocation runs
	budgets budgets  // log volume per invocation in flight

	stopReaper chan struct{}
	reaperDone chan struct{}

	spares      []*spareSlot // [0] plain, then the SDK spare (spare.go)
	spareMu     sync.Mutex
	spareClosed bool
	loadedOnce  atomic.Bool // the first Load has ended: spares may start
	spareWG     sync.WaitGroup
	stopping    stops // goroutines starting or stopping workers in the background (background)
	spareCtx    context.Context
	spareCancel context.CancelFunc
}

// ErrClosed is returned by calls on a closed engine.
var ErrClosed = errors.New("engine is closed")

// New prepares an engine. No worker starts until Load.
func New(cfg Config) (*Engine, error) {
	if cfg.Node == "" {
		return nil, errors.New("engine: no node executable")
	}
	if cfg.MaxReloads == 0 {
		cfg.MaxReloads = 50
	}
	if cfg.HealthTimeout == 0 {
		cfg.HealthTimeout = 200 * time.Millisecond
	}
	if cfg.LeanInstances == 0 {
		cfg.LeanInstances = 1
	}
	becomeSubreaper()
	if cfg.CodeCacheDir != "" {
		// workers resolve it against their own working directory otherwise
		abs, err := filepath.Abs(cfg.CodeCacheDir)
		if err != nil {
			return nil, fmt.Errorf("engine: code cache directory: %w", err)
		}
		cfg.CodeCacheDir = abs
	}
	if cfg.ScratchDir != "" {
		if err := os.MkdirAll(cfg.ScratchDir, 0o700); err != nil {
			return nil, fmt.Errorf("engine: scratch directory: %w", err)
		}
	}
	runner, err := writeRunner(cfg.RunnerDir)
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, runner: runner, pools: map[string]*pool{}, mapper: newMapper(cfg.Dir),
		stopReaper: make(chan struct{}), reaperDone: make(chan struct{})}
	e.stopping.zero.L = &e.stopping.mu
	e.spares = e.newSpareSlots()
	e.spareCtx, e.spareCancel = context.WithCancel(context.Background())
	go e.reap()
	// the spares start once the first load is done: before, they would only take CPU from the
	// workers the first load is waiting for (fn dev is ready when those are). A prestarted one
	// starts now, while the caller is still building what the first load needs.
	if cfg.Prestart {
		e.fillSlot(e.spares[0])
	}
	return e, nil
}

// writeRunner puts the embedded runner where node can load it, named by its content hash.
func writeRunner(dir string) (string, error) {
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir = filepath.Join(cache, "fn")
	}
	sum := sha256.Sum256(runnerJS)
	path := filepath.Join(dir, "runner-"+hex.EncodeToString(sum[:6])+".js")
	if b, err := os.ReadFile(path); err == nil && string(b) == string(runnerJS) {
		return path, nil
	}
	// 0700/0600: the runner may live inside fn serve's data directory, which only fn's user reads
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".runner-*")
	if err != nil {
		return "", err
	}
	if _, err := tmp.Write(runnerJS); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	tmp.Close()
	os.Chmod(tmp.Name(), 0o600)
	return path, os.Rename(tmp.Name(), path)
}

// LoadOptions tune a Load.
type LoadOptions struct {
	// Fresh starts new workers for every changed bundle even when FastReload is on (a dependency
	// or the configuration changed).
	Fresh bool
	// FreshOnly, when set, limits Fresh to the bundles it accepts (the dependencies changed:
	// a bundle that loads nothing from node_modules keeps its workers). The SDK spares are
	// dropped either way.
	FreshOnly func(bundle string) bool
	// Lazy registers bundles without starting workers: a bundle's first worker starts (and loads
	// it) on its first invocation. Load errors then surface on that invocation.
	Lazy bool
	// Eager names the bundles that load now even with Lazy (one-shot fn invoke: the called
	// function's load error is the call's answer; its siblings start only if it calls them).
	Eager []string
	// Registered is called once every bundle has its pool, before any has loaded: from then on a
	// call to one of them waits for its own load (fn dev serves while its functions load).
	Registered func()
}

// LoadError lists bundles that failed to load; the others were loaded.
type LoadError struct {
	Errors map[string]*FunctionError // bundle name → error (message and mapped stack)
}

func (e *LoadError) Error() string {
	names := make([]string, 0, len(e.Errors))
	for n := range e.Errors {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		fe := e.Errors[n]
		parts[i] = fmt.Sprintf("%s failed to load: %s", n, fe.Message)
		if fe.Stack != "" {
			parts[i] += "\n" + indent(fe.Stack)
		}
	}
	return strings.Join(parts, "\n")
}

// snapshot copies a bundle (and its source map) to a file named by its content hash beside it.
func snapshot(file, hash string) (string, error) {
	if len(hash) < 12 {
		return "", errors.New("no content hash")
	}
	snap := strings.TrimSuffix(file, ".js") + "." + hash[:12] + ".js"
	for _, pair := range [][2]string{{file, snap}, {file + ".map", snap + ".map"}} {
		b, err := os.ReadFile(pair[0])
		if err != nil {
			if pair[0] == file || !errors.Is(err, os.ErrNotExist) {
				return "", err
			}
			continue
		}
		if err := os.WriteFile(pair[1], b, 0o600); err != nil {
			return "", err
		}
	}
	return snap, nil
}

// keepSnapshot remembers a bundle's snapshot and removes the oldest beyond the last 16: a worker
// that is still starting on a recent version, or an in-flight call mapping its stack through a
// recent source map, needs its file. Close removes the rest.
func (e *Engine) keepSnapshot(name, file string) {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	list := slices.DeleteFunc(e.snaps[name], func(f string) bool { return f == file })
	list = append(list, file)
	for len(list) > 16 {
		os.Remove(list[0])
		os.Remove(list[0] + ".map")
		list = list[1:]
	}
	if e.snaps == nil {
		e.snaps = map[string][]string{}
	}
	e.snaps[name] = list
}

// removeSnapshots deletes every snapshot (the engine is closed).
func (e *Engine) removeSnapshots() {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	for _, list := range e.snaps {
		for _, f := range list {
			os.Remove(f)
			os.Remove(f + ".map")
		}
	}
	e.snaps = nil
}

// LoadReport says what a Load did.
type LoadReport struct {
	Loaded    []string      `json:"loaded"`    // bundles whose new code now serves
	Unchanged []string      `json:"unchanged"` // same hash and config: nothing done
	Removed   []string      `json:"removed"`
	Fast      bool          `json:"fast"` // every loaded bundle took the in-worker path
	Duration  time.Duration `json:"-"`
}

// Load makes the given bundles the ones served: new ones start, changed ones are swapped (in-flight
// invocations finish on the old code, new invocations get the new code), missing ones stop. A
// bundle that fails to load keeps its previous version serving and is reported in a *LoadError.
func (e *Engine) Load(ctx context.Context, bundles []Bundle, opts LoadOptions) (*LoadReport, error) {
	start := time.Now()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	want := map[string]Bundle{}
	for _, b := range bundles {
		want[b.Name] = b
	}
	for name := range e.failed {
		if _, ok := want[name]; !ok {
			delete(e.failed, name)
		}
	}
	var removed []*pool
	for name, p := range e.pools {
		if _, ok := want[name]; !ok {
			removed = append(removed, p)
			delete(e.pools, name)
		}
	}
	type job struct {
		p     *pool
		b     Bundle
		prev  *version
		fresh bool // new workers even when the bundle is unchanged (LoadOptions.Fresh, FreshOnly)
	}
	var jobs []job
	report := &LoadReport{Fast: true}
	for _, b := range bundles {
		p, ok := e.pools[b.Name]
		if !ok {
			p = newPool(e, b.Name)
			e.pools[b.Name] = p
		}
		cur := p.current()
		fresh := opts.Fresh && (opts.FreshOnly == nil || opts.FreshOnly(b.Name))
		if cur != nil && cur.hash == b.Hash && sameConfig(cur.cfg, b.Config) && !fresh {
			report.Unchanged = append(report.Unchanged, b.Name)
			continue
		}
		jobs = append(jobs, job{p: p, b: b, prev: cur, fresh: fresh})
	}
	e.mu.Unlock()
	if opts.Registered != nil {
		opts.Registered()
	}

	for _, p := range removed {
		report.Removed = append(report.Removed, p.name)
		e.background(func() { p.close(2 * time.Second) })
	}
	if opts.Fresh {
		// the dependencies changed: an SDK spare holds the old copy of its package
		e.dropSDKSpares()
	}
	errs := map[string]*FunctionError{}
	var emu sync.Mutex
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func(j job) {
			defer wg.Done()
			file := j.b.File
			if e.cfg.FastReload {
				// fn dev rebuilds bundles in place: a worker that loads this version later (an idle
				// one catching up, a new one) must get this build, not whatever the file holds then
				if snap, err := snapshot(j.b.File, j.b.Hash); err == nil {
					file = snap
				}
			}
			v := e.newVersion(file, j.b)
			jopts := opts
			if opts.Lazy && slices.Contains(opts.Eager, j.b.Name) {
				jopts.Lazy = false
			}
			jopts.Fresh = j.fresh
			fast, err := j.p.swap(ctx, v, jopts)
			if file != j.b.File {
				e.keepSnapshot(j.b.Name, file)
			}
			emu.Lock()
			defer emu.Unlock()
			if err != nil {
				errs[j.b.Name] = withInstallHint(e.asLoadError(err), j.b.Config.ModuleDir, e.cfg.Dir)
				if j.prev == nil {
					j.p.failFirstLoad(errs[j.b.Name])
					// A bundle that never loaded has nothing to serve: report it, keep no pool.
					e.mu.Lock()
					if e.pools[j.b.Name] == j.p {
						delete(e.pools, j.b.Name)
						e.recordFailedLoad(j.b.Name, errs[j.b.Name])
					}
					e.mu.Unlock()
					e.background(func() { j.p.close(time.Second) })
				}
				return
			}
			e.mu.Lock()
			delete(e.failed, j.b.Name)
			e.mu.Unlock()
			report.Loaded = append(report.Loaded, j.b.Name)
			report.Fast = report.Fast && fast
		}(j)
	}
	wg.Wait()
	e.loadedOnce.Store(true)
	e.fillSpare()
	sort.Strings(report.Loaded)
	sort.Strings(report.Unchanged)
	sort.Strings(report.Removed)
	report.Duration = time.Since(start)
	if len(errs) > 0 {
		return report, &LoadError{Errors: errs}
	}
	return report, nil
}

func (e *Engine) asLoadError(err error) *FunctionError {
	var fe *FunctionError
	if errors.As(err, &fe) {
		return &FunctionError{Kind: KindLoad, Message: e.mapper.mapText(fe.Message), Stack: e.mapper.mapText(fe.Stack)}
	}
	return &FunctionError{Kind: KindLoad, Message: err.Error()}
}

func sameConfig(a, b project.FunctionConfig) bool {
	return a.Timeout == b.Timeout && a.MaxInstances == b.MaxInstances && a.Concurrency == b.Concurrency && sameWorkerConfig(a, b) &&
		a.ModuleDir == b.ModuleDir && slices.Equal(a.OpenAPI, b.OpenAPI) && (a.OpenAPI == nil) == (b.OpenAPI == nil)
}

// sameWorkerConfig reports whether a running worker can take the new version in place: its
// memory limit and process environment are fixed at start.
func sameWorkerConfig(a, b project.FunctionConfig) bool {
	if a.Memory != b.Memory || len(a.Env) != len(b.Env) {
		return false
	}
	for k, v := range a.Env {
		if b.Env[k] != v {
			return false
		}
	}
	return true
}

// Functions lists what can be invoked: wx function names, or the lean registry's names.
func (e *Engine) Functions() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cfg.Dialect == project.Lean {
		return append([]string(nil), e.names...)
	}
	names := make([]string, 0, len(e.pools))
	for n := range e.pools {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (e *Engine) setNames(names []string) {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	e.mu.Lock()
	e.names = sorted
	e.mu.Unlock()
}

// Stats describes the engine's workers.
type Stats struct {
	Workers []WorkerStats `json:"workers"`
}

// WorkerStats describes one worker.
type WorkerStats struct {
	Bundle   string        `json:"bundle"`
	PID      int           `json:"pid"`
	Version  int64         `json:"version"`
	Reloads  int           `json:"reloads"`
	InFlight int           `json:"inFlight"`
	Ready    time.Duration `json:"readyNs"` // spawn → ready
}

// Stats returns a snapshot of every live worker.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	pools := make([]*pool, 0, len(e.pools))
	for _, p := range e.pools {
		pools = append(pools, p)
	}
	e.mu.Unlock()
	var s Stats
	for _, p := range pools {
		p.mu.Lock()
		for w := range p.workers {
			s.Workers = append(s.Workers, WorkerStats{Bundle: p.name, PID: w.pid, Version: w.version, Reloads: w.reloads,
				InFlight: int(w.inflight.Load()), Ready: w.readyDur})
		}
		p.mu.Unlock()
	}
	sort.Slice(s.Workers, func(i, j int) bool { return s.Workers[i].PID < s.Workers[j].PID })
	return s
}

// Close stops accepting invocations, lets in-flight ones finish within grace, and stops every
// worker (SIGTERM, then SIGKILL to the process group). It returns after every process is reaped.
func (e *Engine) Close(grace time.Duration) {

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	pools := make([]*pool, 0, len(e.pools))
	for _, p := range e.pools {
		pools = append(pools, p)
	}
	e.pools = map[string]*pool{}
	e.mu.Unlock()
	close(e.stopReaper)
	<-e.reaperDone
	e.closeSpare()
	var wg sync.WaitGroup
	for _, p := range pools {
		wg.Add(1)
		go func(p *pool) { defer wg.Done(); p.close(grace) }(p)
	}
	wg.Wait()
	e.stopping.wait() // workers retired, dropped, replaced or removed in the background too
	e.removeSnapshots()
}

// poolList is the engine's pools at this moment.
func (e *Engine) poolList() []*pool {
	e.mu.Lock()
	defer e.mu.Unlock()
	pools := make([]*pool, 0, len(e.pools))
	for _, p := range e.pools {
		pools = append(pools, p)
	}
	return pools
}

// stopLater stops w in the background; Close waits for it.
func (e *Engine) stopLater(w *worker) { e.background(func() { w.stop(time.Second) }) }

// background runs f, which starts or stops workers, in a goroutine Close waits for: a worker
// must not outlive the engine (it writes its caches as it exits).
func (e *Engine) background(f func()) {
	e.stopping.add()
	go func() {
		defer e.stopping.done()
		f()
	}()
}

// stops counts the goroutines of background.
type stops struct {
	mu   sync.Mutex
	n    int
	zero sync.Cond
}

func (s *stops) add() {
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
}

func (s *stops) done() {
	s.mu.Lock()
	if s.n--; s.n == 0 {
		s.zero.Broadcast()
	}
	s.mu.Unlock()
}

func (s *stops) wait() {
	s.mu.Lock()
	for s.n > 0 {
		s.zero.Wait()
	}
	s.mu.Unlock()
}

func (e *Engine) pool(name string) (*pool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	p, ok := e.pools[name]
	if !ok {
		if fe := e.failed[name]; fe != nil {
			return nil, &FunctionError{Kind: KindLoad, Message: fmt.Sprintf("function %s failed to load: %s", name, fe.Message), Stack: fe.Stack}
		}
		return nil, &FunctionError{Kind: KindNotFound, Message: fmt.Sprintf("function not found: %s", name)}
	}
	return p, nil
}

// recordFailedLoad keeps why a bundle never loaded (e.mu held).
func (e *Engine) recordFailedLoad(name string, fe *FunctionError) {
	if e.failed == nil {
		e.failed = map[string]*FunctionError{}
	}
	e.failed[name] = fe
}

// reap retires workers idle for longer than IdleTimeout, keeping one per bundle warm.
func (e *Engine) reap() {
	defer close(e.reaperDone)
	if e.cfg.IdleTimeout <= 0 {
		<-e.stopReaper
		return
	}
	t := time.NewTicker(e.cfg.IdleTimeout / 4)
	defer t.Stop()
	for {
		select {
		case <-e.stopReaper:
			return
		case <-t.C:
			for _, p := range e.poolList() {
				p.retireIdle(e.cfg.IdleTimeout)
			}
		}
	}
}

// log delivers a record from a worker, mapping bundle positions in its text to the sources. A
// record is cut at MaxRecordBytes; an invocation's records stop at MaxInvocationLogBytes, with
// one note saying so.
func (e *Engine) log(w *worker, rp logMsg, stream string) {
	if e.cfg.Logs == nil {
		return
	}
	r := Record{Level: rp.Level, Function: rp.Fn, RequestID: rp.RID, Stream: stream, PID: w.pid}
	if rp.TS > 0 {
		r.Time = time.UnixMilli(rp.TS)
	} else {
		r.Time = time.Now()
	}
	if r.Function == "" {
		r.Function = w.spec.name
	}
	var budget *logBudget
	if r.RequestID == "" && stream != "console" {
		// raw output of an exclusive worker belongs to its latest invocation, even when it is
		// read after the invocation returned (another pipe than the result's)
		if cur := w.current.Load(); cur != nil {
			r.RequestID, budget = cur.rid, cur.budget
		}
	} else if r.RequestID != "" {
		budget = e.budgets.find(r.RequestID)
	}
	msg := truncated(rp.Msg, 0)
	if budget != nil {
		ok, note := budget.spend(len(msg))
		if note {
			e.cfg.Logs(Record{Time: r.Time, Level: "warn", Function: r.Function, RequestID: r.RequestID, Stream: "fn", PID: w.pid,
				Message: fmt.Sprintf("this invocation logged more than %s: further output dropped", byteSize(MaxInvocationLogBytes))})
		}
		if !ok {
			return
		}
	}
	r.Message = e.mapper.mapText(msg)
	e.cfg.Logs(r)
}

// note logs a message of the engine's own about a bundle.
func (e *Engine) note(bundle, level, msg string) {
	if e.cfg.Logs != nil {
		e.cfg.Logs(Record{Time: time.Now(), Level: level, Function: bundle, Message: msg, Stream: "fn"})
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
