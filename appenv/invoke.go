package appenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/server"
)

// Caller is who an admin-API or CLI invocation runs as.
type Caller struct {
	// wx: the mini-program user (nil: called from another function, as fn invoke --remote does)
	WX *engine.WXIdentity
	// lean: the session of the user the call runs as ("" for none)
	SessionToken string
	// Name is how records show the caller (an identity's name, an openid).
	Name string
}

// Invoke runs one function by dialect and answers the typed outcome, with the call's own log
// records: the one path for fn invoke (one-shot and against fn dev), fn invoke --remote and the
// console.
func (e *Env) Invoke(ctx context.Context, name string, data json.RawMessage, c Caller, timeout time.Duration) *api.Outcome {
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	rid := engine.NewRequestID()
	logs := e.capture(rid)
	out := &api.Outcome{Function: name, Dialect: string(e.cfg.Dialect), Env: e.cfg.Name, Version: e.version(), RequestID: rid, Identity: c.Name}
	if rel := e.Release(); rel != nil {
		for _, b := range rel.Manifest.Bundles {
			if b.Name == name || e.cfg.Dialect == project.Lean {
				out.MemoryMB = b.Config.Memory
			}
		}
	}
	start := time.Now()
	inv := invocationOf(server.Invocation{Time: start, Dialect: string(e.cfg.Dialect), Function: name, RequestID: rid, Identity: c.Name}, data, c)
	switch e.cfg.Dialect {
	case project.WX:
		req := engine.WXRequest{Function: name, Data: data, RequestID: rid, Timeout: timeout, Identity: c.WX, Source: "scf"}
		if c.WX != nil {
			req.UserInfo, req.Source = true, "wx_client"
		}
		res := e.InvokeWX(ctx, req)
		out.Result, out.DurationMs = res.Value, ms(res.Duration)
		out.Error = apiError(res.Err)
		inv.Duration, inv.OK, inv.Status = res.Duration, res.Err == nil, http.StatusOK
		if res.Err != nil {
			inv.Status, inv.Error = wxStatus(res.Err), res.Err.Message
		}
	case project.Lean:
		res := e.InvokeLean(ctx, engine.LeanRequest{Kind: engine.LeanFunction, Name: name, Params: data, RemoteAddress: "127.0.0.1",
			RequestID: rid, Timeout: timeout, Master: true, SessionToken: c.SessionToken, HookKeyOK: RealtimeHook(name)})
		leanOutcome(out, res)
		inv.Duration, inv.Status, inv.OK = res.Duration, res.Status, res.Status == http.StatusOK
		if out.Error != nil {
			inv.Error = out.Error.Message
		}
	}
	e.Report(inv)
	out.Logs = logs()
	return out
}

// RealtimeHooks are the functions LeanCloud's realtime service calls (with the hook key and a
// __sign parameter); fn invoke calls them as it does.
var RealtimeHooks = []string{"_messageReceived", "_receiversOffline", "_messageSent", "_messageUpdate",
	"_conversationStart", "_conversationStarted", "_conversationAdd", "_conversationAdded",
	"_conversationRemove", "_conversationRemoved", "_conversationUpdate", "_clientOnline", "_clientOffline", "_rtmClientSign"}

// RealtimeHook reports whether name is one of RealtimeHooks.
func RealtimeHook(name string) bool { return contains(RealtimeHooks, name) }

func wxStatus(fe *engine.FunctionError) int {
	status, _ := server.WXFailure("", &engine.Result{Err: fe})
	return status
}

func apiError(fe *engine.FunctionError) *api.FunctionError {
	if fe == nil {
		return nil
	}
	return &api.FunctionError{Kind: fe.Kind, Message: fe.Message, Stack: fe.Stack}
}

// leanOutcome fills an outcome from a LeanEngine answer: the result, or the error with the
// status and LeanCloud's {code, error}.
func leanOutcome(out *api.Outcome, res *engine.LeanResult) {
	out.RequestID, out.Status, out.Body, out.DurationMs = res.RequestID, res.Status, res.Body, ms(res.Duration)
	if res.Status == http.StatusOK {
		var ok struct {
			Result json.RawMessage `json:"result"`
		}
		json.Unmarshal(res.Body, &ok)
		out.Result = ok.Result
		if out.Result == nil {
			out.Result = json.RawMessage("null")
		}
		return
	}
	var body struct {
		Code  int    `json:"code"`
		Error string `json:"error"`
	}
	json.Unmarshal(res.Body, &body)
	fe := &api.FunctionError{Kind: engine.KindException, Message: fmt.Sprintf("%d %s (code %d)", res.Status, body.Error, body.Code)}
	if res.Err != nil {
		fe.Stack = res.Err.Stack
		if res.Err.Kind != "" {
			fe.Kind = res.Err.Kind
		}
	}
	out.Error = fe
}

// ReportHook logs a LeanStorage hook run (leanstorage's OnHook) as an invocation of kind hook.
func (e *Env) ReportHook(req engine.LeanRequest, res *engine.LeanResult) {
	inv := server.Invocation{Time: time.Now().Add(-res.Duration), Dialect: "lean", Function: req.ClassName + "." + req.Hook,
		Status: res.Status, OK: res.Status == http.StatusOK, Duration: res.Duration, RequestID: res.RequestID, Identity: "hook", Kind: "hook",
		Request: req.Params}
	if req.Kind == engine.LeanUserHook && req.ClassName == "" {
		inv.Function = "_User." + req.Hook
	}
	if !inv.OK {
		var body struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(res.Body, &body) == nil && body.Error != "" {
			inv.Error = body.Error
		} else {
			inv.Error = string(res.Body)
		}
	}
	e.Report(inv)
}
