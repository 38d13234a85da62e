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

	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/leanstorage"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/server"
)

// InvokeOptions describe one local invocation without a dev server.
type InvokeOptions struct {
	Node     string
	Function string
	Data     json.RawMessage
	Identity string // a name from fn.yaml identities; empty for the default
	Timeout  time.Duration
	Logs     func(engine.Record)
}

// Outcome is the result of a local invocation.
type Outcome struct {
	Function  string                `json:"function"`
	Dialect   project.Dialect       `json:"dialect"`
	RequestID string                `json:"requestId"`
	Identity  string                `json:"identity,omitempty"`
	Result    json.RawMessage       `json:"result,omitempty"`
	Error     *engine.FunctionError `json:"error,omitempty"`
	// lean: the HTTP status and body LeanEngine answers with
	Status     int             `json:"status,omitempty"`
	Body       json.RawMessage `json:"body,omitempty"`
	DurationMs float64         `json:"durationMs"`
	MemoryMB   int             `json:"memoryMB"`
}

// Failed reports whether the function failed.
func (o *Outcome) Failed() bool { return o.Error != nil }

// UnknownFunctionError names a function the project does not have.
type UnknownFunctionError struct {
	Name  string
	Known []string
}

func (e *UnknownFunctionError) Error() string {
	return fmt.Sprintf("no function named %q (functions: %s)", e.Name, strings.Join(e.Known, ", "))
}

// Invoke builds the project in dev mode, runs one function in a fresh engine and stops it.
func Invoke(ctx context.Context, p *project.Project, o InvokeOptions) (*Outcome, error) {
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
	env := map[string]string{}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	base := "http://" + ln.Addr().String()
	// Spare: the engine starts Node right away, while esbuild builds
	cfg := engine.Config{Node: o.Node, Dir: p.Dir, Dialect: p.Dialect, EnvID: p.EnvID, Env: env, Logs: o.Logs, Spare: true}
	var keys Keys
	switch p.Dialect {
	case project.WX:
		env["TCB_CONTEXT_CNFG"] = `{"URL":"` + base + `/admin"}`
	case project.Lean:
		if keys, _, err = DevKeys(p); err != nil {
			ln.Close()
			return nil, err
		}
		for k, v := range LeanEnv(keys, base) {
			env[k] = v
		}
	}
	eng, err := engine.New(cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	defer eng.Close(time.Second)
	b, err := bundler.New(bundler.Options{ProjectDir: p.Dir, OutDir: p.StatePath("run"), Dialect: p.Dialect, Target: p.Runtime,
		Mode: bundler.Dev, External: p.Build.External}, entries)
	if err != nil {
		ln.Close()
		return nil, err
	}
	defer b.Dispose()
	m, _, err := b.Build()
	if err != nil {
		ln.Close()
		return nil, err
	}
	// the same API fn dev serves: /admin for the wx SDK, LeanStorage for cloud code
	opts := server.Options{Dialect: p.Dialect, Invoker: eng, WXIdentity: func(*http.Request) (*engine.WXIdentity, string, error) { return nil, "", nil }}
	if p.Dialect == project.Lean {
		st, err := OpenData(p, false)
		if err != nil {
			ln.Close()
			return nil, err
		}
		defer st.Close()
		opts.Keys = server.LeanKeys{AppID: keys.AppID, AppKey: keys.AppKey, MasterKey: keys.MasterKey, HookKey: keys.HookKey}
		opts.Storage = leanstorage.New(st, eng, nil)
	}
	srv.Handler = server.New(opts)
	go srv.Serve(ln)
	defer srv.Close()

	var bundles []engine.Bundle
	for _, a := range m.Bundles {
		bundles = append(bundles, engine.Bundle{Name: a.Name, File: p.StatePath("run", a.File), Hash: a.Hash, Config: p.Function(a.Name)})
	}
	if _, err := eng.Load(ctx, bundles, engine.LoadOptions{Lazy: p.Dialect == project.WX}); err != nil {
		return nil, err
	}
	out := &Outcome{Function: o.Function, Dialect: p.Dialect}
	switch p.Dialect {
	case project.WX:
		id, name, err := p.Identity(o.Identity)
		if err != nil {
			return nil, err
		}
		out.Identity = name
		out.MemoryMB = p.Function(o.Function).Memory
		res := eng.InvokeWX(ctx, engine.WXRequest{Function: o.Function, Data: o.Data, UserInfo: true, Source: "wx_client",
			Identity: &engine.WXIdentity{OpenID: id.OpenID, AppID: id.AppID, UnionID: id.UnionID}, Timeout: o.Timeout})
		out.RequestID, out.Result, out.Error, out.DurationMs = res.RequestID, res.Value, res.Err, ms(res.Duration)
	case project.Lean:
		token, name, err := leanSession(ctx, p, opts.Storage, o.Identity)
		if err != nil {
			return nil, err
		}
		out.Identity = name
		out.MemoryMB = p.Function(project.LeanBundleName).Memory
		res := eng.InvokeLean(ctx, engine.LeanRequest{Kind: engine.LeanFunction, Name: o.Function, Params: o.Data,
			RemoteAddress: "127.0.0.1", Timeout: o.Timeout, SessionToken: token})
		leanOutcome(out, res)
	}
	return out, nil
}

// LeanEnv is what the real leanengine SDK reads to find its app and the storage API.
func LeanEnv(k Keys, apiServer string) map[string]string {
	return map[string]string{
		"LEANCLOUD_APP_ID": k.AppID, "LEANCLOUD_APP_KEY": k.AppKey, "LEANCLOUD_APP_MASTER_KEY": k.MasterKey,
		"LEANCLOUD_APP_HOOK_KEY": k.HookKey, "LEANCLOUD_API_SERVER": apiServer, "LEANCLOUD_APP_ENV": "development",
		"LEANCLOUD_APP_PORT": "3000", "LEANCLOUD_REGION": "CN",
	}
}

// leanSession resolves a lean identity (fn.yaml identities: {name: {user: username}}) to a
// session token of that user. No identity and no default: no session.
func leanSession(ctx context.Context, p *project.Project, data *leanstorage.Service, identity string) (string, string, error) {
	if identity == "" && p.DefaultIdentity == "" {
		return "", "", nil
	}
	id, name, err := p.Identity(identity)
	if err != nil {
		return "", "", err
	}
	if id.User == "" {
		return "", "", nil
	}
	token, err := data.SessionFor(ctx, id.User)
	if err != nil {
		return "", "", fmt.Errorf("identity %s: %w", name, err)
	}
	return token, name, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// InvokeDev runs a function in the fn dev described by st and returns the outcome with its logs.
func InvokeDev(ctx context.Context, st *DevState, o InvokeOptions) (*Outcome, []engine.Record, error) {
	body, _ := json.Marshal(map[string]any{"data": o.Data, "identity": o.Identity, "timeoutNs": o.Timeout})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.URL+"/__fn/invoke/"+o.Function, strings.NewReader(string(body)))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("the running fn dev at %s did not answer: %w", st.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		return nil, nil, errors.New(e.Error)
	}
	var out DevInvokeResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, nil, fmt.Errorf("reading fn dev's answer: %w", err)
	}
	return &out.Outcome, out.Logs, nil
}
