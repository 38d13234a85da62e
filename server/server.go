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
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/leanstorage"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/wxdb"
	"github.com/fnhq/fn/wxopenapi"
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
	// Request is what the call received (the event, the params) and WX or SessionToken who it
	// ran as: the record keeps them so that the call can be replayed (the token never: the
	// environment keeps the user it belongs to).
	Request      json.RawMessage    `json:"-"`
	WX           *engine.WXIdentity `json:"-"`
	SessionToken string             `json:"-"`
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
	// OnInvocation is told about every served call. For a function call over this API it runs
	// before the answer is sent (whoever reads the log after the answer finds the call there);
	// AfterResponse, if set, runs after it was sent (what the answer does not wait for: the
	// terminal's line of fn dev).
	OnInvocation  func(Invocation)
	AfterResponse func(Invocation)
	// MaxBody bounds request bodies (default 20 MB, as LeanCloud's).
	MaxBody int64
	// Storage serves LeanStorage (lean projects); nil leaves those routes out.
	Storage *leanstorage.Service
	// WXDatabase serves the wx cloud database (wx projects); nil answers its actions as not emulated.
	WXDatabase *wxdb.DB
	// WXStorage serves cloud storage (storage.* actions, uploads under /wx/storage/ and the
	// temp file URLs); WXFilesURL is where /wx/storage/ is reachable from functions and clients.
	WXStorage  WXStorage
	WXFilesURL string
	// WXOpenAPI answers cloud.openapi.* calls (wx.openApi); WXPermissions is a function's
	// declared permissions.openapi list (nil: none declared).
	WXOpenAPI     WXOpenAPI
	WXPermissions func(function string) []string
	// WXEnvID is the environment id used when the SDK names none.
	WXEnvID string
	// WXDBPermissions is each collection's permission for mini-program clients (nil: creator-only).
	WXDBPermissions func(collection string) wxdb.Permission
	// WXAdminTrustLoopback lets loopback clients call the wx-server-sdk's /admin endpoint without
	// a wxCloudApiToken (fn dev's own tools). Off, only a token the engine issued to a running
	// invocation is accepted: fn serve leaves it off.
	WXAdminTrustLoopback bool
	// SignWindow bounds how far an X-LC-Sign timestamp may be from now (default 15 minutes).
	SignWindow time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// TrustedProxies are the peers whose Forwarded / X-Real-IP / X-Forwarded-For headers name
	// the client (meta.remoteAddress, the wx client IP); nil trusts loopback peers only.
	TrustedProxies []netip.Prefix
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
	if o.SignWindow == 0 {
		o.SignWindow = DefaultSignWindow
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &api{o: o, replays: newReplayGuard(o.SignWindow)}
	mux := http.NewServeMux()
	if o.Dialect == project.WX {
		mux.HandleFunc("POST /wx/functions/{name}", s.wxFunction)
		var db WXDatabase
		if o.WXDatabase != nil {
			db = defaultEnvDB{o.WXDatabase, o.WXEnvID}
		}
		mux.Handle("/admin", WXAdmin(o.Invoker, s.report, WXServices{TrustLoopback: o.WXAdminTrustLoopback, Database: db, Storage: o.WXStorage,
			FilesURL: o.WXFilesURL, OpenAPI: o.WXOpenAPI, Permissions: o.WXPermissions, EnvID: o.WXEnvID}))
		mux.HandleFunc("POST /wx/client", s.wxClient)
		if o.WXOpenAPI != nil {
			mux.Handle("/wx/openapi/", WXOpenAPIHTTP(o.Invoker, WXServices{OpenAPI: o.WXOpenAPI, Permissions: o.WXPermissions, EnvID: o.WXEnvID}))
		}
		if o.WXStorage != nil {
			mux.Handle("/wx/storage/", http.StripPrefix("/wx/storage", o.WXStorage.Handler()))
		}
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
			// file contents at their public URLs (LeanCloud's file domain): no app key needed
			mux.HandleFunc("/__files/{app}/{id}/{name...}", func(w http.ResponseWriter, r *http.Request) {
				o.Storage.ServeFile(w, r, r.PathValue("id"))
			})
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if o.Dialect == project.WX {
			writeJSON(w, http.StatusNotFound, map[string]any{"errCode": -1, "errMsg": fmt.Sprintf("no route %s %s: call functions with POST /wx/functions/{name}", r.Method, r.URL.Path)})
			return
		}
		writeJSON(w, http.StatusNotFound, map[string]any{"code": 404, "error": fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)})
	})
	return CORS(mux)
}

type api struct {
	o       Options
	replays *replayGuard
}

// CORS lets browser clients (the LeanCloud JS SDK in a web page) call the API. The SDK
// authenticates with headers (X-LC-Id, X-LC-Sign, X-LC-Session), never with cookies, so any
// origin may call (as on LeanCloud) but no response is ever shared with a credentialed
// (cookie-bearing) request: the origin is "*" and Allow-Credentials is never sent. A preflight
// (which carries none of the app's headers, so it cannot be routed to an app) is answered 200
// here, as LeanCloud does.
func CORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, X-LC-Id, X-LC-Key, X-LC-Sign, X-LC-Session, X-LC-Prod, X-LC-Hook-Key, X-LC-UA, X-WX-OPENID, X-WX-APPID, X-WX-UNIONID, X-Fn-Identity, X-AVOSCloud-Application-Id, X-AVOSCloud-Application-Key, X-AVOSCloud-Session-Token, Authorization")
			h.Set("Access-Control-Max-Age", "86400")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				w.WriteHeader(http.StatusOK)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// report tells both of a call at once (calls whose answer is not this handler's).
func (s *api) report(inv Invocation) {
	s.record(inv)
	s.afterResponse(inv)
}

func (s *api) record(inv Invocation) {
	if s.o.OnInvocation != nil {
		s.o.OnInvocation(inv)
	}
}

func (s *api) afterResponse(inv Invocation) {
	if s.o.AfterResponse != nil {
		s.o.AfterResponse(inv)
	}
}

func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

var loopbackPrefixes = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// clientIP is the caller's address: the peer's, or, when the peer is a trusted proxy, the client
// it names in Forwarded (for=), X-Real-IP or X-Forwarded-For, in leanengine's order.
func (s *api) clientIP(r *http.Request) string {
	return ClientAddress(r, s.o.TrustedProxies)
}

// TrustedPeer reports whether the request comes straight from a trusted proxy (nil: loopback).
func TrustedPeer(r *http.Request, trusted []netip.Prefix) bool {
	if trusted == nil {
		trusted = loopbackPrefixes
	}
	addr, err := netip.ParseAddr(peerIP(r))
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// ClientAddress is the client address of a request through trusted proxies (nil: loopback).
func ClientAddress(r *http.Request, trusted []netip.Prefix) string {
	peer := peerIP(r)
	if !TrustedPeer(r, trusted) {
		return peer
	}
	if v := forwardedFor(r.Header.Get("Forwarded")); v != "" {
		return v
	}
	if v := validAddr(r.Header.Get("X-Real-IP")); v != "" {
		return v
	}
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		if v := validAddr(first); v != "" {
			return v
		}
	}
	return peer
}

// forwardedFor reads the for= of the first element of an RFC 7239 Forwarded header.
func forwardedFor(h string) string {
	if h == "" {
		return ""
	}
	first, _, _ := strings.Cut(h, ",")
	for _, pair := range strings.Split(first, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || !strings.EqualFold(k, "for") {
			continue
		}
		v = strings.Trim(v, `"`)
		if strings.HasPrefix(v, "[") { // [2001:db8::1]:4711
			if end := strings.Index(v, "]"); end > 0 {
				v = v[1:end]
			}
		} else if host, _, err := net.SplitHostPort(v); err == nil {
			v = host
		}
		return validAddr(v)
	}
	return ""
}

// validAddr keeps a header's address only if it is one (a hostile client may send anything).
func validAddr(v string) string {
	v = strings.TrimSpace(v)
	if a, err := netip.ParseAddr(v); err == nil {
		return a.String()
	}
	return ""
}

// readBody reads a bounded request body; the error is already answered when ok is false.
// maxPresized is the largest declared body length readBody allocates before the bytes arrive.
const maxPresized = 64 << 10

func (s *api) readBody(w http.ResponseWriter, r *http.Request, tooLarge func()) ([]byte, bool) {
	rd := http.MaxBytesReader(w, r.Body, s.o.MaxBody)
	var body []byte
	var err error
	if n := r.ContentLength; n > 0 && n <= min(s.o.MaxBody, maxPresized) {
		// a small declared length is read into a buffer of that size: io.ReadAll's first 512 bytes
		// were most of what a small call's body cost (net/http ends the body at the declared length
		// and reports a shorter one as an unexpected EOF). A large one grows as its bytes arrive:
		// a length is only a claim, and an unauthenticated client must not make fn reserve MaxBody
		// per connection by declaring it and sending nothing.
		body = make([]byte, n)
		_, err = io.ReadFull(rd, body)
	} else {
		body, err = io.ReadAll(rd)
	}
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
		Source: "wx_client", ClientIP: s.clientIP(r)})
	inv := Invocation{Time: start, Dialect: "wx", Function: name, Duration: res.Duration, RequestID: res.RequestID, Identity: idName,
		Request: body, WX: id}
	if res.Err == nil {
		inv.Status, inv.OK = 200, true
		s.record(inv)
		respondNow(w, 200, wxSuccess(res))
		s.afterResponse(inv)
		return
	}
	status, payload := WXFailure(name, res)
	inv.Status, inv.Error = status, res.Err.Message
	s.record(inv)
	b, _ := json.Marshal(payload)
	respondNow(w, status, append(b, '\n'))
	s.afterResponse(inv)
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

// leanHeaderNames are the credential headers in the order they are looked at, in canonical form
// once (Header.Get canonicalizes its argument on every call, and X-LC-Id is not canonical).
var leanHeaderNames = struct{ appID, key, sign, session, prod, master []string }{
	appID:   canonical("X-LC-Id", "X-AVOSCloud-Application-Id", "X-Uluru-Application-Id"),
	key:     canonical("X-LC-Key", "X-AVOSCloud-Application-Key", "X-Uluru-Application-Key"),
	sign:    canonical("X-LC-Sign", "X-AVOSCloud-Request-Sign"),
	session: canonical("X-LC-Session", "X-AVOSCloud-Session-Token", "X-Uluru-Session-Token"),
	prod:    canonical("X-LC-Prod", "X-AVOSCloud-Application-Production", "X-Uluru-Application-Production"),
	master:  canonical("X-AVOSCloud-Master-Key", "X-Uluru-Master-Key"),
}

var hookKeyHeader = textproto.CanonicalMIMEHeaderKey("X-LC-Hook-Key")

// headerValue is Header.Get of a name already in canonical form.
func headerValue(h http.Header, canonicalName string) string {
	if v := h[canonicalName]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func canonical(names ...string) []string {
	for i, n := range names {
		names[i] = textproto.CanonicalMIMEHeaderKey(n)
	}
	return names
}

// ParseLeanHeaders reads a LeanCloud request's credentials; this is the one place that knows
// the header names.
func ParseLeanHeaders(r *http.Request, body []byte) LeanHeaders {
	hd := r.Header
	first := func(names []string) string {
		for _, n := range names {
			if v := headerValue(hd, n); v != "" {
				return v
			}
		}
		return ""
	}
	h := LeanHeaders{
		AppID:   first(leanHeaderNames.appID),
		Key:     first(leanHeaderNames.key),
		Sign:    first(leanHeaderNames.sign),
		Session: first(leanHeaderNames.session),
		Prod:    first(leanHeaderNames.prod),
		Master:  first(leanHeaderNames.master),
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
	a.hookKeyOK = k.HookKey != "" && equal(headerValue(h, hookKeyHeader), k.HookKey)
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
		} else if !equal(key, k.AppKey) && !equal(key, k.MasterKey) {
			// leanengine's middleware admits the bare master key as the app key, without
			// the master key's rights (only "<key>,master" or the master-key header give those)
			return a, body, errUnauthorized
		}
	case sign != "":
		isMaster, ok := VerifySign(sign, k.AppKey, k.MasterKey)
		if !ok {
			return a, body, errUnauthorized
		}
		if err := s.checkSignFresh(r, sign, body); err != nil {
			return a, body, err
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
			RemoteAddress: s.clientIP(r), HookKeyOK: auth.hookKeyOK, Master: auth.master, URL: r.URL.Path}
		if first, hook, found := strings.Cut(path, "/"); found {
			switch {
			case first == "onVerified":
				req.Kind, req.Hook, req.ClassName = engine.LeanUserHook, "onVerified", hook
			case first == "_User" && userHooks[hook]:
				req.Kind, req.Hook = engine.LeanUserHook, hook
			case (first == "BigQuery" || first == "Insight") && hook == "onComplete":
				req.Kind, req.Hook, req.ClassName = LeanBigQueryHook, hook, first
			case classHooks[hook]:
				req.Kind, req.Hook, req.ClassName = engine.LeanClassHook, hook, first
			default:
				writeJSON(w, http.StatusNotFound, map[string]any{"code": 1, "error": fmt.Sprintf("No such cloud function '%s'", path)})
				return
			}
			req.Name = ""
		}
		res := s.o.Invoker.InvokeLean(r.Context(), req)
		inv := Invocation{Time: start, Dialect: "lean", Function: path, Status: res.Status, OK: res.Status == 200, Duration: res.Duration, RequestID: res.RequestID}
		if req.Kind == engine.LeanFunction {
			inv.Request, inv.SessionToken = body, auth.sessionToken
		}
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
		s.record(inv)
		respondNow(w, res.Status, append(res.Body, '\n'))
		s.afterResponse(inv)
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
		la := leanstorage.Auth{Master: auth.master, HookKey: auth.hookKeyOK, SessionToken: auth.sessionToken, RemoteAddr: s.clientIP(r)}
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

// LeanBigQueryHook is the Insight (BigQuery) job-completion callback, AV.Insight.on('end', fn).
const LeanBigQueryHook engine.LeanKind = "bigquery"

// ping answers as leanengine's health check does: JSON without a trailing newline.
func (s *api) ping(w http.ResponseWriter, r *http.Request) {
	b, _ := json.Marshal(s.o.Ping())
	writeRaw(w, http.StatusOK, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	writeRaw(w, status, append(b, '\n'))
}

// respondNow writes a whole response and sends it at once, before the handler goes on to what
// the caller need not wait for (AfterResponse); with its length known, the flush sends a plain
// response, not a chunked one.
func respondNow(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	writeRaw(w, status, b)
	http.NewResponseController(w).Flush() // a writer that cannot flush sends it when the handler returns
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// wxClient serves the mini-program client (wx-cloud.js): the SDK's database.* actions as the
// calling user under each collection's permission (wxdb.Caller{Client: true}), and the storage
// actions of wx.cloud.uploadFile / getTempFileURL / deleteFile.
func (s *api) wxClient(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r, func() {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"code": "INVALID_PARAM", "message": fmt.Sprintf("request body over %d bytes", s.o.MaxBody)})
	})
	if !ok {
		return
	}
	id, _, err := s.o.WXIdentity(r)
	if err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": "INVALID_PARAM", "message": err.Error()})
		return
	}
	var req struct {
		Action  string `json:"action"`
		EnvName string `json:"envName"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": "INVALID_PARAM", "message": "the request body is not JSON: " + err.Error()})
		return
	}
	env := req.EnvName
	if env == "" {
		env = s.o.WXEnvID
	}
	var reply json.RawMessage
	switch {
	case strings.HasPrefix(req.Action, "database.") && s.o.WXDatabase != nil:
		c := wxdb.Caller{Client: true}
		if id != nil {
			c.OpenID, c.AppID, c.UnionID = id.OpenID, id.AppID, id.UnionID
		}
		reply, _ = s.o.WXDatabase.HandleClient(r.Context(), env, c, s.o.WXDBPermissions, req.Action, body)
	case req.Action == "openapi.getOpenData" && s.o.WXOpenAPI != nil:
		// the client resolves wx.cloud.CloudID values before callFunction, as the platform does
		var q struct {
			List []string `json:"list"`
		}
		if err := json.Unmarshal(body, &q); err != nil || len(q.List) == 0 || len(q.List) > 100 {
			writeJSON(w, http.StatusOK, map[string]any{"code": "INVALID_PARAM", "message": "list must hold 1 to 100 cloudIDs"})
			return
		}
		var c wxopenapi.Caller
		if id != nil {
			c.OpenID, c.AppID, c.UnionID = id.OpenID, id.AppID, id.UnionID
		}
		reply, _ = json.Marshal(map[string]any{"data": map[string]any{"list": s.o.WXOpenAPI.OpenData(c, q.List)}})
	case strings.HasPrefix(req.Action, "storage.") && s.o.WXStorage != nil:
		openid := ""
		if id != nil {
			openid = id.OpenID
		}
		reply, _ = s.o.WXStorage.HandleClient(r.Context(), env, s.o.WXFilesURL, openid, req.Action, body)
	}
	if reply == nil {
		writeJSON(w, http.StatusOK, map[string]any{"code": "FN_UNSUPPORTED_ACTION", "message": fmt.Sprintf("%s is not served to mini-program clients", req.Action)})
		return
	}
	writeRaw(w, http.StatusOK, reply)
}

// LoopbackHostsOnly answers 403 to requests whose Host header is not a loopback name
// (localhost, *.localhost, 127.0.0.0/8, ::1): a server listening on loopback then cannot be
// reached from a web page through DNS rebinding (a hostile name that resolves to 127.0.0.1).
func LoopbackHostsOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsLoopbackHost(r.Host) {
			writeJSON(w, http.StatusForbidden, map[string]any{"code": 403, "error": fmt.Sprintf(
				"Host %q is not a loopback name: this server listens on loopback only (listen on another address with --host to serve other names)", r.Host)})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// IsLoopbackHost reports whether a Host header (with or without a port) names this machine.
func IsLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
