package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fnhq/fn/project"
)

// WXIdentity is the mini-program user a wx invocation runs as.
type WXIdentity struct {
	OpenID  string `json:"openid"`
	AppID   string `json:"appid"`
	UnionID string `json:"unionid,omitempty"`
}

// WXRequest is one call of a WeChat cloud function.
type WXRequest struct {
	Function string
	// Data is the caller's data: a JSON object (empty means {}).
	Data json.RawMessage
	// Identity is who calls. With UserInfo the event gets userInfo {appId, openId}, as when a
	// mini-program user calls; a call from another function has the identity in its context only.
	Identity *WXIdentity
	UserInfo bool
	// Source is TCB_SOURCE (wx_client, scf, "wx_client,scf" …); Trigger is TRIGGER_SRC (tcb or timer).
	Source    string
	Trigger   string
	ClientIP  string
	RequestID string // generated when empty
	// Parent is the request id of the invocation that made this nested call ("" for none).
	Parent string
	// Timeout overrides the function's configured timeout (timers use 15 s).
	Timeout time.Duration

	apiToken string
}

// WXCaller is the invocation behind a WX_API_TOKEN: who a nested call comes from.
type WXCaller struct {
	Function  string
	RequestID string
	Identity  *WXIdentity
	Source    string
}

// WXCaller looks up the in-flight invocation that owns an API token. The real wx-server-sdk sends
// the token (WX_API_TOKEN) as wxCloudApiToken with every API call.
func (e *Engine) WXCaller(token string) (WXCaller, bool) {
	v, ok := e.callers.Load(token)
	if !ok {
		return WXCaller{}, false
	}
	return v.(WXCaller), true
}

// Result is the outcome of an invocation.
type Result struct {
	RequestID string          `json:"requestId"`
	Value     json.RawMessage `json:"result,omitempty"` // the function's return value, as JSON
	Err       *FunctionError  `json:"error,omitempty"`
	Duration  time.Duration   `json:"durationNs"`
	PID       int             `json:"pid,omitempty"`
}

// NewRequestID returns a random RFC 4122 version 4 uuid, as the platform's request ids are.
func NewRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	hex.Encode(out[9:13], b[4:6])
	hex.Encode(out[14:18], b[6:8])
	hex.Encode(out[19:23], b[8:10])
	hex.Encode(out[24:], b[10:16])
	out[8], out[13], out[18], out[23] = '-', '-', '-', '-'
	return string(out[:])
}

// wxEnv builds the per-invocation environment the real wx-server-sdk reads, and the context's
// environ string (K=V pairs joined by ';').
func (e *Engine) wxEnv(req *WXRequest) (json.RawMessage, string) {
	type kv struct{ k, v string }
	var pairs [16]kv // no call has more: the slice stays on the stack
	all := pairs[:0]
	ip := req.ClientIP
	if ip == "" {
		ip = "127.0.0.1"
	}
	all = append(all, kv{"WX_CLIENTIP", ip}, kv{"WX_CLIENTIPV6", "::ffff:" + ip})
	if id := req.Identity; id != nil {
		if id.AppID != "" {
			all = append(all, kv{"WX_APPID", id.AppID})
		}
		if id.OpenID != "" {
			all = append(all, kv{"WX_OPENID", id.OpenID})
		}
		if id.UnionID != "" {
			all = append(all, kv{"WX_UNIONID", id.UnionID})
		}
	}
	// WX_API_TOKEN goes back to /admin as wxCloudApiToken; the SDK reads it only when it is listed
	// in WX_CONTEXT_KEYS (getWXContext leaves it out of its result).
	all = append(all, kv{"WX_API_TOKEN", req.apiToken})
	var kb [96]byte
	keys := kb[:0]
	for i, p := range all {
		if i > 0 {
			keys = append(keys, ',')
		}
		keys = append(keys, p.k...)
	}
	trigger := req.Trigger
	if trigger == "" {
		trigger = "tcb"
	}
	source := req.Source
	if source == "" {
		source = "wx_client"
	}
	all = append(all,
		kv{"WX_CONTEXT_KEYS", string(keys)},
		kv{"WX_TRIGGER_API_TOKEN_V0", req.apiToken},
		kv{"TCB_ENV", e.cfg.EnvID},
		kv{"TCB_SEQID", req.RequestID},
		kv{"TRIGGER_SRC", trigger},
		kv{"TCB_SOURCE", source},
		kv{"SCF_NAMESPACE", e.cfg.EnvID},
		kv{"TCB_CONTEXT_KEYS", "TCB_ENV,TCB_SEQID,TRIGGER_SRC,TCB_SOURCE"},
	)
	// Encoded by hand, in one buffer each: this runs on every call, and encoding/json would sort a
	// map's keys. The keys are the constants above (capitals and underscores): nothing to escape.
	size := 2
	for _, p := range all {
		size += len(p.k) + len(p.v) + 6
	}
	env := make([]byte, 0, size+16)
	environ := make([]byte, 0, size)
	env = append(env, '{')
	for i, p := range all {
		if i > 0 {
			env = append(env, ',')
			environ = append(environ, ';')
		}
		env = append(env, '"')
		env = append(env, p.k...)
		env = append(env, '"', ':')
		env = appendJSONString(env, p.v)
		environ = append(environ, p.k...)
		environ = append(environ, '=')
		environ = append(environ, p.v...)
	}
	env = append(env, '}')
	return env, string(environ)
}

// wxEvent merges userInfo into the caller's data object. The data is passed through as the
// caller wrote it (checked, not re-encoded); userInfo goes last, so that it wins over a userInfo
// of the caller's own, as the platform's does.
func wxEvent(data json.RawMessage, id *WXIdentity, userInfo bool) (json.RawMessage, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		data = json.RawMessage("{}")
	}
	if data[0] != '{' || !json.Valid(data) {
		var obj map[string]json.RawMessage
		err := json.Unmarshal(data, &obj)
		if err == nil {
			err = errors.New("not an object")
		}
		return nil, &FunctionError{Kind: KindBadRequest, Message: "the call's data must be a JSON object: " + err.Error()}
	}
	if !userInfo || id == nil {
		return data, nil
	}
	out := make([]byte, 0, len(data)+64+len(id.AppID)+len(id.OpenID))
	body := bytes.TrimSpace(data[1 : len(data)-1])
	out = append(out, '{')
	if len(body) > 0 {
		out = append(out, body...)
		out = append(out, ',')
	}
	out = append(out, `"userInfo":{"appId":`...)
	out = appendJSONString(out, id.AppID)
	out = append(out, `,"openId":`...)
	out = appendJSONString(out, id.OpenID)
	return append(out, '}', '}'), nil
}

// InvokeWX runs one WeChat cloud function invocation.
func (e *Engine) InvokeWX(ctx context.Context, req WXRequest) *Result {
	start := time.Now()
	if req.RequestID == "" {
		req.RequestID = NewRequestID()
	}
	res := &Result{RequestID: req.RequestID}
	finish := func(err *FunctionError) *Result {
		res.Err = err
		res.Duration = time.Since(start)
		return res
	}
	p, err := e.pool(req.Function)
	if err != nil {
		return finish(asFunctionError(err))
	}
	event, err := wxEvent(req.Data, req.Identity, req.UserInfo)
	if err != nil {
		return finish(asFunctionError(err))
	}
	v, err := e.serving(ctx, p)
	if err != nil {
		return finish(asFunctionError(err))
	}
	timeout := time.Duration(v.cfg.Timeout) * time.Second
	if req.Timeout > 0 {
		timeout = req.Timeout
	}
	if timeout <= 0 {
		timeout = project.DefaultWXTimeout * time.Second
	}
	w, err := e.acquire(ctx, p)
	if err != nil {
		return finish(asFunctionError(err))
	}
	// The function's time starts when it runs, not while it waits for a worker.
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start = time.Now()
	res.PID = w.pid
	req.apiToken = "fn-" + NewRequestID()
	source := req.Source
	if source == "" {
		source = "wx_client"
	}
	e.callers.Store(req.apiToken, WXCaller{Function: req.Function, RequestID: req.RequestID, Identity: req.Identity, Source: source})
	defer e.callers.Delete(req.apiToken)
	budget, closeBudget := e.budgets.open(req.RequestID)
	defer closeBudget()
	env, environ := e.wxEnv(&req)
	if v.cfg.Concurrency <= 1 {
		w.current.Store(&invocation{rid: req.RequestID, budget: budget})
	}
	remaining := time.Until(deadlineOf(ctx, start.Add(timeout)))
	m := newWXInvokeMsg()
	m.Fn, m.RID, m.Event, m.Env, m.Environ = req.Function, req.RequestID, event, env, environ
	m.Namespace, m.TimeoutMs, m.MemoryMB, m.Concurrent = e.cfg.EnvID, remaining.Milliseconds(), v.cfg.Memory, v.cfg.Concurrency > 1
	m.TimeLimitMs = timeout.Milliseconds()
	var rp resultMsg
	endSlow := w.watchSlow()
	err = w.call(ctx, m, &rp)
	endSlow()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			e.afterTimeout(p, w, req.Function, req.RequestID)
			return finish(wxTimeout(timeout))
		}
		p.release(w)
		return finish(e.mapError(asFunctionError(err)))
	}
	p.release(w)
	if !rp.OK {
		return finish(e.mapError(jsFunctionError(rp.Error)))
	}
	res.Value = rp.Value
	return finish(nil)
}

// QueueTimeout bounds how long an invocation waits for a free worker (all busy at MaxInstances,
// or a swap in progress) before it fails.
const QueueTimeout = 60 * time.Second

func (e *Engine) acquire(ctx context.Context, p *pool) (*worker, error) {
	if w := p.acquireNow(); w != nil {
		return w, nil
	}
	qctx, cancel := context.WithTimeout(ctx, QueueTimeout)
	defer cancel()
	w, err := p.acquire(qctx)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return nil, &FunctionError{Kind: KindTimeout, Message: fmt.Sprintf("no worker of %s became free within %v (all %d busy)", p.name, QueueTimeout, p.maxWorkers())}
	}
	return w, err
}

// serving waits (at most QueueTimeout) for a pool that is still loading its first version.
func (e *Engine) serving(ctx context.Context, p *pool) (*version, error) {
	select {
	case <-p.ready:
		return p.serving(ctx) // loaded: nothing to wait for, so no queue deadline to make
	default:
	}
	qctx, cancel := context.WithTimeout(ctx, QueueTimeout)
	defer cancel()
	return p.serving(qctx)
}

func deadlineOf(ctx context.Context, def time.Time) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return def
}

// wxTimeout is the platform's timeout message.
func wxTimeout(d time.Duration) *FunctionError {
	secs := d.Seconds()
	text := fmt.Sprintf("%g", secs)
	return &FunctionError{Kind: KindTimeout, Message: fmt.Sprintf("Invoking task timed out after %s seconds", text)}
}

// afterTimeout decides the fate of a worker whose invocation timed out: a worker whose event
// loop still answers (a promise that never settled) goes back to the pool; a stuck one (a
// synchronous loop) is killed and replaced.
func (e *Engine) afterTimeout(p *pool, w *worker, fn, rid string) {
	w.suspect.Add(1)
	go func() {
		if w.ping(e.cfg.HealthTimeout) {
			w.suspect.Add(-1)
			p.release(w)
			return
		}
		e.note(fn, "error", fmt.Sprintf("worker %d stopped answering after invocation %s timed out (a synchronous loop?); it was killed and replaced", w.pid, rid))
		w.killStuck("the worker was killed because an invocation blocked its event loop past its timeout")
		<-w.done
		w.suspect.Add(-1)
		p.release(w)
	}()
}

func asFunctionError(err error) *FunctionError {
	var fe *FunctionError
	if errors.As(err, &fe) {
		return fe
	}
	if errors.Is(err, ErrClosed) {
		return &FunctionError{Kind: KindCrash, Message: "the engine is shutting down"}
	}
	return &FunctionError{Kind: KindCrash, Message: err.Error()}
}

func jsFunctionError(je *jsError) *FunctionError {
	if je == nil {
		return &FunctionError{Kind: KindException, Message: "the function failed without an error"}
	}
	kind := je.Kind
	if kind == "" {
		kind = KindException
	}
	return &FunctionError{Kind: kind, Message: je.Message, Stack: je.Stack}
}

func (e *Engine) mapError(fe *FunctionError) *FunctionError {
	if fe == nil {
		return nil
	}
	out := *fe
	out.Message = e.mapper.mapText(fe.Message)
	out.Stack = e.trimStack(e.mapper.mapText(fe.Stack))
	return &out
}

// trimStack drops the frames of fn's runner and of Node's internals below the user's code, which
// say nothing to the person reading the trace.
func (e *Engine) trimStack(stack string) string {
	if stack == "" {
		return stack
	}
	lines := strings.Split(stack, "\n")
	kept := lines[:0]
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "at ") && (strings.Contains(t, e.runner) || strings.Contains(t, "(node:") ||
			strings.HasPrefix(t, "at node:") || t == "at new Promise (<anonymous>)") {
			continue
		}
		kept = append(kept, l)
	}
	return strings.Join(kept, "\n")
}

// LeanKind is what a lean invocation calls.
type LeanKind string

const (
	LeanFunction  LeanKind = "function"  // AV.Cloud.define
	LeanClassHook LeanKind = "classHook" // beforeSave, afterSave, beforeUpdate, afterUpdate, beforeDelete, afterDelete
	LeanUserHook  LeanKind = "userHook"  // onVerified (ClassName is sms/email), onLogin, onAuthData
)

// LeanRequest is one call into LeanEngine cloud code.
type LeanRequest struct {
	Kind LeanKind
	// Name is the function (LeanFunction); Hook and ClassName name a hook.
	Name      string
	Hook      string
	ClassName string
	// Params is the request body: the function's params, or the hook's {object, user, authData}.
	Params        json.RawMessage
	RPC           bool // /1.1/call: decode params, encode AV.Objects in the result
	SessionToken  string
	RemoteAddress string
	HookKeyOK     bool // the caller presented the hook key
	Master        bool // the caller presented the master key
	URL           string
	RequestID     string
	Timeout       time.Duration // default: the bundle's timeout (15 s); hooks pass 3 s or less
}

// LeanResult is the HTTP answer leanengine would give.
type LeanResult struct {
	RequestID string          `json:"requestId"`
	Status    int             `json:"status"`
	Body      json.RawMessage `json:"body"`
	Err       *FunctionError  `json:"error,omitempty"` // set for failures, with the mapped stack
	Duration  time.Duration   `json:"durationNs"`
}

// realtimeHooks are function names that only the hook key may call.
var realtimeHooks = map[string]bool{
	"_messageReceived": true, "_receiversOffline": true, "_messageSent": true, "_messageUpdate": true,
	"_conversationStart": true, "_conversationStarted": true, "_conversationAdd": true, "_conversationAdded": true,
	"_conversationRemove": true, "_conversationRemoved": true, "_conversationUpdate": true,
	"_clientOnline": true, "_clientOffline": true, "_rtmClientSign": true,
}

// LeanTimeoutBody is what a client gets when cloud code runs past its deadline.
var LeanTimeoutBody = json.RawMessage(`{"code":124,"error":"The request timed out on the server."}`)

// InvokeLean runs a cloud function or hook of a lean project.
func (e *Engine) InvokeLean(ctx context.Context, req LeanRequest) *LeanResult {
	start := time.Now()
	if req.RequestID == "" {
		req.RequestID = NewRequestID()
	}
	res := &LeanResult{RequestID: req.RequestID}
	fail := func(status int, fe *FunctionError) *LeanResult {
		body, _ := json.Marshal(map[string]any{"code": 1, "error": fe.Message})
		res.Status, res.Body, res.Err, res.Duration = status, body, fe, time.Since(start)
		return res
	}
	p, err := e.pool(project.LeanBundleName)
	if err != nil {
		return fail(500, asFunctionError(err))
	}
	v, err := e.serving(ctx, p)
	if err != nil {
		return fail(500, asFunctionError(err))
	}
	timeout := time.Duration(v.cfg.Timeout) * time.Second
	if req.Timeout > 0 {
		timeout = req.Timeout
	}
	if len(bytes.TrimSpace(req.Params)) == 0 {
		req.Params = json.RawMessage("{}")
	}
	if req.URL == "" {
		req.URL = "/1.1/functions/" + req.Name
	}
	w, err := e.acquire(ctx, p)
	if err != nil {
		return fail(500, asFunctionError(err))
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, closeBudget := e.budgets.open(req.RequestID)
	defer closeBudget()
	fnName := req.Name
	if req.Kind != LeanFunction {
		fnName = req.ClassName + "." + req.Hook
	}
	m := newLeanInvokeMsg()
	m.Kind, m.Fn, m.RID, m.Name, m.Hook, m.ClassName = string(req.Kind), fnName, req.RequestID, req.Name, req.Hook, req.ClassName
	m.Params, m.RPC, m.SessionToken, m.RemoteAddress = req.Params, req.RPC, req.SessionToken, req.RemoteAddress
	m.HookKeyOK, m.Master, m.RealtimeHook, m.URL, m.TimeoutMs = req.HookKeyOK, req.Master, realtimeHooks[req.Name], req.URL, timeout.Milliseconds()
	var rp resultMsg
	endSlow := w.watchSlow()
	err = w.call(ctx, m, &rp)
	endSlow()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			e.afterTimeout(p, w, fnName, req.RequestID)
			return e.leanTimeout(res, req, timeout, start)
		}
		p.release(w)
		return fail(500, e.mapError(asFunctionError(err)))
	}
	p.release(w)
	res.Duration = time.Since(start)
	if rp.OK {
		res.Status, res.Body = 200, rp.Value
		return res
	}
	res.Err = e.mapError(jsFunctionError(rp.Error))
	if rp.Status == 0 {
		// not a leanengine-shaped failure (e.g. the result was too large to send)
		return fail(500, res.Err)
	}
	res.Status, res.Body = rp.Status, rp.Body
	return res
}

func (e *Engine) leanTimeout(res *LeanResult, req LeanRequest, timeout time.Duration, start time.Time) *LeanResult {
	e.note(req.Name, "error", fmt.Sprintf("LeanEngine function timeout, url=%s, timeout=%d", req.URL, timeout.Milliseconds()))
	res.Status, res.Body, res.Duration = 503, LeanTimeoutBody, time.Since(start)
	res.Err = &FunctionError{Kind: KindTimeout, Message: "The request timed out on the server."}
	return res
}
