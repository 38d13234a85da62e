package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/fnhq/fn/bundler"
)

const wxYAML = "name: conf\ndialect: wx\nenv: conf-env-1\n"

// The seed's login function, unmodified, against the real wx-server-sdk 4.0.2.
const loginJS = `const cloud = require('wx-server-sdk')
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })
exports.main = (event, context) => {
  console.log('event', event)
  const wxContext = cloud.getWXContext()
  return {
    event,
    openid: wxContext.OPENID,
    appid: wxContext.APPID,
    unionid: wxContext.UNIONID,
    env: wxContext.ENV,
    source: wxContext.SOURCE,
    context: {
      keys: Object.keys(context),
      memory: context.memory_limit_in_mb,
      limit: context.time_limit_in_ms,
      rid: context.request_id,
      environ: context.environ,
      version: context.function_version,
      name: context.function_name,
      namespace: context.namespace,
      remaining: context.getRemainingTimeInMillis(),
      waits: context.callbackWaitsForEmptyEventLoop,
    },
  }
}
`

func TestWXRealSDKIdentityEventAndContext(t *testing.T) {
	f := newFixture(t, map[string]string{"fn.yaml": wxYAML, "functions/login/index.js": loginJS}, bundler.Dev, Config{})
	alice := &WXIdentity{OpenID: "oAlice", AppID: "wxApp1", UnionID: "uAlice"}
	res := f.wx("login", `{"a":1,"b":2}`, alice)
	got := mustOK(t, res)
	if got["openid"] != "oAlice" || got["appid"] != "wxApp1" || got["unionid"] != "uAlice" || got["env"] != "conf-env-1" || got["source"] != "wx_client" {
		t.Fatalf("getWXContext did not see the injected identity: %v", got)
	}
	ev := got["event"].(map[string]any)
	ui, _ := ev["userInfo"].(map[string]any)
	if ev["a"] != 1.0 || ev["b"] != 2.0 || ui["appId"] != "wxApp1" || ui["openId"] != "oAlice" {
		t.Fatalf("event shape: %v", ev)
	}
	c := got["context"].(map[string]any)
	wantKeys := "callbackWaitsForEmptyEventLoop,done,succeed,fail,getRemainingTimeInMillis,memory_limit_in_mb,time_limit_in_ms,request_id,environ,function_version,function_name,namespace"
	if keys := join(c["keys"]); keys != wantKeys {
		t.Errorf("context keys\n got %s\nwant %s", keys, wantKeys)
	}
	if c["memory"] != 256.0 || c["limit"].(float64) > 3000 || c["limit"].(float64) < 2900 || c["version"] != "$LATEST" || c["name"] != "login" || c["namespace"] != "conf-env-1" || c["waits"] != true {
		t.Errorf("context values: %v", c)
	}
	if rem := c["remaining"].(float64); rem <= 0 || rem > 3000 {
		t.Errorf("getRemainingTimeInMillis = %v", rem)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(c["rid"].(string)) || c["rid"] != res.RequestID {
		t.Errorf("request_id %v (result says %s)", c["rid"], res.RequestID)
	}
	environ := map[string]string{}
	for _, pair := range strings.Split(c["environ"].(string), ";") {
		k, v, _ := strings.Cut(pair, "=")
		environ[k] = v
	}
	if environ["WX_OPENID"] != "oAlice" || environ["TCB_ENV"] != "conf-env-1" || environ["TRIGGER_SRC"] != "tcb" || environ["WX_CONTEXT_KEYS"] == "" {
		t.Errorf("environ: %v", environ)
	}

	// A call from another function: no userInfo; a different identity replaces the previous one
	// completely (no unionid left over from alice).
	res = f.e.InvokeWX(context.Background(), WXRequest{Function: "login", Data: json.RawMessage(`{}`),
		Identity: &WXIdentity{OpenID: "oBob", AppID: "wxApp1"}, Source: "wx_client,scf"})
	got = mustOK(t, res)
	if _, has := got["event"].(map[string]any)["userInfo"]; has {
		t.Error("a call from another function must not carry userInfo")
	}
	if got["openid"] != "oBob" || got["unionid"] != nil || got["source"] != "wx_client,scf" {
		t.Errorf("second identity: %v", got)
	}
	// console output is attributed to the invocation.
	recs := f.logsFor(res.RequestID)
	if len(recs) != 1 || !strings.HasPrefix(recs[0].Message, "event {") || recs[0].Function != "login" || recs[0].Level != "info" {
		t.Errorf("log records for %s: %+v", res.RequestID, recs)
	}
}

func join(v any) string {
	var parts []string
	for _, x := range v.([]any) {
		parts = append(parts, fmt.Sprint(x))
	}
	return strings.Join(parts, ",")
}

// The SDK sends cloud.callFunction to TCB_CONTEXT_CNFG's URL with the resolved environment.
func TestWXRealSDKCallFunctionReachesAdminURL(t *testing.T) {
	var mu sync.Mutex
	var seen []map[string]any
	var query string
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m map[string]any
		json.Unmarshal(body, &m)
		mu.Lock()
		seen = append(seen, m)
		query = r.URL.RawQuery
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"requestId":"r-1","data":{"response_data":"{\"pong\":true}"}}`)
	}))
	defer admin.Close()
	caller := `const cloud = require('wx-server-sdk')
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })
exports.main = async (event) => {
  const res = await cloud.callFunction({ name: 'other', data: { x: 1 } })
  return res
}
`
	f := newFixture(t, map[string]string{"fn.yaml": wxYAML, "functions/caller/index.js": caller}, bundler.Dev,
		Config{Env: map[string]string{"TCB_CONTEXT_CNFG": `{"URL":"` + admin.URL + `/admin"}`}})
	got := mustOK(t, f.wx("caller", `{}`, &WXIdentity{OpenID: "oA", AppID: "wxA"}))
	if got["errMsg"] != "callFunction:ok" || got["result"].(map[string]any)["pong"] != true {
		t.Fatalf("callFunction result: %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0]["action"] != "functions.invokeFunction" || seen[0]["function_name"] != "other" || seen[0]["request_data"] != `{"x":1}` {
		t.Fatalf("admin saw %v", seen)
	}
	if !strings.Contains(query, "env=conf-env-1") || seen[0]["envName"] != "conf-env-1" {
		t.Fatalf("DYNAMIC_CURRENT_ENV did not resolve to the environment id: query %q body %v", query, seen[0])
	}
}

func TestWXStylesErrorsAndState(t *testing.T) {
	files := map[string]string{
		"fn.yaml":                     wxYAML + "functions:\n  env:\n    env:\n      GREETING: hi\n",
		"functions/cb/index.js":       "exports.main = (event, context, callback) => { setTimeout(() => callback(null, { via: 'callback', x: event.x }), 5) }\n",
		"functions/succeed/index.js":  "exports.main = (event, context) => { context.succeed({ via: 'succeed' }) }\n",
		"functions/sync/index.js":     "exports.main = (event) => ({ sync: true })\n",
		"functions/state/index.js":    "let n = 0\nexports.main = async () => ({ n: ++n })\n",
		"functions/env/index.js":      "exports.main = async () => ({ greeting: process.env.GREETING })\n",
		"functions/boom/index.js":     "// line 1\n\nfunction check(x) {\n  if (!x) throw new TypeError('x is required')\n}\nexports.main = async (event) => {\n  check(event.x)\n}\n",
		"functions/reject/index.js":   "exports.main = () => Promise.reject('plain string')\n",
		"functions/big/index.js":      "exports.main = async () => ({ s: 'x'.repeat(1100 * 1024) })\n",
		"functions/bigint/index.js":   "exports.main = async () => ({ n: 10n })\n",
		"functions/circular/index.js": "exports.main = async () => { const a = {}; a.a = a; return a }\n",
	}
	f := newFixture(t, files, bundler.Dev, Config{})
	if got := mustOK(t, f.wx("cb", `{"x":7}`, nil)); got["via"] != "callback" || got["x"] != 7.0 {
		t.Errorf("callback style: %v", got)
	}
	if got := mustOK(t, f.wx("succeed", `{}`, nil)); got["via"] != "succeed" {
		t.Errorf("context.succeed: %v", got)
	}
	if got := mustOK(t, f.wx("sync", `{}`, nil)); got["sync"] != true {
		t.Errorf("sync return: %v", got)
	}
	for i := 1; i <= 3; i++ {
		if got := mustOK(t, f.wx("state", `{}`, nil)); got["n"] != float64(i) {
			t.Errorf("module state should persist across warm calls: call %d got %v", i, got)
		}
	}
	if got := mustOK(t, f.wx("env", `{}`, nil)); got["greeting"] != "hi" {
		t.Errorf("function env from fn.yaml: %v", got)
	}
	r := f.wx("boom", `{}`, nil)
	if r.Err == nil || r.Err.Kind != KindException || r.Err.Message != "x is required" || !strings.HasPrefix(r.Err.Stack, "TypeError: x is required") {
		t.Fatalf("exception: %+v", r.Err)
	}
	if !strings.Contains(r.Err.Stack, "functions/boom/index.js:4:") || !strings.Contains(r.Err.Stack, "functions/boom/index.js:7:") || strings.Contains(r.Err.Stack, ".fn/") {
		t.Errorf("stack not mapped to the original source:\n%s", r.Err.Stack)
	}
	if r := f.wx("reject", `{}`, nil); r.Err == nil || r.Err.Kind != KindException || !strings.Contains(r.Err.Message, "plain string") {
		t.Errorf("rejected non-Error: %+v", r.Err)
	}
	if r := f.wx("big", `{}`, nil); r.Err == nil || r.Err.Kind != KindTooLarge {
		t.Errorf("result over 1 MB: %+v", r.Err)
	}
	for _, fn := range []string{"bigint", "circular"} {
		if r := f.wx(fn, `{}`, nil); r.Err == nil || r.Err.Kind != KindNotSerializable || !strings.Contains(r.Err.Message, "cannot be sent as JSON") {
			t.Errorf("%s: %+v", fn, r.Err)
		}
	}
	if r := f.wx("nope", `{}`, nil); r.Err == nil || r.Err.Kind != KindNotFound || r.Err.Message != "function not found: nope" {
		t.Errorf("unknown function: %+v", r.Err)
	}
	if r := f.wx("sync", `[1,2]`, nil); r.Err == nil || r.Err.Kind != KindBadRequest {
		t.Errorf("non-object data: %+v", r.Err)
	}
}

func TestWXBundleWithoutMainIsALoadError(t *testing.T) {
	f := newFixture(t, map[string]string{"fn.yaml": wxYAML, "functions/ok/index.js": "exports.main = async () => 1\n"}, bundler.Dev, Config{})
	f.write("functions/nomain/index.js", "exports.handler = async () => 1\n")
	f.b.SetEntries(mustEntries(t, f))
	_, err := f.build()
	le, ok := err.(*LoadError)
	if !ok || le.Errors["nomain"] == nil || !strings.Contains(le.Errors["nomain"].Message, "does not export main") {
		t.Fatalf("want a load error for nomain, got %v", err)
	}
	if r := f.wx("ok", `{}`, nil); r.Err != nil {
		t.Fatalf("other functions keep serving: %v", r.Err)
	}
}

// With concurrency, one instance runs several invocations at once and the real wx-server-sdk
// still sees each caller's own identity, across awaits.
func TestWXConcurrencyKeepsIdentitiesApart(t *testing.T) {
	f := newFixture(t, map[string]string{
		"fn.yaml": wxYAML + "functions:\n  who:\n    concurrency: 8\n    maxInstances: 1\n",
		"functions/who/index.js": `const fs = require('fs')
const cloud = require('wx-server-sdk')
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })
exports.main = async (event) => {
  const before = cloud.getWXContext().OPENID
  fs.appendFileSync(event.barrier, 'x')
  const end = Date.now() + 10000
  while (fs.readFileSync(event.barrier, 'utf8').length < event.n && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 5))
  }
  return { before, after: cloud.getWXContext().OPENID, unionid: cloud.getWXContext().UNIONID || null, pid: process.pid }
}
`,
	}, bundler.Dev, Config{})
	barrier := filepath.Join(t.TempDir(), "barrier")
	data := fmt.Sprintf(`{"barrier":%q,"n":8}`, barrier)
	var wg sync.WaitGroup
	results := make([]*Result, 8)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := &WXIdentity{OpenID: fmt.Sprintf("o%d", i), AppID: "wxA"}
			if i%2 == 0 {
				id.UnionID = fmt.Sprintf("u%d", i)
			}
			results[i] = f.wx("who", data, id)
		}(i)
	}
	wg.Wait()
	pids := map[any]bool{}
	for i, r := range results {
		got := mustOK(t, r)
		want := fmt.Sprintf("o%d", i)
		if got["before"] != want || got["after"] != want {
			t.Errorf("call %d saw %v/%v, want %s", i, got["before"], got["after"], want)
		}
		if (i%2 == 0) != (got["unionid"] != nil) {
			t.Errorf("call %d unionid %v", i, got["unionid"])
		}
		pids[got["pid"]] = true
	}
	if len(pids) != 1 {
		t.Errorf("8 calls with concurrency 8 and maxInstances 1 should share one worker, used %d", len(pids))
	}
}

// Under load, overlapping calls of an exclusive function (one call per instance, workers handed
// from caller to caller) and of a concurrent one (many calls per instance) each see only their
// own caller: identity, union id, event.userInfo, request id and process.env, across awaits.
func TestWXIdentitiesNeverLeakBetweenOverlappingCalls(t *testing.T) {
	who := `const cloud = require('wx-server-sdk')
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })
const tick = () => new Promise((r) => (Math.random() < 0.5 ? setImmediate(r) : setTimeout(r, Math.random() * 2)))
exports.main = async (event, context) => {
  const seen = []
  for (let i = 0; i < 3; i++) {
    const c = cloud.getWXContext()
    seen.push([c.OPENID, c.UNIONID || '', process.env.WX_OPENID, process.env.TCB_SEQID, context.request_id, event.userInfo.openId, event.caller].join('|'))
    await tick()
  }
  return { seen, pid: process.pid }
}
`
	f := newFixture(t, map[string]string{
		"fn.yaml":                   wxYAML + "functions:\n  excl:\n    maxInstances: 3\n  shared:\n    concurrency: 16\n    maxInstances: 2\n",
		"functions/excl/index.js":   who,
		"functions/shared/index.js": who,
	}, bundler.Dev, Config{})
	for _, fn := range []string{"excl", "shared"} {
		t.Run(fn, func(t *testing.T) {
			const callers, calls = 48, 8
			var wg sync.WaitGroup
			var mu sync.Mutex
			pids := map[any]bool{}
			for c := 0; c < callers; c++ {
				wg.Add(1)
				go func(c int) {
					defer wg.Done()
					for i := 0; i < calls; i++ {
						open := fmt.Sprintf("o-%d-%d", c, i)
						id := &WXIdentity{OpenID: open, AppID: "wxA"}
						union := ""
						if (c+i)%3 == 0 {
							union = "u-" + open
							id.UnionID = union
						}
						r := f.e.InvokeWX(context.Background(), WXRequest{Function: fn, Data: json.RawMessage(fmt.Sprintf(`{"caller":%q}`, open)), Identity: id, UserInfo: true})
						if r.Err != nil {
							t.Errorf("%s: %v", open, r.Err)
							return
						}
						var got struct {
							Seen []string
							PID  any
						}
						if err := json.Unmarshal(r.Value, &got); err != nil {
							t.Errorf("%s: %v: %s", open, err, r.Value)
							return
						}
						want := strings.Join([]string{open, union, open, r.RequestID, r.RequestID, open, open}, "|")
						for _, s := range got.Seen {
							if s != want {
								t.Errorf("call %s saw %s, want %s", open, s, want)
							}
						}
						mu.Lock()
						pids[got.PID] = true
						mu.Unlock()
					}
				}(c)
			}
			wg.Wait()
			max := map[string]int{"excl": 3, "shared": 2}[fn]
			if len(pids) > max {
				t.Errorf("%d workers served %s, maxInstances is %d", len(pids), fn, max)
			}
		})
	}
}

// A wx call's identity and request ids are a view over the worker's environment, not setenv(3)
// on every call (glibc keeps every value it replaced: ~290 bytes of the worker's memory per
// call): the real environment, which a worker thread copies, never holds them, while the
// function, its SDK, the child processes it starts, console.log(process.env) and any code that
// runs during the call (a timer another call's context created, one set at load) see the
// running call's values, as a process-wide environment would; the function's own writes to
// other keys reach the real environment.
func TestWXCallEnvIsAViewNotSetenv(t *testing.T) {
	f := newFixture(t, map[string]string{
		"fn.yaml": wxYAML + "functions:\n  env:\n    maxInstances: 1\n",
		"functions/env/index.js": `const cloud = require('wx-server-sdk')
const util = require('util')
const { execFileSync } = require('child_process')
const { Worker } = require('worker_threads')
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })
const env = process.env // taken at load: the same view
// code that runs outside any call (a timer set at load) sees the running call's values
let onTick = null
setInterval(() => { if (onTick) onTick(process.env.WX_OPENID) }, 1).unref()
const fromLoadTimer = () => new Promise((resolve) => { onTick = (v) => { onTick = null; resolve(v) } })
// a timer the first call creates, which fires during the second: the second call's values
let fromFirstCall = null
let release = null
const realEnv = () => new Promise((resolve, reject) => {
  const w = new Worker("require('worker_threads').parentPort.postMessage({ openid: process.env.WX_OPENID || null, seq: process.env.TCB_SEQID || null, mine: process.env.MINE || null })", { eval: true })
  w.once('message', resolve)
  w.once('error', reject)
})
exports.main = async (event) => {
  if (event.write) {
    process.env.MINE = event.write
    process.env.WX_OPENID = 'overwritten'
    let go = false
    fromFirstCall = new Promise((resolve) => {
      const iv = setInterval(() => { if (go) { clearInterval(iv); resolve(process.env.WX_OPENID) } }, 1)
    })
    release = () => { go = true }
  }
  const out = {
    sdk: cloud.getWXContext().OPENID,
    env: process.env.WX_OPENID,
    atLoad: env.WX_OPENID,
    seq: process.env.TCB_SEQID,
    has: 'WX_OPENID' in process.env,
    listed: Object.keys(process.env).includes('TCB_SEQID'),
    spread: { ...process.env }.WX_OPENID,
    printed: util.inspect(process.env).includes(process.env.TCB_SEQID),
    child: execFileSync('sh', ['-c', 'printf %s "$WX_OPENID"']).toString(),
    mine: process.env.MINE || null,
    real: await realEnv(),
    fromLoad: await fromLoadTimer(),
  }
  if (!event.write) {
    release()
    out.fromFirstCall = await fromFirstCall
  }
  return out
}
`,
	}, bundler.Dev, Config{})
	call := func(open, data string) (map[string]any, string) {
		r := f.wx("env", data, &WXIdentity{OpenID: open, AppID: "wxA"})
		return mustOK(t, r), r.RequestID
	}
	got, rid := call("o-1", `{"write":"kept"}`)
	want := map[string]any{"sdk": "overwritten", "env": "overwritten", "atLoad": "overwritten", "seq": rid, "has": true, "listed": true,
		"spread": "overwritten", "printed": true, "child": "overwritten", "mine": "kept", "fromLoad": "overwritten"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("first call: %s = %v, want %v (%v)", k, got[k], v, got)
		}
	}
	real := got["real"].(map[string]any)
	if real["openid"] != nil || real["seq"] != nil {
		t.Errorf("the per-call values reached the real environment: %v", real)
	}
	if real["mine"] != "kept" {
		t.Errorf("the function's own write did not reach the real environment: %v", real)
	}

	got, rid = call("o-2", `{}`)
	want = map[string]any{"sdk": "o-2", "env": "o-2", "atLoad": "o-2", "seq": rid, "child": "o-2", "printed": true, "mine": "kept", "fromLoad": "o-2", "fromFirstCall": "o-2"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("second call: %s = %v, want %v (%v)", k, got[k], v, got)
		}
	}
}
