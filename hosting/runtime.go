package hosting

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/leanstorage"
	"github.com/fnhq/fn/logstream"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/scheduler"
	"github.com/fnhq/fn/store"
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
}

// Runtime hosts apps.
type Runtime struct {
	cfg   Config
	state *stateFile
	mu    sync.Mutex
	apps  map[string]*appRuntime
}

type appRuntime struct {
	rt    *Runtime
	id    string
	envs  map[string]*envRuntime
	st    store.Store
	data  *leanstorage.Service
	logs  *logstream.Ring
	slots chan struct{} // per-app concurrency cap
	wx    *wxSessions
}

type envRuntime struct {
	app     *appRuntime
	name    string
	deploy  sync.Mutex // one deploy at a time
	current atomic.Pointer[activeVersion]
	// stopTimers stops the active version's timers (guarded by deploy)
	stopTimers context.CancelFunc
	timers     atomic.Pointer[scheduler.Scheduler]
}

type activeVersion struct {
	version *Version
	engine  *engine.Engine
}

// Errors with a meaning for clients.
var (
	ErrUnauthorized = errors.New("unauthorized")
	ErrNoApp        = errors.New("no such app")
)

// BadRequest is an invalid request, with the reason.
type BadRequest struct{ Msg string }

func (e *BadRequest) Error() string { return e.Msg }

func badf(format string, args ...any) error { return &BadRequest{Msg: fmt.Sprintf(format, args...)} }

// Open loads or creates a runtime in cfg.DataDir. newToken is non-empty the first time, when the
// runtime generated the admin token: show it once; only its hash is kept.
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
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "blobs"), 0o700); err != nil {
		return nil, "", err
	}
	sf, err := openState(cfg.DataDir)
	if err != nil {
		return nil, "", err
	}
	sf.mu.Lock()
	switch {
	case cfg.AdminToken != "":
		sf.s.AdminTokenHash = hashToken(cfg.AdminToken)
	case sf.s.AdminTokenHash == "":
		newToken = "fnadm_" + randomHex(24)
		sf.s.AdminTokenHash = hashToken(newToken)
	}
	err = sf.saveLocked()
	sf.mu.Unlock()
	if err != nil {
		return nil, "", err
	}
	rt = &Runtime{cfg: cfg, state: sf, apps: map[string]*appRuntime{}}
	for id := range sf.s.Apps {
		if _, err := rt.appRuntime(id); err != nil {
			return nil, "", err
		}
	}
	// bring every environment's active version back up
	for id, versions := range sf.s.Versions {
		for _, env := range Environments {
			for i := len(versions) - 1; i >= 0; i-- {
				if v := versions[i]; v.Env == env && v.Active {
					ar, _ := rt.appRuntime(id)
					if ar != nil {
						if err := ar.envs[env].activate(ctx, v); err != nil {
							ar.logs.Add(logstream.Record{Time: time.Now(), Env: env, Level: "error", Message: fmt.Sprintf("version %d could not start: %v", v.ID, err)})
						}
					}
					break
				}
			}
		}
	}
	return rt, newToken, nil
}

// CheckAdmin verifies an admin token.
func (rt *Runtime) CheckAdmin(token string) bool {
	rt.state.mu.Lock()
	defer rt.state.mu.Unlock()
	return token != "" && subtle.ConstantTimeCompare([]byte(hashToken(token)), []byte(rt.state.s.AdminTokenHash)) == 1
}

var appNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9-]{0,49}$`) })

// CreateApp makes an app with new keys.
func (rt *Runtime) CreateApp(name, wxAppID, wxSecret string) (*App, error) {
	if !appNameRE().MatchString(name) {
		return nil, badf("invalid app name %q: use 1–50 lower-case letters, digits and '-', starting with a letter", name)
	}
	rt.state.mu.Lock()
	for _, a := range rt.state.s.Apps {
		if a.Name == name {
			rt.state.mu.Unlock()
			return nil, badf("an app named %q exists already (%s)", name, a.ID)
		}
	}
	app := &App{ID: randomKey(18) + "-fnSrv", Name: name, AppKey: randomKey(24), MasterKey: randomKey(24), HookKey: randomKey(24),
		EnvID: name + "-" + randomHex(3), WXAppID: wxAppID, CreatedAt: time.Now().UTC()}
	rt.state.s.Apps[app.ID] = app
	if wxSecret != "" {
		rt.state.s.WXSecrets[app.ID] = wxSecret
	}
	err := rt.state.saveLocked()
	rt.state.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if _, err := rt.appRuntime(app.ID); err != nil {
		return nil, err
	}
	return app, nil
}

// Apps lists the apps.
func (rt *Runtime) Apps() []App {
	rt.state.mu.Lock()
	defer rt.state.mu.Unlock()
	out := make([]App, 0, len(rt.state.s.Apps))
	for _, a := range rt.state.s.Apps {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// App returns one app by id or name.
func (rt *Runtime) App(idOrName string) (*App, error) {
	rt.state.mu.Lock()
	defer rt.state.mu.Unlock()
	if a, ok := rt.state.s.Apps[idOrName]; ok {
		c := *a
		return &c, nil
	}
	for _, a := range rt.state.s.Apps {
		if a.Name == idOrName {
			c := *a
			return &c, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNoApp, idOrName)
}

// DeleteApp stops an app's engines and removes it with its data.
func (rt *Runtime) DeleteApp(idOrName string) error {
	app, err := rt.App(idOrName)
	if err != nil {
		return err
	}
	rt.mu.Lock()
	ar := rt.apps[app.ID]
	delete(rt.apps, app.ID)
	rt.mu.Unlock()
	if ar != nil {
		ar.close()
	}
	rt.state.mu.Lock()
	delete(rt.state.s.Apps, app.ID)
	delete(rt.state.s.Versions, app.ID)
	delete(rt.state.s.Secrets, app.ID)
	delete(rt.state.s.WXSecrets, app.ID)
	err = rt.state.saveLocked()
	rt.state.mu.Unlock()
	os.RemoveAll(rt.appDir(app.ID))
	return err
}

func (rt *Runtime) appDir(id string) string { return filepath.Join(rt.cfg.DataDir, "apps", id) }

func (rt *Runtime) appRuntime(id string) (*appRuntime, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if ar, ok := rt.apps[id]; ok {
		return ar, nil
	}
	st, err := store.OpenSQLite(filepath.Join(rt.appDir(id), "data.db"))
	if err != nil {
		return nil, err
	}
	ar := &appRuntime{rt: rt, id: id, envs: map[string]*envRuntime{}, st: st, logs: logstream.NewRing(rt.cfg.LogRetention),
		slots: make(chan struct{}, rt.cfg.AppConcurrency), wx: newWXSessions()}
	for _, env := range Environments {
		ar.envs[env] = &envRuntime{app: ar, name: env}
	}
	// storage hooks run in the production engine (LeanCloud's hooks belong to production)
	ar.data = leanstorage.New(st, hookInvoker{ar}, func(level, msg string) {
		ar.logs.Add(logstream.Record{Time: time.Now(), Env: "production", Level: level, Function: "storage", Message: msg})
	})
	rt.apps[id] = ar
	return ar, nil
}

// Close stops every app's engines, letting in-flight calls finish within grace.
func (rt *Runtime) Close(grace time.Duration) {
	rt.mu.Lock()
	apps := rt.apps
	rt.apps = map[string]*appRuntime{}
	rt.mu.Unlock()
	var wg sync.WaitGroup
	for _, ar := range apps {
		wg.Add(1)
		go func(ar *appRuntime) { defer wg.Done(); ar.closeGrace(grace) }(ar)
	}
	wg.Wait()
}

func (ar *appRuntime) close() { ar.closeGrace(2 * time.Second) }

func (ar *appRuntime) closeGrace(grace time.Duration) {
	for _, env := range ar.envs {
		env.deploy.Lock()
		if env.stopTimers != nil {
			env.stopTimers()
		}
		env.deploy.Unlock()
		if cur := env.current.Swap(nil); cur != nil {
			cur.engine.Close(grace)
		}
	}
	ar.st.Close()
}

// ---- blobs

var hashRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}$`) })

func (rt *Runtime) blobPath(hash string) string { return filepath.Join(rt.cfg.DataDir, "blobs", hash) }

// MissingBlobs returns the hashes the server does not have.
func (rt *Runtime) MissingBlobs(hashes []string) ([]string, error) {
	var missing []string
	for _, h := range hashes {
		if !hashRE().MatchString(h) {
			return nil, badf("invalid artifact hash %q: a sha256 is 64 lower-case hex digits", h)
		}
		if _, err := os.Stat(rt.blobPath(h)); err != nil {
			missing = append(missing, h)
		}
	}
	return missing, nil
}

// PutBlob stores an artifact whose sha256 must be hash; a truncated, oversized or tampered upload
// is rejected and nothing is kept.
func (rt *Runtime) PutBlob(hash string, r io.Reader) error {
	if !hashRE().MatchString(hash) {
		return badf("invalid artifact hash %q", hash)
	}
	tmp, err := os.CreateTemp(filepath.Join(rt.cfg.DataDir, "blobs"), ".upload-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, rt.cfg.MaxBlobBytes+1))
	tmp.Close()
	if err != nil {
		return badf("upload of %s failed: %v", hash[:12], err)
	}
	if n > rt.cfg.MaxBlobBytes {
		return badf("artifact %s is larger than the %d byte limit", hash[:12], rt.cfg.MaxBlobBytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hash {
		return badf("artifact %s does not match its content (sha256 %s): the upload was truncated or altered", hash[:12], got[:12])
	}
	return os.Rename(tmp.Name(), rt.blobPath(hash))
}

// ---- deploys

// DeployResult says what a deploy did.
type DeployResult struct {
	Changed bool     `json:"changed"`
	Version *Version `json:"version,omitempty"`
	Added   []string `json:"added,omitempty"`
	Changes []string `json:"changed_functions,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

func validEnv(env string) error {
	for _, e := range Environments {
		if e == env {
			return nil
		}
	}
	return badf("unknown environment %q: use production or staging", env)
}

// Plan compares a manifest with what an environment runs.
func (rt *Runtime) Plan(appID, env string, m Manifest) (*DeployResult, error) {
	if err := validEnv(env); err != nil {
		return nil, err
	}
	ar, err := rt.appRuntimeFor(appID)
	if err != nil {
		return nil, err
	}
	res := &DeployResult{}
	var old map[string]Bundle
	if cur := ar.envs[env].current.Load(); cur != nil {
		if cur.version.Digest == m.Digest() {
			return res, nil
		}
		old = map[string]Bundle{}
		for _, b := range cur.version.Manifest.Bundles {
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

func (rt *Runtime) appRuntimeFor(idOrName string) (*appRuntime, error) {
	app, err := rt.App(idOrName)
	if err != nil {
		return nil, err
	}
	return rt.appRuntime(app.ID)
}

var bundleNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,59}$`) })

// Deploy validates a manifest, loads every bundle in fresh workers, and only then switches the
// environment to it: in-flight calls finish on the old version. A failure changes nothing.
func (rt *Runtime) Deploy(ctx context.Context, appID, env string, m Manifest, message, who string) (*DeployResult, error) {
	if err := validEnv(env); err != nil {
		return nil, err
	}
	ar, err := rt.appRuntimeFor(appID)
	if err != nil {
		return nil, err
	}
	if m.Dialect != string(project.WX) && m.Dialect != string(project.Lean) {
		return nil, badf("manifest dialect must be wx or lean, got %q", m.Dialect)
	}
	if len(m.Bundles) == 0 {
		return nil, badf("the manifest has no bundles")
	}
	seen := map[string]bool{}
	for _, b := range m.Bundles {
		if !bundleNameRE().MatchString(b.Name) || seen[b.Name] {
			return nil, badf("invalid or repeated bundle name %q", b.Name)
		}
		seen[b.Name] = true
		if m.Dialect == string(project.Lean) && b.Name != project.LeanBundleName {
			return nil, badf("a lean manifest has one bundle named %q, got %q", project.LeanBundleName, b.Name)
		}
		if b.Config.Timeout < project.MinTimeout || b.Config.Timeout > project.MaxTimeout || b.Config.Memory < project.MinMemory || b.Config.Memory > project.MaxMemory {
			return nil, badf("bundle %s: timeout must be %d–%d s and memory %d–%d MB", b.Name, project.MinTimeout, project.MaxTimeout, project.MinMemory, project.MaxMemory)
		}
		missing, err := rt.MissingBlobs([]string{b.Hash, b.MapHash})
		if err != nil {
			return nil, err
		}
		if len(missing) > 0 {
			return nil, badf("bundle %s references artifacts the server does not have: %v (upload them first)", b.Name, missing)
		}
	}
	er := ar.envs[env]
	er.deploy.Lock()
	defer er.deploy.Unlock()
	plan, err := rt.Plan(appID, env, m)
	if err != nil || !plan.Changed {
		return plan, err
	}
	rt.state.mu.Lock()
	next := 1
	if vs := rt.state.s.Versions[ar.id]; len(vs) > 0 {
		next = vs[len(vs)-1].ID + 1
	}
	rt.state.mu.Unlock()
	v := &Version{ID: next, Env: env, CreatedAt: time.Now().UTC(), Message: message, Who: who, Digest: m.Digest(), Manifest: m}
	if err := er.activate(ctx, v); err != nil {
		return nil, err
	}
	rt.record(ar.id, v)
	plan.Version = v
	return plan, nil
}

// record stores a version as the active one of its environment.
func (rt *Runtime) record(appID string, v *Version) {
	rt.state.mu.Lock()
	defer rt.state.mu.Unlock()
	for _, o := range rt.state.s.Versions[appID] {
		if o.Env == v.Env {
			o.Active = false
		}
	}
	v.Active = true
	found := false
	for _, o := range rt.state.s.Versions[appID] {
		if o.ID == v.ID {
			o.Active, found = true, true
		}
	}
	if !found {
		rt.state.s.Versions[appID] = append(rt.state.s.Versions[appID], v)
	}
	rt.state.saveLocked()
}

// Versions lists an app's versions (of one environment when env is set), newest first.
func (rt *Runtime) Versions(appID, env string) ([]Version, error) {
	app, err := rt.App(appID)
	if err != nil {
		return nil, err
	}
	rt.state.mu.Lock()
	defer rt.state.mu.Unlock()
	var out []Version
	for _, v := range rt.state.s.Versions[app.ID] {
		if env == "" || v.Env == env {
			c := *v
			c.Manifest = Manifest{Dialect: v.Manifest.Dialect}
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, nil
}

func (rt *Runtime) version(appID string, id int) (*Version, error) {
	rt.state.mu.Lock()
	defer rt.state.mu.Unlock()
	for _, v := range rt.state.s.Versions[appID] {
		if v.ID == id {
			c := *v
			return &c, nil
		}
	}
	return nil, badf("no version %d", id)
}

// Rollback makes an earlier version of env active again (the previous one when to is 0).
func (rt *Runtime) Rollback(ctx context.Context, appID, env string, to int) (*Version, error) {
	if err := validEnv(env); err != nil {
		return nil, err
	}
	ar, err := rt.appRuntimeFor(appID)
	if err != nil {
		return nil, err
	}
	er := ar.envs[env]
	er.deploy.Lock()
	defer er.deploy.Unlock()
	cur := er.current.Load()
	if to == 0 {
		vs, _ := rt.Versions(ar.id, env)
		for _, v := range vs {
			if cur != nil && v.ID < cur.version.ID {
				to = v.ID
				break
			}
		}
		if to == 0 {
			return nil, badf("no earlier version of %s to roll back to", env)
		}
	}
	v, err := rt.version(ar.id, to)
	if err != nil {
		return nil, err
	}
	if v.Env != env {
		return nil, badf("version %d belongs to %s, not %s", to, v.Env, env)
	}
	if err := er.activate(ctx, v); err != nil {
		return nil, err
	}
	rt.record(ar.id, v)
	return v, nil
}

// Promote deploys staging's active artifacts to production, without a rebuild.
func (rt *Runtime) Promote(ctx context.Context, appID, message, who string) (*DeployResult, error) {
	ar, err := rt.appRuntimeFor(appID)
	if err != nil {
		return nil, err
	}
	cur := ar.envs["staging"].current.Load()
	if cur == nil {
		return nil, badf("staging has no active version to promote")
	}
	if message == "" {
		message = "promote staging version " + strconv.Itoa(cur.version.ID)
	}
	res, err := rt.Deploy(ctx, ar.id, "production", cur.version.Manifest, message, who)
	if err == nil && res.Version != nil {
		res.Version.Promoted = cur.version.ID
	}
	return res, err
}

// SetSecret sets (value non-nil) or removes a secret; secrets are env vars of every function and
// take effect by restarting the active versions.
func (rt *Runtime) SetSecret(ctx context.Context, appID, name string, value *string) error {
	ar, err := rt.appRuntimeFor(appID)
	if err != nil {
		return err
	}
	if !secretNameRE().MatchString(name) {
		return badf("invalid secret name %q: use letters, digits and '_'", name)
	}
	rt.state.mu.Lock()
	if rt.state.s.Secrets[ar.id] == nil {
		rt.state.s.Secrets[ar.id] = map[string]string{}
	}
	if value == nil {
		delete(rt.state.s.Secrets[ar.id], name)
	} else {
		rt.state.s.Secrets[ar.id][name] = *value
	}
	err = rt.state.saveLocked()
	rt.state.mu.Unlock()
	if err != nil {
		return err
	}
	for _, er := range ar.envs {
		er.deploy.Lock()
		if cur := er.current.Load(); cur != nil {
			if err := er.activate(ctx, cur.version); err != nil {
				er.deploy.Unlock()
				return err
			}
		}
		er.deploy.Unlock()
	}
	return nil
}

var secretNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })

// SecretNames lists an app's secret names (values are never returned).
func (rt *Runtime) SecretNames(appID string) ([]string, error) {
	app, err := rt.App(appID)
	if err != nil {
		return nil, err
	}
	rt.state.mu.Lock()
	defer rt.state.mu.Unlock()
	var out []string
	for k := range rt.state.s.Secrets[app.ID] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

func (rt *Runtime) secrets(appID string) map[string]string {
	rt.state.mu.Lock()
	defer rt.state.mu.Unlock()
	out := map[string]string{}
	for k, v := range rt.state.s.Secrets[appID] {
		out[k] = v
	}
	return out
}

// Timers lists an environment's timers with their state.
func (rt *Runtime) Timers(appID, env string) ([]scheduler.TimerStatus, error) {
	if err := validEnv(env); err != nil {
		return nil, err
	}
	ar, err := rt.appRuntimeFor(appID)
	if err != nil {
		return nil, err
	}
	if s := ar.envs[env].timers.Load(); s != nil {
		return s.Status(), nil
	}
	return []scheduler.TimerStatus{}, nil
}

// TimerControl enables, disables or triggers a timer of an environment.
func (rt *Runtime) TimerControl(ctx context.Context, appID, env, name, action string) error {
	if err := validEnv(env); err != nil {
		return err
	}
	if action != "enable" && action != "disable" && action != "trigger" {
		return badf("unknown timer action %q", action)
	}
	ar, err := rt.appRuntimeFor(appID)
	if err != nil {
		return err
	}
	s := ar.envs[env].timers.Load()
	if s == nil {
		return badf("%s has no timers", env)
	}
	// the run outlives the request that triggered it
	err = s.Control(context.WithoutCancel(ctx), name, action)
	var unknown *scheduler.ErrUnknownTimer
	if errors.As(err, &unknown) {
		return badf("%v", err)
	}
	return err
}
