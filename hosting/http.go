package hosting

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/fnhq/fn/admin"
	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/appenv"
	"github.com/fnhq/fn/console"
	"github.com/fnhq/fn/leanstorage"
	"github.com/fnhq/fn/logsink"
	"github.com/fnhq/fn/server"
)

// Handler is the whole HTTP surface of fn serve: the admin API under /__fn/ (the admin token, or
// an app's master key for that app's routes) and the client routes of every app (LeanEngine by
// X-LC-Id, wx under /wx/{app}/{env}/). stop ends open log follows when the server shuts down.
func (rt *Runtime) Handler(stop <-chan struct{}) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /__fn/health", rt.health(stop))
	con := console.New(console.Options{Credentials: rt, Sessions: rt.cp}) // logins in the control plane: every replica knows them
	mux.Handle(console.Path+"/", con)
	mux.Handle(console.Path, con)
	mux.Handle("/__fn/", con.Guard(admin.Handler(admin.Options{Backend: backend{rt}, Hosting: hostingAPI{rt}, Authorize: con.Authorize(rt.authorize), Stop: stop})))
	// client routes answer CORS preflights before routing (a preflight carries no X-LC-Id)
	mux.Handle("POST /wx/{app}/login", server.CORS(http.HandlerFunc(rt.wxLogin)))
	mux.Handle("/wx/{app}/{env}/{rest...}", server.CORS(http.HandlerFunc(rt.wx)))
	mux.HandleFunc("/app/{app}/{env}/{rest...}", rt.appPath)
	mux.HandleFunc("/__files/{app}/{id}/{name...}", rt.files)
	mux.Handle("/", server.CORS(http.HandlerFunc(rt.lean)))
	return mux
}

// files serves an app's file contents at their public URLs (LeanCloud's file domain: no keys).
func (rt *Runtime) files(w http.ResponseWriter, r *http.Request) {
	app, err := rt.App(r.Context(), r.PathValue("app"))
	if err != nil || app.ID != r.PathValue("app") {
		writeLean(w, http.StatusNotFound, 404, "no such file")
		return
	}
	ar, err := rt.appRuntime(app)
	if err != nil {
		admin.Fail(w, err)
		return
	}
	ar.data.ServeFile(w, r, r.PathValue("id"))
}

var errUnauthorized = errors.New("unauthorized: a valid admin token is required (fn login), or the app's master key for its own routes")

// authorize admits the admin token everywhere and an app's master key for that app's routes.
func (rt *Runtime) authorize(r *http.Request, app string) error {
	tok := bearer(r)
	if tok == "" {
		return errUnauthorized
	}
	if rt.CheckAdmin(r.Context(), tok) {
		return nil
	}
	if app != "" {
		if a, err := rt.App(r.Context(), app); err == nil && a.MasterKey != "" && server.ConstantEqual(tok, a.MasterKey) {
			return nil
		}
	}
	return errUnauthorized
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if !strings.HasPrefix(h, "Bearer ") {
		return ""
	}
	return strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))
}

// backend is fn serve's side of the admin API.
type backend struct{ rt *Runtime }

func (b backend) Whoami(ctx context.Context, r *http.Request) map[string]any {
	apps, _ := b.rt.Apps(ctx)
	role := "app"
	if b.rt.CheckAdmin(ctx, bearer(r)) {
		role = "admin"
	}
	return map[string]any{"role": role, "apps": len(apps)}
}
func (b backend) Apps(ctx context.Context) ([]api.App, error) { return b.rt.Apps(ctx) }
func (b backend) AppID(ctx context.Context, app string) (string, error) {
	return b.rt.AppID(ctx, app)
}
func (b backend) Env(ctx context.Context, app, env string) (*appenv.Env, error) {
	return b.rt.Env(ctx, app, env)
}
func (b backend) Logs() logsink.Sink { return b.rt.logs }

// Data implements admin.DataBackend: fn import writes into the app's store.
func (b backend) Data(ctx context.Context, app string) (*leanstorage.Service, error) {
	a, err := b.rt.App(ctx, app)
	if err != nil {
		return nil, err
	}
	ar, err := b.rt.appRuntime(a)
	if err != nil {
		return nil, err
	}
	return ar.data, nil
}

// Caller: remote invocations run as another function would call them (wx: no user) or with the
// master key (lean); named identities are fn dev's.
func (b backend) Caller(ctx context.Context, env *appenv.Env, identity string) (appenv.Caller, error) {
	if identity != "" {
		return appenv.Caller{}, &appenv.BadRequest{Msg: "identities are fn dev's: a deployed function is invoked as the server (no --as)"}
	}
	return appenv.Caller{}, nil
}

// hostingAPI is what fn serve adds to the admin API.
type hostingAPI struct{ rt *Runtime }

func (h hostingAPI) CreateApp(ctx context.Context, req admin.CreateAppRequest) (*api.App, error) {
	return h.rt.CreateApp(ctx, req.Name, req.WXAppID, req.WXSecret,
		appenv.Keys{AppID: req.AppID, AppKey: req.AppKey, MasterKey: req.MasterKey, HookKey: req.HookKey})
}
func (h hostingAPI) DeleteApp(ctx context.Context, app string) error { return h.rt.DeleteApp(ctx, app) }
func (h hostingAPI) MissingBlobs(ctx context.Context, app string, hashes []string) ([]string, error) {
	return h.rt.MissingBlobs(ctx, app, hashes)
}
func (h hostingAPI) PutBlob(ctx context.Context, app, hash string, r io.Reader) error {
	return h.rt.PutBlob(ctx, app, hash, r)
}
func (h hostingAPI) Deploy(ctx context.Context, app string, req api.DeployRequest) (*api.DeployResult, error) {
	return h.rt.Deploy(ctx, app, req)
}
func (h hostingAPI) Versions(ctx context.Context, app, env string) ([]api.Version, error) {
	return h.rt.Versions(ctx, app, env)
}
func (h hostingAPI) Rollback(ctx context.Context, app, env string, to int) (*api.Version, error) {
	return h.rt.Rollback(ctx, app, env, to)
}
func (h hostingAPI) Promote(ctx context.Context, app, message, who string) (*api.DeployResult, error) {
	return h.rt.Promote(ctx, app, message, who)
}
func (h hostingAPI) OnlineFunctions(ctx context.Context, app string) ([]api.OnlineFunction, error) {
	return h.rt.OnlineFunctions(ctx, app)
}
func (h hostingAPI) OnlineFunction(ctx context.Context, app, name string) (*api.OnlineFunction, error) {
	return h.rt.OnlineFunction(ctx, app, name)
}
func (h hostingAPI) SaveOnline(ctx context.Context, app string, f api.OnlineFunction) (*api.OnlineFunction, error) {
	return h.rt.SaveOnline(ctx, app, f)
}
func (h hostingAPI) DeleteOnline(ctx context.Context, app, name string) error {
	return h.rt.DeleteOnline(ctx, app, name)
}
func (h hostingAPI) OnlineHistory(ctx context.Context, app, name string) ([]api.OnlineRevision, error) {
	return h.rt.OnlineHistory(ctx, app, name)
}
func (h hostingAPI) OnlineDeploy(ctx context.Context, app, env, message, who string) (*api.DeployResult, error) {
	return h.rt.OnlineDeploy(ctx, app, env, message, who)
}

var _ admin.Online = hostingAPI{}

func (h hostingAPI) SecretNames(ctx context.Context, app string) ([]string, error) {
	return h.rt.SecretNames(ctx, app)
}
func (h hostingAPI) SetSecret(ctx context.Context, app, name string, value *string) error {
	return h.rt.SetSecret(ctx, app, name, value)
}

// ---- client routes

func (rt *Runtime) wxLogin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Code string `json:"code"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body); err != nil {
		admin.Fail(w, &appenv.BadRequest{Msg: "send {\"code\": \"<from wx.login>\"}"})
		return
	}
	token, s, err := rt.WXLogin(r.Context(), r.PathValue("app"), body.Code)
	if err != nil {
		admin.Fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{"token": token, "openid": s.OpenID, "appid": s.WXAppID, "unionid": s.UnionID})
}

func (rt *Runtime) wx(w http.ResponseWriter, r *http.Request) {
	env, err := rt.Env(r.Context(), r.PathValue("app"), r.PathValue("env"))
	if err != nil {
		admin.Fail(w, err)
		return
	}
	rest := "/" + r.PathValue("rest")
	r2 := r.Clone(r.Context())
	if rest == "/admin" {
		r2.URL.Path = "/admin"
	} else {
		r2.URL.Path = "/wx" + rest
	}
	env.Handler().ServeHTTP(w, r2)
}

// lean routes a LeanCloud request to its app by X-LC-Id (or a text/plain body's
// _ApplicationId) and to its environment by X-LC-Prod.
func (rt *Runtime) lean(w http.ResponseWriter, r *http.Request) {
	lh := server.ParseLeanHeaders(r, nil)
	if lh.AppID == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		body, err := io.ReadAll(io.LimitReader(r.Body, 20<<20+1))
		if err != nil {
			writeLean(w, http.StatusBadRequest, 107, "the request body could not be read")
			return
		}
		lh = server.ParseLeanHeaders(r, body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	if lh.AppID == "" && rt.hostApp(w, r) {
		return // an app's own route, by host name
	}
	if lh.AppID == "" && r.Method == http.MethodOptions && r.Header.Get("Origin") != "" {
		server.CORS(http.NotFoundHandler()).ServeHTTP(w, r) // a preflight names no app
		return
	}
	if lh.AppID == "" {
		if r.URL.Path == "/__engine/1/ping" {
			// a health check without an app: the server's own runtime
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			json.NewEncoder(w).Encode(map[string]string{"runtime": "nodejs-" + rt.cfg.NodeVersion, "version": "fn"})
			return
		}
		if strings.HasPrefix(r.URL.Path, "/1.1/") || strings.HasPrefix(r.URL.Path, "/1/") {
			writeLean(w, http.StatusUnauthorized, 401, "Unauthorized.") // as LeanCloud: no app id
			return
		}
		writeLean(w, http.StatusNotFound, 404, "no route "+r.Method+" "+r.URL.Path)
		return
	}
	app, err := rt.App(r.Context(), lh.AppID)
	if err != nil || app.ID != lh.AppID {
		writeLean(w, http.StatusUnauthorized, 401, "Unauthorized.")
		return
	}
	envName := "production"
	if !lh.Production() {
		envName = "staging"
	}
	env, err := rt.Env(r.Context(), app.ID, envName)
	if err != nil {
		admin.Fail(w, err)
		return
	}
	env.Handler().ServeHTTP(w, r)
}

func writeLean(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"code": code, "error": msg})
}
