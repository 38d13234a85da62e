// Package server holds the HTTP API that fn dev and fn serve share: the WeChat routes, the /admin
// endpoint the real wx-server-sdk calls, and (in later layers) the LeanEngine and LeanStorage
// routes. It turns HTTP into engine calls and engine results into the platforms' wire formats.
package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/wxdb"
	"github.com/fnhq/fn/wxopenapi"
)

// WXInvoker runs wx functions: the engine, or a fake in tests.
type WXInvoker interface {
	InvokeWX(ctx context.Context, req engine.WXRequest) *engine.Result
	WXCaller(token string) (engine.WXCaller, bool)
}

// WXDatabase serves the cloud database actions (database.*) the SDK sends to /admin.
type WXDatabase interface {
	Handle(ctx context.Context, env string, caller wxdb.Caller, action string, body json.RawMessage) (json.RawMessage, bool)
}

// WXStorage serves cloud storage: the SDK's storage.* actions (base is where Handler is
// reachable) and the upload/download endpoints.
type WXStorage interface {
	Handle(ctx context.Context, env, base, action string, body json.RawMessage) (json.RawMessage, bool)
	// HandleClient answers a mini-program client (openid) under the storage permission.
	HandleClient(ctx context.Context, env, base, openid, action string, body json.RawMessage) (json.RawMessage, bool)
	Handler() http.Handler
}

// WXOpenAPI answers the SDK's wx.openApi calls: apiName and the protobuf request in, the
// protobuf response out.
type WXOpenAPI interface {
	Handle(ctx context.Context, env string, caller wxopenapi.Caller, apiName string, requestData []byte) []byte
	// HandleJSON answers WeChat's HTTP API (api.weixin.qq.com, which the runner sends here).
	HandleJSON(ctx context.Context, env string, caller wxopenapi.Caller, apiName string, body []byte) (contentType string, reply []byte)
	// OpenData resolves cloudIDs (wx.cloud.CloudID in a client's callFunction data).
	OpenData(caller wxopenapi.Caller, ids []string) []json.RawMessage
}

// WXServices are the backends /admin hands actions to (any may be nil: its actions then answer
// "not emulated").
type WXServices struct {
	// TrustLoopback lets loopback clients call without a wxCloudApiToken (fn dev's own tools).
	// Off, every action needs the token the engine issued to an invocation in flight: fn serve
	// never trusts the network.
	TrustLoopback bool
	Database      WXDatabase
	Storage       WXStorage
	FilesURL      string
	OpenAPI       WXOpenAPI
	Permissions   func(function string) []string
	EnvID         string
}

// maxAdminBody bounds an /admin request (callFunction data is limited to a few MB on the platform).
const maxAdminBody = 6 << 20

// adminRequest is the JSON body the SDK posts to /admin.
type adminRequest struct {
	Action          string `json:"action"`
	FunctionName    string `json:"function_name"`
	RequestData     string `json:"request_data"`
	EnvName         string `json:"envName"`
	WXCloudAPIToken string `json:"wxCloudApiToken"`
}

// WXAdmin serves POST /admin, where the real wx-server-sdk sends every API call when
// TCB_CONTEXT_CNFG points at this host. functions.invokeFunction runs the named local function
// with the caller's identity and TCB_SOURCE chained with ",scf"; other actions get an error the
// SDK reports, naming the action.
// WXAdmin serves POST /admin with every backend: functions.invokeFunction, database.*, storage.*
// and the wx.openApi forms. Only a running function may use it: the wxCloudApiToken (in the body,
// the form, or X-Fn-Api-Token for old SDKs the runner reroutes) must be the token the engine
// issued to an invocation in flight, and the call runs as that caller. With svc.TrustLoopback
// (fn dev's own tools) a loopback client may call without a token.
func WXAdmin(inv WXInvoker, report func(Invocation), svc WXServices) http.Handler {
	db := svc.Database
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			writeAdmin(w, http.StatusMethodNotAllowed, map[string]any{"code": "INVALID_METHOD", "message": "use POST"})
			return
		}
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
			// wx.openApi and wx.wxPayApi: a form whose requestData is protobuf
			wxFormAction(w, r, inv, svc, report)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody+1))
		if err != nil || len(body) > maxAdminBody {
			writeAdmin(w, http.StatusRequestEntityTooLarge, map[string]any{"code": "INVALID_PARAM", "message": "request body over 6 MB"})
			return
		}
		var req adminRequest
		if err := json.Unmarshal(body, &req); err != nil {
			writeAdmin(w, http.StatusBadRequest, map[string]any{"code": "INVALID_PARAM", "message": "the request body is not JSON: " + err.Error()})
			return
		}
		if req.WXCloudAPIToken == "" {
			// an old SDK routed here by the runner: the invocation's token travels as a header
			req.WXCloudAPIToken = r.Header.Get("X-Fn-Api-Token")
		}
		requestID := engine.NewRequestID()
		caller, ok := authorizeAdmin(w, r, inv, svc, report, req.WXCloudAPIToken, req.Action+" "+req.FunctionName, requestID)
		if !ok {
			return
		}
		switch {
		case req.Action == "functions.invokeFunction":
		case strings.HasPrefix(req.Action, "database.") && db != nil:
			// the cloud database: the caller's openid (for _openid) comes from its invocation
			var c wxdb.Caller
			if caller.Identity != nil {
				c = wxdb.Caller{OpenID: caller.Identity.OpenID, AppID: caller.Identity.AppID, UnionID: caller.Identity.UnionID}
			}
			env := req.EnvName
			if env == "" {
				env = r.URL.Query().Get("env")
			}
			if reply, ok := db.Handle(r.Context(), env, c, req.Action, body); ok {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.Write(reply)
				return
			}
			fallthrough
		case strings.HasPrefix(req.Action, "storage.") && svc.Storage != nil:
			if reply, ok := svc.Storage.Handle(r.Context(), svc.env(req.EnvName, r), svc.FilesURL, req.Action, body); ok {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.Write(reply)
				return
			}
			fallthrough
		default:
			writeAdmin(w, http.StatusOK, map[string]any{"code": "FN_UNSUPPORTED_ACTION", "requestId": requestID,
				"message": fmt.Sprintf("%s is not emulated by fn yet (only functions.invokeFunction is)", req.Action)})
			return
		}
		call := engine.WXRequest{Function: req.FunctionName, Data: json.RawMessage(req.RequestData), RequestID: requestID, Source: "scf"}
		if caller.RequestID != "" {
			// Called from a running function: the callee sees the same user in getWXContext but no
			// userInfo in its event, and the source chain grows by ",scf".
			call.Identity = caller.Identity
			call.Source = caller.Source + ",scf"
			call.Parent = caller.RequestID
		}
		if strings.TrimSpace(req.RequestData) == "" {
			call.Data = json.RawMessage("{}")
		}
		res := inv.InvokeWX(r.Context(), call)
		if report != nil {
			who := "function"
			if call.Identity != nil {
				who = call.Identity.OpenID
			}
			ri := Invocation{Time: time.Now().Add(-res.Duration), Dialect: "wx", Function: req.FunctionName, Status: 200, OK: res.Err == nil,
				Duration: res.Duration, RequestID: res.RequestID, Identity: who + " via " + call.Source, Request: call.Data, WX: call.Identity}
			if res.Err != nil {
				ri.Status, ri.Error = 500, res.Err.Message
			}
			report(ri)
		}
		if res.Err != nil {
			writeAdmin(w, http.StatusOK, map[string]any{"code": adminCode(res.Err), "message": WXErrorMessage(req.FunctionName, res.Err), "requestId": res.RequestID})
			return
		}
		writeAdmin(w, http.StatusOK, map[string]any{"requestId": res.RequestID, "data": map[string]any{"response_data": string(res.Value)}})
	})
}

// authorizeAdmin finds the running invocation behind an /admin call's token. A call without a
// valid token is refused (and reported), except from loopback when svc trusts it; ok is false when
// the refusal was answered.
func authorizeAdmin(w http.ResponseWriter, r *http.Request, inv WXInvoker, svc WXServices, report func(Invocation), token, what, requestID string) (engine.WXCaller, bool) {
	if token != "" {
		if caller, ok := inv.WXCaller(token); ok {
			return caller, true
		}
	} else if svc.TrustLoopback && LoopbackPeer(r) {
		return engine.WXCaller{}, true // fn dev's own tools on this machine
	}
	why := "no wxCloudApiToken: this endpoint only serves the wx-server-sdk inside a running cloud function"
	if token != "" {
		why = "the wxCloudApiToken is not one this runtime issued to a running invocation (tokens end with their call)"
	}
	writeAdmin(w, http.StatusUnauthorized, map[string]any{"code": "INVALID_ACCESS_TOKEN", "requestId": requestID, "message": why})
	if report != nil {
		report(Invocation{Time: time.Now(), Dialect: "wx", Function: strings.TrimSpace(what), Status: 401, Error: "refused /admin call: " + why})
	}
	return engine.WXCaller{}, false
}

// LoopbackPeer reports whether the request comes from this machine (the peer address, never a
// header a client could set).
func LoopbackPeer(r *http.Request) bool {
	ip := net.ParseIP(peerIP(r))
	return ip != nil && ip.IsLoopback()
}

func adminCode(fe *engine.FunctionError) string {
	switch fe.Kind {
	case engine.KindNotFound:
		return "FUNCTIONS_NOT_FOUND"
	case engine.KindTimeout:
		return "FUNCTIONS_TIME_LIMIT_EXCEEDED"
	case engine.KindBadRequest:
		return "INVALID_PARAM"
	}
	return "FUNCTIONS_EXECUTE_FAIL"
}

// WXErrorMessage words a failed call as the platform does.
func WXErrorMessage(name string, fe *engine.FunctionError) string {
	switch fe.Kind {
	case engine.KindNotFound:
		return fmt.Sprintf("errCode: -504002 Function not found [%s]", name)
	case engine.KindTimeout:
		return "errCode: -504003 " + fe.Message
	case engine.KindTooLarge:
		return "errCode: -604001 the function's result is larger than 1 MB: " + fe.Message
	case engine.KindException:
		return fmt.Sprintf("errCode: -504002 functions execute fail | errMsg: user code exception caught: %s", fe.Message)
	}
	return fmt.Sprintf("errCode: -504002 functions execute fail | errMsg: %s", fe.Message)
}

func writeAdmin(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// env is the environment a request names, or the Env's own.
func (svc WXServices) env(name string, r *http.Request) string {
	switch {
	case name != "" && name != "SYMBOL_CURRENT_ENV" && name != "SYMBOL_DEFAULT_ENV":
		return name
	case r.URL.Query().Get("env") != "":
		return r.URL.Query().Get("env")
	}
	return svc.EnvID
}

// wxFormAction serves the SDK's multipart actions: wx.openApi through the openapi emulation,
// anything else answered with an error (as JSON, which the SDK reads as a TCB error) naming it.
func wxFormAction(w http.ResponseWriter, r *http.Request, inv WXInvoker, svc WXServices, report func(Invocation)) {
	_, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	mr := multipart.NewReader(io.LimitReader(r.Body, maxAdminBody+1), params["boundary"])
	form := map[string][]byte{}
	total := 0
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			writeAdmin(w, http.StatusBadRequest, map[string]any{"code": "INVALID_PARAM", "message": "the multipart request is malformed: " + err.Error()})
			return
		}
		b, err := io.ReadAll(io.LimitReader(part, maxAdminBody+1))
		total += len(b)
		if err != nil || total > maxAdminBody || len(form) > 32 {
			writeAdmin(w, http.StatusRequestEntityTooLarge, map[string]any{"code": "INVALID_PARAM", "message": "request body over 6 MB or over 32 fields"})
			return
		}
		form[part.FormName()] = b
	}
	action, apiName := string(form["action"]), string(form["apiName"])
	if action != "wx.openApi" || svc.OpenAPI == nil {
		what := action
		if action == "wx.wxPayApi" {
			what = "cloudPay (" + action + ")"
		}
		writeAdmin(w, http.StatusOK, map[string]any{"code": "FN_UNSUPPORTED_ACTION", "requestId": engine.NewRequestID(),
			"message": fmt.Sprintf("not emulated: %s %s", what, apiName)})
		return
	}
	token := string(form["wxCloudApiToken"])
	if token == "" {
		token = r.Header.Get("X-Fn-Api-Token")
	}
	caller, ok := authorizeAdmin(w, r, inv, svc, report, token, action+" "+apiName, engine.NewRequestID())
	if !ok {
		return
	}
	var c wxopenapi.Caller
	if caller.RequestID != "" {
		c.Function = caller.Function
		if caller.Identity != nil {
			c.OpenID, c.AppID, c.UnionID = caller.Identity.OpenID, caller.Identity.AppID, caller.Identity.UnionID
		}
		if svc.Permissions != nil {
			c.Permissions = svc.Permissions(caller.Function)
		}
	}
	reply := svc.OpenAPI.Handle(r.Context(), svc.env(string(form["envName"]), r), c, apiName, form["requestData"])
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(reply)
}

// wxHTTPAPIs maps WeChat's HTTP API paths (api.weixin.qq.com) to the openapi names.
var wxHTTPAPIs = map[string]string{
	"/cgi-bin/message/subscribe/send":               "subscribeMessage.send",
	"/cgi-bin/message/wxopen/template/send":         "templateMessage.send",
	"/cgi-bin/message/custom/send":                  "customerServiceMessage.send",
	"/cgi-bin/message/wxopen/template/uniform_send": "uniformMessage.send",
	"/wxa/msg_sec_check":                            "security.msgSecCheck",
	"/wxa/img_sec_check":                            "security.imgSecCheck",
	"/wxa/getwxacode":                               "wxacode.get",
	"/wxa/getwxacodeunlimit":                        "wxacode.getUnlimited",
	"/cgi-bin/wxaapp/createwxaqrcode":               "wxacode.createQRCode",
}

// WXOpenAPIHTTP serves WeChat's HTTP API offline under /wx/openapi/ (the runner sends a
// function's requests to api.weixin.qq.com here, with X-Fn-Api-Token naming the invocation):
// access tokens are fake and accepted, the emulated APIs answer as through cloud.openapi, others
// get errcode -604100 naming the path.
func WXOpenAPIHTTP(inv WXInvoker, svc WXServices) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/wx/openapi")
		if p == "/cgi-bin/token" || p == "/cgi-bin/stable_token" {
			writeAdmin(w, http.StatusOK, map[string]any{"access_token": "fn-offline-access-token", "expires_in": 7200})
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody+1))
		if err != nil || len(body) > maxAdminBody {
			writeAdmin(w, http.StatusRequestEntityTooLarge, map[string]any{"errcode": 47001, "errmsg": "request body over 6 MB"})
			return
		}
		api, ok := wxHTTPAPIs[p]
		if !ok {
			api = "http:" + p
		}
		var c wxopenapi.Caller
		if caller, ok := inv.WXCaller(r.Header.Get("X-Fn-Api-Token")); ok {
			c.Function = caller.Function
			if caller.Identity != nil {
				c.OpenID, c.AppID, c.UnionID = caller.Identity.OpenID, caller.Identity.AppID, caller.Identity.UnionID
			}
		}
		ct, reply := svc.OpenAPI.HandleJSON(r.Context(), svc.EnvID, c, api, body)
		w.Header().Set("Content-Type", ct)
		w.Write(reply)
	})
}
