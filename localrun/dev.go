package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fnhq/fn/admin"
	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/appenv"
	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/console"
	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/leanstorage"
	"github.com/fnhq/fn/logsink"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/server"
	"github.com/fnhq/fn/store"
	"github.com/fnhq/fn/wxdb"
	"github.com/fnhq/fn/wxstorage"
)

// DevOptions configure fn dev.
type DevOptions struct {
	Node        string
	NodeVersion string
	Host        string
	Port        int    // 0 picks a free port
	As          string // default identity for wx calls
	Inspect     string // --inspect address for workers, empty for none
	InspectOnly string // only this function's workers get the inspector ("" for every function)
	Events      DevEvents
	// Debounce is how long the watcher waits for a burst of file events to end (default 10 ms).
	Debounce time.Duration
	// NoTimers turns the project's timers off; TimerTimeout overrides their 15 s deadline (tests).
	NoTimers     bool
	TimerTimeout time.Duration
	// ResetData starts with an empty LeanStorage (lean) or cloud database (wx).
	ResetData bool
	// Getenv supplies the LEANCLOUD_* variables a LeanEngine project without fn.yaml is re-read
	// with when its package.json or leanengine.json changes (nil: none).
	Getenv func(string) string
	// HTTPMode is live (""), record or replay: wx functions' third-party HTTP requests go out,
	// are recorded to <project>/recordings/<function>.jsonl, or are answered from there.
	HTTPMode string
	// AnyHost answers every Host header (--host given); otherwise a server listening on loopback
	// answers loopback names only, against DNS rebinding.
	AnyHost bool
}

// DevEvents receives what fn dev has to tell. Implementations print; localrun never does.
type DevEvents interface {
	Ready(DevInfo)
	Loaded(LoadInfo)
	Reload(ReloadInfo)
	ReloadFailed(err error)
	Invocation(inv server.Invocation, logs []engine.Record)
	Log(engine.Record)
}

// DevInfo is what the banner shows.
type DevInfo struct {
	URL          string          `json:"url"`
	Port         int             `json:"port"`
	Dialect      project.Dialect `json:"dialect"`
	Functions    []string        `json:"functions"` // wx: from the build; lean: in LoadInfo
	Identity     string          `json:"identity,omitempty"`
	IdentityOpen string          `json:"openid,omitempty"`
	Endpoints    []string        `json:"endpoints"`
	Keys         *Keys           `json:"keys,omitempty"`
	// KeysFrom says where the lean keys come from: "fn.yaml", or ".fn/keys.json" (generated once).
	KeysFrom  string  `json:"keysFrom,omitempty"`
	StartupMs float64 `json:"startupMs"`
	// Inspector says where the Node.js inspector listens (with --inspect).
	Inspector string `json:"inspector,omitempty"`
	// App is the app process of a LeanEngine project with its own web server ("" otherwise):
	// its command and where the command came from.
	App string `json:"app,omitempty"`
	// Detected is a LeanEngine project run without fn.yaml.
	Detected bool `json:"detected,omitempty"`
}

// LoadInfo is the outcome of fn dev's first load, which runs while the banner prints.
type LoadInfo struct {
	LoadMs float64 `json:"loadMs"`
	// Functions are the functions that serve (a lean project's, defined by its cloud code).
	Functions []string `json:"functions"`
	LoadError string   `json:"loadError,omitempty"`
	// Failed names the functions that did not load, with why (and what to run).
	Failed map[string]string `json:"failed,omitempty"`
}

// ReloadInfo describes one reload.
type ReloadInfo struct {
	Files    []string `json:"files"`    // changed files, relative to the project
	Bundles  []string `json:"bundles"`  // bundles whose new code now serves
	Full     bool     `json:"full"`     // fn.yaml, package.json or the lockfile changed: fresh workers
	Fast     bool     `json:"fast"`     // reloaded inside the running workers
	DetectMs float64  `json:"detectMs"` // first file event → reload start (the debounce)
	BuildMs  float64  `json:"buildMs"`
	LoadMs   float64  `json:"loadMs"`
	// Fixed: the reload before this one failed, and this build is good again.
	Fixed bool `json:"fixed,omitempty"`
}

// failTracker remembers a failed reload, so that the next good one says it fixed things.
type failTracker struct {
	DevEvents
	mu      sync.Mutex
	failing bool
}

func (f *failTracker) ReloadFailed(err error) {
	f.mu.Lock()
	f.failing = true
	f.mu.Unlock()
	f.DevEvents.ReloadFailed(err)
}

func (f *failTracker) Reload(info ReloadInfo) {
	f.mu.Lock()
	info.Fixed, f.failing = f.failing, false
	f.mu.Unlock()
	f.DevEvents.Reload(info)
}

// DevState is written to .fn/dev.json while fn dev runs, so that fn invoke and scripts find it.
type DevState struct {
	URL       string          `json:"url"`
	Port      int             `json:"port"`
	PID       int             `json:"pid"`
	StartedAt time.Time       `json:"startedAt"`
	Dialect   project.Dialect `json:"dialect"`
	AppID     string          `json:"appId,omitempty"`
	AppKey    string          `json:"appKey,omitempty"`
	MasterKey string          `json:"masterKey,omitempty"`
}

// PortInUseError is a dev port that another process holds.
type PortInUseError struct {
	Addr string
	Err  error
}

func (e *PortInUseError) Error() string { return fmt.Sprintf("port %s is already in use", e.Addr) }
func (e *PortInUseError) Unwrap() error { return e.Err }

// DevStatePath is where the dev state file lives.
func DevStatePath(p *project.Project) string { return p.StatePath("dev.json") }

// CodeCacheDir is where a project's workers keep V8's code of the packages they require, so
// that fn dev's fresh workers and each one-shot fn invoke compile an SDK only once.
func CodeCacheDir(p *project.Project) string { return p.StatePath("cache", "v8") }

// ReadDevState returns the state of a running fn dev of the project, if its process is alive.
func ReadDevState(p *project.Project) (*DevState, bool) {
	b, err := os.ReadFile(DevStatePath(p))
	if err != nil {
		return nil, false
	}
	var st DevState
	if json.Unmarshal(b, &st) != nil || st.URL == "" || st.PID <= 0 {
		return nil, false
	}
	if !processAlive(st.PID) {
		return nil, false
	}
	return &st, true
}

// dev is one running fn dev.
type dev struct {
	o      DevOptions
	mu     sync.Mutex // guards p, b, and reload state
	p      *project.Project
	b      *bundler.Bundler
	env    *appenv.Env
	keys   Keys
	logs   *logGroups
	sink   logsink.Sink
	data   *leanstorage.Service
	gateMu sync.Mutex
	gate   chan struct{} // closed while requests may pass; replaced while a reload is pending
}

// RunDev serves the project until ctx is cancelled, then shuts down gracefully: it stops accepting,
// lets in-flight calls finish (bounded), stops every worker and removes .fn/dev.json.
func RunDev(ctx context.Context, p *project.Project, o DevOptions) error {
	start := time.Now()
	if o.Debounce == 0 {
		o.Debounce = 10 * time.Millisecond
	}
	o.Events = &failTracker{DevEvents: o.Events}
	addr := net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return &PortInUseError{Addr: addr, Err: err}
		}
		return err
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	host := o.Host
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, strconv.Itoa(port))

	d := &dev{o: o, p: p, logs: newLogGroups(o.Events)}
	d.gate = make(chan struct{})
	close(d.gate)
	if p.Dialect == project.Lean {
		keys, _, err := DevKeys(p)
		if err != nil {
			return err
		}
		d.keys = keys
	}
	d.sink, err = logsink.OpenSQLite(p.StatePath("logs.db"), logsink.SQLiteOptions{Retention: 10000})
	if err != nil {
		return err
	}
	defer d.sink.Close()
	if p.Dialect == project.Lean {
		st, err := OpenData(p, o.ResetData)
		if err != nil {
			return err
		}
		defer st.Close()
		d.data = leanstorage.NewWithOptions(st, hookInvoker{d}, func(level, msg string) { d.env.Note(level, "storage", msg) },
			leanstorage.Options{AuthVerifiers: leanstorage.TrustingVerifiers(), Files: leanstorage.FileStorage{Dir: p.StatePath("files"), BaseURL: url + "/__files/" + d.keys.AppID}})
		d.data.OnHook = func(req engine.LeanRequest, res *engine.LeanResult) { d.env.ReportHook(req, res) }
		defer d.data.Close()
	}
	var wxData *wxdb.DB
	if p.Dialect == project.WX {
		if wxData, err = OpenWXData(p, o.ResetData); err != nil {
			return err
		}
		defer wxData.Close()
	}
	var wxFiles *wxstorage.Store
	if p.Dialect == project.WX {
		if wxFiles, err = OpenWXStorage(p, o.ResetData); err != nil {
			return err
		}
	}
	d.env, err = appenv.New(appenv.Config{WXData: wxData, WXStorage: storageOrNil(wxFiles), OpenAPI: OpenAPIConfig(p),
		WXDBPermissions: DBPermissions(p), HTTPMode: o.HTTPMode, HTTPRecordings: filepath.Join(p.Dir, "recordings"), App: p.Name, Name: api.DevEnv, Dialect: p.Dialect, EnvID: p.EnvID, Keys: appenv.Keys(d.keys),
		PublicURL: url, WXAdminPath: "/admin", Node: o.Node, NodeVersion: o.NodeVersion, FastReload: true, Spare: true, Inspect: o.Inspect, InspectOnly: o.InspectOnly,
		IdleTimeout: 10 * time.Minute, Data: d.data, Logs: d.sink, Observer: d.logs, WXIdentity: d.wxIdentity,
		NoTimers: o.NoTimers, TimerTimeout: o.TimerTimeout, WXAdminTrustLoopback: true, CodeCacheDir: CodeCacheDir(p)})
	if err != nil {
		return err
	}
	defer d.env.Close(2 * time.Second)
	var m *bundler.Manifest
	if p.App != nil {
		// app mode: the app process runs the project as it is; nothing is bundled
		m = &bundler.Manifest{}
	} else {
		// the first worker's Node starts while the functions build
		if err := d.env.Prestart(p.Dir); err != nil {
			return err
		}
		m, err = d.build()
	}
	defer func() {
		if d.b != nil {
			d.b.Dispose()
		}
	}()
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	defer close(stop)
	srv := &http.Server{Handler: d.handler(stop), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	// The banner does not wait for the workers: functions load (an SDK takes a few hundred ms, an
	// app process a second to listen) while it prints, and requests that arrive before the first
	// load wait for it. What did not load is reported by Loaded right after.
	d.holdRequests()
	loadStart := time.Now()
	loaded := make(chan error, 1)
	rel := d.release(m, false)
	if p.Dialect == project.WX && p.App == nil {
		// each wx function is its own bundle: a call waits for its function only (a lean
		// project's hooks and functions are one bundle, and its storage asks which hooks exist)
		rel.Serving = d.releaseRequests
	}
	go func() {
		_, err := d.env.Activate(ctx, rel)
		d.releaseRequests()
		loaded <- err
	}()
	state := DevState{URL: url, Port: port, PID: os.Getpid(), StartedAt: time.Now().UTC(), Dialect: p.Dialect}
	if p.Dialect == project.Lean {
		state.AppID, state.AppKey, state.MasterKey = d.keys.AppID, d.keys.AppKey, d.keys.MasterKey
	}
	if err := writeJSONFile(DevStatePath(p), state); err != nil {
		return err
	}
	defer os.Remove(DevStatePath(p))

	info := DevInfo{URL: url, Port: port, Dialect: p.Dialect, StartupMs: ms(time.Since(start)), Detected: p.Detected}
	if p.Dialect == project.WX {
		for _, a := range m.Bundles {
			info.Functions = append(info.Functions, a.Name) // a lean project's are known once its code has run
		}
		sort.Strings(info.Functions)
	}
	if p.App != nil {
		info.App = strings.Join(p.App.Command, " ") + " (" + p.App.Source + ")"
	}
	switch {
	case o.Inspect != "" && o.InspectOnly != "":
		info.Inspector = fmt.Sprintf("%s's workers: the first on %s, more on free ports (each prints its address)", o.InspectOnly, o.Inspect)
	case o.Inspect != "":
		info.Inspector = fmt.Sprintf("every function's workers: the first to start on %s, the others on free ports (each prints its address)", o.Inspect)
	}
	if p.Dialect == project.WX {
		id, name, err := p.Identity(o.As)
		if err != nil {
			return err
		}
		info.Identity, info.IdentityOpen = name, id.OpenID
		info.Endpoints = []string{"POST " + url + "/wx/functions/{name}", "POST " + url + "/admin (wx-server-sdk)"}
	} else {
		k := d.keys
		info.Keys = &k
		info.KeysFrom = ".fn/keys.json"
		if l := p.Lean; l.AppID != "" && l.AppKey != "" && l.MasterKey != "" && l.HookKey != "" {
			info.KeysFrom = "fn.yaml"
		}
		info.Endpoints = []string{"POST " + url + "/1.1/functions/{name}", "POST " + url + "/1.1/call/{name}",
			"GET  " + url + "/1.1/functions/_ops/metadatas", "GET  " + url + "/__engine/1/ping"}
		if p.App != nil {
			info.Endpoints = append([]string{"ANY  " + url + "/ (the app's own routes, served by its process)"}, info.Endpoints...)
		}
	}
	watcher, err := d.newWatcher()
	if err != nil {
		return err
	}
	o.Events.Ready(info)

	var loadErr error
	select {
	case loadErr = <-loaded:
	case err := <-serveErr:
		watcher.Close()
		return err
	case <-ctx.Done():
		watcher.Close()
		return ctx.Err()
	}
	li := LoadInfo{LoadMs: ms(time.Since(loadStart)), Functions: d.functionNames()}
	if loadErr != nil {
		li.LoadError = unwrapLoad(loadErr).Error()
		var le *engine.LoadError
		if errors.As(loadErr, &le) {
			li.Failed = map[string]string{}
			for name, fe := range le.Errors {
				li.Failed[name] = loadHint(p, name, fe.Message)
			}
		}
	}
	o.Events.Loaded(li)
	if !o.NoTimers {
		d.checkTimerFunctions()
	}
	watchErr := make(chan error, 1)
	go func() { watchErr <- d.watch(ctx, watcher) }()

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return err
	case err := <-watchErr:
		if err != nil && ctx.Err() == nil {
			return err
		}
		<-ctx.Done()
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	d.logs.flushAll()
	return ctx.Err()
}

// build creates the dev bundler and builds every entry; a build error is returned with the
// manifest of what did build (the caller reports it and serves that).
func (d *dev) build() (*bundler.Manifest, error) {
	p := d.p
	entries, err := p.Entries()
	if err != nil {
		return nil, err
	}
	d.b, err = bundler.New(bundler.Options{ProjectDir: p.Dir, OutDir: p.StatePath("dev"), Dialect: p.Dialect, Target: p.Runtime,
		Mode: bundler.Dev, External: p.Build.External}, entries)
	if err != nil {
		return nil, err
	}
	m, _, err := d.b.Build()
	if err != nil {
		// Serve what builds and keep watching: the next good save loads the rest.
		d.o.Events.ReloadFailed(err)
		m = &bundler.Manifest{}
		for _, name := range d.b.Names() {
			if good, _, err := d.b.Rebuild([]string{name}); err == nil {
				m = good
			}
		}
	}
	return m, nil
}

// AppRelease is what a LeanEngine project with its own web server runs as: its app process in
// the project directory, with the project's config (timeout, env) and timers.
func AppRelease(p *project.Project, inPlace bool) *appenv.Release {
	cfg := p.Function(project.LeanBundleName)
	return &appenv.Release{Dir: p.Dir, InPlace: inPlace,
		Manifest: api.Manifest{Dialect: string(project.Lean), Timers: p.Timers, Timezone: p.Timezone,
			Bundles: []api.Bundle{{Name: project.LeanBundleName, Config: cfg}}},
		App: &appenv.AppSpec{Command: p.App.Command, Env: cfg.Env}}
}

// release is what a build of the project runs as in fn dev: in place, so that changed bundles
// reload inside the running workers (fresh workers when fn.yaml, .env.local or dependencies changed).
func (d *dev) release(m *bundler.Manifest, fresh bool) *appenv.Release {
	if d.p.App != nil {
		return AppRelease(d.p, true)
	}
	byName := map[string]string{}
	for _, a := range m.Bundles {
		byName[a.Name] = d.p.StatePath("dev", a.File)
	}
	return &appenv.Release{Dir: d.p.Dir, Manifest: m.APIManifest(d.p, nil, false), InPlace: true, Fresh: fresh,
		File: func(b api.Bundle) string { return byName[b.Name] }}
}

// loadHint words why a function did not load, with the command that fixes a missing package.
func loadHint(p *project.Project, name, msg string) string {
	first, _, _ := strings.Cut(msg, "\n")
	if i := strings.Index(first, "Cannot find module '"); i >= 0 {
		mod := first[i+len("Cannot find module '"):]
		if j := strings.Index(mod, "'"); j >= 0 {
			mod = mod[:j]
		}
		if !strings.HasPrefix(mod, ".") && !strings.HasPrefix(mod, "/") {
			dir := p.Dir
			if fdir := filepath.Join(p.Dir, p.FunctionsDir, name); p.Dialect == project.WX {
				if _, err := os.Stat(filepath.Join(fdir, "package.json")); err == nil {
					dir = fdir // the function is its own npm package
				}
			}
			return fmt.Sprintf("the package %s is not installed: run npm install in %s", mod, dir)
		}
	}
	return first
}

// unwrapLoad is the engine's load error inside a failed activation (it names each bundle).
func unwrapLoad(err error) error {
	var lf *appenv.LoadFailed
	if errors.As(err, &lf) {
		return lf.Err
	}
	return err
}

func (d *dev) functionNames() []string {
	names := d.env.Functions()
	if d.p.Dialect == project.Lean {
		var user []string
		for _, n := range names {
			if !strings.HasPrefix(n, "__") {
				user = append(user, n)
			}
		}
		return user
	}
	return names
}

// handler is the environment's client API and the admin API (loopback clients only), behind
// the reload gate.
func (d *dev) handler(stop <-chan struct{}) http.Handler {
	adminAPI := admin.Handler(admin.Options{Backend: devBackend{d}, Stop: stop, Authorize: loopbackOnly})
	con := console.New(console.Options{Local: d.consoleLocal})
	mux := http.NewServeMux()
	mux.Handle(console.Path+"/", con)
	mux.Handle(console.Path, con)
	mux.Handle("/__fn/", con.Guard(adminAPI))
	mux.HandleFunc("POST /__fn/verify", d.verify)
	mux.Handle("/", d.env.Handler())
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.waitGate(r.Context())
		mux.ServeHTTP(w, r)
	})
	if ip := net.ParseIP(d.o.Host); !d.o.AnyHost && (d.o.Host == "" || d.o.Host == "localhost" || (ip != nil && ip.IsLoopback())) {
		// listening on loopback: refuse other Host names (DNS rebinding)
		h = server.LoopbackHostsOnly(h)
	}
	return h
}

func (d *dev) waitGate(ctx context.Context) {
	d.gateMu.Lock()
	g := d.gate
	d.gateMu.Unlock()
	select {
	case <-g:
	case <-ctx.Done():
	}
}

// holdRequests makes new requests wait until releaseRequests: from the first file event of a
// save until its reload is done, so that the next request after a save gets the new code.
func (d *dev) holdRequests() {
	d.gateMu.Lock()
	defer d.gateMu.Unlock()
	select {
	case <-d.gate:
		d.gate = make(chan struct{})
	default:
	}
}

func (d *dev) releaseRequests() {
	d.gateMu.Lock()
	defer d.gateMu.Unlock()
	select {
	case <-d.gate:
	default:
		close(d.gate)
	}
}

// wxIdentity resolves the caller of a wx request: X-WX-OPENID/APPID/UNIONID headers, or a named
// identity in X-Fn-Identity, over the default identity (--as, or fn.yaml's).
func (d *dev) wxIdentity(r *http.Request) (*engine.WXIdentity, string, error) {
	d.mu.Lock()
	p := d.p
	d.mu.Unlock()
	name := r.Header.Get("X-Fn-Identity")
	if name == "" {
		name = d.o.As
	}
	id, resolved, err := p.Identity(name)
	if err != nil {
		return nil, "", err
	}
	out := &engine.WXIdentity{OpenID: id.OpenID, AppID: id.AppID, UnionID: id.UnionID}
	custom := false
	if v := r.Header.Get("X-WX-OPENID"); v != "" {
		out.OpenID, custom = v, true
	}
	if v := r.Header.Get("X-WX-APPID"); v != "" {
		out.AppID, custom = v, true
	}
	if v := r.Header.Get("X-WX-UNIONID"); v != "" {
		out.UnionID, custom = v, true
	}
	if custom {
		resolved = out.OpenID
	}
	if resolved == "" {
		resolved = out.OpenID
	}
	return out, resolved, nil
}

// checkTimerFunctions reports timers whose lean function is not defined (wx timers are checked
// when fn.yaml loads).
func (d *dev) checkTimerFunctions() {
	if d.p.Dialect != project.Lean {
		return
	}
	known := d.env.Functions()
	for _, t := range d.p.Timers {
		if !contains(known, t.Function) {
			d.o.Events.ReloadFailed(fmt.Errorf("fn.yaml: timers.%s.function: unknown function %q (the cloud code does not define it)", t.Name, t.Function))
		}
	}
}

// verify is fn dev's stand-in for a verification email or SMS: {"user": id or username,
// "type": "email" | "sms"} marks the user verified and fires onVerified.
func (d *dev) verify(w http.ResponseWriter, r *http.Request) {
	if d.data == nil {
		writeJSONResponse(w, http.StatusNotFound, map[string]string{"error": "verification is for lean projects"})
		return
	}
	var body struct {
		User string `json:"user"`
		Type string `json:"type"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.User == "" {
		writeJSONResponse(w, http.StatusBadRequest, map[string]string{"error": `send {"user": "<id or username>", "type": "email" | "sms"}`})
		return
	}
	u, err := d.data.Verify(r.Context(), body.User, body.Type)
	var ae *leanstorage.Error
	if errors.As(err, &ae) {
		writeJSONResponse(w, ae.Status, leanstorage.ErrorBody(ae))
		return
	}
	if err != nil {
		writeJSONResponse(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSONResponse(w, http.StatusOK, u)
}

// OpenWXData opens a wx project's local cloud database (.fn/wxdb.db), emptied with reset.
func OpenWXData(p *project.Project, reset bool) (*wxdb.DB, error) {
	path := p.StatePath("wxdb.db")
	if reset {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
		}
	}
	return wxdb.Open(path)
}

// OpenData opens a lean project's local LeanStorage (.fn/data.db), emptied with reset.
func OpenData(p *project.Project, reset bool) (*store.SQLite, error) {
	st, err := store.OpenSQLite(p.StatePath("data.db"))
	if err != nil {
		return nil, err
	}
	if reset {
		if err := st.Reset(context.Background()); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func writeJSONResponse(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeJSONFile(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	tmp := path + ".tmp-" + hexID()
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// sortedKeys lists a set's keys in order.
func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
