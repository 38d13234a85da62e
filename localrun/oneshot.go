package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/appenv"
	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/leanstorage"
	"github.com/fnhq/fn/logsink"
	"github.com/fnhq/fn/project"
)

// InvokeOptions describe one local invocation without a dev server.
type InvokeOptions struct {
	Node        string
	NodeVersion string
	Function    string
	Data        json.RawMessage
	Identity    string // a name from fn.yaml identities; empty for the default
	Timeout     time.Duration
	// Observer is told about the call's log records as they happen.
	Observer appenv.Observer
}

// UnknownFunctionError names a function the project does not have.
type UnknownFunctionError struct {
	Name  string
	Known []string
}

func (e *UnknownFunctionError) Error() string {
	return fmt.Sprintf("no function named %q (functions: %s)", e.Name, strings.Join(e.Known, ", "))
}

// Invoke builds what the call needs in dev mode, runs one function in a fresh environment
// (with its own loopback API, so nested calls and LeanStorage work) and stops it.
func Invoke(ctx context.Context, p *project.Project, o InvokeOptions) (*api.Outcome, error) {
	entries, err := p.Entries()
	if err != nil {
		return nil, err
	}
	if p.Dialect == project.WX {
		known := make([]string, len(entries))
		found := false
		for i, e := range entries {
			known[i] = e.Name
			found = found || e.Name == o.Function
		}
		if !found {
			sort.Strings(known)
			return nil, &UnknownFunctionError{Name: o.Function, Known: known}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	base := "http://" + ln.Addr().String()
	cfg := appenv.Config{App: p.Name, Name: api.DevEnv, Dialect: p.Dialect, EnvID: p.EnvID, PublicURL: base, WXAdminPath: "/admin",
		Node: o.Node, NodeVersion: o.NodeVersion, NoTimers: true, Logs: logsink.NewMemory(1000), Observer: o.Observer,
		CodeCacheDir: CodeCacheDir(p)}
	var env *appenv.Env
	var data *leanstorage.Service
	if p.Dialect == project.Lean {
		keys, _, err := DevKeys(p)
		if err != nil {
			return nil, err
		}
		cfg.Keys = appenv.Keys(keys)
		st, err := OpenData(p, false)
		if err != nil {
			return nil, err
		}
		defer st.Close()
		data = leanstorage.NewWithOptions(st, envHooks{&env}, nil, leanstorage.Options{AuthVerifiers: leanstorage.TrustingVerifiers()})
		cfg.Data = data
	}
	if p.Dialect == project.WX {
		db, err := OpenWXData(p, false)
		if err != nil {
			return nil, err
		}
		defer db.Close()
		cfg.WXData = db
		files, err := OpenWXStorage(p, false)
		if err != nil {
			return nil, err
		}
		cfg.WXStorage, cfg.OpenAPI, cfg.WXDBPermissions = files, OpenAPIConfig(p), DBPermissions(p)
	}
	env, err = appenv.New(cfg)
	if err != nil {
		return nil, err
	}
	defer env.Close(time.Second)
	if p.App == nil {
		// the worker's Node starts while the call's function builds
		if err := env.Prestart(p.Dir); err != nil {
			return nil, err
		}
	}
	srv := &http.Server{Handler: env.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	if p.App != nil {
		// app mode: the call runs inside the project's own app process, started for it
		if _, err := env.Activate(ctx, AppRelease(p, true)); err != nil {
			return nil, unwrapLoad(err)
		}
		caller, err := projectCaller(ctx, p, data, o.Identity)
		if err != nil {
			return nil, err
		}
		return env.Invoke(ctx, o.Function, o.Data, caller, o.Timeout), nil
	}
	b, err := bundler.New(bundler.Options{ProjectDir: p.Dir, OutDir: p.StatePath("run"), Dialect: p.Dialect, Target: p.Runtime,
		Mode: bundler.Dev, External: p.Build.External}, entries)
	if err != nil {
		return nil, err
	}
	defer b.Dispose()
	m, err := buildForCall(b, p, o.Function)
	if err != nil {
		return nil, err
	}
	files := map[string]string{}
	for _, a := range m.Bundles {
		files[a.Name] = p.StatePath("run", a.File)
	}
	rel := &appenv.Release{Dir: p.Dir, Manifest: m.APIManifest(p, nil, false), InPlace: true, File: func(b api.Bundle) string { return files[b.Name] }}
	if p.Dialect == project.WX {
		rel.Eager = []string{o.Function}
	}
	if _, err := env.Activate(ctx, rel); err != nil {
		if err = callerLoadError(unwrapLoad(err), p, o.Function); err != nil {
			return nil, err
		}
	}
	caller, err := projectCaller(ctx, p, data, o.Identity)
	if err != nil {
		return nil, err
	}
	return env.Invoke(ctx, o.Function, o.Data, caller, o.Timeout), nil
}

// buildForCall builds what a one-shot call needs: the called wx function must build; its
// siblings (which nested calls may reach) are built one by one, and one that does not build is
// left out rather than failing the call. A lean project is one bundle.
func buildForCall(b *bundler.Bundler, p *project.Project, function string) (*bundler.Manifest, error) {
	if p.Dialect != project.WX {
		m, _, err := b.Build()
		return m, err
	}
	m, _, err := b.Rebuild([]string{function})
	if err != nil {
		return nil, err
	}
	for _, name := range b.Names() {
		if name == function {
			continue
		}
		if m2, _, err := b.Rebuild([]string{name}); err == nil {
			m = m2
		}
	}
	return m, nil
}

// callerLoadError keeps a load failure only when it is the called function's (wx): a sibling
// that fails to load answers its own callers with why.
func callerLoadError(err error, p *project.Project, function string) error {
	var le *engine.LoadError
	if p.Dialect != project.WX || !errors.As(err, &le) {
		return err
	}
	if fe, ok := le.Errors[function]; ok {
		return &engine.LoadError{Errors: map[string]*engine.FunctionError{function: fe}}
	}
	return nil
}

// envHooks runs LeanStorage's hooks in an environment created after the storage.
type envHooks struct{ env **appenv.Env }

func (h envHooks) InvokeLean(ctx context.Context, req engine.LeanRequest) *engine.LeanResult {
	return (*h.env).InvokeLean(ctx, req)
}
func (h envHooks) Functions() []string { return (*h.env).Functions() }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
