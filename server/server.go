package server

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/leanstorage"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/wxdb"
)

// Invoker is what the HTTP layer needs from the engine.
type Invoker interface {
	WXInvoker
	InvokeLean(ctx context.Context, req engine.LeanRequest) *engine.LeanResult
	Functions() []string
}

// LeanKeys are the credentials of a lean app.
type LeanKeys struct {
	AppID, AppKey, MasterKey, HookKey string
}

// Invocation describes one served call, for the request log.
type Invocation struct {
	Time      time.Time     `json:"time"`
	Dialect   string        `json:"dialect"`
	Function  string        `json:"function"`
	Status    int           `json:"status"` // HTTP status answered
	OK        bool          `json:"ok"`
	Error     string        `json:"error,omitempty"`
	Duration  time.Duration `json:"-"`
	RequestID string        `json:"requestId"`
	Identity  string        `json:"identity,omitempty"`
	Kind      string        `json:"kind,omitempty"` // call (default), hook, timer
	// Scheduled is a timer run's fire time, as the scheduler decided it.
	Scheduled time.Time `json:"scheduled,omitempty"`
}

// Options configure the API handler.
type Options struct {
	Dialect project.Dialect
	Invoker Invoker
	// WXIdentity resolves who calls a wx function (fn dev: headers and named identities; the hosted
	// runtime: issued tokens). It returns the identity and a display name.
	WXIdentity func(r *http.Request) (*engine.WXIdentity, string, error)
	Keys       LeanKeys
	// Ping is what GET /__engine/1/ping answers (runtime and leanengine version).
	Ping func() map[string]string
	// OnInvocation is told about every served call.
	OnInvocation func(Invocation)
	// MaxBody bounds request bodies (default 20 MB, as LeanCloud's).
	MaxBody int64
	// Storage serves LeanStorage (lean projects); nil leaves those routes out.
	Storage *leanstorage.Service
	// WXDatabase serves the wx cloud database (wx projects); nil answers its actions as not emulated.
	WXDatabase *wxdb.DB
	// WXEnvID is the database environment of a call that names none (cloud.init() without env).
	WXEnvID string
}

// defaultEnvDB sends a database call that names no environment to the app environment's own, as
// the platform does for cloud.init() without env.
type defaultEnvDB struct {
	db  *wxdb.DB
	env string
}

func (d defaultEnvDB) Handle(ctx context.Context, env string, caller wxdb.Caller, action string, body json.RawMessage) (json.RawMessage, bool) {
	if env == "" {
		env = d.env
	}
	return d.db.Handle(ctx, env, caller, action, body)
}

// New returns the HTTP API of one project: the wx routes (/wx/functions/{name}, /admin) or the
// LeanEngine routes (/1.1/functions, /1.1/call, /1/ aliases, hooks, ping, metadata).
func New(o Options) http.Handler {
	if o.MaxBody == 0 {
		o.MaxBody = 20 << 20
	}
	s := &api{o: o}
	mux := http.NewServeMux()
	if o.Dialect == project.WX {
		mux.HandleFunc("POST /wx/functions/{name}", s.wxFunction)
		var db WXDatabase
		if o.WXDatabase != nil {
			db = defaultEnvDB{o.WXDatabase, o.WXEnvID}
		}
		mux.Handle("/admin", WXAdmin(o.Invoker, s.report, db))
	} else {
		for _, v := range []string{"1", "1.1"} {
			mux.HandleFunc("/"+v+"/functions/{name...}", s.leanFunctions(false))
			mux.HandleFunc("/"+v+"/call/{name...}", s.leanFunctions(true))
		}
		mux.HandleFunc("GET /__engine/1/ping", s.ping)
		if o.Storage != nil {
			// every other /1.1/ path is LeanStorage's: it answers unknown APIs with its own 404
			for _, v := range []string{"1", "1.1"} {
				mux.HandleFunc("/"+v+"/", s.storage(v))
			}
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if o.Dialect == project.WX {
			writeJSON(w, http.StatusNotFound, map[string]any{"errCode": -1, "errMsg": fmt.Sprintf("no route %s %s: call functions with POST /wx/functions/{name}", r.Method, r.URL.Path)})
			return
		}
		writeJSON(w, http.StatusNotFound, map[string]any{"code": 404, "error": fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)})
	})
	return s.cors(mux)
}

type api struct{ o Options }

// cors lets browser clients (the LeanCloud JS SDK in a web page) call the dev server.
func (s *api) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, X-LC-Id, X-LC-Key, X-LC-Sign, X-LC-Session, X-LC-Prod, X-LC-Hook-Key, X-LC-UA, X-WX-OPENID, X-WX-APPID, X-WX-UNIONID, X-Fn-Identity, X-AVOSCloud-Application-Id, X-AVOSCloud-Application-Key, X-AVOSCloud-Session-Token")
			h.Set("Access-Control-Max-Age", "86400")
			if r.Method == http.MethodOptions {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *api) report(inv Invocation) {
	if s.o.OnInvocation != nil {
		s.o.OnInvocation(inv)
	}
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// readBody reads a bounded request body; the error is already answered when ok is false.
func (s *api) readBody(w http.ResponseWriter, r *http.Request, tooLarge func()) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.o.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			tooLarge()
			return nil, false
		}
		return nil, false
	}
	return body, true
}

// ---- WeChat

func (s *api) wxFunction(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	start := time.Now()
	body, ok := s.readBody(w, r, func() {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"errCode": -1, "errMsg": fmt.Sprintf("cloud.callFunction:fail request body over %d bytes", s.o.MaxBody)})
	})
	if !ok {
		return
	}
	id, idName, err := s.o.WXIdentity(r)
	if err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errCode": -1, "errMsg": "cloud.callFunction:fail " + err.Error()})
		s.report(Invocation{Time: start, Dialect: "wx", Function: name, Status: 401, Error: err.Error(), Duration: time.Since(start)})
		return
	}
	if len(bytes.TrimSpace(body)) > 0 && !json.Valid(body) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errCode": -1, "errMsg": "cloud.callFunction:fail the request body is not valid JSON"})
		s.report(Invocation{Time: start, Dialect: "wx", Function: name, Status: 400, Error: "invalid JSON body", Duration: time.Since(start), Identity: idName})
		return
	}
	res := s.o.Invoker.InvokeWX(r.Context(), engine.WXRequest{Function: name, Data: body, Identity: id, UserInfo: true,
		Source: "wx_client", ClientIP: clientIP(r)})
	inv := Invocation{Time: start, Dialect: "wx", Function: name, Duration: res.Duration, RequestID: res.RequestID, Identity: idName}
	if res.Err == nil {
		inv.Status, inv.OK = 200, true
		writeRaw(w, 200, wxSuccess(res))
		s.report(inv)
		return
	}
	status, payload := WXFailure(name, res)
	inv.Status, inv.Error = status, res.Err.Message
	writeJSON(w, status, payload)
	s.report(inv)
}

// wxSuccess is what wx.cloud.callFunction resolves with.
func wxSuccess(res *engine.Result) []byte {
	var b bytes.Buffer
	b.WriteString(`{"errMsg":"cloud.callFunction:ok","result":`)
	if len(res.Value) == 0 {
		b.WriteString("null")
	} else {
		b.Write(res.Value)
	}
	b.WriteString(`,"requestID":"`)
	b.WriteString(res.RequestID)
	b.WriteString("\"}\n")
	return b.Bytes()
}

// WXFailure is the HTTP status and body of a failed wx call, worded as the client SDK words it.
func WXFailure(name string, res *engine.Result) (int, map[string]any) {
	fe := res.Err
	status := http.StatusInternalServerError
	switch fe.Kind {
	case engine.KindNotFound:
		status = http.StatusNotFound
	case engine.KindTimeout:
		status = http.StatusGatewayTimeout
	case engine.KindBadRequest:
		status = http.StatusBadRequest
	case engine.KindTooLarge:
		status = http.StatusBadGateway
	}
	payload := map[string]any{
		"errCode":   -404011,
		"errMsg":    "cloud.callFunction:fail -404011 cloud function execution error. " + WXErrorMessage(name, fe),
		"requestID": res.RequestID,
	}
	if fe.Kind == engine.KindBadRequest {
		payload["errCode"] = -501001
		payload["errMsg"] = "cloud.callFunction:fail -501001 " + fe.Message
	}
	if fe.Kind == engine.KindException {
		payload["errorCode"] = 1
		payload["errorMessage"] = "user code exception caught"
		payload["stackTrace"] = fe.Stack
	}
	return status, payload
}

// ---- LeanEngine

var errUnauthorized = errors.New("unauthorized")

// leanAuth is who a LeanEngine request comes from.
type leanAuth struct {
	master, hookKeyOK bool
	sessionToken      string
	production        bool
}

// LeanHeaders are the credentials and routing fields of a LeanCloud request: from its headers
// (X-LC-*, and the older X-AVOSCloud-* and X-Uluru-* spellings) or, for a text/plain body (what
// browsers send to avoid a preflight), from the body's _ApplicationId, _ApplicationKey, … fields.
type LeanHeaders struct {
	AppID, Key, Sign, Master, Session, Prod string
	// Body is the request body without the credential fields.
	Body []byte
}

// Production reports whether the request is for production (X-LC-Prod other than 0/false).
func (h LeanHeaders) Production() bool { return h.Prod != "0" && h.Prod != "false" }

// ParseLeanHeaders reads a LeanCloud request's credentials; this is the one place that knows
// the header names.
func ParseLeanHeaders(r *http.Request, body []byte) LeanHeaders {
	hd := r.Header
	first := func(names ...string) string {
		for _, n := range names {
			if v := hd.Get(n); v != "" {
				return v
			}
		}
		return ""
	}
	h := LeanHeaders{
		AppID:   first("X-LC-Id", "X-AVOSCloud-Application-Id", "X-Uluru-Application-Id"),
		Key:     first("X-LC-Key", "X-AVOSCloud-Application-Key", "X-Uluru-Application-Key"),
		Sign:    first("X-LC-Sign", "X-AVOSCloud-Request-Sign"),
		Session: first("X-LC-Session", "X-AVOSCloud-Session-Token", "X-Uluru-Session-Token"),
		Prod:    first("X-LC-Prod", "X-AVOSCloud-Application-Production", "X-Uluru-Application-Production"),
		Master:  first("X-AVOSCloud-Master-Key", "X-Uluru-Master-Key"),
		Body:    body,
	}
	if strings.HasPrefix(hd.Get("Content-Type"), "text/plain") && len(body) > 0 {
		var fields map[string]json.RawMessage
		if json.Unmarshal(body, &fields) == nil {
			str := func(k string) string {
				var v string
				json.Unmarshal(fields[k], &v)
				delete(fields, k)
				return v
			}
			if v := str("_ApplicationId"); v != "" {
				h.AppID = v
			}
			if v := str("_ApplicationKey"); v != "" {
				h.Key = v
			}
			if v := str("_MasterKey"); v != "" {
				h.Master = v
			}
			if v := str("_SessionToken"); v != "" {
				h.Session = v
			}
			if raw, ok := fields["_ApplicationProduction"]; ok {
				h.Prod = strings.Trim(string(raw), `"`)
				delete(fields, "_ApplicationProduction")
			}
			delete(fields, "_ClientVersion")
			delete(fields, "_InstallationId")
			h.Body, _ = json.Marshal(fields)
		}
	}
	return h
}

// authenticate checks the app id and key (X-LC-Key, or X-LC-Sign as the JS SDK sends by default)
// from headers or a text/plain body, and strips the credential fields from that body.
func (s *api) authenticate(r *http.Request, body []byte) (leanAuth, []byte, error) {
	lh := ParseLeanHeaders(r, body)
	body = lh.Body
	appID, key, sign, master := lh.AppID, lh.Key, lh.Sign, lh.Master
	a := leanAuth{sessionToken: lh.Session, production: lh.Production()}
	h := r.Header
	k := s.o.Keys
	if appID == "" || !equal(appID, k.AppID) {
		return a, body, errUnauthorized
	}
	a.hookKeyOK = k.HookKey != "" && equal(h.Get("X-LC-Hook-Key"), k.HookKey)
	switch {
	case master != "":
		if !equal(master, k.MasterKey) {
			return a, body, errUnauthorized
		}
		a.master = true
	case key != "":
		if strings.HasSuffix(key, ",master") {
			if !equal(strings.TrimSuffix(key, ",master"), k.MasterKey) {
				return a, body, errUnauthorized
			}
			a.master = true
		} else if !equal(key, k.AppKey) {
			return a, body, errUnauthorized
		}
	case sign != "":
		isMaster, ok := VerifySign(sign, k.AppKey, k.MasterKey)
		if !ok {
			return a, body, errUnauthorized
		}
		a.master = isMaster
	case a.hookKeyOK:
		// the storage server calling a hook presents only the hook key
	default:
		return a, body, errUnauthorized
	}
	return a, body, nil
}

// VerifySign checks an X-LC-Sign header: "md5hex(timestamp+key),timestamp[,master]".
func VerifySign(header, appKey, masterKey string) (master, ok bool) {
	parts := strings.Split(header, ",")
	if len(parts) < 2 || len(parts) > 3 {
		return false, false
	}
	key := appKey
	if len(parts) == 3 {
		if parts[2] != "master" {
			return false, false
		}
		key, master = masterKey, true
	}
	sum := md5.Sum([]byte(parts[1] + key))
	return master, equal(strings.ToLower(parts[0]), hex.EncodeToString(sum[:]))
}

// Sign computes an X-LC-Sign value (clients and tests).
func Sign(key string, ts int64, master bool) string {
	t := fmt.Sprint(ts)
	sum := md5.Sum([]byte(t + key))
	s := hex.EncodeToString(sum[:]) + "," + t
	if master {
		s += ",master"
	}
	return s
}

// ConstantEqual compares secrets in constant time.
func ConstantEqual(a, b string) bool { return equal(a, b) }

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

var userHooks = map[string]bool{"onLogin": true, "onAuthData": true}
var classHooks = map[string]bool{"beforeSave": true, "afterSave": true, "beforeUpdate": true, "afterUpdate": true, "beforeDelete": true, "afterDelete": true}

func (s *api) leanFunctions(rpc bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		path := r.PathValue("name")
		auth, body, status := s.readLean(w, r)
		if status == http.StatusUnauthorized {
			s.report(Invocation{Time: start, Dialect: "lean", Function: path, Status: 401, Error: "Unauthorized.", Duration: time.Since(start)})
		}
		if status != 0 {
			return
		}
		if path == "_ops/metadatas" && !rpc {
			if !auth.master {
				writeJSON(w, http.StatusUnauthorized, map[string]any{"code": 401, "error": "Unauthorized."})
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"result": s.o.Invoker.Functions()})
			return
		}
		if r.Method != http.MethodPost {
			writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"code": 1, "error": "cloud functions are called with POST"})
			return
		}
		if len(bytes.TrimSpace(body)) == 0 {
			body = []byte("{}")
		}
		if !json.Valid(body) {
			writeJSON(w, http.StatusBadRequest, map[string]any{"code": 107, "error": "Malformed json object. A json dictionary is expected."})
			s.report(Invocation{Time: start, Dialect: "lean", Function: path, Status: 400, Error: "malformed JSON", Duration: time.Since(start)})
			return
		}
		req := engine.LeanRequest{Kind: engine.LeanFunction, Name: path, Params: body, RPC: rpc, SessionToken: auth.sessionToken,
			RemoteAddress: clientIP(r), HookKeyOK: auth.hookKeyOK, Master: auth.master, URL: r.URL.Path}
		if first, hook, found := strings.Cut(path, "/"); found {
			switch {
			case first == "onVerified":
				req.Kind, req.Hook, req.ClassName = engine.LeanUserHook, "onVerified", hook
			case first == "_User" && userHooks[hook]:
				req.Kind, req.Hook = engine.LeanUserHook, hook
			case classHooks[hook]:
				req.Kind, req.Hook, req.ClassName = engine.LeanClassHook, hook, first
			default:
				writeJSON(w, http.StatusNotFound, map[string]any{"code": 1, "error": fmt.Sprintf("No such cloud function '%s'", path)})
				return
			}
			req.Name = ""
		}
		res := s.o.Invoker.InvokeLean(r.Context(), req)
		writeRaw(w, res.Status, append(res.Body, '\n'))
		inv := Invocation{Time: start, Dialect: "lean", Function: path, Status: res.Status, OK: res.Status == 200, Duration: res.Duration, RequestID: res.RequestID}
		if auth.sessionToken != "" {
			inv.Identity = "session"
		}
		if res.Status != 200 {
			var e struct {
				Error string `json:"error"`
			}
			json.Unmarshal(res.Body, &e)
			inv.Error = e.Error
		}
		s.report(inv)
	}
}

// readLean reads a LeanCloud request's body and authenticates it. A non-zero status means the
// request was already answered (413 too large, 401 unauthorized, or the body could not be read).
func (s *api) readLean(w http.ResponseWriter, r *http.Request) (leanAuth, []byte, int) {
	status := http.StatusBadRequest
	body, ok := s.readBody(w, r, func() {
		status = http.StatusRequestEntityTooLarge
		writeJSON(w, status, map[string]any{"code": 1, "error": fmt.Sprintf("request entity too large (limit %d bytes)", s.o.MaxBody)})
	})
	if !ok {
		if status == http.StatusBadRequest {
			writeJSON(w, status, map[string]any{"code": 107, "error": "the request body could not be read"})
		}
		return leanAuth{}, nil, status
	}
	auth, body, err := s.authenticate(r, body)
	if err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": 401, "error": "Unauthorized."})
		return leanAuth{}, nil, http.StatusUnauthorized
	}
	return auth, body, 0
}

// storage authenticates a LeanStorage request and hands it to the storage service.
func (s *api) storage(version string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth, body, status := s.readLean(w, r)
		if status != 0 {
			return
		}
		path := strings.TrimPrefix(r.URL.Path, "/"+version+"/")
		la := leanstorage.Auth{Master: auth.master, HookKey: auth.hookKeyOK, SessionToken: auth.sessionToken, RemoteAddr: clientIP(r)}
		// cloud code's requests carry its deadline (set by fn's runner); it only ever shortens hooks
		if ms, err := strconv.ParseInt(r.Header.Get("X-Fn-Deadline"), 10, 64); err == nil && auth.hookKeyOK {
			la.Deadline = time.UnixMilli(ms)
		}
		resp := s.o.Storage.Serve(r.Context(), r.Method, path, r.URL.Query(), body, la)
		if resp.Location != "" {
			w.Header().Set("Location", resp.Location)
		}
		writeJSON(w, resp.Status, resp.Body)
	}
}

func (s *api) ping(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.o.Ping())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	writeRaw(w, status, append(b, '\n'))
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}
