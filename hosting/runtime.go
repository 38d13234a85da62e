// Package hosting is the self-hosted runtime behind fn serve: a registry of app environments
// (appenv.Env, one per app and environment) over the control plane (apps, keys, versions,
// secrets, sessions), content-addressed artifacts and a log sink, all behind interfaces so that
// the embedded backends and the PostgreSQL ones are interchangeable. Versions are validated in
// fresh workers before they switch atomically; rollback and promotion reuse stored artifacts.
// It never prints.
package hosting

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/appenv"
	"github.com/fnhq/fn/artifacts"
	"github.com/fnhq/fn/control"
	"github.com/fnhq/fn/cron"
	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/internal/randid"
	"github.com/fnhq/fn/leanstorage"
	"github.com/fnhq/fn/lease"
	"github.com/fnhq/fn/logsink"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/sandbox"
	"github.com/fnhq/fn/store"
	"github.com/fnhq/fn/wxdb"
	"github.com/fnhq/fn/wxstorage"
)

// Config sets up a Runtime.
type Config struct {
	DataDir     string
	Node        string
	NodeVersion string
	// AdminToken, when set, is the admin token (FN_ADMIN_TOKEN or --admin-token-file); otherwise
	// the first start generates one and Open returns it once.
	AdminToken string
	// PublicURL is where this server is reached; engines point the SDKs at it.
	PublicURL string
	// WeChatAPIBase is WeChat's API (jscode2session); tests point it at a local fake.
	WeChatAPIBase string
	// MaxBlobBytes bounds one uploaded artifact (default 50 MB).
	MaxBlobBytes int64
	// LogRetention is how many log records each app keeps (default 10000).
	LogRetention int
	// AppConcurrency caps an app's in-flight invocations so that one app cannot starve others.
	AppConcurrency int
	// Sandbox, when set, confines every worker (package sandbox): it reads only its version,
	// the runner, Node and the system's shared files, and writes only its environment's
	// scratch directory. The data directory is protected from every rule.
	Sandbox *sandbox.Options
	// AppUIDs, when set (fn serve as root), runs each app's workers as a uid of their own from
	// this range, and prepares the app's directories for it (isolation.go).
	AppUIDs *sandbox.UIDRange
	// Cgroups, when set (a delegated cgroup v2 directory), starts each app's workers in a group
	// of the app's own with its memory, process and CPU limits.
	Cgroups *sandbox.Cgroups
	// Backends; nil ones are the embedded defaults under DataDir.
	Control   control.Plane
	Artifacts artifacts.Store
	Logs      logsink.Sink
	Lease     lease.Lease
	// Stores opens an app's LeanStorage data (nil: a SQLite file under the app's directory).
	Stores func(appID string) (store.Store, error)
	// SDKDir holds the node_modules (leanengine) that online editing builds against: fn serve
	// installs nothing, so without it functions are edited and previewed but not deployed.
	SDKDir string
}

// Runtime hosts apps.
type Runtime struct {
	cfg     Config
	cp      control.Plane
	blobs   artifacts.Store
	logs    logsink.Sink
	lease   lease.Lease
	mu      sync.Mutex
	apps    map[string]*appRuntime
	closers []func() error

	stopFollow func()        // ends the control-plane follower (nil without a ChangeFeed)
	followEnd  chan struct{} // closed when it has ended
	uids       appUIDs       // Config.AppUIDs (isolation.go)

	auth     authCache      // admin token and wx sessions, dropped on every change signal
	closing  chan struct{}  // closed by Close: environments waiting to retire stop now
	retiring sync.WaitGroup // environments replaced by prepared ones and discarded preparations, until they have stopped
}

type appRuntime struct {
	id    string
	envs  map[string]*envRuntime
	st    store.Store
	wx    *wxdb.DB         // the app's cloud database (wx functions)
	files *wxstorage.Store // the app's cloud storage (wx functions)
	data  *leanstorage.Service
	slots chan struct{} // per-app concurrency cap
}

type envRuntime struct {
	deploy sync.Mutex // one deploy, rollback or restart at a time
	cur    atomic.Pointer[appenv.Env]

	deploying atomic.Bool // a deploy through this replica is loading its version
	prepMu    sync.Mutex
	prep      *prepared // the version a deploy through another replica is loading, loaded here too
}

func (er *envRuntime) env() *appenv.Env { return er.cur.Load() }

// Open loads or creates a runtime. newToken is non-empty the first time, when the runtime
// generated the admin token: show it once; only its hash is kept.
func Open(ctx context.Context, cfg Config) (rt *Runtime, newToken string, err error) {
	if cfg.MaxBlobBytes == 0 {
		cfg.MaxBlobBytes = 50 << 20
	}
	if cfg.LogRetention == 0 {
		cfg.LogRetention = 10000
	}
	if cfg.AppConcurrency == 0 {
		cfg.AppConcurrency = 64
	}
	if cfg.WeChatAPIBase == "" {
		cfg.WeChatAPIBase = "https://api.weixin.qq.com"
	}
	// absolute: workers run in their version's directory, where a relative path (the default
	// --data-dir fn-data) to the runner or a bundle would not resolve
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, "", err
	}
	cfg.DataDir = abs
	if cfg.SDKDir != "" {
		if cfg.SDKDir, err = filepath.Abs(cfg.SDKDir); err != nil {
			return nil, "", err
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, "", err
	}
	if err := narrowDataDir(cfg.DataDir); err != nil {
		return nil, "", fmt.Errorf("narrowing the data directory to its owner: %w", err)
	}
	rt = &Runtime{cfg: cfg, cp: cfg.Control, blobs: cfg.Artifacts, logs: cfg.Logs, lease: cfg.Lease, apps: map[string]*appRuntime{},
		closing: make(chan struct{})}
	rt.auth.init()
	fail := func(err error) (*Runtime, string, error) { rt.closeBackends(); return nil, "", err }
	if rt.cp == nil {
		sq, err := control.OpenSQLite(filepath.Join(cfg.DataDir, "control.db"))
		if err != nil {
			return fail(err)
		}
		rt.cp = sq
		rt.closers = append(rt.closers, sq.Close)
		if err := control.ImportStateJSON(ctx, sq, filepath.Join(cfg.DataDir, "state.json")); err != nil {
			return fail(err)
		}
	}
	if rt.blobs == nil {
		d, err := artifacts.OpenDir(filepath.Join(cfg.DataDir, "blobs"))
		if err != nil {
			return fail(err)
		}
		rt.blobs = d
	}
	if rt.logs == nil {
		s, err := logsink.OpenSQLite(filepath.Join(cfg.DataDir, "logs.db"), logsink.SQLiteOptions{Retention: cfg.LogRetention})
		if err != nil {
			return fail(err)
		}
		rt.logs = s
		rt.closers = append(rt.closers, s.Close)
	}
	if rt.lease == nil {
		rt.lease = lease.NewMemory()
	}
	hash, err := rt.cp.AdminTokenHash(ctx)
	if err != nil {
		return fail(err)
	}
	switch {
	case cfg.AdminToken != "":
		err = rt.cp.SetAdminTokenHash(ctx, hashToken(cfg.AdminToken))
	case hash == "":
		newToken = "fnadm_" + randid.Hex(24)
		err = rt.cp.SetAdminTokenHash(ctx, hashToken(newToken))
	}
	if err != nil {
		return fail(err)
	}
	apps, err := rt.cp.Apps(ctx)
	if err != nil {
		return fail(err)
	}
	// bring every environment's active version back up
	for _, app := range apps {
		ar, err := rt.appRuntime(app)
		if err != nil {
			return fail(err)
		}
		for _, envName := range api.Environments {
			v, err := rt.cp.Active(ctx, app.ID, envName)
			if errors.Is(err, control.ErrNotFound) {
				continue
			}
			if err != nil {
				return fail(err)
			}
			if err := rt.activate(ctx, app, ar.envs[envName], v); err != nil {
				rt.note(app.ID, envName, "error", fmt.Sprintf("version %d could not start: %v", v.ID, err))
			}
		}
	}
	if feed, ok := rt.cp.(ChangeFeed); ok {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		rt.stopFollow, rt.followEnd = cancel, make(chan struct{})
		go rt.follow(fctx, feed)
	}
	return rt, newToken, nil
}

func (rt *Runtime) closeBackends() {
	for i := len(rt.closers) - 1; i >= 0; i-- {
		rt.closers[i]()
	}
	rt.closers = nil
}

func (rt *Runtime) note(appID, env, level, msg string) {
	rt.logs.Append(api.LogRecord{Time: time.Now(), App: appID, Env: env, Level: level, Message: msg, Stream: "fn"})
}

// CheckAdmin verifies an admin token.
func (rt *Runtime) CheckAdmin(ctx context.Context, token string) bool {
	hash, err := rt.adminTokenHash(ctx)
	return err == nil && token != "" && hash != "" && subtle.ConstantTimeCompare([]byte(hashToken(token)), []byte(hash)) == 1
}

var appNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9-]{0,49}$`) })
var keyRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`) })

func badf(format string, args ...any) error {
	return &appenv.BadRequest{Msg: fmt.Sprintf(format, args...)}
}

// App returns one app by id or name.
func (rt *Runtime) App(ctx context.Context, idOrName string) (api.App, error) {
	app, err := rt.app(ctx, idOrName)
	if errors.Is(err, control.ErrNotFound) {
		return app, &appenv.NotFound{Msg: "no such app: " + idOrName}
	}
	return app, err
}

// Apps lists the apps.
func (rt *Runtime) Apps(ctx context.Context) ([]api.App, error) { return rt.cp.Apps(ctx) }

// AppID resolves an app's id.
func (rt *Runtime) AppID(ctx context.Context, idOrName string) (string, error) {
	app, err := rt.App(ctx, idOrName)
	return app.ID, err
}

// CreateApp makes an app, with new keys or (moving from LeanCloud) the ones given.
func (rt *Runtime) CreateApp(ctx context.Context, name, wxAppID, wxSecret string, keys appenv.Keys) (*api.App, error) {
	if !appNameRE().MatchString(name) {
		return nil, badf("invalid app name %q: use 1–50 lower-case letters, digits and '-', starting with a letter", name)
	}
	for field, v := range map[string]string{"appId": keys.AppID, "appKey": keys.AppKey, "masterKey": keys.MasterKey, "hookKey": keys.HookKey} {
		if v != "" && !keyRE().MatchString(v) {
			return nil, badf("invalid %s: use 8–64 letters, digits, '-' and '_'", field)
		}
	}
	app := api.App{ID: keys.AppID, Name: name, AppKey: keys.AppKey, MasterKey: keys.MasterKey, HookKey: keys.HookKey,
		EnvID: name + "-" + randid.Hex(3), WXAppID: wxAppID, CreatedAt: time.Now().UTC()}
	if app.ID == "" {
		app.ID = randid.Key(18) + "-fnSrv"
	}
	if app.AppKey == "" {
		app.AppKey = randid.Key(24)
	}
	if app.MasterKey == "" {
		app.MasterKey = randid.Key(24)
	}
	if app.HookKey == "" {
		app.HookKey = randid.Key(24)
	}
	if err := rt.cp.CreateApp(ctx, app, wxSecret); err != nil {
		if errors.Is(err, control.ErrExists) {
			return nil, badf("an app named %q (or with id %s) exists already", name, app.ID)
		}
		return nil, err
	}
	rt.auth.invalidate() // a name looked up before may now be taken
	if _, err := rt.appRuntime(app); err != nil {
		return nil, err
	}
	return &app, nil
}

// DeleteApp stops an app's environments and removes it with its data.
func (rt *Runtime) DeleteApp(ctx context.Context, idOrName string) error {
	app, err := rt.App(ctx, idOrName)
	if err != nil {
		return err
	}
	rt.mu.Lock()
	ar := rt.apps[app.ID]
	delete(rt.apps, app.ID)
	rt.mu.Unlock()
	if ar != nil {
		ar.close(2 * time.Second)
	}
	if err := rt.cp.DeleteApp(ctx, app.ID); err != nil {
		return err
	}
	rt.auth.invalidate() // its sessions are gone
	return os.RemoveAll(rt.appDir(app.ID))
}

func (rt *Runtime) appDir(id string) string { return filepath.Join(rt.cfg.DataDir, "apps", id) }

// appRuntime returns (creating once) the running side of an app: its storage and environments.
func (rt *Runtime) appRuntime(app api.App) (*appRuntime, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if ar, ok := rt.apps[app.ID]; ok {
		return ar, nil
	}
	if err := os.MkdirAll(rt.appDir(app.ID), 0o700); err != nil {
		return nil, err
	}
	var st store.Store
	var err error
	if rt.cfg.Stores != nil {
		st, err = rt.cfg.Stores(app.ID)
	} else {
		st, err = store.OpenSQLite(filepath.Join(rt.appDir(app.ID), "data.db"))
	}
	if err != nil {
		return nil, err
	}
	wx, err := wxdb.Open(filepath.Join(rt.appDir(app.ID), "wx.db"))
	if err != nil {
		st.Close()
		return nil, err
	}
	files, err := wxstorage.Open(filepath.Join(rt.appDir(app.ID), "storage"), wxstorage.Options{})
	if err != nil {
		st.Close()
		wx.Close()
		return nil, err
	}
	ar := &appRuntime{id: app.ID, envs: map[string]*envRuntime{}, st: st, wx: wx, files: files, slots: make(chan struct{}, rt.cfg.AppConcurrency)}
	// storage hooks run in the production environment (LeanCloud's hooks belong to production)
	// third-party logins are verified with the platforms (WeChat at the configured API base, the
	// mini-program code exchange with the app's own appid and secret)
	client := &http.Client{Timeout: 10 * time.Second}
	verifiers := leanstorage.DefaultAuthVerifiers(client)
	verifiers["weixin"] = &leanstorage.WeChatVerifier{BaseURL: rt.cfg.WeChatAPIBase, Client: client}
	if secret, err := rt.cp.WXSecret(context.Background(), app.ID); err == nil && secret != "" && app.WXAppID != "" {
		verifiers["lc_weapp"] = &leanstorage.MiniAppVerifier{BaseURL: rt.cfg.WeChatAPIBase, AppID: app.WXAppID, Secret: secret, Client: client}
	}
	ar.data = leanstorage.NewWithOptions(st, prodHooks{ar}, func(level, msg string) { ar.envs["production"].env().Note(level, "storage", msg) },
		leanstorage.Options{AuthVerifiers: verifiers, Files: leanstorage.FileStorage{Dir: filepath.Join(rt.appDir(app.ID), "files"),
			BaseURL: strings.TrimRight(rt.cfg.PublicURL, "/") + "/__files/" + app.ID}})
	ar.data.OnHook = func(req engine.LeanRequest, res *engine.LeanResult) { ar.envs["production"].env().ReportHook(req, res) }
	for _, name := range api.Environments {
		env, err := rt.newEnv(app, ar, name, project.Lean, nil)
		if err != nil {
			st.Close()
			wx.Close()
			return nil, err
		}
		ar.envs[name] = &envRuntime{}
		ar.envs[name].cur.Store(env)
	}
	rt.apps[app.ID] = ar
	return ar, nil
}

// maxWorkersPerEnv caps the workers of one app environment: beyond it, a function's new worker
// first retires the least recently used idle one (busy workers are bounded by AppConcurrency).
const maxWorkersPerEnv = 16

// newEnv builds one environment of an app for a dialect. With a gate, its timers fire only
// while the gate is open (a prepared version that does not serve yet).
func (rt *Runtime) newEnv(app api.App, ar *appRuntime, name string, dialect project.Dialect, gate *atomic.Bool) (*appenv.Env, error) {
	var timerLease lease.Lease = rt.lease
	if gate != nil {
		timerLease = gatedLease{Lease: rt.lease, open: gate}
	}
	runnerDir, scratch := filepath.Join(rt.cfg.DataDir, "runner"), filepath.Join(rt.appDir(app.ID), "scratch", name)
	var confine func(*exec.Cmd) error
	if rt.cfg.Sandbox != nil {
		// the scratch and runner directories must exist for their rules to apply
		versions := filepath.Join(rt.appDir(app.ID), "versions") // this app's code, read-only
		for _, d := range []string{runnerDir, scratch, versions} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return nil, err
			}
		}
		opts := *rt.cfg.Sandbox
		opts.Protect = append(opts.Protect, rt.cfg.DataDir)
		hook, err := opts.Hook([]string{runnerDir, versions}, []string{scratch})
		if err != nil {
			return nil, err
		}
		confine = hook
	}
	if rt.cfg.AppUIDs != nil {
		runAs, err := rt.runAs(app.ID, runnerDir, scratch)
		if err != nil {
			return nil, err
		}
		confine = chain(confine, runAs)
	}
	if rt.cfg.Cgroups != nil {
		g, err := rt.cfg.Cgroups.App(app.ID)
		if err != nil {
			return nil, err
		}
		confine = chain(confine, g.Hook())
	}
	return appenv.New(appenv.Config{App: app.ID, AppID: app.ID, Name: name, EnvID: app.EnvID, Dialect: dialect,
		Keys:      appenv.Keys{AppID: app.ID, AppKey: app.AppKey, MasterKey: app.MasterKey, HookKey: app.HookKey},
		PublicURL: rt.cfg.PublicURL, WXAdminPath: "/wx/" + app.ID + "/" + name + "/admin",
		Node: rt.cfg.Node, NodeVersion: rt.cfg.NodeVersion, RunnerDir: runnerDir, ScratchDir: scratch, Sandbox: confine,
		IdleTimeout: 5 * time.Minute, LazyWX: true, MaxWorkers: maxWorkersPerEnv, Data: ar.data, WXData: ar.wx, WXStorage: ar.files,
		Logs: rt.logs, WXIdentity: rt.wxIdentity(app.ID), Slots: ar.slots, Lease: timerLease,
		// in the scratch directory, which the sandbox lets this app's workers (and only them) write
		CodeCacheDir: filepath.Join(scratch, ".cache", "fn", "v8"), CodeCacheBundles: true})
}

// redialect replaces an environment by one of the other dialect (the first deploy of a wx app;
// the caller holds the environment's deploy lock).
func (rt *Runtime) redialect(app api.App, er *envRuntime, dialect project.Dialect) error {
	rt.mu.Lock()
	ar := rt.apps[app.ID]
	rt.mu.Unlock()
	if ar == nil {
		return &appenv.NotFound{Msg: "no such app: " + app.ID}
	}
	env, err := rt.newEnv(app, ar, er.env().Name(), dialect, nil)
	if err != nil {
		return err
	}
	old := er.cur.Swap(env)
	go old.Close(30 * time.Second)
	return nil
}

// prodHooks runs LeanStorage hooks in the app's production environment.
type prodHooks struct{ ar *appRuntime }

func (h prodHooks) InvokeLean(ctx context.Context, req engine.LeanRequest) *engine.LeanResult {
	return h.ar.envs["production"].env().InvokeLean(ctx, req)
}
func (h prodHooks) Functions() []string { return h.ar.envs["production"].env().Functions() }

// Env finds an app environment.
func (rt *Runtime) Env(ctx context.Context, idOrName, env string) (*appenv.Env, error) {
	er, _, err := rt.envRuntime(ctx, idOrName, env)
	if err != nil {
		return nil, err
	}
	return er.env(), nil
}

func (rt *Runtime) envRuntime(ctx context.Context, idOrName, env string) (*envRuntime, api.App, error) {
	if err := validEnv(env); err != nil {
		return nil, api.App{}, err
	}
	app, err := rt.App(ctx, idOrName)
	if err != nil {
		return nil, app, err
	}
	ar, err := rt.appRuntime(app)
	if err != nil {
		return nil, app, err
	}
	return ar.envs[env], app, nil
}

// Close stops every app's environments, letting in-flight calls finish within grace, then the
// backends (the log sink flushes).
func (rt *Runtime) Close(grace time.Duration) {
	if rt.stopFollow != nil {
		rt.stopFollow()
		<-rt.followEnd
	}
	close(rt.closing)
	rt.mu.Lock()
	apps := rt.apps
	rt.apps = map[string]*appRuntime{}
	rt.mu.Unlock()
	var wg sync.WaitGroup
	for _, ar := range apps {
		wg.Add(1)
		go func(ar *appRuntime) { defer wg.Done(); ar.close(grace) }(ar)
	}
	wg.Wait()
	rt.retiring.Wait()
	rt.closeBackends()
}

func (ar *appRuntime) close(grace time.Duration) {
	var wg sync.WaitGroup
	for _, er := range ar.envs {
		wg.Add(1)
		go func(er *envRuntime) { defer wg.Done(); er.dropPrepared(); er.env().Close(grace) }(er)
	}
	wg.Wait()
	ar.data.Close() // the cloud queue's waiting tasks
	ar.st.Close()
	ar.wx.Close()
}

// ---- artifacts

// MissingBlobs returns the hashes the server does not have.
func (rt *Runtime) MissingBlobs(ctx context.Context, app string, hashes []string) ([]string, error) {
	if _, err := rt.App(ctx, app); err != nil {
		return nil, err
	}
	if len(hashes) > 10000 {
		return nil, badf("too many hashes in one request (%d, at most 10000)", len(hashes))
	}
	var missing []string
	for _, h := range hashes {
		ok, err := rt.blobs.Has(ctx, h)
		if errors.Is(err, artifacts.ErrBadHash) {
			return nil, badf("invalid artifact hash %q: a sha256 is 64 lower-case hex digits", h)
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			missing = append(missing, h)
		}
	}
	return missing, nil
}

// PutBlob stores an artifact whose sha256 must be hash; a truncated, oversized or tampered upload
// is rejected and nothing is kept.
func (rt *Runtime) PutBlob(ctx context.Context, app, hash string, r io.Reader) error {
	if _, err := rt.App(ctx, app); err != nil {
		return err
	}
	err := rt.blobs.Put(ctx, hash, r, rt.cfg.MaxBlobBytes)
	short := hash
	if len(short) > 12 {
		short = short[:12]
	}
	switch {
	case errors.Is(err, artifacts.ErrBadHash):
		return badf("invalid artifact hash %q", hash)
	case errors.Is(err, artifacts.ErrTooLarge):
		return badf("artifact %s is larger than the %d byte limit", short, rt.cfg.MaxBlobBytes)
	case errors.Is(err, artifacts.ErrMismatch):
		return badf("artifact %s does not match its content: the upload was truncated or altered", short)
	case err != nil:
		return badf("upload of %s failed: %v", short, err)
	}
	return nil
}

// ---- deploys

func validEnv(env string) error {
	for _, e := range api.Environments {
		if e == env {
			return nil
		}
	}
	return badf("unknown environment %q: use production or staging", env)
}

var bundleNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,59}$`) })

// maxTimersPerEnv is LeanEngine's limit: at most 5 timers in each environment.
const maxTimersPerEnv = 5

// validateManifest checks a manifest exactly as fn.yaml validation does, before anything runs.
func (rt *Runtime) validateManifest(ctx context.Context, m api.Manifest, dryRun bool) error {
	if m.Dialect != string(project.WX) && m.Dialect != string(project.Lean) {
		return badf("manifest dialect must be wx or lean, got %q", m.Dialect)
	}
	if len(m.Bundles) == 0 {
		return badf("the manifest has no bundles")
	}
	if len(m.Bundles) > 200 {
		return badf("the manifest has %d bundles (at most 200)", len(m.Bundles))
	}
	seen := map[string]bool{}
	for _, b := range m.Bundles {
		if !bundleNameRE().MatchString(b.Name) || seen[b.Name] {
			return badf("invalid or repeated bundle name %q", b.Name)
		}
		seen[b.Name] = true
		if m.Dialect == string(project.Lean) && b.Name != project.LeanBundleName {
			return badf("a lean manifest has one bundle named %q, got %q", project.LeanBundleName, b.Name)
		}
		c := b.Config
		if c.Timeout < project.MinTimeout || c.Timeout > project.MaxTimeout || c.Memory < project.MinMemory || c.Memory > project.MaxMemory {
			return badf("bundle %s: timeout must be %d–%d s and memory %d–%d MB", b.Name, project.MinTimeout, project.MaxTimeout, project.MinMemory, project.MaxMemory)
		}
		if c.MaxInstances < 0 || c.MaxInstances > 1000 || c.Concurrency < 0 || c.Concurrency > 1000 {
			return badf("bundle %s: maxInstances and concurrency must be 0–1000", b.Name)
		}
		for k := range c.Env {
			if err := checkEnvName(k); err != nil {
				return badf("bundle %s: env %s: %v", b.Name, k, err)
			}
		}
		for _, h := range []string{b.Hash, b.MapHash} {
			if dryRun && artifacts.ValidHash(h) {
				continue // a dry run compares; the artifacts come with the real deploy
			}
			ok, err2 := rt.blobs.Has(ctx, h)
			if errors.Is(err2, artifacts.ErrBadHash) {
				return badf("bundle %s: invalid artifact hash %q", b.Name, h)
			}
			if err2 != nil {
				return err2
			}
			if !ok {
				return badf("bundle %s references artifacts the server does not have: [%s] (upload them first)", b.Name, h)
			}
		}
	}
	perEnv := map[string]int{}
	names := map[string]bool{}
	for _, t := range m.Timers {
		if names[t.Name] || t.Name == "" {
			return badf("timer %q: missing or repeated name", t.Name)
		}
		names[t.Name] = true
		if m.Dialect == string(project.WX) && !seen[t.Function] {
			return badf("timer %s: unknown function %q", t.Name, t.Function)
		}
		switch {
		case t.Cron != "" && t.Interval != 0:
			return badf("timer %s: give cron or interval, not both", t.Name)
		case t.Cron != "":
			if _, err := cron.Parse(t.Cron); err != nil {
				return badf("timer %s: cron: %v", t.Name, err)
			}
		case t.Interval < 1 || t.Interval > 366*24*3600:
			return badf("timer %s: interval must be 1–31622400 seconds, got %d", t.Name, t.Interval)
		}
		if len(t.Environments) == 0 {
			return badf("timer %s: no environments", t.Name)
		}
		for _, e := range t.Environments {
			if err := validEnv(e); err != nil {
				return badf("timer %s: %v", t.Name, err)
			}
			perEnv[e]++
			if perEnv[e] > maxTimersPerEnv {
				return badf("more than %d timers in %s (LeanEngine's limit)", maxTimersPerEnv, e)
			}
		}
	}
	if m.Timezone != "" {
		if _, err := time.LoadLocation(m.Timezone); err != nil {
			return badf("unknown timezone %q", m.Timezone)
		}
	}
	return rt.validateTree(ctx, m, dryRun)
}

// Plan compares a manifest with what an environment runs.
func (rt *Runtime) plan(ctx context.Context, appID, env string, m api.Manifest) (*api.DeployResult, error) {
	res := &api.DeployResult{Env: env}
	var old map[string]api.Bundle
	cur, err := rt.cp.Active(ctx, appID, env)
	switch {
	case errors.Is(err, control.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		if cur.Digest == m.Digest() {
			return res, nil
		}
		old = map[string]api.Bundle{}
		for _, b := range cur.Manifest.Bundles {
			old[b.Name] = b
		}
	}
	res.Changed = true
	seen := map[string]bool{}
	for _, b := range m.Bundles {
		seen[b.Name] = true
		if o, ok := old[b.Name]; !ok {
			res.Added = append(res.Added, b.Name)
		} else if o.Hash != b.Hash || fmt.Sprint(o.Config) != fmt.Sprint(b.Config) {
			res.Changes = append(res.Changes, b.Name)
		}
	}
	for name := range old {
		if !seen[name] {
			res.Removed = append(res.Removed, name)
		}
	}
	sort.Strings(res.Removed)
	return res, nil
}

// Deploy validates a manifest, records a new version (its id assigned atomically by the control
// plane), loads every bundle in fresh workers, and only then switches the environment to it:
// in-flight calls finish on the old version. A failure changes nothing.
func (rt *Runtime) Deploy(ctx context.Context, idOrName string, req api.DeployRequest) (*api.DeployResult, error) {
	er, app, err := rt.envRuntime(ctx, idOrName, req.Env)
	if err != nil {
		return nil, err
	}
	if err := rt.validateManifest(ctx, req.Manifest, req.DryRun); err != nil {
		return nil, err
	}
	if len(req.Message) > 1000 || len(req.Who) > 200 {
		return nil, badf("message (≤ 1000) or who (≤ 200) too long")
	}
	er.deploy.Lock()
	defer er.deploy.Unlock()
	er.deploying.Store(true)
	defer er.deploying.Store(false)
	plan, err := rt.plan(ctx, app.ID, req.Env, req.Manifest)
	if err != nil || !plan.Changed || req.DryRun {
		return plan, err
	}
	v, err := rt.cp.CreateVersion(ctx, app.ID, api.Version{Env: req.Env, CreatedAt: time.Now().UTC(), Message: req.Message, Who: req.Who,
		Digest: req.Manifest.Digest(), Manifest: req.Manifest, Promoted: 0})
	if err != nil {
		return nil, err
	}
	if da, ok := rt.cp.(deployActivator); ok {
		// replicas share the control plane: a deploy racing through another one may win
		err = rt.deployPrepared(ctx, app, er, v, da)
	} else {
		err = rt.switchTo(ctx, app, er, v)
	}
	if err != nil {
		rt.cp.DiscardVersion(context.WithoutCancel(ctx), app.ID, v.ID)
		return nil, err
	}
	v.Active = true
	plan.Version = &v
	return plan, nil
}

// switchTo starts version v and records it as the environment's active one.
func (rt *Runtime) switchTo(ctx context.Context, app api.App, er *envRuntime, v api.Version) error {
	if err := rt.activate(ctx, app, er, v); err != nil {
		return err
	}
	return rt.cp.Activate(context.WithoutCancel(ctx), app.ID, v.Env, v.ID)
}

// activate writes a version's bundles from the artifact store into its directory and starts it.
func (rt *Runtime) activate(ctx context.Context, app api.App, er *envRuntime, v api.Version) error {
	dir := filepath.Join(rt.appDir(app.ID), "versions", strconv.Itoa(v.ID))
	if err := rt.materialize(ctx, dir, v.Manifest); err != nil {
		return err
	}
	if err := rt.shareVersion(app.ID, dir); err != nil {
		return err
	}
	secrets, err := rt.cp.Secrets(ctx, app.ID)
	if err != nil {
		return err
	}
	rel := &appenv.Release{Version: v.ID, Dir: dir, Manifest: v.Manifest, Env: secrets,
		File: func(b api.Bundle) string { return filepath.Join(dir, b.Name+".js") }}
	treeRelease(rel, dir)
	if v.Manifest.Dialect != string(er.env().Dialect()) {
		// the environment was made for the other dialect: rebuild it for this one
		if err := rt.redialect(app, er, project.Dialect(v.Manifest.Dialect)); err != nil {
			return err
		}
	}
	_, err = er.env().Activate(ctx, rel)
	return err
}

// materialize writes a version's bundles and maps. The file names come from validated bundle
// names, never from the client, so nothing escapes the directory.
func (rt *Runtime) materialize(ctx context.Context, dir string, m api.Manifest) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, b := range m.Bundles {
		for _, f := range []struct{ hash, name string }{{b.Hash, b.Name + ".js"}, {b.MapHash, b.Name + ".js.map"}} {
			if err := rt.copyBlob(ctx, f.hash, filepath.Join(dir, f.name)); err != nil {
				return err
			}
		}
	}
	return rt.materializeTree(ctx, dir, m)
}

func (rt *Runtime) copyBlob(ctx context.Context, hash, dst string) error {
	in, err := rt.blobs.Open(ctx, hash)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Versions lists an app's versions (of one environment when env is set), newest first, without
// their manifests' bundles.
func (rt *Runtime) Versions(ctx context.Context, idOrName, env string) ([]api.Version, error) {
	if env != "" {
		if err := validEnv(env); err != nil {
			return nil, err
		}
	}
	app, err := rt.App(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	all, err := rt.cp.Versions(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	out := []api.Version{}
	for _, v := range all {
		if env == "" || v.Env == env {
			// the manifest for the console's config diffs, without a deployed tree's file list
			// (node_modules: thousands of entries)
			v.Manifest.Files = nil
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, nil
}

// Rollback makes an earlier version of env active again (the previous one when to is 0).
func (rt *Runtime) Rollback(ctx context.Context, idOrName, env string, to int) (*api.Version, error) {
	er, app, err := rt.envRuntime(ctx, idOrName, env)
	if err != nil {
		return nil, err
	}
	er.deploy.Lock()
	defer er.deploy.Unlock()
	if to == 0 {
		cur, err := rt.cp.Active(ctx, app.ID, env)
		if err != nil && !errors.Is(err, control.ErrNotFound) {
			return nil, err
		}
		vs, err := rt.Versions(ctx, app.ID, env)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			if v.ID < cur.ID {
				to = v.ID
				break
			}
		}
		if to == 0 {
			return nil, badf("no earlier version of %s to roll back to", env)
		}
	}
	v, err := rt.cp.Version(ctx, app.ID, to)
	if errors.Is(err, control.ErrNotFound) {
		return nil, badf("no version %d", to)
	}
	if err != nil {
		return nil, err
	}
	if v.Env != env {
		return nil, badf("version %d belongs to %s, not %s", to, v.Env, env)
	}
	if err := rt.switchTo(ctx, app, er, v); err != nil {
		return nil, err
	}
	v.Active = true
	return &v, nil
}

// Promote deploys staging's active artifacts to production, without a rebuild.
func (rt *Runtime) Promote(ctx context.Context, idOrName, message, who string) (*api.DeployResult, error) {
	app, err := rt.App(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	cur, err := rt.cp.Active(ctx, app.ID, "staging")
	if errors.Is(err, control.ErrNotFound) {
		return nil, badf("staging has no active version to promote")
	}
	if err != nil {
		return nil, err
	}
	if message == "" {
		message = "promote staging version " + strconv.Itoa(cur.ID)
	}
	res, err := rt.Deploy(ctx, app.ID, api.DeployRequest{Env: "production", Message: message, Who: who, Manifest: cur.Manifest})
	if err == nil && res.Version != nil {
		res.Version.Promoted = cur.ID
	}
	return res, err
}

// ---- secrets

var secretNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`) })

// reservedPrefixes are env names the runtime sets or Node reads: a secret must not override them.
var reservedPrefixes = []string{"LEANCLOUD_", "LC_", "WX_", "TCB_", "SCF_", "TENCENTCLOUD_", "NODE_", "NPM_", "FN_", "LD_", "DYLD_", "V8_", "UV_"}
var reservedNames = map[string]bool{"PATH": true, "HOME": true, "NODE_OPTIONS": true, "TRIGGER_SRC": true, "PWD": true, "SHELL": true, "TZ": true}

func checkEnvName(name string) error {
	if !secretNameRE().MatchString(name) {
		return errors.New("use letters, digits and '_', not starting with a digit")
	}
	up := strings.ToUpper(name)
	if reservedNames[up] {
		return fmt.Errorf("%s is reserved for the runtime", name)
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(up, p) {
			return fmt.Errorf("names starting with %s are reserved for the runtime", p)
		}
	}
	return nil
}

// SetSecret sets (value non-nil) or removes a secret; secrets are env vars of every function and
// take effect by restarting the active versions. The name is validated before anything is saved.
func (rt *Runtime) SetSecret(ctx context.Context, idOrName, name string, value *string) error {
	app, err := rt.App(ctx, idOrName)
	if err != nil {
		return err
	}
	if err := checkEnvName(name); err != nil {
		return badf("invalid secret name %q: %v", name, err)
	}
	if value != nil && len(*value) > 32<<10 {
		return badf("secret %s is over 32 KB", name)
	}
	if value == nil {
		err = rt.cp.DeleteSecret(ctx, app.ID, name)
		if errors.Is(err, control.ErrNotFound) {
			return &appenv.NotFound{Msg: "no secret named " + name}
		}
	} else {
		err = rt.cp.SetSecret(ctx, app.ID, name, *value)
	}
	if err != nil {
		return err
	}
	ar, err := rt.appRuntime(app)
	if err != nil {
		return err
	}
	for _, envName := range api.Environments {
		er := ar.envs[envName]
		er.deploy.Lock()
		v, err := rt.cp.Active(ctx, app.ID, envName)
		if err == nil {
			err = rt.activate(ctx, app, er, v)
		} else if errors.Is(err, control.ErrNotFound) {
			err = nil
		}
		er.deploy.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// SecretNames lists an app's secret names (values are never returned).
func (rt *Runtime) SecretNames(ctx context.Context, idOrName string) ([]string, error) {
	app, err := rt.App(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	s, err := rt.cp.Secrets(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for k := range s {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}
