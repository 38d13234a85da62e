package admin_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/admin"
	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/internal/testutil"
)

const leanYAML = "name: dt\ndialect: lean\nlean:\n  appId: dt-fnDev\n  appKey: dtKey\n  masterKey: dtMaster\n  hookKey: dtHook\n"

const leanCloud = `const AV = require('leanengine')
AV.Cloud.beforeSave('Todo', async (req) => { req.object.set('stamped', true); console.log('stamping', req.object.get('title')) })
AV.Cloud.afterSave('Todo', async (req) => { console.log('saved', req.object.id) })
AV.Cloud.beforeDelete('Todo', async (req) => { if (req.object.get('title') === 'keep') throw new AV.Cloud.Error('keep stays') })
AV.Cloud.beforeSave('Strict', async () => { throw new AV.Cloud.Error('no saves here') })
AV.Cloud.define('whoami', async (req) => req.currentUser ? req.currentUser.get('username') : null)
`

type classList struct {
	Classes []admin.ClassInfo `json:"classes"`
}

type page struct {
	Results []map[string]any `json:"results"`
	Count   int              `json:"count"`
}

func countOf(t *testing.T, base, token, app, env, kind, class string) int {
	t.Helper()
	var cl classList
	must(t, 200, base, token, "GET", "/__fn/apps/"+app+"/data/"+env, nil, &cl)
	for _, c := range cl.Classes {
		if c.Name == class && c.Kind == kind {
			return c.Count
		}
	}
	return 0
}

// The console's data editor on a lean project: writes go through LeanStorage, so hooks fire and
// are reported; a before-hook's refusal writes nothing; imports fire none; users and sessions.
func TestLeanDataThroughLeanStorage(t *testing.T) {
	base, _ := startDev(t, map[string]string{"fn.yaml": leanYAML, "cloud.js": leanCloud})
	d := "/__fn/apps/-/data/dev/lean/"
	var w admin.WriteResult
	must(t, 201, base, "", "POST", d+"Todo", map[string]any{"title": "a", "n": 1, "ACL": map[string]any{"*": map[string]bool{"read": true}}}, &w)
	id, _ := w.Object["objectId"].(string)
	if id == "" || w.Object["stamped"] != true || strings.Join(w.Hooks, ",") != "beforeSave,afterSave" {
		t.Fatalf("create: %+v", w)
	}
	if acl, _ := w.Object["ACL"].(map[string]any); acl["*"] == nil {
		t.Errorf("the ACL is a normal field: %+v", w.Object)
	}
	must(t, 201, base, "", "POST", d+"Todo", map[string]any{"title": "keep"}, &w)
	keep := w.Object["objectId"].(string)
	if n := countOf(t, base, "", "-", "dev", "lean", "Todo"); n != 2 {
		t.Fatalf("Todo count %d", n)
	}
	var p page
	must(t, 200, base, "", "GET", d+"Todo?where="+url.QueryEscape(`{"title":"a"}`)+"&order=-createdAt&limit=10", nil, &p)
	if p.Count != 1 || len(p.Results) != 1 || p.Results[0]["objectId"] != id {
		t.Fatalf("query: %+v", p)
	}
	must(t, 200, base, "", "GET", d+"Todo?limit=1&skip=1&order=createdAt", nil, &p)
	if p.Count != 2 || len(p.Results) != 1 || p.Results[0]["objectId"] != keep {
		t.Fatalf("page 2: %+v", p)
	}
	// an update with a LeanStorage op
	must(t, 200, base, "", "PUT", d+"Todo/"+id, map[string]any{"n": map[string]any{"__op": "Increment", "amount": 2}}, &w)
	if w.Object["n"] != 3.0 || len(w.Hooks) != 0 {
		t.Fatalf("update: %+v", w)
	}
	// the hook's refusal: 400 with LeanCloud's code, nothing deleted
	e := failsWith(t, 400, base, "", "DELETE", d+"Todo/"+keep, nil, "keep stays")
	if e.Code != "storage-142" {
		t.Errorf("code %q", e.Code)
	}
	failsWith(t, 400, base, "", "POST", d+"Strict", map[string]any{"x": 1}, "no saves here")
	if n := countOf(t, base, "", "-", "dev", "lean", "Strict"); n != 0 {
		t.Fatalf("a refused save was written: %d", n)
	}
	must(t, 200, base, "", "DELETE", d+"Todo/"+id, nil, &w)
	if strings.Join(w.Hooks, ",") != "beforeDelete" {
		t.Fatalf("delete hooks: %+v", w.Hooks)
	}
	failsWith(t, 404, base, "", "DELETE", d+"Todo/"+id, nil, id)
	// hook runs are in the request log
	testutil.Eventually(t, 5*time.Second, "the afterSave run in the log", func() bool {
		_, raw := call(t, base, "", "GET", "/__fn/apps/-/logs?function=Todo.afterSave", nil)
		return strings.Contains(string(raw), `"kind":"hook"`)
	})

	// export, then import into a class whose beforeSave refuses every save: imports fire no hooks
	_, raw := call(t, base, "", "GET", d+"Todo/export", nil)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"title":"keep"`) {
		t.Fatalf("export: %s", raw)
	}
	var imp map[string]int
	must(t, 200, base, "", "POST", d+"Strict/import", string(raw)+`{"title":"second"}`+"\n", &imp)
	if imp["imported"] != 2 || countOf(t, base, "", "-", "dev", "lean", "Strict") != 2 {
		t.Fatalf("import: %v", imp)
	}
	failsWith(t, 400, base, "", "POST", d+"Strict/import", "{\"ok\":1}\nnot json\n", "line 2")

	// users: create, impersonate, invoke as them
	must(t, 201, base, "", "POST", d+"_User", map[string]any{"username": "ann", "password": "pw-ann-1"}, &w)
	uid := w.Object["objectId"].(string)
	if _, leaked := w.Object["password"]; leaked || w.Object["username"] != "ann" {
		t.Fatalf("user: %+v", w.Object)
	}
	failsWith(t, 400, base, "", "POST", d+"_User", map[string]any{"username": "bob"}, "password")
	var sess struct {
		SessionToken string         `json:"sessionToken"`
		User         map[string]any `json:"user"`
	}
	must(t, 200, base, "", "POST", "/__fn/apps/-/data/dev/users/"+uid+"/session", nil, &sess)
	if sess.SessionToken == "" || sess.User["username"] != "ann" {
		t.Fatalf("session: %+v", sess)
	}
	failsWith(t, 404, base, "", "POST", "/__fn/apps/-/data/dev/users/nouser123/session", nil, "nouser123")
	var out api.Outcome
	must(t, 200, base, "", "POST", "/__fn/apps/-/invoke/dev/whoami", api.InvokeRequest{SessionToken: sess.SessionToken}, &out)
	if string(out.Result) != `"ann"` {
		t.Fatalf("invoke as ann: %+v", out)
	}
	failsWith(t, 400, base, "", "POST", "/__fn/apps/-/invoke/dev/whoami", api.InvokeRequest{SessionToken: "nosuchsession"}, "sessionToken")
	// the replay of a call made as a user runs as that user again (the record keeps the user, not the token)
	rec := invocation(t, base, "", "-", out.RequestID)
	if rec.Caller == nil || rec.Caller.User != uid || strings.Contains(string(mustJSON(rec)), sess.SessionToken) {
		t.Fatalf("record of a call as ann: %+v", rec)
	}
	must(t, 200, base, "", "POST", "/__fn/apps/-/replay/dev/"+out.RequestID, nil, &out)
	if string(out.Result) != `"ann"` {
		t.Fatalf("replay as ann: %+v", out)
	}

	// hooks by hand: the hook's answer, nothing written
	before := countOf(t, base, "", "-", "dev", "lean", "Todo")
	must(t, 200, base, "", "POST", "/__fn/apps/-/hooks/dev/Todo/beforeSave", map[string]any{"object": map[string]any{"title": "by hand"}}, &out)
	if out.Error != nil || !strings.Contains(string(out.Result), `"stamped":true`) || len(out.Logs) == 0 || !strings.Contains(out.Logs[0].Message, "stamping by hand") {
		t.Fatalf("beforeSave by hand: %+v %s", out, out.Result)
	}
	must(t, 200, base, "", "POST", "/__fn/apps/-/hooks/dev/Todo/beforeDelete", map[string]any{"object": map[string]any{"title": "keep"}}, &out)
	if out.Error == nil || !strings.Contains(out.Error.Message, "keep stays") {
		t.Fatalf("beforeDelete by hand: %+v", out)
	}
	if n := countOf(t, base, "", "-", "dev", "lean", "Todo"); n != before {
		t.Fatalf("a hook by hand wrote: %d → %d", before, n)
	}
	// a hook run by hand is replayable like a call
	must(t, 200, base, "", "POST", "/__fn/apps/-/replay/dev/"+out.RequestID, nil, &out)
	if out.Error == nil || !strings.Contains(out.Error.Message, "keep stays") {
		t.Fatalf("replay of a hook run: %+v", out)
	}
	failsWith(t, 404, base, "", "POST", "/__fn/apps/-/hooks/dev/Todo/afterDelete", map[string]any{"object": map[string]any{}}, "afterDelete")
	failsWith(t, 400, base, "", "POST", "/__fn/apps/-/hooks/dev/Todo/onSave", map[string]any{}, "hook")
	failsWith(t, 400, base, "", "POST", "/__fn/apps/-/hooks/dev/Todo/beforeSave", map[string]any{"object": []int{1}}, "object")
	failsWith(t, 400, base, "", "POST", "/__fn/apps/-/hooks/dev/Todo/beforeSave", map[string]any{"objekt": 1}, "objekt")
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// Bad input to the data routes is refused with a message naming the field, and writes nothing.
func TestDataRoutesRefuseBadInput(t *testing.T) {
	base, _ := startDev(t, map[string]string{"fn.yaml": leanYAML, "cloud.js": leanCloud})
	d := "/__fn/apps/-/data/dev/"
	for _, c := range []struct {
		method, path string
		body         any
		word         string
	}{
		{"GET", d + "sql/Todo", nil, "kind"},
		{"GET", d + "wx/todos", nil, "kind wx"},
		{"GET", d + "lean/1abc", nil, "class"},
		{"GET", d + "lean/Todo?limit=5000", nil, "limit"},
		{"GET", d + "lean/Todo?limit=-1", nil, "limit"},
		{"GET", d + "lean/Todo?skip=x", nil, "skip"},
		{"GET", d + "lean/Todo?where=nope", nil, "where"},
		{"GET", d + "lean/Todo?order=" + url.QueryEscape(`a"b`), nil, "order"},
		{"POST", d + "lean/Todo", "[1,2]", "JSON object"},
		{"POST", d + "lean/Todo", "{", "JSON object"},
		{"POST", d + "lean/Todo", `{"x":"` + strings.Repeat("y", 2<<20) + `"}`, "KB"},
		{"PUT", d + "lean/Todo/" + strings.Repeat("a", 65), map[string]any{"x": 1}, "id"},
		{"PUT", d + "lean/Todo/a.b", map[string]any{"x": 1}, "id"},
		{"POST", d + "users/a.b/session", nil, "id"},
		{"POST", d + "lean/Todo/import", strings.Repeat("{}\n", 100001), "lines"},
		{"POST", d + "lean/Todo/import", `{"objectId":"../x"}`, "objectId"},
	} {
		failsWith(t, 400, base, "", c.method, c.path, c.body, c.word)
	}
	if n := countOf(t, base, "", "-", "dev", "lean", "Todo"); n != 0 {
		t.Fatalf("bad input wrote %d objects", n)
	}
	failsWith(t, 404, base, "", "PUT", d+"lean/Todo/nosuchid", map[string]any{"x": 1})
}

// The cloud database of a wx project: browse, write, export and import.
func TestWXDataCollections(t *testing.T) {
	base, _ := startDev(t, map[string]string{"fn.yaml": "name: wd\ndialect: wx\n", "functions/f/index.js": "exports.main = async () => 1\n"})
	d := "/__fn/apps/-/data/dev/wx/"
	var w admin.WriteResult
	for i := 0; i < 3; i++ {
		must(t, 201, base, "", "POST", d+"todos", map[string]any{"t": fmt.Sprint("task", i), "n": i}, &w)
	}
	id, _ := w.Object["_id"].(string)
	if id == "" || w.Object["t"] != "task2" || len(w.Hooks) != 0 {
		t.Fatalf("insert: %+v", w)
	}
	if n := countOf(t, base, "", "-", "dev", "wx", "todos"); n != 3 {
		t.Fatalf("count %d", n)
	}
	var p page
	must(t, 200, base, "", "GET", d+"todos?where="+url.QueryEscape(`{"n":{"$gte":1}}`)+"&order=-n&limit=1", nil, &p)
	if p.Count != 2 || len(p.Results) != 1 || p.Results[0]["n"] != 2.0 {
		t.Fatalf("query: %+v", p)
	}
	must(t, 200, base, "", "PUT", d+"todos/"+id, map[string]any{"done": true}, &w)
	if w.Object["done"] != true || w.Object["t"] != "task2" {
		t.Fatalf("update merges: %+v", w)
	}
	// update operators at the top (what db.command sends), never as field names
	must(t, 200, base, "", "PUT", d+"todos/"+id, map[string]any{"$inc": map[string]int{"n": 5}}, &w)
	if w.Object["n"] != 7.0 {
		t.Fatalf("$inc: %+v", w.Object)
	}
	failsWith(t, 400, base, "", "PUT", d+"todos/"+id, map[string]any{"n": map[string]any{"$inc": 5}}, "$inc")
	failsWith(t, 400, base, "", "PUT", d+"todos/"+id, map[string]any{"_id": "other"}, "_id")
	must(t, 200, base, "", "DELETE", d+"todos/"+id, nil, &w)
	failsWith(t, 404, base, "", "DELETE", d+"todos/"+id, nil, id)
	_, raw := call(t, base, "", "GET", d+"todos/export", nil)
	if n := strings.Count(strings.TrimSpace(string(raw)), "\n") + 1; n != 2 {
		t.Fatalf("export: %s", raw)
	}
	var imp map[string]int
	must(t, 200, base, "", "POST", d+"copy/import", raw, &imp)
	if imp["imported"] != 2 || countOf(t, base, "", "-", "dev", "wx", "copy") != 2 {
		t.Fatalf("import: %v", imp)
	}
	failsWith(t, 400, base, "", "GET", d+"a%20b", nil, "class")
	failsWith(t, 400, base, "", "GET", "/__fn/apps/-/data/dev/lean/Todo", nil, "kind lean")
	failsWith(t, 400, base, "", "POST", "/__fn/apps/-/data/dev/users/abc/session", nil, "wx")
}

// On fn serve the data routes take the admin token or the app's own master key, never another
// app's; writes fire the serving version's hooks.
func TestDataOnFnServe(t *testing.T) {
	s := startServe(t)
	files := map[string]string{"fn.yaml": "name: la\ndialect: lean\n", "cloud.js": leanCloud}
	la := s.deploy(t, "la", "production", files)
	files["fn.yaml"] = "name: lb\ndialect: lean\n"
	lb := s.deploy(t, "lb", "production", files)
	d := "/__fn/apps/la/data/production/lean/Todo"
	failsWith(t, 401, s.url, "", "POST", d, map[string]any{"title": "x"}, "unauthorized")
	failsWith(t, 401, s.url, lb.MasterKey, "POST", d, map[string]any{"title": "x"}, "unauthorized")
	failsWith(t, 401, s.url, lb.MasterKey, "GET", "/__fn/apps/la/data/production", nil, "unauthorized")
	failsWith(t, 401, s.url, lb.MasterKey, "POST", "/__fn/apps/la/hooks/production/Todo/beforeSave", map[string]any{}, "unauthorized")
	if n := countOf(t, s.url, s.token, "la", "production", "lean", "Todo"); n != 0 {
		t.Fatalf("a refused request wrote: %d", n)
	}
	var w admin.WriteResult
	must(t, 201, s.url, la.MasterKey, "POST", d, map[string]any{"title": "x"}, &w)
	if w.Object["stamped"] != true || strings.Join(w.Hooks, ",") != "beforeSave,afterSave" {
		t.Fatalf("create on fn serve: %+v", w)
	}
	if n := countOf(t, s.url, la.MasterKey, "la", "production", "lean", "Todo"); n != 1 {
		t.Fatalf("count %d", n)
	}
	// the other app's data is its own
	if n := countOf(t, s.url, lb.MasterKey, "lb", "production", "lean", "Todo"); n != 0 {
		t.Fatalf("lb sees %d of la's objects", n)
	}
	var out api.Outcome
	must(t, 200, s.url, la.MasterKey, "POST", "/__fn/apps/la/hooks/production/Todo/beforeSave", map[string]any{"object": map[string]any{"title": "h"}}, &out)
	if !strings.Contains(string(out.Result), `"stamped":true`) || out.Version != 1 {
		t.Fatalf("hook by hand on fn serve: %+v", out)
	}
}
