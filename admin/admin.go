// Package admin is fn's admin API under /__fn/: one set of paths and JSON shapes (the types of
// package api) for fn dev and fn serve. fn dev serves it for its one app and environment, bound
// to loopback; fn serve for every app, behind the admin token or an app's master key. The CLI
// and the web console use only this API.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/appenv"
	"github.com/fnhq/fn/logsink"
	"github.com/fnhq/fn/scheduler"
	"github.com/fnhq/fn/wxclient"
)

// Backend is what every admin API serves from.
type Backend interface {
	// Whoami describes the caller's access.
	Whoami(ctx context.Context, r *http.Request) map[string]any
	// Apps lists the apps.
	Apps(ctx context.Context) ([]api.App, error)
	// AppID resolves an app by id or name (*appenv.NotFound).
	AppID(ctx context.Context, app string) (string, error)
	// Env finds an app environment (*appenv.NotFound, *appenv.BadRequest for a bad env name).
	Env(ctx context.Context, app, env string) (*appenv.Env, error)
	// Caller resolves who an admin invocation runs as (fn dev: fn.yaml identities).
	Caller(ctx context.Context, env *appenv.Env, identity string) (appenv.Caller, error)
	// Logs is where the app's records are.
	Logs() logsink.Sink
}

// Hosting is what fn serve adds: apps, artifacts, deploys, versions and secrets.
type Hosting interface {
	CreateApp(ctx context.Context, req CreateAppRequest) (*api.App, error)
	DeleteApp(ctx context.Context, app string) error
	MissingBlobs(ctx context.Context, app string, hashes []string) ([]string, error)
	PutBlob(ctx context.Context, app, hash string, r io.Reader) error
	Deploy(ctx context.Context, app string, req api.DeployRequest) (*api.DeployResult, error)
	Versions(ctx context.Context, app, env string) ([]api.Version, error)
	Rollback(ctx context.Context, app, env string, to int) (*api.Version, error)
	Promote(ctx context.Context, app, message, who string) (*api.DeployResult, error)
	SecretNames(ctx context.Context, app string) ([]string, error)
	SetSecret(ctx context.Context, app, name string, value *string) error
}

// CreateAppRequest is the body of POST /__fn/apps.
type CreateAppRequest struct {
	Name     string `json:"name"`
	WXAppID  string `json:"wxAppId"`
	WXSecret string `json:"wxSecret"`
	// Existing keys (an app moving from LeanCloud keeps its id and keys); empty: generated.
	AppID     string `json:"appId,omitempty"`
	AppKey    string `json:"appKey,omitempty"`
	MasterKey string `json:"masterKey,omitempty"`
	HookKey   string `json:"hookKey,omitempty"`
}

// Options configure the handler.
type Options struct {
	Backend Backend
	Hosting Hosting // nil in fn dev: those routes answer 404 with a hint
	// Authorize admits a request for app ("" for server-wide routes); its error answers 401.
	Authorize func(r *http.Request, app string) error
	// Stop ends open log follows (a server shutting down).
	Stop <-chan struct{}
	// MaxBody bounds JSON bodies (default 20 MB); blobs are bounded by the backend.
	MaxBody int64
}

// Handler serves the admin API.
func Handler(o Options) http.Handler {
	if o.MaxBody == 0 {
		o.MaxBody = 20 << 20
	}
	h := &handler{o: o}
	mux := http.NewServeMux()
	route := func(pattern string, app bool, fn http.HandlerFunc) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			name := ""
			if app {
				name = r.PathValue("app")
			}
			if o.Authorize != nil {
				if err := o.Authorize(r, name); err != nil {
					writeJSON(w, http.StatusUnauthorized, api.ErrorBody{Error: err.Error(), Code: "unauthorized"})
					return
				}
			}
			fn(w, r)
		})
	}
	route("GET /__fn/whoami", false, h.whoami)
	route("GET /__fn/apps", false, h.apps)
	route("GET /__fn/apps/{app}/functions/{env}", true, h.functions)
	route("POST /__fn/apps/{app}/invoke/{env}/{name}", true, h.invoke)
	route("GET /__fn/apps/{app}/logs", true, h.logs)
	route("GET /__fn/apps/{app}/timers/{env}", true, h.timers)
	route("POST /__fn/apps/{app}/timers/{env}/{name}/{action}", true, h.timerControl)
	route("GET /__fn/apps/{app}/outbox/{env}", true, h.outbox)
	route("POST /__fn/apps/{app}/replay/{env}/{requestId}", true, h.replay)
	// fn serve only
	route("POST /__fn/apps", false, h.hosting(h.createApp))
	route("DELETE /__fn/apps/{app}", true, h.hosting(h.deleteApp))
	route("POST /__fn/apps/{app}/blobs/missing", true, h.hosting(h.missing))
	route("PUT /__fn/apps/{app}/blobs/{hash}", true, h.hosting(h.putBlob))
	route("POST /__fn/apps/{app}/deploy", true, h.hosting(h.deploy))
	route("GET /__fn/apps/{app}/versions", true, h.hosting(h.versions))
	route("POST /__fn/apps/{app}/rollback", true, h.hosting(h.rollback))
	route("POST /__fn/apps/{app}/promote", true, h.hosting(h.promote))
	route("GET /__fn/apps/{app}/secrets", true, h.hosting(h.secretNames))
	route("PUT /__fn/apps/{app}/secrets/{name}", true, h.hosting(h.setSecret))
	route("DELETE /__fn/apps/{app}/secrets/{name}", true, h.hosting(h.unsetSecret))
	h.importRoutes(route)
	h.dataRoutes(route)
	route("POST /__fn/apps/{app}/hooks/{env}/{class}/{hook}", true, h.fireHook)
	h.sourceRoutes(route)
	h.onlineRoutes(route)
	// the mini-program client: a public script, no credentials in it
	mux.Handle("GET /__fn/wx-cloud.js", wxclient.Handler())
	mux.HandleFunc("/__fn/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, api.ErrorBody{Error: "no such admin API: " + r.Method + " " + r.URL.Path, Code: "not-found"})
	})
	return mux
}

type handler struct{ o Options }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Fail answers an error with the status and code its kind calls for.
func Fail(w http.ResponseWriter, err error) {
	var bad *appenv.BadRequest
	var nf *appenv.NotFound
	var lf *appenv.LoadFailed
	var un *appenv.Unprocessable
	var cf *conflict
	switch {
	case errors.As(err, &lf):
		writeJSON(w, http.StatusUnprocessableEntity, api.ErrorBody{Error: err.Error(), Code: "load-failed"})
	case errors.As(err, &un):
		writeJSON(w, http.StatusUnprocessableEntity, api.ErrorBody{Error: err.Error(), Code: un.Code})
	case errors.As(err, &bad):
		writeJSON(w, http.StatusBadRequest, api.ErrorBody{Error: err.Error(), Code: "bad-request"})
	case errors.As(err, &nf), appenv.IsUnknownTimer(err):
		writeJSON(w, http.StatusNotFound, api.ErrorBody{Error: err.Error(), Code: "not-found"})
	case errors.Is(err, scheduler.ErrTimerRunning), errors.Is(err, appenv.ErrNoTimers), errors.As(err, &cf):
		writeJSON(w, http.StatusConflict, api.ErrorBody{Error: err.Error(), Code: "conflict"})
	case errors.Is(err, context.Canceled):
		writeJSON(w, 499, api.ErrorBody{Error: "the request was cancelled", Code: "cancelled"})
	default:
		writeJSON(w, http.StatusInternalServerError, api.ErrorBody{Error: err.Error(), Code: "internal"})
	}
}

func (h *handler) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	return h.decodeBounded(w, r, v, h.o.MaxBody)
}

// decodeBounded reads a JSON body of at most limit bytes with no unknown fields.
func (h *handler) decodeBounded(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, min(limit, h.o.MaxBody)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		Fail(w, &appenv.BadRequest{Msg: "the request body is not valid JSON for this API: " + err.Error()})
		return false
	}
	return true
}

func (h *handler) hosting(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.o.Hosting == nil {
			writeJSON(w, http.StatusNotFound, api.ErrorBody{Error: r.Method + " " + r.URL.Path + " is served by fn serve, not fn dev",
				Code: "not-found", Hint: "deploy with fn deploy to an fn serve (fn login)"})
			return
		}
		next(w, r)
	}
}

func (h *handler) whoami(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.o.Backend.Whoami(r.Context(), r))
}

func (h *handler) apps(w http.ResponseWriter, r *http.Request) {
	apps, err := h.o.Backend.Apps(r.Context())
	if err != nil {
		Fail(w, err)
		return
	}
	if apps == nil {
		apps = []api.App{}
	}
	writeJSON(w, http.StatusOK, apps)
}

func (h *handler) env(w http.ResponseWriter, r *http.Request) (*appenv.Env, bool) {
	e, err := h.o.Backend.Env(r.Context(), r.PathValue("app"), r.PathValue("env"))
	if err != nil {
		Fail(w, err)
		return nil, false
	}
	return e, true
}

func (h *handler) functions(w http.ResponseWriter, r *http.Request) {
	if e, ok := h.env(w, r); ok {
		writeJSON(w, http.StatusOK, e.FunctionList())
	}
}

func (h *handler) invoke(w http.ResponseWriter, r *http.Request) {
	e, ok := h.env(w, r)
	if !ok {
		return
	}
	var body api.InvokeRequest
	if !h.decode(w, r, &body) {
		return
	}
	if len(body.Data) > 0 && !json.Valid(body.Data) {
		Fail(w, &appenv.BadRequest{Msg: "data is not valid JSON"})
		return
	}
	if body.TimeoutMs < 0 || body.TimeoutMs > 15*60*1000 {
		Fail(w, &appenv.BadRequest{Msg: "timeoutMs must be between 0 and 900000"})
		return
	}
	caller, err := h.o.Backend.Caller(r.Context(), e, body.Identity)
	if err == nil && body.SessionToken != "" {
		err = sessionCaller(r.Context(), e, body.SessionToken, &caller)
	}
	if err != nil {
		Fail(w, err)
		return
	}
	if e.Release() == nil {
		Fail(w, &appenv.NotFound{Msg: "nothing is deployed to " + e.Name() + " yet"})
		return
	}
	out := e.Invoke(r.Context(), r.PathValue("name"), body.Data, caller, time.Duration(body.TimeoutMs)*time.Millisecond)
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) logs(w http.ResponseWriter, r *http.Request) {
	id, err := h.o.Backend.AppID(r.Context(), r.PathValue("app"))
	if err != nil {
		Fail(w, err)
		return
	}
	q := r.URL.Query()
	f, err := logsink.ParseFilter(q)
	if err != nil {
		Fail(w, &appenv.BadRequest{Msg: err.Error()})
		return
	}
	f.App = id
	follow := q.Get("follow") == "1" || q.Get("follow") == "true"
	logsink.Stream(w, r, h.o.Backend.Logs(), f, logsink.StreamOptions{Follow: follow, Stop: h.o.Stop})
}

func (h *handler) timers(w http.ResponseWriter, r *http.Request) {
	e, ok := h.env(w, r)
	if !ok {
		return
	}
	ts, err := e.Timers()
	if errors.Is(err, appenv.ErrNoTimers) {
		ts, err = []api.TimerStatus{}, nil
	}
	if err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ts)
}

// outbox lists the messages the environment's functions sent through cloud.openapi (kept, not
// delivered: fn runs offline).
func (h *handler) outbox(w http.ResponseWriter, r *http.Request) {
	e, ok := h.env(w, r)
	if !ok {
		return
	}
	msgs := e.Outbox()
	if msgs == nil {
		writeJSON(w, http.StatusNotFound, api.ErrorBody{Error: "only wx environments have an outbox", Code: "not-found"})
		return
	}
	writeJSON(w, http.StatusOK, msgs)
}

func (h *handler) timerControl(w http.ResponseWriter, r *http.Request) {
	e, ok := h.env(w, r)
	if !ok {
		return
	}
	if err := e.TimerControl(r.Context(), r.PathValue("name"), r.PathValue("action")); err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": "ok"})
}

func (h *handler) createApp(w http.ResponseWriter, r *http.Request) {
	var body CreateAppRequest
	if !h.decode(w, r, &body) {
		return
	}
	app, err := h.o.Hosting.CreateApp(r.Context(), body)
	if err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, app)
}

func (h *handler) deleteApp(w http.ResponseWriter, r *http.Request) {
	if err := h.o.Hosting.DeleteApp(r.Context(), r.PathValue("app")); err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"deleted": true})
}

func (h *handler) missing(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Hashes []string `json:"hashes"`
	}
	if !h.decode(w, r, &body) {
		return
	}
	missing, err := h.o.Hosting.MissingBlobs(r.Context(), r.PathValue("app"), body.Hashes)
	if err != nil {
		Fail(w, err)
		return
	}
	if missing == nil {
		missing = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"missing": missing})
}

func (h *handler) putBlob(w http.ResponseWriter, r *http.Request) {
	if err := h.o.Hosting.PutBlob(r.Context(), r.PathValue("app"), r.PathValue("hash"), r.Body); err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"stored": true})
}

func (h *handler) deploy(w http.ResponseWriter, r *http.Request) {
	var body api.DeployRequest
	if !h.decode(w, r, &body) {
		return
	}
	res, err := h.o.Hosting.Deploy(r.Context(), r.PathValue("app"), body)
	if err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *handler) versions(w http.ResponseWriter, r *http.Request) {
	vs, err := h.o.Hosting.Versions(r.Context(), r.PathValue("app"), r.URL.Query().Get("env"))
	if err != nil {
		Fail(w, err)
		return
	}
	if vs == nil {
		vs = []api.Version{}
	}
	writeJSON(w, http.StatusOK, vs)
}

func (h *handler) rollback(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Env string `json:"env"`
		To  int    `json:"to"`
	}
	if !h.decode(w, r, &body) {
		return
	}
	v, err := h.o.Hosting.Rollback(r.Context(), r.PathValue("app"), body.Env, body.To)
	if err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *handler) promote(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Message string `json:"message"`
		Who     string `json:"who"`
	}
	if !h.decode(w, r, &body) {
		return
	}
	res, err := h.o.Hosting.Promote(r.Context(), r.PathValue("app"), body.Message, body.Who)
	if err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *handler) secretNames(w http.ResponseWriter, r *http.Request) {
	names, err := h.o.Hosting.SecretNames(r.Context(), r.PathValue("app"))
	if err != nil {
		Fail(w, err)
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
	if !h.decode(w, r, &body) {
		return
	}
	if err := h.o.Hosting.SetSecret(r.Context(), r.PathValue("app"), r.PathValue("name"), &body.Value); err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"set": true})
}

func (h *handler) unsetSecret(w http.ResponseWriter, r *http.Request) {
	if err := h.o.Hosting.SetSecret(r.Context(), r.PathValue("app"), r.PathValue("name"), nil); err != nil {
		Fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"unset": true})
}
