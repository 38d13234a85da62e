package admin_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fnhq/fn/admin"
	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/internal/testutil"
)

// Online editing on fn serve: functions, hooks and timers saved with history, refused with
// esbuild's errors, merged into cloud.js, and deployed as a normal version that the next call
// runs and that rollback undoes.
func TestOnlineEditingOnFnServe(t *testing.T) {
	s := startServeSDK(t, filepath.Dir(testutil.NodeModules(t)))
	a := s.deploy(t, "ol", "staging", map[string]string{"fn.yaml": "name: ol\ndialect: lean\n",
		"cloud.js": "const AV = require('leanengine')\nAV.Cloud.define('hello', async () => 'project')\n"})
	other := s.deploy(t, "ot", "staging", map[string]string{"fn.yaml": "name: ot\ndialect: lean\n", "cloud.js": "require('leanengine')\n"})
	o := "/__fn/apps/ol/online"
	var list struct {
		Functions []api.OnlineFunction `json:"functions"`
	}
	must(t, 200, s.url, a.MasterKey, "GET", o, nil, &list)
	if len(list.Functions) != 0 {
		t.Fatalf("a new app's online functions: %+v", list)
	}
	var f api.OnlineFunction
	must(t, 200, s.url, a.MasterKey, "PUT", o+"/hello", map[string]string{"type": "function", "code": "return 'online v1 ' + request.params.x"}, &f)
	if f.Revision != 1 || f.Name != "hello" || f.Updated.IsZero() {
		t.Fatalf("saved %+v", f)
	}
	must(t, 200, s.url, a.MasterKey, "PUT", o+"/hello", map[string]string{"type": "function", "code": "return 'online v2 ' + request.params.x"}, &f)
	if f.Revision != 2 {
		t.Fatalf("second save: %+v", f)
	}
	must(t, 200, s.url, a.MasterKey, "PUT", o+"/stamp", map[string]string{"type": "hook", "class": "Todo", "hook": "beforeSave",
		"code": "request.object.set('stamped', 'online')"}, &f)
	must(t, 200, s.url, a.MasterKey, "PUT", o+"/nightly", map[string]string{"type": "timer", "cron": "0 0 3 * * ?", "code": "console.log('nightly')"}, &f)
	// a syntax error: 422 with the code's own line, nothing saved
	var bf admin.BuildFailed
	must(t, 422, s.url, a.MasterKey, "PUT", o+"/hello", map[string]string{"type": "function", "code": "const a = 1\nreturn (a +\n"}, &bf)
	if bf.Code != "build_failed" || len(bf.Errors) == 0 || bf.Errors[0].Line < 2 || bf.Errors[0].Line > 3 {
		t.Fatalf("build failure: %+v", bf)
	}
	for _, c := range []struct {
		name string
		body map[string]string
		word string
	}{
		{"9x", map[string]string{"type": "function", "code": ""}, "name"},
		{"x", map[string]string{"type": "route", "code": ""}, "type"},
		{"x", map[string]string{"type": "hook", "class": "Todo", "hook": "onSave", "code": ""}, "hook"},
		{"x", map[string]string{"type": "timer", "cron": "nope", "code": ""}, "cron"},
		{"x", map[string]string{"type": "function"}, "code"},
		{"x", map[string]string{"type": "function", "class": "Todo", "code": ""}, "class"},
		{"x", map[string]string{"type": "function", "code": strings.Repeat("x", admin.MaxOnlineCode+1)}, "code"},
		{"dup", map[string]string{"type": "hook", "class": "Todo", "hook": "beforeSave", "code": ""}, "stamp"},
	} {
		failsWith(t, 400, s.url, a.MasterKey, "PUT", o+"/"+c.name, c.body, c.word)
	}
	must(t, 200, s.url, a.MasterKey, "GET", o, nil, &list)
	if len(list.Functions) != 3 || list.Functions[0].Name != "hello" || list.Functions[0].Revision != 2 || list.Functions[0].Code != "" {
		t.Fatalf("list: %+v", list.Functions)
	}
	must(t, 200, s.url, a.MasterKey, "GET", o+"/hello", nil, &f)
	if f.Code != "return 'online v2 ' + request.params.x" || f.Revision != 2 {
		t.Fatalf("get: %+v", f)
	}
	var hist struct {
		Revisions []api.OnlineRevision `json:"revisions"`
	}
	must(t, 200, s.url, a.MasterKey, "GET", o+"/hello/history", nil, &hist)
	if len(hist.Revisions) != 2 || hist.Revisions[1].Code != "return 'online v1 ' + request.params.x" {
		t.Fatalf("history: %+v", hist)
	}
	// the other app's key reaches none of it
	failsWith(t, 401, s.url, other.MasterKey, "GET", o, nil, "unauthorized")
	failsWith(t, 401, s.url, other.MasterKey, "PUT", o+"/evil", map[string]string{"type": "function", "code": "1"}, "unauthorized")
	failsWith(t, 401, s.url, other.MasterKey, "POST", o+"/deploy", map[string]string{"env": "staging"}, "unauthorized")
	failsWith(t, 404, s.url, a.MasterKey, "GET", o+"/evil", nil, "evil")

	// the merged cloud.js
	st, js := call(t, s.url, a.MasterKey, "GET", "/__fn/apps/ol/online.js", nil)
	for _, want := range []string{"const AV = require('leanengine')", `AV.Cloud.define("hello", async function (request) {`,
		`AV.Cloud.beforeSave("Todo", async function (request) {`, `AV.Cloud.define("nightly"`, "return 'online v2 '"} {
		if st != 200 || !strings.Contains(string(js), want) {
			t.Fatalf("online.js (%d) lacks %q:\n%s", st, want, js)
		}
	}

	// deploy: a normal version; the next call runs the online code
	var out api.Outcome
	must(t, 200, s.url, a.MasterKey, "POST", "/__fn/apps/ol/invoke/staging/hello", api.InvokeRequest{}, &out)
	if string(out.Result) != `"project"` {
		t.Fatalf("before: %+v", out)
	}
	failsWith(t, 400, s.url, a.MasterKey, "POST", o+"/deploy", map[string]string{"env": "qa"}, "qa")
	failsWith(t, 400, s.url, a.MasterKey, "POST", o+"/deploy", map[string]string{}, "env")
	var dr api.DeployResult
	must(t, 200, s.url, a.MasterKey, "POST", o+"/deploy", map[string]string{"env": "staging", "message": "from the console"}, &dr)
	if !dr.Changed || dr.Version == nil || dr.Version.ID < 2 || dr.Version.Who != "online" {
		t.Fatalf("deploy: %+v", dr)
	}
	must(t, 200, s.url, a.MasterKey, "POST", "/__fn/apps/ol/invoke/staging/hello", api.InvokeRequest{Data: json.RawMessage(`{"x":5}`)}, &out)
	if string(out.Result) != `"online v2 5"` || out.Version != dr.Version.ID {
		t.Fatalf("after the online deploy: %+v", out)
	}
	// LeanStorage's hooks are production's: promoted there, the online hook fires on writes
	var w admin.WriteResult
	must(t, 201, s.url, a.MasterKey, "POST", "/__fn/apps/ol/data/staging/lean/Todo", map[string]any{"t": 1}, &w)
	if w.Object["stamped"] != nil || len(w.Hooks) != 0 {
		t.Fatalf("no hook in production yet: %+v", w)
	}
	must(t, 200, s.url, a.MasterKey, "POST", "/__fn/apps/ol/promote", map[string]any{"message": "online to production"}, nil)
	must(t, 201, s.url, a.MasterKey, "POST", "/__fn/apps/ol/data/production/lean/Todo", map[string]any{"t": 2}, &w)
	if w.Object["stamped"] != "online" || strings.Join(w.Hooks, ",") != "beforeSave" {
		t.Fatalf("the online hook: %+v", w)
	}
	var timers []api.TimerStatus
	must(t, 200, s.url, a.MasterKey, "GET", "/__fn/apps/ol/timers/staging", nil, &timers)
	if len(timers) != 1 || timers[0].Name != "nightly" || timers[0].Cron != "0 0 3 * * ?" {
		t.Fatalf("timers: %+v", timers)
	}
	// rollback brings the project deploy back
	must(t, 200, s.url, a.MasterKey, "POST", "/__fn/apps/ol/rollback", map[string]any{"env": "staging"}, nil)
	must(t, 200, s.url, a.MasterKey, "POST", "/__fn/apps/ol/invoke/staging/hello", api.InvokeRequest{}, &out)
	if string(out.Result) != `"project"` {
		t.Fatalf("after rollback: %+v", out)
	}
	// delete
	must(t, 200, s.url, a.MasterKey, "DELETE", o+"/nightly", nil, nil)
	failsWith(t, 404, s.url, a.MasterKey, "DELETE", o+"/nightly", nil, "nightly")
	failsWith(t, 404, s.url, a.MasterKey, "GET", o+"/nightly/history", nil, "nightly")
}

// Without the SDKs, online functions are edited and previewed, and a deploy says what is missing.
func TestOnlineDeployNeedsTheSDKs(t *testing.T) {
	s := startServe(t)
	s.deploy(t, "ns", "staging", map[string]string{"fn.yaml": "name: ns\ndialect: lean\n", "cloud.js": "require('leanengine')\n"})
	must(t, 200, s.url, s.token, "PUT", "/__fn/apps/ns/online/hello", map[string]string{"type": "function", "code": "return 1"}, nil)
	e := failsWith(t, 422, s.url, s.token, "POST", "/__fn/apps/ns/online/deploy", map[string]string{"env": "staging"}, "--sdk-dir")
	if e.Code != "no_sdk" {
		t.Errorf("code %q", e.Code)
	}
	var vs []api.Version
	must(t, 200, s.url, s.token, "GET", "/__fn/apps/ns/versions", nil, &vs)
	if len(vs) != 1 {
		t.Fatalf("a refused deploy made a version: %+v", vs)
	}
	// fn dev has no online editing, and fn serve no source routes
	failsWith(t, 404, s.url, s.token, "GET", "/__fn/apps/ns/source/staging", nil, "fn dev")
}

// Functions defined online run with the master key, as on LeanCloud: an object no one may read
// through its ACL is found by an online function, and not by the same code deployed without it.
func TestOnlineFunctionsHaveTheMasterKey(t *testing.T) {
	s := startServeSDK(t, filepath.Dir(testutil.NodeModules(t)))
	const find = "return (await new AV.Query('Secret').find()).length"
	a := s.deploy(t, "mk", "staging", map[string]string{"fn.yaml": "name: mk\ndialect: lean\n",
		"cloud.js": "const AV = require('leanengine')\nAV.Cloud.define('count', async () => { " + find + " })\n"})
	var w admin.WriteResult
	must(t, 201, s.url, a.MasterKey, "POST", "/__fn/apps/mk/data/staging/lean/Secret", map[string]any{"v": 1, "ACL": map[string]any{}}, &w)
	var out api.Outcome
	must(t, 200, s.url, a.MasterKey, "POST", "/__fn/apps/mk/invoke/staging/count", api.InvokeRequest{}, &out)
	if string(out.Result) != "0" {
		t.Fatalf("project code without useMasterKey read an object no one may read: %+v", out)
	}
	must(t, 200, s.url, a.MasterKey, "PUT", "/__fn/apps/mk/online/count", map[string]string{"type": "function", "code": find}, nil)
	must(t, 200, s.url, a.MasterKey, "POST", "/__fn/apps/mk/online/deploy", map[string]string{"env": "staging"}, nil)
	must(t, 200, s.url, a.MasterKey, "POST", "/__fn/apps/mk/invoke/staging/count", api.InvokeRequest{}, &out)
	if string(out.Result) != "1" {
		t.Fatalf("the online function did not run with the master key: %+v", out)
	}
}
