package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/control"
)

type creds struct{}

func (c creds) App(ctx context.Context, idOrName string) (api.App, error) {
	apps, _ := c.Apps(ctx)
	for _, a := range apps {
		if a.ID == idOrName {
			return a, nil
		}
	}
	for _, a := range apps {
		if a.Name == idOrName {
			return a, nil
		}
	}
	return api.App{}, errScope
}

func (creds) CheckAdmin(ctx context.Context, token string) bool { return token == "admin-secret-token" }
func (creds) Apps(ctx context.Context) ([]api.App, error) {
	// app3's id is app one's name: a name in a path resolves to that app, not to one
	return []api.App{{ID: "app1id", Name: "one", MasterKey: "master-of-one-000"}, {ID: "app2id", Name: "two", MasterKey: "master-of-two-000"},
		{ID: "one", Name: "three", MasterKey: "master-of-three-0"}}, nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// serveWith is fn serve's wiring in small: the console, and an admin API behind Guard and
// Authorize whose routes record who they admitted.
func serveWith(t *testing.T, c *Console) *httptest.Server {
	t.Helper()
	bearerOnly := func(r *http.Request, app string) error {
		if r.Header.Get("Authorization") == "Bearer admin-secret-token" {
			return nil
		}
		return errScope
	}
	auth := c.Authorize(bearerOnly)
	admin := http.NewServeMux()
	route := func(pattern string, app bool) {
		admin.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			name := ""
			if app {
				name = r.PathValue("app")
			}
			if err := auth(r, name); err != nil {
				writeJSON(w, http.StatusUnauthorized, api.ErrorBody{Error: err.Error(), Code: "unauthorized"})
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"app": name, "method": r.Method})
		})
	}
	route("GET /__fn/apps", false)
	route("GET /__fn/apps/{app}/functions/{env}", true)
	route("POST /__fn/apps/{app}/invoke/{env}/{name}", true)
	mux := http.NewServeMux()
	mux.Handle(Path+"/", c)
	mux.Handle(Path, c)
	mux.Handle("/__fn/", c.Guard(admin))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type client struct {
	t      *testing.T
	base   string
	cookie []*http.Cookie
	csrf   string
}

func (cl *client) do(method, path, body string, hdr map[string]string) (*http.Response, map[string]any) {
	cl.t.Helper()
	req, _ := http.NewRequest(method, cl.base+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	for _, c := range cl.cookie {
		req.AddCookie(c)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cl.t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	return res, m
}

func (cl *client) login(token string) (*http.Response, map[string]any) {
	res, m := cl.do("POST", Path+"/login", `{"token":"`+token+`"}`, nil)
	if res.StatusCode == 200 {
		cl.cookie = res.Cookies()
		cl.csrf, _ = m["csrf"].(string)
	}
	return res, m
}

func TestLoginCookieCSRF(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)}
	c := New(Options{Credentials: creds{}, Now: clk.now, TTL: time.Hour})
	srv := serveWith(t, c)
	cl := &client{t: t, base: srv.URL}

	// not logged in: the admin API refuses, the session says so
	if res, _ := cl.do("GET", "/__fn/apps/one/functions/production", "", nil); res.StatusCode != 401 {
		t.Fatalf("without a session: %d, want 401", res.StatusCode)
	}
	if _, m := cl.do("GET", Path+"/session", "", nil); m["loggedIn"] != false || m["mode"] != "serve" {
		t.Fatalf("session before login: %v", m)
	}
	// a wrong token
	if res, m := cl.login("nope-not-a-key"); res.StatusCode != 401 || strings.Contains(m["error"].(string), "master-of") {
		t.Fatalf("wrong token: %d %v", res.StatusCode, m)
	}
	// a form post (no JSON) is refused before any check
	res, _ := cl.do("POST", Path+"/login", "token=admin-secret-token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if res.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("form login: %d", res.StatusCode)
	}

	// app two by its name, with its own master key
	cl2 := &client{t: t, base: srv.URL}
	if res, _ := cl2.login("master-of-two-000"); res.StatusCode != 200 {
		t.Fatalf("app two's login: %d", res.StatusCode)
	}
	if res, _ := cl2.do("GET", "/__fn/apps/two/functions/production", "", nil); res.StatusCode != 200 {
		t.Fatalf("own app by name: %d", res.StatusCode)
	}

	// the master key of app one: an app-scoped session
	res, m := cl.login("master-of-one-000")
	if res.StatusCode != 200 || m["role"] != "app" || m["app"] != "app1id" || cl.csrf == "" {
		t.Fatalf("master key login: %d %v", res.StatusCode, m)
	}
	var sess *http.Cookie
	for _, ck := range cl.cookie {
		if ck.Name == CookieName {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/__fn/" {
		t.Fatalf("session cookie: %+v", sess)
	}
	if res, m := cl.do("GET", "/__fn/apps/app1id/functions/production", "", nil); res.StatusCode != 200 || m["app"] != "app1id" {
		t.Fatalf("own app by id: %d %v", res.StatusCode, m)
	}
	if res, _ := cl.do("GET", "/__fn/apps/one/functions/production", "", nil); res.StatusCode != 401 {
		t.Fatalf("another app whose id is this app's name: %d, want 401", res.StatusCode)
	}
	if res, _ := cl.do("GET", "/__fn/apps/two/functions/production", "", map[string]string{}); res.StatusCode != 401 {
		t.Fatalf("another app by name: %d, want 401", res.StatusCode)
	}
	if res, _ := cl.do("GET", "/__fn/apps/two/functions/production", "", nil); res.StatusCode != 401 {
		t.Fatalf("another app: %d, want 401", res.StatusCode)
	}
	if res, _ := cl.do("GET", "/__fn/apps", "", nil); res.StatusCode != 401 {
		t.Fatalf("server-wide route with an app session: %d, want 401", res.StatusCode)
	}
	// state-changing calls need the CSRF token
	if res, m := cl.do("POST", "/__fn/apps/app1id/invoke/production/f", "{}", nil); res.StatusCode != 403 || m["code"] != "csrf" {
		t.Fatalf("POST without the CSRF header: %d %v", res.StatusCode, m)
	}
	if res, _ := cl.do("POST", "/__fn/apps/app1id/invoke/production/f", "{}", map[string]string{CSRFHeader: "wrong"}); res.StatusCode != 403 {
		t.Fatalf("POST with a wrong CSRF header: %d", res.StatusCode)
	}
	if res, m := cl.do("POST", "/__fn/apps/app1id/invoke/production/f", "{}", map[string]string{CSRFHeader: cl.csrf}); res.StatusCode != 200 || m["method"] != "POST" {
		t.Fatalf("POST with the CSRF header: %d %v", res.StatusCode, m)
	}
	// a cross-site request is refused even with the token
	if res, _ := cl.do("POST", "/__fn/apps/app1id/invoke/production/f", "{}", map[string]string{CSRFHeader: cl.csrf, "Sec-Fetch-Site": "cross-site"}); res.StatusCode != 403 {
		t.Fatalf("cross-site POST: %d", res.StatusCode)
	}
	if res, _ := cl.do("POST", "/__fn/apps/app1id/invoke/production/f", "{}", map[string]string{CSRFHeader: cl.csrf, "Origin": "http://evil.example"}); res.StatusCode != 403 {
		t.Fatalf("POST from another origin: %d", res.StatusCode)
	}
	// the CLI's bearer token is not affected by a cookie
	if res, _ := cl.do("POST", "/__fn/apps/two/invoke/production/f", "{}", map[string]string{"Authorization": "Bearer admin-secret-token"}); res.StatusCode != 200 {
		t.Fatalf("bearer with a cookie: %d", res.StatusCode)
	}

	// logout needs the token too, then the cookie is worthless
	if res, _ := cl.do("POST", Path+"/logout", "", nil); res.StatusCode != 403 {
		t.Fatalf("logout without CSRF: %d", res.StatusCode)
	}
	if res, _ := cl.do("POST", Path+"/logout", "", map[string]string{CSRFHeader: cl.csrf}); res.StatusCode != 200 {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if res, _ := cl.do("GET", "/__fn/apps/app1id/functions/production", "", nil); res.StatusCode != 401 {
		t.Fatalf("after logout: %d, want 401", res.StatusCode)
	}

	// the admin token: every app and the server-wide routes, until the session expires
	res, m = cl.login("admin-secret-token")
	if res.StatusCode != 200 || m["role"] != "admin" {
		t.Fatalf("admin login: %d %v", res.StatusCode, m)
	}
	if res, _ := cl.do("GET", "/__fn/apps", "", nil); res.StatusCode != 200 {
		t.Fatalf("admin session, server-wide: %d", res.StatusCode)
	}
	if res, _ := cl.do("GET", "/__fn/apps/two/functions/production", "", nil); res.StatusCode != 200 {
		t.Fatalf("admin session, any app: %d", res.StatusCode)
	}
	clk.add(59 * time.Minute)
	if res, _ := cl.do("GET", "/__fn/apps", "", nil); res.StatusCode != 200 {
		t.Fatalf("before expiry: %d", res.StatusCode)
	}
	clk.add(2 * time.Minute)
	if res, _ := cl.do("GET", "/__fn/apps", "", nil); res.StatusCode != 401 {
		t.Fatalf("after expiry: %d, want 401", res.StatusCode)
	}
	if _, m := cl.do("GET", Path+"/session", "", nil); m["loggedIn"] != false {
		t.Fatalf("session after expiry: %v", m)
	}
}

func TestLoginRateLimit(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)}
	srv := serveWith(t, New(Options{Credentials: creds{}, Now: clk.now}))
	cl := &client{t: t, base: srv.URL}
	for i := range maxFailures {
		if res, _ := cl.login("wrong-token-xx"); res.StatusCode != 401 {
			t.Fatalf("failure %d: %d", i, res.StatusCode)
		}
	}
	if res, _ := cl.login("admin-secret-token"); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after %d failures: %d, want 429", maxFailures, res.StatusCode)
	}
	clk.add(failureWindow + time.Second)
	if res, _ := cl.login("admin-secret-token"); res.StatusCode != 200 {
		t.Fatalf("after the window: %d", res.StatusCode)
	}
}

func TestPageAndAssets(t *testing.T) {
	srv := serveWith(t, New(Options{Credentials: creds{}}))
	res, err := http.Get(srv.URL + Path)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("page: %d %v", res.StatusCode, res.Header)
	}
	for _, a := range []string{"main.js", "api.js", "console.css"} {
		res, err := http.Get(srv.URL + Path + "/assets/" + a)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d", a, res.StatusCode)
		}
	}
	for _, bad := range []string{"../console.go", "index.html", "editor/index.js", "package.json"} {
		res, err := http.Get(srv.URL + Path + "/assets/" + bad)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 {
			t.Fatalf("asset %q: %d, want 404", bad, res.StatusCode)
		}
	}
}

// fn dev's console answers only loopback peers and serves the project's saved events.
func TestDevLocal(t *testing.T) {
	dir := t.TempDir()
	c := New(Options{Local: func() Local { return Local{Dir: dir, Identities: []string{"bob", "alice"}} }})
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", Path+"/session", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	c.ServeHTTP(rec, r)
	if rec.Code != 403 {
		t.Fatalf("non-loopback peer: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	r = httptest.NewRequest("GET", Path+"/events/sum/..%2f..%2fetc", nil)
	r.RemoteAddr = "127.0.0.1:1234"
	c.ServeHTTP(rec, r)
	if rec.Code != 400 && rec.Code != 404 {
		t.Fatalf("traversal: %d", rec.Code)
	}
	if err := os.MkdirAll(filepath.Join(dir, "events", "sum"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "events", "sum", "answer.json"), []byte(`{"a":40,"b":2}`), 0o644)
	os.WriteFile(filepath.Join(dir, "events", "sum", "broken.json"), []byte(`{"a":`), 0o644)
	get := func(p string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", Path+p, nil)
		r.RemoteAddr = "127.0.0.1:1234"
		c.ServeHTTP(rec, r)
		return rec
	}
	if rec := get("/local"); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"sum":["answer","broken"]`) || !strings.Contains(rec.Body.String(), `["alice","bob"]`) {
		t.Fatalf("local: %d %s", rec.Code, rec.Body)
	}
	if rec := get("/events/sum/answer"); rec.Code != 200 || rec.Body.String() != `{"a":40,"b":2}` {
		t.Fatalf("event: %d %s", rec.Code, rec.Body)
	}
	if rec := get("/events/sum/broken"); rec.Code != 422 {
		t.Fatalf("broken event: %d %s", rec.Code, rec.Body)
	}
	if rec := get("/events/sum/missing"); rec.Code != 404 {
		t.Fatalf("missing event: %d", rec.Code)
	}
}

// With a SessionStore (fn serve's control plane), a login on one replica is a login on every
// replica sharing the plane, and a logout on any of them ends it everywhere.
func TestSessionsSharedThroughTheControlPlane(t *testing.T) {
	plane, err := control.OpenSQLite(filepath.Join(t.TempDir(), "control.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer plane.Close()
	a := serveWith(t, New(Options{Credentials: creds{}, Sessions: plane}))
	b := serveWith(t, New(Options{Credentials: creds{}, Sessions: plane}))
	alone := serveWith(t, New(Options{Credentials: creds{}}))
	cl := &client{t: t, base: a.URL}
	if res, _ := cl.login("admin-secret-token"); res.StatusCode != 200 {
		t.Fatalf("login on a: %d", res.StatusCode)
	}
	onB := &client{t: t, base: b.URL, cookie: cl.cookie, csrf: cl.csrf}
	if res, _ := onB.do("GET", "/__fn/apps", "", nil); res.StatusCode != 200 {
		t.Fatalf("a's session on b: %d, want 200", res.StatusCode)
	}
	if res, _ := onB.do("POST", "/__fn/apps/two/invoke/production/f", "{}", map[string]string{CSRFHeader: "wrong"}); res.StatusCode != 403 {
		t.Fatalf("b with a wrong CSRF token: %d, want 403", res.StatusCode)
	}
	if res, _ := onB.do("POST", "/__fn/apps/two/invoke/production/f", "{}", map[string]string{CSRFHeader: cl.csrf}); res.StatusCode != 200 {
		t.Fatalf("b with a's CSRF token: %d, want 200", res.StatusCode)
	}
	// a console without the store knows nothing of it
	onAlone := &client{t: t, base: alone.URL, cookie: cl.cookie}
	if res, _ := onAlone.do("GET", "/__fn/apps", "", nil); res.StatusCode != 401 {
		t.Fatalf("a's session on a console without the store: %d, want 401", res.StatusCode)
	}
	if res, _ := onB.do("POST", Path+"/logout", "", map[string]string{CSRFHeader: cl.csrf}); res.StatusCode != 200 {
		t.Fatalf("logout on b: %d", res.StatusCode)
	}
	if res, _ := cl.do("GET", "/__fn/apps", "", nil); res.StatusCode != 401 {
		t.Fatalf("a after the logout on b: %d, want 401", res.StatusCode)
	}
}
