// Package appenv is one app environment: everything fn dev, fn invoke and fn serve need to run
// an app's functions in one environment (dev, production or staging). An Env owns its engine
// (swapped atomically on a new release), the SDK environment of both dialects, the bundles of a
// manifest, the LeanStorage it serves, its timers, the client HTTP API, and the log records of
// its invocations. fn dev is one Env plus a watcher; a one-shot fn invoke is one Env; fn serve
// is a registry of Envs, one per app and environment. It never prints.
package appenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/leanstorage"
	"github.com/fnhq/fn/lease"
	"github.com/fnhq/fn/logsink"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/scheduler"
	"github.com/fnhq/fn/server"
	"github.com/fnhq/fn/wxdb"
	"github.com/fnhq/fn/wxopenapi"
)

// Keys are a lean app's credentials.
type Keys struct {
	AppID     string `json:"appId"`
	AppKey    string `json:"appKey"`
	MasterKey string `json:"masterKey"`
	HookKey   string `json:"hookKey"`
}

// Observer is told, after the log sink, about every record and invocation (fn dev's terminal
// printer groups a call's output under its request line).
type Observer interface {
	Record(engine.Record)
	Invocation(server.Invocation)
}

// Config describes one app environment.
type Config struct {
	App     string          // app name (fn dev: the project's name)
	AppID   string          // fn serve: the app's id (log records carry it); fn dev: ""
	Name    string          // environment: dev, production or staging
	Dialect project.Dialect // wx or lean
	EnvID   string          // the wx environment id (TCB_ENV)
	Keys    Keys            // lean
	// PublicURL is where the SDKs inside functions reach this environment's API; WXAdminPath is
	// the path of the wx-server-sdk endpoint below it.
	PublicURL   string
	WXAdminPath string

	Node        string
	NodeVersion string
	RunnerDir   string // where the engine writes runner.js ("" for the user cache)
	// ScratchDir is the functions' HOME and TMPDIR (fn serve: one per app environment);
	// InheritEnv hands fn's own environment to functions (only when asked for, in fn dev).
	ScratchDir string
	InheritEnv bool
	// CodeCacheDir keeps V8's code of the packages workers require (engine.Config.CodeCacheDir);
	// "" for none. It must be writable by the workers and private to the app. CodeCacheBundles
	// adds the bundles (fn serve's releases, which never change).
	CodeCacheDir     string
	CodeCacheBundles bool
	// Sandbox rewrites each worker's command to confine it (fn serve; engine.Config.Sandbox).
	Sandbox func(*exec.Cmd) error
	// Engine tuning: in-worker reloads (fn dev), a pre-started spare worker, --inspect.
	FastReload  bool
	Spare       bool
	Inspect     string
	InspectOnly string // the one function whose workers get the inspector ("" for all)
	IdleTimeout time.Duration
	// LazyWX (fn serve): a new wx release is checked bundle by bundle in at most CheckWorkers
	// workers at a time (default 2), then served by workers started on each function's first
	// call; idle workers all retire after IdleTimeout.
	LazyWX       bool
	CheckWorkers int
	// MaxWorkers caps the environment's workers by retiring idle ones first (engine.Config).
	MaxWorkers int

	// Data is the app's LeanStorage (shared by its environments); nil for wx.
	Data *leanstorage.Service
	// WXData is the app's cloud database (wx); nil for lean.
	WXData *wxdb.DB
	// WXStorage is the app's cloud storage and WXOpenAPI its openapi emulation (wx); nil leaves
	// their actions unemulated.
	WXStorage server.WXStorage
	// OpenAPI configures the environment's cloud.openapi emulation (wx; its Note is set here).
	OpenAPI wxopenapi.Config
	// HTTPMode is what happens to a wx function's third-party HTTP requests: live (""), record
	// or replay, with the recordings (one <function>.jsonl each) in HTTPRecordings.
	HTTPMode       string
	HTTPRecordings string
	// WXDBPermissions is each collection's permission for mini-program clients (nil: creator-only).
	WXDBPermissions func(collection string) wxdb.Permission
	// Logs is where records go; Observer is told after.
	Logs     logsink.Sink
	Observer Observer
	// WXIdentity resolves who calls a wx function over HTTP.
	WXIdentity func(r *http.Request) (*engine.WXIdentity, string, error)
	// WXAdminTrustLoopback lets loopback clients use the wx-server-sdk's /admin endpoint without
	// a token issued to a running function (fn dev only; see server.Options).
	WXAdminTrustLoopback bool
	// Slots caps in-flight invocations (shared by an app's environments); nil for no cap.
	Slots chan struct{}

	// Timers: off when NoTimers; TimerTimeout overrides the 15 s deadline (tests); Lease
	// decides which replica fires a scheduled run (nil: this process always does).
	NoTimers     bool
	TimerTimeout time.Duration
	Lease        lease.Lease
	// Ping is what GET /__engine/1/ping reports as the SDK version ("": read node_modules).
	Ping map[string]string
	// TrustedProxies are the peers whose Forwarded / X-Real-IP headers name the client (nil:
	// loopback only).
	TrustedProxies []netip.Prefix
}

// Release is what an environment runs.
type Release struct {
	Version  int          // fn serve's version id; 0 in fn dev
	Dir      string       // the workers' working directory (the project, or the version's directory)
	Manifest api.Manifest // bundles, timers, timezone
	// File maps a bundle to its file (absolute path).
	File func(api.Bundle) string
	// Env is added to every function's env (fn serve's secrets).
	Env map[string]string
	// InPlace reloads into the running engine (fn dev: changed bundles re-evaluate inside
	// their workers; Fresh starts new workers); otherwise the release starts in a new engine
	// and replaces the old one only once every bundle has loaded.
	InPlace bool
	Fresh   bool
	// FreshOnly, when set, limits Fresh to the bundles it accepts (engine.LoadOptions).
	FreshOnly func(bundle string) bool
	// Eager, on a first activation, loads only these bundles now; the others start on their
	// first call (one-shot fn invoke loads the function it calls).
	Eager []string
	// Serving, on a first in-place activation, is called as soon as calls can be taken: each
	// then waits for its own function to load, not for all of them (fn dev's start).
	Serving func()
	// App runs the release as an app process (a LeanEngine project with its own web server)
	// instead of bundles in shared workers; Manifest then only carries timers and config.
	App *AppSpec
}

// Errors with a meaning for callers.
var (
	ErrNotDeployed = errors.New("nothing is deployed to this environment yet")
	ErrNoTimers    = errors.New("no timers")
	ErrClosed      = errors.New("the environment is closed")
)

// LoadFailed is a release whose bundles did not load: nothing was switched.
type LoadFailed struct{ Err error }

func (e *LoadFailed) Error() string {
	return "the new version did not load, the running version keeps serving:\n" + e.Err.Error()
}
func (e *LoadFailed) Unwrap() error { return e.Err }

// active is the release an environment serves and the engine serving it.
type active struct {
	release *Release
	engine  *engine.Engine // nil in app mode
	app     *appProc       // app mode: the app process serving the release
}

// Env is one running app environment.
type Env struct {
	cfg     Config
	cur     atomic.Pointer[active]
	mu      sync.Mutex // serialises Activate and Close
	closed  bool
	timers  *scheduler.Scheduler
	stop    context.CancelFunc
	handler http.Handler

	capMu    sync.Mutex
	captures map[string]*[]api.LogRecord // request id → the call's records, for Invoke

	openapi *wxopenapi.Service // wx: the cloud.openapi emulation and its outbox

	prestarted    *engine.Engine // Prestart's engine, until a first release takes it (under mu)
	prestartedDir string
}

// New prepares an environment; it serves once a release is activated.
func New(cfg Config) (*Env, error) {
	if cfg.Name == "" || (cfg.Dialect != project.WX && cfg.Dialect != project.Lean) {
		return nil, fmt.Errorf("appenv: an environment needs a name and a dialect (got %q, %q)", cfg.Name, cfg.Dialect)
	}
	if cfg.Logs == nil {
		cfg.Logs = logsink.NewMemory(10000)
	}
	if cfg.Lease == nil {
		cfg.Lease = lease.NewMemory()
	}
	e := &Env{cfg: cfg, captures: map[string]*[]api.LogRecord{}}
	ctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	if !cfg.NoTimers {
		e.timers = scheduler.New(timerTarget{e}, nil, project.DefaultTimezone, cfg.TimerTimeout)
		e.timers.Claim = func(ctx context.Context, name string, at time.Time) (bool, error) {
			return cfg.Lease.Claim(ctx, cfg.AppID+"/"+cfg.App+"/"+cfg.Name+"/"+name, at)
		}
		e.timers.AlignIntervals = true // replicas sharing a lease must agree on fire times
		go e.timers.Run(ctx)
	}
	if cfg.Dialect == project.WX {
		oc := cfg.OpenAPI
		oc.Note = func(m wxopenapi.Message) {
			e.note("info", m.Function, fmt.Sprintf("openapi.%s to %s recorded in the outbox (not sent: fn runs offline): %s", m.API, m.ToUser, m.Data))
		}
		e.openapi = wxopenapi.New(oc)
	}
	e.handler = e.newHandler()
	return e, nil
}

// Outbox is what the environment's functions sent through cloud.openapi (messages), oldest
// first; nil for lean.
func (e *Env) Outbox() []wxopenapi.Message {
	if e.openapi == nil {
		return nil
	}
	return e.openapi.Outbox("")
}

// Name is the environment's name.
func (e *Env) Name() string { return e.cfg.Name }

// Dialect is the environment's dialect.
func (e *Env) Dialect() project.Dialect { return e.cfg.Dialect }

// Data is the environment's LeanStorage (nil for wx).
func (e *Env) Data() *leanstorage.Service { return e.cfg.Data }

// Release is what the environment serves now (nil before the first activation).
func (e *Env) Release() *Release {
	if a := e.cur.Load(); a != nil {
		return a.release
	}
	return nil
}

// SDKEnv is what the real SDKs inside functions read to find this environment: the wx-server-sdk's
// TCB_CONTEXT_CNFG, or the LEANCLOUD_* variables of LeanEngine.
func (e *Env) SDKEnv() map[string]string {
	c := e.cfg
	env := map[string]string{}
	switch c.Dialect {
	case project.WX:
		env["TCB_CONTEXT_CNFG"] = `{"URL":"` + c.PublicURL + c.WXAdminPath + `"}`
		if c.HTTPMode != "" && c.HTTPMode != "live" {
			env["FN_HTTP_MODE"], env["FN_HTTP_RECORDINGS"] = c.HTTPMode, c.HTTPRecordings
		}
	case project.Lean:
		env["LEANCLOUD_APP_ID"], env["LEANCLOUD_APP_KEY"] = c.Keys.AppID, c.Keys.AppKey
		env["LEANCLOUD_APP_MASTER_KEY"], env["LEANCLOUD_APP_HOOK_KEY"] = c.Keys.MasterKey, c.Keys.HookKey
		env["LEANCLOUD_API_SERVER"], env["LEANCLOUD_REGION"] = c.PublicURL, "CN"
		env["LEANCLOUD_APP_ENV"], env["NODE_ENV"] = leanAppEnv(c.Name), leanNodeEnv(c.Name)
		port := "3000"
		if i := strings.LastIndex(c.PublicURL, ":"); i > 0 {
			if _, err := strconv.Atoi(c.PublicURL[i+1:]); err == nil {
				port = c.PublicURL[i+1:]
			}
		}
		env["LEANCLOUD_APP_PORT"] = port
	}
	return env
}

func leanAppEnv(name string) string {
	if name == api.DevEnv {
		return "development"
	}
	return name
}

func leanNodeEnv(name string) string {
	switch name {
	case "production":
		return "production"
	case "staging":
		return "staging"
	}
	return "development"
}

// Bundles turns a manifest into the engine's bundles: each bundle's file, its configuration, and
// the release's env (secrets) over the function's own.
func Bundles(m api.Manifest, file func(api.Bundle) string, extra map[string]string) []engine.Bundle {
	out := make([]engine.Bundle, 0, len(m.Bundles))
	for _, b := range m.Bundles {
		cfg := b.Config
		if len(extra) > 0 {
			merged := make(map[string]string, len(cfg.Env)+len(extra))
			for k, v := range cfg.Env {
				merged[k] = v
			}
			for k, v := range extra {
				merged[k] = v
			}
			cfg.Env = merged
		}
		out = append(out, engine.Bundle{Name: b.Name, File: file(b), Hash: b.Hash, Config: cfg})
	}
	return out
}

// Activate makes a release the one the environment serves. In place (fn dev), changed bundles
// reload into the running engine; otherwise a new engine loads every bundle first and only then
// replaces the old one, whose in-flight calls finish before it stops. A failure leaves the
// running release serving and returns *LoadFailed (with the engine's *engine.LoadError).
func (e *Env) Activate(ctx context.Context, rel *Release) (*engine.LoadReport, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	if rel.App != nil {
		return nil, e.activateApp(ctx, rel)
	}
	bundles := Bundles(rel.Manifest, rel.File, rel.Env)
	old := e.cur.Load()
	if rel.InPlace && old != nil && old.engine != nil && old.release.Dir == rel.Dir {
		report, err := old.engine.Load(ctx, bundles, engine.LoadOptions{Fresh: rel.Fresh, FreshOnly: rel.FreshOnly})
		e.cur.Store(&active{release: rel, engine: old.engine})
		e.resetTimers(rel)
		if err != nil {
			return report, &LoadFailed{Err: err}
		}
		return report, nil
	}
	lazy := e.cfg.LazyWX && e.cfg.Dialect == project.WX && !rel.InPlace
	var eng *engine.Engine
	if pre := e.prestarted; pre != nil && old == nil && rel.InPlace && e.prestartedDir == rel.Dir {
		eng, e.prestarted = pre, nil
	} else {
		var err error
		if eng, err = engine.New(e.engineConfig(rel.Dir, rel.Version, lazy, false)); err != nil {
			return nil, err
		}
	}
	if lazy {
		n := e.cfg.CheckWorkers
		if n < 1 {
			n = 2
		}
		if err := eng.Check(ctx, bundles, n); err != nil {
			eng.Close(time.Second)
			return nil, &LoadFailed{Err: err}
		}
	}
	opts := engine.LoadOptions{Lazy: lazy}
	if len(rel.Eager) > 0 {
		opts = engine.LoadOptions{Lazy: true, Eager: rel.Eager}
	}
	if rel.InPlace && rel.Serving != nil {
		opts.Registered = func() {
			e.cur.Store(&active{release: rel, engine: eng})
			rel.Serving()
		}
	}
	report, err := eng.Load(ctx, bundles, opts)
	if err != nil && !rel.InPlace {
		eng.Close(time.Second)
		return report, &LoadFailed{Err: err}
	}
	// in place, a first load that partly failed still serves what loaded; the next save fixes the rest
	e.cur.Store(&active{release: rel, engine: eng})
	e.resetTimers(rel)
	if rel.Version > 0 {
		e.note("info", "", fmt.Sprintf("version %d is active", rel.Version))
	}
	if old != nil {
		go old.close(30 * time.Second)
	}
	if err != nil {
		return report, &LoadFailed{Err: err}
	}
	return report, nil
}

// engineConfig is the configuration of an engine serving a release from dir.
func (e *Env) engineConfig(dir string, version int, lazy, prestart bool) engine.Config {
	return engine.Config{Node: e.cfg.Node, Dir: dir, Dialect: e.cfg.Dialect, EnvID: e.cfg.EnvID, Env: e.SDKEnv(),
		RunnerDir: e.cfg.RunnerDir, Logs: e.engineRecord(version), FastReload: e.cfg.FastReload, IdleTimeout: e.cfg.IdleTimeout,
		Inspect: e.cfg.Inspect, InspectOnly: e.cfg.InspectOnly, Spare: e.cfg.Spare, SDKSpare: e.cfg.Spare && e.cfg.FastReload, ScratchDir: e.cfg.ScratchDir, InheritEnv: e.cfg.InheritEnv,
		Sandbox: e.cfg.Sandbox, IdleRetireAll: lazy, MaxWorkers: e.cfg.MaxWorkers, Prestart: prestart,
		CodeCacheDir: e.cfg.CodeCacheDir, CodeCacheBundles: e.cfg.CodeCacheBundles}
}

// Prestart creates the engine that the first in-place release from dir will run in, with its
// first worker's Node starting now: fn dev and one-shot fn invoke call it before they build, so
// that the build and the Node start overlap. Without such a release it is closed with the Env.
func (e *Env) Prestart(dir string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.cur.Load() != nil || e.prestarted != nil {
		return nil
	}
	eng, err := engine.New(e.engineConfig(dir, 0, false, true))
	if err != nil {
		return err
	}
	e.prestarted, e.prestartedDir = eng, dir
	return nil
}

// close stops what serves a release that no longer does, once its calls have finished.
func (a *active) close(grace time.Duration) {
	if a.engine != nil {
		a.engine.Close(grace)
	}
	if a.app != nil {
		a.app.stop(grace)
	}
}

// activateApp starts the release's app process and, once it answers, makes it the one that
// serves; the previous one (app process or engine) finishes its requests and stops. A process
// that does not start leaves the running release serving.
func (e *Env) activateApp(ctx context.Context, rel *Release) error {
	p, err := e.startApp(ctx, rel, rel.Version)
	if err != nil {
		return &LoadFailed{Err: err}
	}
	old := e.cur.Swap(&active{release: rel, app: p})
	e.resetTimers(rel)
	if rel.Version > 0 {
		e.note("info", "", fmt.Sprintf("version %d is active (app process %s on port %d)", rel.Version, p.command, p.port))
	}
	if old != nil {
		// new requests already go to the new process; the old one finishes its own and stops
		grace := 30 * time.Second
		if rel.InPlace {
			grace = 2 * time.Second
		}
		go old.close(grace)
	}
	return nil
}

func (e *Env) resetTimers(rel *Release) {
	if e.timers == nil {
		return
	}
	var timers []project.Timer
	for _, t := range rel.Manifest.Timers {
		if len(t.Environments) == 0 || e.cfg.Name == api.DevEnv || contains(t.Environments, e.cfg.Name) {
			timers = append(timers, t)
		}
	}
	tz := rel.Manifest.Timezone
	if tz == "" {
		tz = project.DefaultTimezone
	}
	e.timers.Reset(timers, tz)
}

// Close stops the timers and the engine, letting in-flight calls finish within grace.
func (e *Env) Close(grace time.Duration) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	e.stop()
	a := e.cur.Swap(nil)
	pre := e.prestarted
	e.prestarted = nil
	e.mu.Unlock()
	if pre != nil {
		pre.Close(grace)
	}
	if a != nil {
		a.close(grace)
	}
}

// engine returns the serving engine within the app's concurrency cap; done releases the slot.
func (e *Env) acquire(ctx context.Context) (*active, func(), error) {
	a := e.cur.Load()
	if a == nil {
		return nil, nil, ErrNotDeployed
	}
	if e.cfg.Slots == nil {
		return a, func() {}, nil
	}
	select {
	case e.cfg.Slots <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	return a, func() { <-e.cfg.Slots }, nil
}

func (e *Env) notDeployed() string {
	if e.cfg.Name == api.DevEnv {
		return "the project has not loaded yet"
	}
	return fmt.Sprintf("nothing is deployed to %s yet", e.cfg.Name)
}

// InvokeWX runs a wx function (the HTTP API, timers and nested calls come through here).
func (e *Env) InvokeWX(ctx context.Context, req engine.WXRequest) *engine.Result {
	a, done, err := e.acquire(ctx)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, ErrNotDeployed) {
			msg = e.notDeployed()
		}
		return &engine.Result{RequestID: engine.NewRequestID(), Err: &engine.FunctionError{Kind: engine.KindNotFound, Message: msg}}
	}
	defer done()
	if req.Parent != "" && req.RequestID != "" {
		// a nested call's output belongs to the call that made it too
		e.capMu.Lock()
		if c := e.captures[req.Parent]; c != nil {
			e.captures[req.RequestID] = c
			defer func() { e.capMu.Lock(); delete(e.captures, req.RequestID); e.capMu.Unlock() }()
		}
		e.capMu.Unlock()
	}
	if a.engine == nil {
		return &engine.Result{RequestID: engine.NewRequestID(), Err: &engine.FunctionError{Kind: engine.KindNotFound, Message: "an app process serves no wx functions"}}
	}
	return a.engine.InvokeWX(ctx, req)
}

// InvokeLean runs a lean function or hook.
func (e *Env) InvokeLean(ctx context.Context, req engine.LeanRequest) *engine.LeanResult {
	a, done, err := e.acquire(ctx)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, ErrNotDeployed) {
			msg = e.notDeployed()
		}
		body, _ := json.Marshal(map[string]any{"code": 1, "error": msg})
		return &engine.LeanResult{RequestID: engine.NewRequestID(), Status: http.StatusNotFound, Body: body,
			Err: &engine.FunctionError{Kind: engine.KindNotFound, Message: msg}}
	}
	defer done()
	if a.app != nil {
		return e.invokeApp(ctx, a.app, req)
	}
	return a.engine.InvokeLean(ctx, req)
}

// WXCaller finds the running invocation that a nested call's token belongs to.
func (e *Env) WXCaller(token string) (engine.WXCaller, bool) {
	if a := e.cur.Load(); a != nil && a.engine != nil {
		return a.engine.WXCaller(token)
	}
	return engine.WXCaller{}, false
}

// Functions lists the loaded functions (lean: with hooks, by their registry names).
func (e *Env) Functions() []string {
	if a := e.cur.Load(); a != nil {
		if a.app != nil {
			return a.app.functions()
		}
		return a.engine.Functions()
	}
	return nil
}

// FunctionList describes the functions for the admin API.
func (e *Env) FunctionList() []api.Function {
	a := e.cur.Load()
	if a == nil {
		return []api.Function{}
	}
	configs := map[string]project.FunctionConfig{}
	for _, b := range a.release.Manifest.Bundles {
		configs[b.Name] = b.Config
	}
	out := []api.Function{}
	for _, name := range e.Functions() {
		f := api.Function{Name: name, Dialect: string(e.cfg.Dialect), Config: configs[name]}
		if e.cfg.Dialect == project.Lean {
			f.Config, f.Kind = configs[project.LeanBundleName], "function"
			if strings.HasPrefix(name, "__") || strings.HasPrefix(name, "_") {
				f.Kind = "hook"
			}
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ---- log records: the one place where engine output and invocations become records

func (e *Env) version() int {
	if a := e.cur.Load(); a != nil {
		return a.release.Version
	}
	return 0
}

func (e *Env) engineRecord(version int) func(engine.Record) {
	return func(r engine.Record) {
		rec := e.cfg.Logs.Append(api.LogRecord{Time: r.Time, App: e.cfg.App, Env: e.cfg.Name, Version: version, Function: r.Function,
			RequestID: r.RequestID, Level: r.Level, Message: r.Message, Stream: r.Stream})
		e.captured(rec)
		if e.cfg.Observer != nil {
			e.cfg.Observer.Record(r)
		}
	}
}

// Report turns a finished invocation (a call, a hook run, a timer run) into its log record and
// tells the observer.
func (e *Env) Report(inv server.Invocation) {
	e.record(inv)
	e.observe(inv)
}

// observe tells the observer (fn dev's terminal) of a call; the client API does it after the
// answer was sent.
func (e *Env) observe(inv server.Invocation) {
	if e.cfg.Observer != nil {
		e.cfg.Observer.Invocation(inv)
	}
}

// record appends a call's log record.
func (e *Env) record(inv server.Invocation) {
	level := "info"
	// by hand: this runs on every call (it reads as fmt's "%s %d %.1fms")
	b := make([]byte, 0, len(inv.Function)+16)
	b = append(append(b, inv.Function...), ' ')
	b = strconv.AppendInt(b, int64(inv.Status), 10)
	b = append(strconv.AppendFloat(append(b, ' '), ms(inv.Duration), 'f', 1, 64), "ms"...)
	msg := string(b)
	if !inv.OK {
		level = "error"
		if inv.Error != "" {
			msg += " " + inv.Error
		}
	}
	if inv.Identity != "" {
		msg += " (" + inv.Identity + ")"
	}
	kind := inv.Kind
	if kind == "" {
		kind = "call"
	}
	r := api.LogRecord{Time: inv.Time, App: e.cfg.App, Env: e.cfg.Name, Version: e.version(), Function: inv.Function,
		RequestID: inv.RequestID, Level: level, Message: msg, Stream: "fn", Invocation: true, Status: inv.Status,
		DurationMs: ms(inv.Duration), Identity: inv.Identity, Kind: kind}
	e.replayInfo(inv, &r)
	rec := e.cfg.Logs.Append(r)
	e.captured(rec)
}

// note logs a message of the runtime's own.
func (e *Env) note(level, function, msg string) {
	e.cfg.Logs.Append(api.LogRecord{Time: time.Now(), App: e.cfg.App, Env: e.cfg.Name, Version: e.version(), Function: function,
		Level: level, Message: msg, Stream: "fn"})
	if e.cfg.Observer != nil {
		e.cfg.Observer.Record(engine.Record{Time: time.Now(), Level: level, Function: function, Message: msg, Stream: "fn"})
	}
}

// Note logs a message of the runtime's (the storage layer, the watcher).
func (e *Env) Note(level, function, msg string) { e.note(level, function, msg) }

func (e *Env) captured(recs []api.LogRecord) {
	for _, r := range recs {
		if r.RequestID == "" || r.Invocation {
			continue
		}
		e.capMu.Lock()
		if c := e.captures[r.RequestID]; c != nil {
			*c = append(*c, r)
		}
		e.capMu.Unlock()
	}
}

func (e *Env) capture(rid string) func() []api.LogRecord {
	c := &[]api.LogRecord{}
	e.capMu.Lock()
	e.captures[rid] = c
	e.capMu.Unlock()
	return func() []api.LogRecord {
		e.capMu.Lock()
		defer e.capMu.Unlock()
		delete(e.captures, rid)
		if *c == nil {
			return []api.LogRecord{}
		}
		return *c
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
