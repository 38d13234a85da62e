package hosting

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/logstream"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/server"
)

// Handler is the whole HTTP surface of fn serve: the admin API under /__fn/ (bearer admin
// token) and the client routes of every app (LeanEngine by X-LC-Id, wx under /wx/{app}/{env}/).
func (rt *Runtime) Handler() http.Handler {
	h := &handler{rt: rt, apis: map[string]http.Handler{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /__fn/whoami", h.admin(h.whoami))
	mux.HandleFunc("POST /__fn/apps", h.admin(h.createApp))
	mux.HandleFunc("GET /__fn/apps", h.admin(h.listApps))
	mux.HandleFunc("DELETE /__fn/apps/{app}", h.admin(h.deleteApp))
	mux.HandleFunc("POST /__fn/apps/{app}/blobs/missing", h.admin(h.missing))
	mux.HandleFunc("PUT /__fn/apps/{app}/blobs/{hash}", h.admin(h.putBlob))
	mux.HandleFunc("POST /__fn/apps/{app}/deploy", h.admin(h.deploy))
	mux.HandleFunc("GET /__fn/apps/{app}/versions", h.admin(h.versions))
	mux.HandleFunc("POST /__fn/apps/{app}/rollback", h.admin(h.rollback))
	mux.HandleFunc("POST /__fn/apps/{app}/promote", h.admin(h.promote))
	mux.HandleFunc("GET /__fn/apps/{app}/secrets", h.admin(h.secretNames))
	mux.HandleFunc("PUT /__fn/apps/{app}/secrets/{name}", h.admin(h.setSecret))
	mux.HandleFunc("DELETE /__fn/apps/{app}/secrets/{name}", h.admin(h.unsetSecret))
	mux.HandleFunc("GET /__fn/apps/{app}/logs", h.admin(h.logs))
	mux.HandleFunc("POST /__fn/apps/{app}/invoke/{env}/{name}", h.admin(h.invoke))
	mux.HandleFunc("GET /__fn/apps/{app}/timers/{env}", h.admin(func(w http.ResponseWriter, r *http.Request) {
		ts, err := h.rt.Timers(r.PathValue("app"), r.PathValue("env"))
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ts)
	}))
	mux.HandleFunc("POST /__fn/apps/{app}/timers/{env}/{name}/{action}", h.admin(func(w http.ResponseWriter, r *http.Request) {
		if err := h.rt.TimerControl(r.Context(), r.PathValue("app"), r.PathValue("env"), r.PathValue("name"), r.PathValue("action")); err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"result": "ok"})
	}))
	mux.HandleFunc("/__fn/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such admin API: " + r.Method + " " + r.URL.Path})
	})
	mux.HandleFunc("POST /wx/{app}/login", h.wxLogin)
	mux.HandleFunc("/wx/{app}/{env}/{rest...}", h.wx)
	mux.HandleFunc("/", h.lean)
	return mux
}

type handler struct {
	rt   *Runtime
	mu   sync.Mutex
	apis map[string]http.Handler // app/env/dialect → API handler
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// fail writes an error with the status its kind calls for.
func fail(w http.ResponseWriter, err error) {
	var bad *BadRequest
	var lf *LoadFailed
	switch {
	case errors.As(err, &lf):
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": err.Error()})
	case errors.As(err, &bad):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	case errors.Is(err, ErrNoApp):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	}
}

func bearer(r *http.Request) string {
	return strings.TrimSpace(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
}

func (h *handler) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.rt.CheckAdmin(bearer(r)) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized: a valid admin token is required (fn login)"})
			return
		}
		next(w, r)
	}
}

func decode(r *http.Request, v any) error {
	if err := json.NewDecoder(io.LimitReader(r.Body, 20<<20)).Decode(v); err != nil {
		return badf("the request body is not valid JSON: %v", err)
	}
	return nil
}

func (h *handler) whoami(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"role": "admin", "apps": len(h.rt.Apps())})
}

func (h *handler) createApp(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name     string `json:"name"`
		WXAppID  string `json:"wxAppId"`
		WXSecret string `json:"wxSecret"`
	}
	if err := decode(r, &body); err != nil {
		fail(w, err)
		return
	}
	app, err := h.rt.CreateApp(body.Name, body.WXAppID, body.WXSecret)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, app)
}

func (h *handler) listApps(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.rt.Apps())
}

func (h *handler) deleteApp(w http.ResponseWriter, r *http.Request) {
	if err := h.rt.DeleteApp(r.PathValue("app")); err != nil {
		fail(w, err)
		return
	}
	h.mu.Lock()
	h.apis = map[string]http.Handler{}
	h.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]bool{"deleted": true})
}

func (h *handler) missing(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Hashes []string `json:"hashes"`
	}
	if err := decode(r, &body); err != nil {
		fail(w, err)
		return
	}
	if _, err := h.rt.App(r.PathValue("app")); err != nil {
		fail(w, err)
		return
	}
	missing, err := h.rt.MissingBlobs(body.Hashes)
	if err != nil {
		fail(w, err)
		return
	}
	if missing == nil {
		missing = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"missing": missing})
}

func (h *handler) putBlob(w http.ResponseWriter, r *http.Request) {
	if _, err := h.rt.App(r.PathValue("app")); err != nil {
		fail(w, err)
		return
	}
	if err := h.rt.PutBlob(r.PathValue("hash"), r.Body); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"stored": true})
}

// DeployRequest is the body of POST /__fn/apps/{app}/deploy.
type DeployRequest struct {
	Env      string   `json:"env"`
	Message  string   `json:"message"`
	Who      string   `json:"who"`
	DryRun   bool     `json:"dryRun"`
	Manifest Manifest `json:"manifest"`
}

func (h *handler) deploy(w http.ResponseWriter, r *http.Request) {
	var body DeployRequest
	if err := decode(r, &body); err != nil {
		fail(w, err)
		return
	}
	var res *DeployResult
	var err error
	if body.DryRun {
		res, err = h.rt.Plan(r.PathValue("app"), body.Env, body.Manifest)
	} else {
		res, err = h.rt.Deploy(r.Context(), r.PathValue("app"), body.Env, body.Manifest, body.Message, body.Who)
	}
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *handler) versions(w http.ResponseWriter, r *http.Request) {
	env := r.URL.Query().Get("env")
	if env != "" {
		if err := validEnv(env); err != nil {
			fail(w, err)
			return
		}
	}
	vs, err := h.rt.Versions(r.PathValue("app"), env)
	if err != nil {
		fail(w, err)
		return
	}
	if vs == nil {
		vs = []Version{}
	}
	writeJSON(w, http.StatusOK, vs)
}

func (h *handler) rollback(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Env string `json:"env"`
		To  int    `json:"to"`
	}
	if err := decode(r, &body); err != nil {
		fail(w, err)
		return
	}
	v, err := h.rt.Rollback(r.Context(), r.PathValue("app"), body.Env, body.To)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *handler) promote(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Message string `json:"message"`
		Who     string `json:"who"`
	}
	decode(r, &body)
	res, err := h.rt.Promote(r.Context(), r.PathValue("app"), body.Message, body.Who)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *handler) secretNames(w http.ResponseWriter, r *http.Request) {
	names, err := h.rt.SecretNames(r.PathValue("app"))
	if err != nil {
		fail(w, err)
		return
	}
	if names == nil {
		names = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"names": names})
}

func (h *handler) setSecret(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Value string `json:"value"`
	}
	if err := decode(r, &body); err != nil {
		fail(w, err)
		return
	}
	if err := h.rt.SetSecret(r.Context(), r.PathValue("app"), r.PathValue("name"), &body.Value); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"set": true})
}

func (h *handler) unsetSecret(w http.ResponseWriter, r *http.Request) {
	if err := h.rt.SetSecret(r.Context(), r.PathValue("app"), r.PathValue("name"), nil); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"unset": true})
}

// logs streams an app's records as NDJSON; with follow=1 it keeps the response open and pushes
// new records as they happen. after=<id> resumes a stream without gaps or duplicates.
func (h *handler) logs(w http.ResponseWriter, r *http.Request) {
	ar, err := h.rt.appRuntimeFor(r.PathValue("app"))
	if err != nil {
		fail(w, err)
		return
	}
	q := r.URL.Query()
	f, err := logstream.ParseFilter(q)
	if err != nil {
		fail(w, badf("%v", err))
		return
	}
	if f.Env != "" {
		if err := validEnv(f.Env); err != nil {
			fail(w, err)
			return
		}
	}
	logstream.Stream(w, r, ar.logs, f, q.Get("follow") == "1" || q.Get("follow") == "true", ar.id)
}

// invoke serves fn invoke --remote: one call in an environment, answered with its outcome.
func (h *handler) invoke(w http.ResponseWriter, r *http.Request) {
	ar, err := h.rt.appRuntimeFor(r.PathValue("app"))
	if err != nil {
		fail(w, err)
		return
	}
	env := r.PathValue("env")
	if err := validEnv(env); err != nil {
		fail(w, err)
		return
	}
	var body struct {
		Data json.RawMessage `json:"data"`
	}
	if err := decode(r, &body); err != nil {
		fail(w, err)
		return
	}
	cur := ar.envs[env].current.Load()
	if cur == nil {
		fail(w, badf("nothing is deployed to %s yet", env))
		return
	}
	inv := envInvoker{ar.envs[env]}
	name := r.PathValue("name")
	if cur.version.Manifest.Dialect == string(project.WX) {
		res := inv.InvokeWX(r.Context(), engine.WXRequest{Function: name, Data: body.Data, Source: "scf"})
		writeJSON(w, http.StatusOK, map[string]any{"requestId": res.RequestID, "result": res.Value, "error": res.Err, "durationMs": float64(res.Duration.Microseconds()) / 1000})
		return
	}
	res := inv.InvokeLean(r.Context(), engine.LeanRequest{Kind: engine.LeanFunction, Name: name, Params: body.Data, Master: true, RemoteAddress: "127.0.0.1"})
	writeJSON(w, http.StatusOK, map[string]any{"requestId": res.RequestID, "status": res.Status, "body": res.Body, "error": res.Err, "durationMs": float64(res.Duration.Microseconds()) / 1000})
}

// ---- client routes

// api returns (building once) the shared HTTP API of one app environment.
func (h *handler) api(app *App, env string, dialect project.Dialect) (http.Handler, error) {
	key := app.ID + "/" + env + "/" + string(dialect)
	h.mu.Lock()
	defer h.mu.Unlock()
	if a, ok := h.apis[key]; ok {
		return a, nil
	}
	ar, err := h.rt.appRuntime(app.ID)
	if err != nil {
		return nil, err
	}
	er := ar.envs[env]
	logs := ar.logs
	opts := server.Options{
		Dialect: dialect, Invoker: envInvoker{er},
		Keys: server.LeanKeys{AppID: app.ID, AppKey: app.AppKey, MasterKey: app.MasterKey, HookKey: app.HookKey},
		Ping: map[string]string{"runtime": "nodejs-" + h.rt.cfg.NodeVersion, "version": "fn"},
		OnInvocation: func(inv server.Invocation) {
			level := "info"
			if !inv.OK {
				level = "error"
			}
			msg := fmt.Sprintf("%s %d %.1fms", inv.Function, inv.Status, float64(inv.Duration.Microseconds())/1000)
			if inv.Error != "" {
				msg += " " + inv.Error
			}
			version := 0
			if cur := er.current.Load(); cur != nil {
				version = cur.version.ID
			}
			logs.Add(logstream.Record{Time: inv.Time, Env: env, Version: version, Function: inv.Function, RequestID: inv.RequestID, Level: level,
				Message: msg, Invocation: true, Status: inv.Status, DurationMs: float64(inv.Duration.Microseconds()) / 1000})
		},
		Storage: ar.data,
		WXIdentity: func(r *http.Request) (*engine.WXIdentity, string, error) {
			tok := bearer(r)
			id, ok := ar.wx.get(tok)
			if !ok {
				return nil, "", errors.New("a session token from POST /wx/{app}/login is required (Authorization: Bearer …)")
			}
			return &id, id.OpenID, nil
		},
	}
	a := server.New(opts)
	h.apis[key] = a
	return a, nil
}

func (h *handler) wxLogin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Code string `json:"code"`
	}
	if err := decode(r, &body); err != nil {
		fail(w, err)
		return
	}
	token, id, err := h.rt.WXLogin(r.Context(), r.PathValue("app"), body.Code)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": token, "openid": id.OpenID, "appid": id.AppID, "unionid": id.UnionID})
}

func (h *handler) wx(w http.ResponseWriter, r *http.Request) {
	app, err := h.rt.App(r.PathValue("app"))
	if err != nil {
		fail(w, err)
		return
	}
	env := r.PathValue("env")
	if err := validEnv(env); err != nil {
		fail(w, err)
		return
	}
	a, err := h.api(app, env, project.WX)
	if err != nil {
		fail(w, err)
		return
	}
	rest := "/" + r.PathValue("rest")
	r2 := r.Clone(r.Context())
	if rest == "/admin" {
		r2.URL.Path = "/admin"
	} else {
		r2.URL.Path = "/wx" + rest
	}
	a.ServeHTTP(w, r2)
}

// lean routes a LeanCloud request to its app by X-LC-Id (or a text/plain body's
// _ApplicationId) and to its environment by X-LC-Prod.
func (h *handler) lean(w http.ResponseWriter, r *http.Request) {
	appID := r.Header.Get("X-LC-Id")
	if appID == "" {
		appID = r.Header.Get("X-AVOSCloud-Application-Id")
	}
	prod := r.Header.Get("X-LC-Prod")
	if appID == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 20<<20+1))
		var fields struct {
			AppID string `json:"_ApplicationId"`
			Prod  any    `json:"_ApplicationProduction"`
		}
		json.Unmarshal(body, &fields)
		appID = fields.AppID
		if fields.Prod != nil {
			prod = fmt.Sprint(fields.Prod)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	if appID == "" {
		writeJSON(w, http.StatusNotFound, map[string]any{"code": 404, "error": "no route " + r.Method + " " + r.URL.Path})
		return
	}
	app, err := h.rt.App(appID)
	if err != nil || app.ID != appID {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": 401, "error": "Unauthorized."})
		return
	}
	env := "production"
	if prod == "0" || prod == "false" {
		env = "staging"
	}
	a, err := h.api(app, env, project.Lean)
	if err != nil {
		fail(w, err)
		return
	}
	a.ServeHTTP(w, r)
}
