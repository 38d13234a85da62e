package commands

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/server"
)

// shapeOf is a JSON body's structure: keys and value kinds, not values (ids, times differ).
func shapeOf(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ":" + shapeOf(x[k])
		}
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		if len(x) == 0 {
			return "[]"
		}
		return "[" + shapeOf(x[0]) + "]"
	case string:
		return "s"
	case float64:
		return "n"
	case bool:
		return "b"
	case nil:
		return "null"
	}
	return "?"
}

// fn dev and fn serve run the same app environment: the same call gets the same status and body
// shape from both, over the LeanEngine, LeanStorage and admin routes.
func TestDevAndServeAnswerAlike(t *testing.T) {
	const (
		appID, appKey, masterKey, hookKey = "parityApp-fnDev", "parityAppKey01", "parityMasterKey1", "parityHookKey01"
		token                             = "admintoken-parity"
	)
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: parity\ndialect: lean\nlean:\n  appId: "+appID+"\n  appKey: "+appKey+
		"\n  masterKey: "+masterKey+"\n  hookKey: "+hookKey+"\ntimers:\n  tick:\n    function: hello\n    cron: '0 0 3 * * ?'\n    environments: [production]\n")
	testutil.WriteFile(t, dir, "cloud.js", `const AV = require('leanengine')
AV.Cloud.define('hello', (req) => { console.log('hello called'); return 'Hello ' + (req.params.name || 'world') })
AV.Cloud.define('fail', () => { throw new AV.Cloud.Error('nope', { code: 123 }) })
AV.Cloud.beforeSave('Review', (req) => { req.object.set('checked', true) })
`)
	testutil.LinkNodeModules(t, dir)
	d := startDev(t, dir)

	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	s := startServe(t, t.TempDir(), token, "http://127.0.0.1:1")
	if r := fn(t, ".", "login", "--server", s.url, "--token", token); r.code != 0 {
		t.Fatalf("login: %d %s", r.code, r.err)
	}
	if r := fn(t, ".", "apps", "create", "parity", "--app-id", appID, "--app-key", appKey, "--master-key", masterKey, "--hook-key", hookKey); r.code != 0 {
		t.Fatalf("apps create with the dev keys: %d %s", r.code, r.err)
	}
	if r := fn(t, dir, "deploy", "--env", "production"); r.code != 0 {
		t.Fatalf("deploy: %d %s", r.code, r.err)
	}

	ts := time.Now().UnixMilli()
	lc := map[string]string{"X-LC-Id": appID, "X-LC-Key": appKey, "Content-Type": "application/json"}
	with := func(extra ...string) map[string]string {
		m := map[string]string{}
		for k, v := range lc {
			m[k] = v
		}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	type call struct {
		name, method, path string
		headers            map[string]string
		body               string
	}
	calls := []call{
		{"function", "POST", "/1.1/functions/hello", with(), `{"name":"fn"}`},
		{"rpc", "POST", "/1.1/call/hello", with(), `{}`},
		{"signed", "POST", "/1.1/functions/hello", with("X-LC-Key", "", "X-LC-Sign", server.Sign(appKey, ts, false)), `{}`},
		{"master as key,master", "GET", "/1.1/functions/_ops/metadatas", with("X-LC-Key", masterKey+",master"), ``},
		{"error", "POST", "/1.1/functions/fail", with(), `{}`},
		{"unknown function", "POST", "/1.1/functions/ghost", with(), `{}`},
		{"wrong key", "POST", "/1.1/functions/hello", with("X-LC-Key", "nope"), `{}`},
		{"malformed", "POST", "/1.1/functions/hello", with(), `{"a":`},
		{"hook", "POST", "/1.1/functions/Review/beforeSave", with("X-LC-Key", "", "X-LC-Hook-Key", hookKey), `{"object":{"stars":1}}`},
		{"hook without key", "POST", "/1.1/functions/Review/beforeSave", with(), `{"object":{}}`},
		{"ping", "GET", "/__engine/1/ping", nil, ``},
		{"create", "POST", "/1.1/classes/Review", with(), `{"stars":5}`},
		{"query", "GET", "/1.1/classes/Review?limit=1", with(), ``},
		{"missing class", "GET", "/1.1/classes/Nothing/abc", with(), ``},
		{"signup", "POST", "/1.1/users", with(), `{"username":"pat","password":"secret-pw"}`},
		{"login", "POST", "/1.1/login", with(), `{"username":"pat","password":"secret-pw"}`},
		{"wrong password", "POST", "/1.1/login", with(), `{"username":"pat","password":"wrong"}`},
		{"date", "GET", "/1.1/date", with(), ``},
		{"batch", "POST", "/1.1/batch", with(), `{"requests":[{"method":"POST","path":"/1.1/classes/Review","body":{"stars":1}}]}`},
		{"unknown storage API", "GET", "/1.1/nothing", with(), ``},
	}
	admin := func(base, app, env string) []call {
		auth := map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"}
		p := "/__fn/apps/" + app
		return []call{
			{"admin functions", "GET", p + "/functions/" + env, auth, ``},
			{"admin invoke", "POST", p + "/invoke/" + env + "/hello", auth, `{"data":{"name":"admin"}}`},
			{"admin invoke failing", "POST", p + "/invoke/" + env + "/fail", auth, `{}`},
			{"admin invoke bad body", "POST", p + "/invoke/" + env + "/hello", auth, `{"data":`},
			{"admin timers", "GET", p + "/timers/" + env, auth, ``},
			{"admin timer unknown", "POST", p + "/timers/" + env + "/ghost/trigger", auth, ``},
			{"admin timer bad action", "POST", p + "/timers/" + env + "/tick/explode", auth, ``},
			{"admin unknown app", "GET", "/__fn/apps/ghost/functions/" + env, auth, ``},
			{"admin unknown route", "GET", "/__fn/nothing", auth, ``},
		}
	}
	do := func(base string, c call) (int, string) {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		req, _ := http.NewRequest(c.method, base+c.path, body)
		for k, v := range c.headers {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return resp.StatusCode, "non-JSON"
		}
		return resp.StatusCode, shapeOf(v)
	}
	compare := func(dc, sc call) {
		ds, dshape := do(d.url, dc)
		ss, sshape := do(s.url, sc)
		if ds != ss || dshape != sshape {
			t.Errorf("%s: fn dev answers %d %s, fn serve %d %s", dc.name, ds, dshape, ss, sshape)
		}
	}
	for _, c := range calls {
		compare(c, c)
	}
	devAdmin, serveAdmin := admin(d.url, "-", "dev"), admin(s.url, "parity", "production")
	for i := range devAdmin {
		compare(devAdmin[i], serveAdmin[i])
	}
}
