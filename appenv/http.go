package appenv

import (
	"net/http"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/server"
)

// Handler is the environment's client API: the wx routes (/wx/functions/{name}, the SDK's
// /admin) or the LeanEngine and LeanStorage routes, as the platforms' clients call them.
func (e *Env) Handler() http.Handler { return e.handler }

// newHandler builds the client API: the one place where the server's options are assembled.
func (e *Env) newHandler() http.Handler {
	identity := e.cfg.WXIdentity
	if identity == nil {
		identity = func(*http.Request) (*engine.WXIdentity, string, error) { return nil, "", nil }
	}
	k := e.cfg.Keys
	var storage = e.cfg.Data
	return server.New(server.Options{
		Dialect:      e.cfg.Dialect,
		Invoker:      e,
		WXIdentity:   identity,
		Keys:         server.LeanKeys{AppID: k.AppID, AppKey: k.AppKey, MasterKey: k.MasterKey, HookKey: k.HookKey},
		Ping:         e.Ping,
		OnInvocation: e.Report,
		Storage:      storage,
		WXDatabase:   e.cfg.WXData,
		WXEnvID:      e.cfg.EnvID,
	})
}

// Ping is what GET /__engine/1/ping answers: the Node runtime and the leanengine version.
func (e *Env) Ping() map[string]string {
	version := "unknown"
	if rel := e.Release(); rel != nil {
		version = rel.Manifest.SDKVersion
		if version == "" {
			version = project.LeanengineVersion(rel.Dir)
		}
	}
	return map[string]string{"runtime": "nodejs-" + e.cfg.NodeVersion, "version": version}
}
