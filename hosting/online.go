package hosting

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fnhq/fn/admin"
	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/appenv"
	"github.com/fnhq/fn/artifacts"
	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/control"
	"github.com/fnhq/fn/project"
)

// onlineErr maps the control plane's not-found to the admin API's.
func onlineErr(err error, what string) error {
	if errors.Is(err, control.ErrNotFound) {
		return &appenv.NotFound{Msg: "no online function " + what}
	}
	return err
}

// OnlineFunctions lists an app's online functions (latest revisions).
func (rt *Runtime) OnlineFunctions(ctx context.Context, idOrName string) ([]api.OnlineFunction, error) {
	app, err := rt.App(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	return rt.cp.OnlineFunctions(ctx, app.ID)
}

// OnlineFunction is one online function at its latest revision.
func (rt *Runtime) OnlineFunction(ctx context.Context, idOrName, name string) (*api.OnlineFunction, error) {
	app, err := rt.App(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	f, err := rt.cp.OnlineFunction(ctx, app.ID, name)
	if err != nil {
		return nil, onlineErr(err, name)
	}
	return &f, nil
}

// SaveOnline stores a new revision of an online function (checked by the admin API).
func (rt *Runtime) SaveOnline(ctx context.Context, idOrName string, f api.OnlineFunction) (*api.OnlineFunction, error) {
	app, err := rt.App(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	fns, err := rt.cp.OnlineFunctions(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	exists := false
	for _, o := range fns {
		exists = exists || o.Name == f.Name
		if o.Name != f.Name && o.Type == "hook" && f.Type == "hook" && o.Class == f.Class && o.Hook == f.Hook {
			return nil, &appenv.BadRequest{Msg: fmt.Sprintf("hook: %s already defines the %s hook of %s", o.Name, f.Hook, f.Class)}
		}
	}
	if !exists && len(fns) >= admin.MaxOnlineFunctions {
		return nil, &appenv.BadRequest{Msg: fmt.Sprintf("an app has at most %d online functions", admin.MaxOnlineFunctions)}
	}
	saved, err := rt.cp.SaveOnline(ctx, app.ID, f)
	if err != nil {
		return nil, err
	}
	return &saved, nil
}

// DeleteOnline removes an online function and its history.
func (rt *Runtime) DeleteOnline(ctx context.Context, idOrName, name string) error {
	app, err := rt.App(ctx, idOrName)
	if err != nil {
		return err
	}
	return onlineErr(rt.cp.DeleteOnline(ctx, app.ID, name), name)
}

// OnlineHistory lists an online function's revisions, newest first.
func (rt *Runtime) OnlineHistory(ctx context.Context, idOrName, name string) ([]api.OnlineRevision, error) {
	app, err := rt.App(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	revs, err := rt.cp.OnlineHistory(ctx, app.ID, name)
	return revs, onlineErr(err, name)
}

// OnlineDeploy builds the merged cloud.js of the app's online functions as a LeanEngine project
// (a production bundle, with the SDKs of Config.SDKDir) and deploys it to env through Deploy: a
// normal version, which rollback and promote treat as any other. As on LeanCloud, it replaces
// what a project deploy put there.
func (rt *Runtime) OnlineDeploy(ctx context.Context, idOrName, env, message, who string) (*api.DeployResult, error) {
	if err := validEnv(env); err != nil {
		return nil, err
	}
	app, err := rt.App(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	fns, err := rt.cp.OnlineFunctions(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	if len(fns) == 0 {
		return nil, &appenv.BadRequest{Msg: "app " + app.Name + " has no online functions to deploy"}
	}
	for _, e := range api.Environments {
		if v, err := rt.cp.Active(ctx, app.ID, e); err == nil && v.Manifest.Dialect == string(project.WX) {
			return nil, &appenv.BadRequest{Msg: "online editing is LeanEngine's, and " + e + " of " + app.Name + " runs wx functions: deploy them as a project"}
		}
	}
	modules := filepath.Join(rt.cfg.SDKDir, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "leanengine", "package.json")); rt.cfg.SDKDir == "" || err != nil {
		return nil, &appenv.Unprocessable{Code: "no_sdk", Msg: "online deploys build against leanengine, and this fn serve has none: start it with --sdk-dir DIR (a directory whose node_modules holds leanengine), or download online.js and deploy it as a project"}
	}
	dir, err := os.MkdirTemp(filepath.Join(rt.cfg.DataDir), "online-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var yaml strings.Builder
	yaml.WriteString("name: online\ndialect: lean\n")
	timers := false
	for _, f := range fns {
		if f.Type == "timer" {
			if !timers {
				yaml.WriteString("timers:\n")
				timers = true
			}
			fmt.Fprintf(&yaml, "  %s:\n    function: %s\n    cron: %q\n", f.Name, f.Name, f.Cron)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "fn.yaml"), []byte(yaml.String()), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "cloud.js"), []byte(admin.MergeCloudJS(app.Name, fns)), 0o600); err != nil {
		return nil, err
	}
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		return nil, err
	}
	p, err := project.Load(dir)
	if err != nil {
		return nil, &appenv.BadRequest{Msg: "the online functions do not make a project: " + err.Error()}
	}
	entries, err := p.Entries()
	if err != nil {
		return nil, err
	}
	b, err := bundler.New(bundler.Options{ProjectDir: dir, OutDir: p.StatePath("deploy"), Dialect: project.Lean, Target: p.Runtime,
		Mode: bundler.Production, Minify: true}, entries)
	if err != nil {
		return nil, err
	}
	defer b.Dispose()
	m, _, err := b.Build()
	if err != nil {
		return nil, &appenv.LoadFailed{Err: err}
	}
	mapHashes := map[string]string{}
	for _, a := range m.Bundles {
		for _, f := range []string{a.File, a.SourceMap} {
			hash, err := rt.storeFile(ctx, app.ID, p.StatePath("deploy", f))
			if err != nil {
				return nil, err
			}
			if f == a.SourceMap {
				mapHashes[a.Name] = hash
			}
		}
	}
	manifest := m.APIManifest(p, mapHashes, true)
	manifest.SDKVersion = project.LeanengineVersion(dir)
	if who == "" {
		who = "online"
	}
	if message == "" {
		message = fmt.Sprintf("online: %d functions", len(fns))
	}
	return rt.Deploy(ctx, app.ID, api.DeployRequest{Env: env, Message: message, Who: who, Manifest: manifest})
}

// storeFile puts a built artifact into the artifact store and answers its hash.
func (rt *Runtime) storeFile(ctx context.Context, appID, path string) (string, error) {
	hash, err := artifacts.HashFile(path)
	if err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return hash, rt.PutBlob(ctx, appID, hash, f)
}
