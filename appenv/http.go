package appenv

import (
	"net/http"
	"strings"

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
	api := server.New(server.Options{
		Dialect:         e.cfg.Dialect,
		Invoker:         e,
		WXIdentity:      identity,
		Keys:            server.LeanKeys{AppID: k.AppID, AppKey: k.AppKey, MasterKey: k.MasterKey, HookKey: k.HookKey},
		Ping:            e.Ping,
		OnInvocation:    e.record,
		AfterResponse:   e.observe,
		Storage:         storage,
		WXDatabase:      e.cfg.WXData,
		WXStorage:       e.cfg.WXStorage,
		WXFilesURL:      e.WXFilesURL(),
		WXOpenAPI:       e.wxOpenAPI(),
		WXEnvID:         e.cfg.EnvID,
		WXDBPermissions: e.cfg.WXDBPermissions,
		TrustedProxies:  e.cfg.TrustedProxies,
		WXPermissions: func(function string) []string {
			if rel := e.Release(); rel != nil {
				for _, b := range rel.Manifest.Bundles {
					if b.Name == function {
						return b.Config.OpenAPI
					}
				}
			}
			return nil
		},
		WXAdminTrustLoopback: e.cfg.WXAdminTrustLoopback,
	})
	if e.cfg.Dialect != project.Lean {
		return api
	}
	return e.appHandler(api, e.cfg.TrustedProxies)
}

// WXFilesURL is where the environment's cloud storage files are served (below /wx/storage of
// its client API: fn dev's /wx/storage, fn serve's /wx/{app}/{env}/storage).
func (e *Env) WXFilesURL() string {
	if p := strings.TrimSuffix(e.cfg.WXAdminPath, "/admin"); p != "" {
		return e.cfg.PublicURL + p + "/storage"
	}
	return e.cfg.PublicURL + "/wx/storage"
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

// wxOpenAPI is the openapi emulation as the server sees it (nil for lean: not a typed nil).
func (e *Env) wxOpenAPI() server.WXOpenAPI {
	if e.openapi == nil {
		return nil
	}
	return e.openapi
}
