package appenv

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/server"
	"github.com/fnhq/fn/wxdb"
)

// ClassHooks are the LeanStorage class hooks, by the name the admin API uses, with the prefix
// of the function leanengine registers for them.
var ClassHooks = map[string]string{"beforeSave": "__before_save_for_", "afterSave": "__after_save_for_",
	"beforeUpdate": "__before_update_for_", "afterUpdate": "__after_update_for_",
	"beforeDelete": "__before_delete_for_", "afterDelete": "__after_delete_for_"}

// HookDefined reports whether the serving cloud code defines a class's hook.
func (e *Env) HookDefined(class, hook string) bool {
	prefix, ok := ClassHooks[hook]
	if !ok {
		return false
	}
	return contains(e.Functions(), prefix+class)
}

func splitHook(function string) (class, hook string, ok bool) {
	class, hook, ok = strings.Cut(function, ".")
	_, known := ClassHooks[hook]
	return class, hook, ok && known && class != ""
}

// InvokeHook runs a class hook by hand with an object, as LeanStorage would before or after a
// write, and writes nothing: the answer is the hook's (a before-hook's changed object, or its
// error). The run is logged as a hook invocation.
func (e *Env) InvokeHook(ctx context.Context, class, hook string, object map[string]any, timeout time.Duration) (*api.Outcome, error) {
	if e.cfg.Dialect != project.Lean {
		return nil, &BadRequest{Msg: "hooks are LeanEngine's: this is a wx environment"}
	}
	if _, ok := ClassHooks[hook]; !ok {
		return nil, &BadRequest{Msg: "hook must be one of beforeSave, afterSave, beforeUpdate, afterUpdate, beforeDelete, afterDelete (got " + hook + ")"}
	}
	if e.Release() == nil {
		return nil, &NotFound{Msg: e.notDeployed()}
	}
	if !e.HookDefined(class, hook) {
		return nil, &NotFound{Msg: "the cloud code defines no " + hook + " hook for " + class}
	}
	if object == nil {
		object = map[string]any{}
	}
	if timeout <= 0 || timeout > 3*time.Second {
		timeout = 3 * time.Second // LeanStorage's hook deadline
	}
	params, _ := json.Marshal(map[string]any{"object": object})
	req := engine.LeanRequest{Kind: engine.LeanClassHook, ClassName: class, Hook: hook, HookKeyOK: true, Params: params,
		Timeout: timeout, URL: "/1.1/functions/" + class + "/" + hook, RemoteAddress: "127.0.0.1", RequestID: engine.NewRequestID()}
	logs := e.capture(req.RequestID)
	res := e.InvokeLean(ctx, req)
	out := &api.Outcome{Function: class + "." + hook, Dialect: string(e.cfg.Dialect), Env: e.cfg.Name, Version: e.version(), Identity: "hook"}
	leanOutcome(out, res)
	if res.Status == http.StatusOK && (out.Result == nil || string(out.Result) == "null") {
		// a before-hook answers the object itself, not {result}
		out.Result = res.Body
	}
	e.ReportHook(req, res)
	out.Logs = logs()
	return out, nil
}

// invocationOf is what Invoke reports: the call with its request and caller.
func invocationOf(inv server.Invocation, data json.RawMessage, c Caller) server.Invocation {
	inv.Request, inv.WX, inv.SessionToken = data, c.WX, c.SessionToken
	return inv
}

// WXData is the environment's cloud database (nil for lean) and WXEnv the environment id its
// collections live under.
func (e *Env) WXData() *wxdb.DB { return e.cfg.WXData }

// WXEnv is the wx environment id (TCB_ENV) the cloud database keys collections by.
func (e *Env) WXEnv() string { return e.cfg.EnvID }
