package localrun

import (
	"context"
	"errors"
	"net/http"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/appenv"
	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/leanstorage"
	"github.com/fnhq/fn/logsink"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/server"
)

// hookInvoker runs LeanStorage's hooks in the dev environment (created after the storage).
type hookInvoker struct{ d *dev }

func (h hookInvoker) InvokeLean(ctx context.Context, req engine.LeanRequest) *engine.LeanResult {
	return h.d.env.InvokeLean(ctx, req)
}
func (h hookInvoker) Functions() []string { return h.d.env.Functions() }

// devBackend is the admin API of fn dev: one app (the project, also reachable as "-") with one
// environment, dev.
type devBackend struct{ d *dev }

func (b devBackend) app() api.App {
	return api.App{ID: b.d.p.Name, Name: b.d.p.Name, AppKey: b.d.keys.AppKey, EnvID: b.d.p.EnvID}
}

func (b devBackend) Whoami(ctx context.Context, r *http.Request) map[string]any {
	return map[string]any{"role": "dev", "apps": 1, "app": b.d.p.Name}
}

func (b devBackend) Apps(ctx context.Context) ([]api.App, error) { return []api.App{b.app()}, nil }

func (b devBackend) AppID(ctx context.Context, app string) (string, error) {
	if app != b.d.p.Name && app != "-" {
		return "", &appenv.NotFound{Msg: "no such app: " + app + " (this fn dev serves " + b.d.p.Name + ")"}
	}
	return b.d.p.Name, nil
}

func (b devBackend) Env(ctx context.Context, app, env string) (*appenv.Env, error) {
	if _, err := b.AppID(ctx, app); err != nil {
		return nil, err
	}
	if env != api.DevEnv {
		return nil, &appenv.BadRequest{Msg: "fn dev runs one environment, dev (got " + env + ")"}
	}
	return b.d.env, nil
}

func (b devBackend) Logs() logsink.Sink { return b.d.sink }

// Data implements admin.DataBackend: fn import into a running fn dev writes its store.
func (b devBackend) Data(ctx context.Context, app string) (*leanstorage.Service, error) {
	if _, err := b.AppID(ctx, app); err != nil {
		return nil, err
	}
	if b.d.data == nil {
		return nil, &appenv.BadRequest{Msg: "this project is not a lean project: it keeps no LeanStorage data"}
	}
	return b.d.data, nil
}

func (b devBackend) Caller(ctx context.Context, env *appenv.Env, identity string) (appenv.Caller, error) {
	b.d.mu.Lock()
	p := b.d.p
	b.d.mu.Unlock()
	return projectCaller(ctx, p, b.d.data, identity)
}

// projectCaller resolves a named identity of fn.yaml (or the default) for fn dev and fn invoke.
func projectCaller(ctx context.Context, p *project.Project, data interface {
	IdentitySession(context.Context, string) (string, error)
}, identity string) (appenv.Caller, error) {
	switch p.Dialect {
	case project.WX:
		id, name, err := p.Identity(identity)
		if err != nil {
			return appenv.Caller{}, &appenv.BadRequest{Msg: err.Error()}
		}
		return appenv.Caller{WX: &engine.WXIdentity{OpenID: id.OpenID, AppID: id.AppID, UnionID: id.UnionID}, Name: name}, nil
	default:
		if identity == "" && p.DefaultIdentity == "" {
			return appenv.Caller{}, nil
		}
		id, name, err := p.Identity(identity)
		if err != nil {
			return appenv.Caller{}, &appenv.BadRequest{Msg: err.Error()}
		}
		if id.User == "" || data == nil {
			return appenv.Caller{Name: name}, nil
		}
		token, err := data.IdentitySession(ctx, id.User)
		if err != nil {
			return appenv.Caller{}, &appenv.BadRequest{Msg: "identity " + name + ": " + err.Error()}
		}
		return appenv.Caller{SessionToken: token, Name: name}, nil
	}
}

var errNotLoopback = errors.New("fn dev's admin API answers loopback clients only")

// loopbackOnly admits requests from this machine only (fn dev may listen on 0.0.0.0 for devices).
func loopbackOnly(r *http.Request, app string) error {
	if !server.LoopbackPeer(r) {
		return errNotLoopback
	}
	return nil
}

// Project implements admin.SourceBackend: the console edits the project's source, and the
// watcher hot-reloads what it saves.
func (b devBackend) Project() *project.Project {
	b.d.mu.Lock()
	defer b.d.mu.Unlock()
	return b.d.p
}
