// Package server holds the HTTP API that fn dev and fn serve share: the WeChat routes, the /admin
// endpoint the real wx-server-sdk calls, and (in later layers) the LeanEngine and LeanStorage
// routes. It turns HTTP into engine calls and engine results into the platforms' wire formats.
package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/fnhq/fn/engine"
)

// WXInvoker runs wx functions: the engine, or a fake in tests.
type WXInvoker interface {
	InvokeWX(ctx context.Context, req engine.WXRequest) *engine.Result
	WXCaller(token string) (engine.WXCaller, bool)
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
//
// Only a running function may use it: the body's wxCloudApiToken must be the token the engine
// issued to an invocation in flight (WX_API_TOKEN), and the nested call runs as that caller.
// With trustLoopback (fn dev's own tools), a loopback client may call without a token and the
// callee runs without an identity; fn serve never trusts the network.
func WXAdmin(inv WXInvoker, report func(Invocation), trustLoopback bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			writeAdmin(w, http.StatusMethodNotAllowed, map[string]any{"code": "INVALID_METHOD", "message": "use POST"})
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
		requestID := engine.NewRequestID()
		switch req.Action {
		case "functions.invokeFunction":
		default:
			writeAdmin(w, http.StatusOK, map[string]any{"code": "FN_UNSUPPORTED_ACTION", "requestId": requestID,
				"message": fmt.Sprintf("%s is not emulated by fn yet (only functions.invokeFunction is)", req.Action)})
			return
		}
		call := engine.WXRequest{Function: req.FunctionName, Data: json.RawMessage(req.RequestData), RequestID: requestID, Source: "scf"}
		caller, ok := engine.WXCaller{}, false
		if req.WXCloudAPIToken != "" {
			caller, ok = inv.WXCaller(req.WXCloudAPIToken)
		}
		switch {
		case ok:
			// Called from a running function: the callee sees the same user in getWXContext but no
			// userInfo in its event, and the source chain grows by ",scf".
			call.Identity = caller.Identity
			call.Source = caller.Source + ",scf"
			call.Parent = caller.RequestID
		case req.WXCloudAPIToken == "" && trustLoopback && isLoopback(r):
			// fn dev's own tools on this machine
		default:
			why := "no wxCloudApiToken: this endpoint only serves the wx-server-sdk inside a running cloud function"
			if req.WXCloudAPIToken != "" {
				why = "the wxCloudApiToken is not one this runtime issued to a running invocation (tokens end with their call)"
			}
			writeAdmin(w, http.StatusUnauthorized, map[string]any{"code": "INVALID_ACCESS_TOKEN", "requestId": requestID, "message": why})
			if report != nil {
				report(Invocation{Time: time.Now(), Dialect: "wx", Function: req.FunctionName, Status: 401, Error: "refused /admin call: " + why})
			}
			return
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
				Duration: res.Duration, RequestID: res.RequestID, Identity: who + " via " + call.Source}
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

// isLoopback reports whether the request comes from this machine (the peer address, never a
// header a client could set).
func isLoopback(r *http.Request) bool {
	ip := net.ParseIP(clientIP(r))
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
