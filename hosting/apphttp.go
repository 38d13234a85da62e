package hosting

import (
	"net"
	"net/http"
	"strings"

	"github.com/fnhq/fn/admin"
)

// An app process serves its own routes (pages, forms, webhooks) to clients that send no
// LeanCloud headers. fn serve finds their app by host name — "<app>.<domain>" for production,
// "<app>-staging.<domain>" for staging, as LeanEngine's own domains are — or by the path
// prefix /app/{app}/{env}/ (which the app sees stripped, with X-Forwarded-Prefix set).

func (rt *Runtime) appPath(w http.ResponseWriter, r *http.Request) {
	env, err := rt.Env(r.Context(), r.PathValue("app"), r.PathValue("env"))
	if err != nil {
		admin.Fail(w, err)
		return
	}
	r2 := r.Clone(r.Context())
	prefix := "/app/" + r.PathValue("app") + "/" + r.PathValue("env")
	r2.URL.Path = "/" + r.PathValue("rest")
	r2.URL.RawPath = ""
	r2.Header.Set("X-Forwarded-Prefix", prefix)
	env.Handler().ServeHTTP(w, r2)
}

// hostApp serves a request whose host names an app; false when it names none.
func (rt *Runtime) hostApp(w http.ResponseWriter, r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	label, _, ok := strings.Cut(host, ".")
	if !ok || label == "" || net.ParseIP(host) != nil {
		return false
	}
	envName := "production"
	if name, found := strings.CutSuffix(label, "-staging"); found {
		label, envName = name, "staging"
	}
	app, err := rt.App(r.Context(), label)
	if err != nil {
		return false
	}
	env, err := rt.Env(r.Context(), app.ID, envName)
	if err != nil {
		admin.Fail(w, err)
		return true
	}
	env.Handler().ServeHTTP(w, r)
	return true
}
