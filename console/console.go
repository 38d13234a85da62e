// Package console is fn's web console: a page served at /__fn/console by fn dev (loopback
// clients only, no login) and by fn serve (behind a login with the admin token or an app's
// master key, kept as an HttpOnly SameSite=Strict session cookie with a CSRF token). The page
// itself talks only to the admin API under /__fn/; this package serves the page and its assets,
// the login, and the guard that lets a console session through the admin API's authorization.
package console

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/server"
)

// Credentials checks what a login presents (fn serve's runtime).
type Credentials interface {
	// CheckAdmin verifies the admin token.
	CheckAdmin(ctx context.Context, token string) bool
	// Apps lists the apps, with their master keys.
	Apps(ctx context.Context) ([]api.App, error)
}

// Local is what fn dev tells the page about the project on disk: the identities of fn.yaml for
// the identity picker and the saved events under events/.
type Local struct {
	Dir        string   // the project root; events are read from Dir/events/<function>/<name>.json
	Identities []string // names of fn.yaml identities
	Default    string   // the default identity
	// the lean client keys (printed in fn dev's banner too), for "copy as curl" of /1.1/functions
	AppID, AppKey string
}

// Options configure a console.
type Options struct {
	// Credentials enable fn serve's login; nil serves fn dev's console (loopback peers only, no login).
	Credentials Credentials
	// Local describes fn dev's project (nil in fn serve).
	Local func() Local
	// TTL is how long a session lasts after its login (default 12 h).
	TTL time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Sessions keeps logins where every replica sees them (fn serve: the control plane); nil
	// keeps them in this process.
	Sessions SessionStore
}

// Console serves the page, its assets and (fn serve) the login under /__fn/console/.
type Console struct {
	o        Options
	sessions *sessions
	cop      *http.CrossOriginProtection
	limiter  *limiter
}

// New makes a console.
func New(o Options) *Console {
	if o.TTL <= 0 {
		o.TTL = 12 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Console{o: o, sessions: newSessions(o.Now, o.Sessions), cop: http.NewCrossOriginProtection(), limiter: newLimiter(o.Now)}
	c.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusForbidden, api.ErrorBody{Error: "cross-origin request refused: the admin API answers state-changing calls from its own origin only", Code: "csrf"})
	}))
	return c
}

const (
	// CookieName is the session cookie (HttpOnly).
	CookieName = "fn_console"
	// CSRFCookie holds the double-submit token the page echoes in CSRFHeader.
	CSRFCookie = "fn_console_csrf"
	// CSRFHeader must carry the session's CSRF token on every state-changing call.
	CSRFHeader = "X-Fn-Csrf"
	// Path is where the console is served.
	Path = "/__fn/console"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

type sessionKey struct{}

// Guard wraps the admin API: state-changing calls from another origin are refused (403, both
// servers), and in fn serve a request with a valid session cookie and no Authorization header is
// let through as that session, provided a state-changing call carries the session's CSRF token
// in X-Fn-Csrf (403 without it). Requests with an Authorization header (the CLI) are untouched.
func (c *Console) Guard(next http.Handler) http.Handler {
	return c.cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.o.Credentials != nil && r.Header.Get("Authorization") == "" {
			if s := c.session(r); s != nil {
				if !safeMethod(r.Method) && !csrfOK(w, r, s) {
					return
				}
				r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, s))
			}
		}
		next.ServeHTTP(w, r)
	}))
}

var errScope = errors.New("unauthorized: this console session is for another app; log in with the admin token for server-wide routes")

// Authorize wraps fn serve's authorization of the admin API: a request Guard admitted as a
// console session is authorized by its scope (the admin token: everything; a master key: that
// app's routes); any other request goes to next.
func (c *Console) Authorize(next func(r *http.Request, app string) error) func(r *http.Request, app string) error {
	return func(r *http.Request, app string) error {
		s, ok := r.Context().Value(sessionKey{}).(*session)
		if !ok {
			return next(r, app)
		}
		if s.admin || (app != "" && app == s.appID) {
			return nil
		}
		// a name is resolved as the routes resolve it, so it cannot name another app's id
		if res, ok := c.o.Credentials.(AppResolver); ok && app != "" {
			if a, err := res.App(r.Context(), app); err == nil && a.ID == s.appID {
				return nil
			}
		}
		return errScope
	}
}

// AppResolver is what Credentials may add: an app by id or name, as the admin API's routes
// resolve it (fn serve's runtime has it); without it an app-scoped session names its app by id.
type AppResolver interface {
	App(ctx context.Context, idOrName string) (api.App, error)
}

func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return nil
	}
	return c.sessions.get(r.Context(), ck.Value)
}

// ServeHTTP serves /__fn/console (the page), /__fn/console/assets/*, /__fn/console/session and,
// in fn serve, /__fn/console/login and /__fn/console/logout; in fn dev also the project's
// identities and saved events.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.o.Credentials == nil && !server.LoopbackPeer(r) {
		writeJSON(w, http.StatusForbidden, api.ErrorBody{Error: "fn dev's console answers loopback clients only", Code: "unauthorized"})
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, Path)
	switch {
	case rest == "" || rest == "/":
		if !safeMethod(r.Method) {
			methodNotAllowed(w)
			return
		}
		if rest == "" {
			http.Redirect(w, r, Path+"/", http.StatusFound)
			return
		}
		servePage(w, r)
	case strings.HasPrefix(rest, "/assets/"):
		if !safeMethod(r.Method) {
			methodNotAllowed(w)
			return
		}
		serveAsset(w, r, strings.TrimPrefix(rest, "/assets/"))
	case rest == "/session":
		c.cop.Handler(http.HandlerFunc(c.sessionInfo)).ServeHTTP(w, r)
	case rest == "/login" && c.o.Credentials != nil:
		c.cop.Handler(http.HandlerFunc(c.login)).ServeHTTP(w, r)
	case rest == "/logout" && c.o.Credentials != nil:
		c.cop.Handler(http.HandlerFunc(c.logout)).ServeHTTP(w, r)
	case rest == "/local" && c.o.Local != nil:
		c.local(w, r)
	case strings.HasPrefix(rest, "/events/") && c.o.Local != nil:
		c.event(w, r, strings.TrimPrefix(rest, "/events/"))
	default:
		writeJSON(w, http.StatusNotFound, api.ErrorBody{Error: "no such console path: " + r.URL.Path, Code: "not-found"})
	}
}

func methodNotAllowed(w http.ResponseWriter) {
	writeJSON(w, http.StatusMethodNotAllowed, api.ErrorBody{Error: "method not allowed", Code: "bad-request"})
}

// SessionInfo is what GET /__fn/console/session answers: how the page runs and who it is.
type SessionInfo struct {
	Mode     string    `json:"mode"` // dev or serve
	LoggedIn bool      `json:"loggedIn"`
	Role     string    `json:"role,omitempty"` // dev, admin, app
	App      string    `json:"app,omitempty"`  // the app of an app-scoped session ("-" in fn dev)
	AppName  string    `json:"appName,omitempty"`
	Envs     []string  `json:"envs"`
	CSRF     string    `json:"csrf,omitempty"`
	Expires  time.Time `json:"expires,omitzero"`
	Editor   bool      `json:"editor"` // the CodeMirror bundle is built in
}

func (c *Console) info(s *session) SessionInfo {
	if c.o.Credentials == nil {
		return SessionInfo{Mode: "dev", LoggedIn: true, Role: "dev", App: "-", Envs: []string{api.DevEnv}, Editor: hasEditor()}
	}
	in := SessionInfo{Mode: "serve", Envs: api.Environments, Editor: hasEditor()}
	if s != nil {
		in.LoggedIn, in.CSRF, in.Expires = true, s.csrf, s.expires
		if s.admin {
			in.Role = "admin"
		} else {
			in.Role, in.App, in.AppName = "app", s.appID, s.appName
		}
	}
	return in
}

func (c *Console) sessionInfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w)
		return
	}
	var s *session
	if c.o.Credentials != nil {
		s = c.session(r)
	}
	writeJSON(w, http.StatusOK, c.info(s))
}

// maxToken bounds what a login may send.
const maxToken = 256

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w)
		return
	}
	// JSON only: a cross-site form cannot send it without a preflight
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeJSON(w, http.StatusUnsupportedMediaType, api.ErrorBody{Error: "send the login as application/json: {\"token\": \"…\"}", Code: "bad-request"})
		return
	}
	addr := clientAddr(r)
	if !c.limiter.allow(addr) {
		writeJSON(w, http.StatusTooManyRequests, api.ErrorBody{Error: "too many failed logins from this address; try again in a minute", Code: "rate-limited"})
		return
	}
	var body struct {
		Token string `json:"token"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, api.ErrorBody{Error: "the login body is not {\"token\": \"…\"}: " + err.Error(), Code: "bad-request"})
		return
	}
	tok := strings.TrimSpace(body.Token)
	switch {
	case tok == "":
		writeJSON(w, http.StatusBadRequest, api.ErrorBody{Error: "token is empty: give the admin token (fn serve --init printed it) or an app's master key", Code: "bad-request"})
		return
	case len(tok) > maxToken:
		writeJSON(w, http.StatusBadRequest, api.ErrorBody{Error: "token is longer than 256 bytes", Code: "bad-request"})
		return
	}
	ctx := r.Context()
	s := &session{}
	if c.o.Credentials.CheckAdmin(ctx, tok) {
		s.admin = true
	} else {
		apps, err := c.o.Credentials.Apps(ctx)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, api.ErrorBody{Error: "listing apps: " + err.Error(), Code: "internal"})
			return
		}
		for _, a := range apps {
			// every key is compared, so the time taken does not tell which app matched
			if a.MasterKey != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(a.MasterKey)) == 1 && s.appID == "" {
				s.appID, s.appName = a.ID, a.Name
			}
		}
		if s.appID == "" {
			c.limiter.fail(addr)
			writeJSON(w, http.StatusUnauthorized, api.ErrorBody{Error: "the token is neither the admin token nor an app's master key", Code: "unauthorized"})
			return
		}
	}
	token, err := c.sessions.add(r.Context(), s, c.o.TTL)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, api.ErrorBody{Error: "the login could not be stored; try again", Code: "unavailable"})
		return
	}
	secure := r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: token, Path: "/__fn/", HttpOnly: true, Secure: secure,
		SameSite: http.SameSiteStrictMode, Expires: s.expires})
	http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Value: s.csrf, Path: "/__fn/", Secure: secure,
		SameSite: http.SameSiteStrictMode, Expires: s.expires})
	writeJSON(w, http.StatusOK, c.info(s))
}

// csrfOK reports whether r carries session s's CSRF token; it answers 403 when not.
func csrfOK(w http.ResponseWriter, r *http.Request, s *session) bool {
	if subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(s.csrf)) == 1 {
		return true
	}
	writeJSON(w, http.StatusForbidden, api.ErrorBody{Error: "the console's CSRF token is missing or wrong (header " + CSRFHeader + ")", Code: "csrf"})
	return false
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w)
		return
	}
	s := c.session(r)
	if s != nil {
		if !csrfOK(w, r, s) {
			return
		}
		ck, _ := r.Cookie(CookieName)
		if err := c.sessions.remove(r.Context(), ck.Value); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, api.ErrorBody{Error: "the logout could not be stored; try again", Code: "unavailable"})
			return
		}
	}
	for _, n := range []string{CookieName, CSRFCookie} {
		http.SetCookie(w, &http.Cookie{Name: n, Value: "", Path: "/__fn/", MaxAge: -1, HttpOnly: n == CookieName, SameSite: http.SameSiteStrictMode})
	}
	writeJSON(w, http.StatusOK, map[string]bool{"loggedOut": true})
}

func clientAddr(r *http.Request) string {
	addr := r.RemoteAddr
	if i := strings.LastIndexByte(addr, ':'); i > 0 {
		addr = addr[:i]
	}
	return addr
}

// ---- fn dev's project bits

var eventName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`) })

const (
	maxEvents     = 200
	maxEventBytes = 256 << 10
)

// LocalInfo is what GET /__fn/console/local answers in fn dev.
type LocalInfo struct {
	Identities []string            `json:"identities"`
	Default    string              `json:"default,omitempty"`
	Events     map[string][]string `json:"events"` // function → saved event names
	AppID      string              `json:"appId,omitempty"`
	AppKey     string              `json:"appKey,omitempty"`
}

func (c *Console) local(w http.ResponseWriter, r *http.Request) {
	l := c.o.Local()
	info := LocalInfo{Identities: l.Identities, Default: l.Default, Events: map[string][]string{}, AppID: l.AppID, AppKey: l.AppKey}
	if info.Identities == nil {
		info.Identities = []string{}
	}
	sort.Strings(info.Identities)
	root := filepath.Join(l.Dir, "events")
	dirs, _ := os.ReadDir(root)
	n := 0
	for _, d := range dirs {
		if !d.IsDir() || !eventName().MatchString(d.Name()) {
			continue
		}
		files, _ := os.ReadDir(filepath.Join(root, d.Name()))
		for _, f := range files {
			name, ok := strings.CutSuffix(f.Name(), ".json")
			if !ok || !f.Type().IsRegular() || !eventName().MatchString(name) || n >= maxEvents {
				continue
			}
			info.Events[d.Name()] = append(info.Events[d.Name()], name)
			n++
		}
	}
	writeJSON(w, http.StatusOK, info)
}

// event answers one saved event (events/<function>/<name>.json) as it is on disk.
func (c *Console) event(w http.ResponseWriter, r *http.Request, rest string) {
	fn, name, ok := strings.Cut(rest, "/")
	if !ok || !eventName().MatchString(fn) || !eventName().MatchString(name) || strings.Contains(name, "..") || strings.Contains(fn, "..") {
		writeJSON(w, http.StatusBadRequest, api.ErrorBody{Error: "a saved event is /events/<function>/<name> with plain names", Code: "bad-request"})
		return
	}
	p := filepath.Join(c.o.Local().Dir, "events", fn, name+".json")
	st, err := os.Lstat(p)
	if err != nil || !st.Mode().IsRegular() {
		writeJSON(w, http.StatusNotFound, api.ErrorBody{Error: "no saved event events/" + fn + "/" + name + ".json", Code: "not-found"})
		return
	}
	if st.Size() > maxEventBytes {
		writeJSON(w, http.StatusUnprocessableEntity, api.ErrorBody{Error: "events/" + fn + "/" + name + ".json is larger than 256 KB", Code: "bad-request"})
		return
	}
	b, err := os.ReadFile(p)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, api.ErrorBody{Error: "reading the saved event failed", Code: "internal"})
		return
	}
	if !json.Valid(b) {
		writeJSON(w, http.StatusUnprocessableEntity, api.ErrorBody{Error: "events/" + fn + "/" + name + ".json is not valid JSON", Code: "bad-request"})
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// ---- failed-login limiter

type limiter struct {
	mu       sync.Mutex
	now      func() time.Time
	failures map[string][]time.Time
}

const (
	maxFailures   = 10
	failureWindow = time.Minute
	maxAddrs      = 10000
)

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, failures: map[string][]time.Time{}}
}

func (l *limiter) recent(addr string) []time.Time {
	cut := l.now().Add(-failureWindow)
	ts := l.failures[addr]
	i := 0
	for i < len(ts) && ts[i].Before(cut) {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.failures, addr)
		return nil
	}
	l.failures[addr] = ts
	return ts
}

func (l *limiter) allow(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recent(addr)) < maxFailures
}

func (l *limiter) fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) >= maxAddrs {
		for a := range l.failures {
			l.recent(a)
		}
		if len(l.failures) >= maxAddrs {
			return // bounded: an address flood cannot grow the map
		}
	}
	l.failures[addr] = append(l.recent(addr), l.now())
}
