package hosting

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/logstream"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/scheduler"
	"github.com/fnhq/fn/server"
)

// LoadFailed is a version whose bundles did not load: nothing was switched.
type LoadFailed struct{ Err error }

func (e *LoadFailed) Error() string {
	return "the new version did not load, the running version keeps serving:\n" + e.Err.Error()
}
func (e *LoadFailed) Unwrap() error { return e.Err }

// activate starts a version in a fresh engine and, once every bundle has loaded, makes it the
// environment's active version; the previous engine finishes its in-flight calls and stops.
func (er *envRuntime) activate(ctx context.Context, v *Version) error {
	rt := er.app.rt
	app, err := rt.App(er.app.id)
	if err != nil {
		return err
	}
	dir := filepath.Join(rt.appDir(app.ID), "versions", strconv.Itoa(v.ID))
	if err := materialize(rt, dir, v.Manifest); err != nil {
		return err
	}
	env := map[string]string{}
	dialect := project.Dialect(v.Manifest.Dialect)
	if dialect == project.Lean {
		env["LEANCLOUD_APP_ID"], env["LEANCLOUD_APP_KEY"] = app.ID, app.AppKey
		env["LEANCLOUD_APP_MASTER_KEY"], env["LEANCLOUD_APP_HOOK_KEY"] = app.MasterKey, app.HookKey
		env["LEANCLOUD_API_SERVER"], env["LEANCLOUD_APP_ENV"] = rt.cfg.PublicURL, er.name
		env["NODE_ENV"] = "staging"
		if er.name == "production" {
			env["NODE_ENV"] = "production"
		}
	} else {
		env["TCB_CONTEXT_CNFG"] = `{"URL":"` + rt.cfg.PublicURL + "/wx/" + app.ID + "/" + er.name + `/admin"}`
	}
	secrets := rt.secrets(app.ID)
	logs := er.app.logs
	eng, err := engine.New(engine.Config{Node: rt.cfg.Node, Dir: dir, Dialect: dialect, EnvID: app.EnvID, Env: env,
		IdleTimeout: 10 * time.Minute, RunnerDir: filepath.Join(rt.cfg.DataDir, "runner"),
		Logs: func(r engine.Record) {
			logs.Add(logstream.Record{Time: r.Time, Env: er.name, Version: v.ID, Function: r.Function, RequestID: r.RequestID, Level: r.Level, Message: r.Message})
		}})
	if err != nil {
		return err
	}
	var bundles []engine.Bundle
	for _, b := range v.Manifest.Bundles {
		cfg := b.Config
		merged := map[string]string{}
		for k, val := range cfg.Env {
			merged[k] = val
		}
		for k, val := range secrets {
			merged[k] = val
		}
		cfg.Env = merged
		bundles = append(bundles, engine.Bundle{Name: b.Name, File: filepath.Join(dir, b.Name+".js"), Hash: b.Hash, Config: cfg})
	}
	if _, err := eng.Load(ctx, bundles, engine.LoadOptions{}); err != nil {
		eng.Close(time.Second)
		return &LoadFailed{Err: err}
	}
	old := er.current.Swap(&activeVersion{version: v, engine: eng})
	logs.Add(logstream.Record{Time: time.Now(), Env: er.name, Version: v.ID, Level: "info", Message: fmt.Sprintf("version %d is active", v.ID)})
	er.startTimers(v)
	if old != nil {
		go old.engine.Close(30 * time.Second)
	}
	return nil
}

// startTimers runs the timers of a version that belong to this environment (a redeploy resets
// them: short-circuits clear).
func (er *envRuntime) startTimers(v *Version) {
	if er.stopTimers != nil {
		er.stopTimers()
		er.stopTimers = nil
	}
	er.timers.Store(nil)
	var timers []project.Timer
	for _, t := range v.Manifest.Timers {
		for _, e := range t.Environments {
			if e == er.name {
				timers = append(timers, t)
			}
		}
	}
	if len(timers) == 0 {
		return
	}
	tz := v.Manifest.Timezone
	if tz == "" {
		tz = project.DefaultTimezone
	}
	ctx, cancel := context.WithCancel(context.Background())
	er.stopTimers = cancel
	sched := scheduler.New(hostTarget{er: er, dialect: project.Dialect(v.Manifest.Dialect)}, timers, tz, 0)
	er.timers.Store(sched)
	go sched.Run(ctx)
}

// hostTarget is what a deployed environment's timers call and log to.
type hostTarget struct {
	er      *envRuntime
	dialect project.Dialect
}

func (t hostTarget) Dialect() project.Dialect { return t.dialect }
func (t hostTarget) InvokeWX(ctx context.Context, req engine.WXRequest) *engine.Result {
	return envInvoker{t.er}.InvokeWX(ctx, req)
}
func (t hostTarget) InvokeLean(ctx context.Context, req engine.LeanRequest) *engine.LeanResult {
	return envInvoker{t.er}.InvokeLean(ctx, req)
}
func (t hostTarget) Report(inv server.Invocation) {
	version := 0
	if cur := t.er.current.Load(); cur != nil {
		version = cur.version.ID
	}
	level, msg := "info", fmt.Sprintf("%s %d %.1fms (%s)", inv.Function, inv.Status, float64(inv.Duration.Microseconds())/1000, inv.Identity)
	if !inv.OK {
		level, msg = "error", msg+" "+inv.Error
	}
	t.er.app.logs.Add(logstream.Record{Time: inv.Time, Env: t.er.name, Version: version, Function: inv.Function, RequestID: inv.RequestID,
		Level: level, Message: msg, Invocation: true, Status: inv.Status, DurationMs: float64(inv.Duration.Microseconds()) / 1000})
}
func (t hostTarget) Note(level, function, msg string) {
	t.er.app.logs.Add(logstream.Record{Time: time.Now(), Env: t.er.name, Function: function, Level: level, Message: msg})
}

// materialize writes a version's bundles and maps from the blob store into its directory. The
// file names come from validated bundle names, never from the client, so nothing escapes it.
func materialize(rt *Runtime, dir string, m Manifest) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, b := range m.Bundles {
		for _, f := range []struct{ hash, name string }{{b.Hash, b.Name + ".js"}, {b.MapHash, b.Name + ".js.map"}} {
			if err := copyFile(rt.blobPath(f.hash), filepath.Join(dir, f.name)); err != nil {
				return err
			}
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// envInvoker is what the HTTP API calls: the environment's active engine, within the app's
// concurrency cap.
type envInvoker struct{ er *envRuntime }

var errNotDeployed = errors.New("nothing is deployed to this environment yet")

func (i envInvoker) acquire(ctx context.Context) (*engine.Engine, func(), error) {
	cur := i.er.current.Load()
	if cur == nil {
		return nil, nil, errNotDeployed
	}
	select {
	case i.er.app.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	return cur.engine, func() { <-i.er.app.slots }, nil
}

func (i envInvoker) InvokeWX(ctx context.Context, req engine.WXRequest) *engine.Result {
	eng, done, err := i.acquire(ctx)
	if err != nil {
		return &engine.Result{RequestID: engine.NewRequestID(), Err: &engine.FunctionError{Kind: engine.KindNotFound, Message: err.Error()}}
	}
	defer done()
	return eng.InvokeWX(ctx, req)
}

func (i envInvoker) WXCaller(token string) (engine.WXCaller, bool) {
	if cur := i.er.current.Load(); cur != nil {
		return cur.engine.WXCaller(token)
	}
	return engine.WXCaller{}, false
}

func (i envInvoker) InvokeLean(ctx context.Context, req engine.LeanRequest) *engine.LeanResult {
	eng, done, err := i.acquire(ctx)
	if err != nil {
		return &engine.LeanResult{RequestID: engine.NewRequestID(), Status: 404,
			Body: []byte(`{"code":1,"error":"` + err.Error() + `"}`), Err: &engine.FunctionError{Kind: engine.KindNotFound, Message: err.Error()}}
	}
	defer done()
	return eng.InvokeLean(ctx, req)
}

func (i envInvoker) Functions() []string {
	if cur := i.er.current.Load(); cur != nil {
		return cur.engine.Functions()
	}
	return nil
}

// hookInvoker runs LeanStorage hooks in the app's production environment.
type hookInvoker struct{ ar *appRuntime }

func (h hookInvoker) InvokeLean(ctx context.Context, req engine.LeanRequest) *engine.LeanResult {
	return envInvoker{h.ar.envs["production"]}.InvokeLean(ctx, req)
}

func (h hookInvoker) Functions() []string {
	return envInvoker{h.ar.envs["production"]}.Functions()
}
