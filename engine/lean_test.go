package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/fnhq/fn/bundler"
)

const cloudJS = `const AV = require('leanengine')

AV.Cloud.define('hello', function (request) {
  return 'Hello ' + (request.params.name || 'world')
})
AV.Cloud.define('resp', function (request, response) {
  setTimeout(() => response.success({ style: 'response', meta: request.meta }), 1)
})
AV.Cloud.define('customErrorCode', function (request, response) {
  response.error({ code: 123, message: 'custom error message' })
})
AV.Cloud.define('cloudError', function () {
  throw new AV.Cloud.Error('not allowed', { code: 403 })
})
AV.Cloud.define('statusError', function () {
  throw new AV.Cloud.Error('gone', { status: 410, code: 4100 })
})
AV.Cloud.define('plainError', function () {
  throw new Error('kaput')
})
AV.Cloud.define('stringError', function (request, response) {
  response.error('just text')
})
AV.Cloud.define('internalOnly', { internal: true }, function () {
  return 'secret'
})
AV.Cloud.define('me', function (request) {
  return { user: request.currentUser ? request.currentUser.get('username') : null, token: request.sessionToken || null }
})
AV.Cloud.define('noFetch', { fetchUser: false }, function (request) {
  return { user: request.currentUser ? 'yes' : 'no' }
})
AV.Cloud.define('runOther', function () {
  return AV.Cloud.run('hello', { name: 'inner' })
})
AV.Cloud.define('slow', function () {
  return new Promise(() => {})
})
AV.Cloud.define('obj', function () {
  const post = AV.Object.createWithoutData('Post', 'p1')
  post.set('title', 'T')
  return post
})
AV.Cloud.define('nested', function () {
  const post = AV.Object.createWithoutData('Post', 'p2')
  post.set('title', 'N')
  return { post }
})
AV.Cloud.define('echoParams', function (request) {
  const p = request.params
  return { isObject: p instanceof AV.Object, className: p.className, title: p.get ? p.get('title') : p.title }
})
AV.Cloud.define('overlap', async function (request) {
  console.log('start', request.params.i)
  await new Promise((r) => setTimeout(r, 30 + 10 * (request.params.i % 3)))
  console.log('end', request.params.i)
  return request.params.i
})
AV.Cloud.beforeSave('Review', function (request, response) {
  const comment = request.object.get('comment')
  if (comment) {
    if (comment.length > 140) request.object.set('comment', comment.substring(0, 137) + '...')
    response.success()
  } else {
    response.error('No comment!')
  }
})
AV.Cloud.beforeUpdate('Review', function (request, response) {
  response.success({ keys: request.object.updatedKeys })
})
AV.Cloud.afterSave('Comment', function (request) {
  console.log('afterSave', request.object.id)
})
AV.Cloud.beforeDelete('Album', function (request, response) {
  response.error("Can't delete album if it still has photos.")
})
AV.Cloud.onLogin(function (request, response) {
  if (request.object.get('username') == 'noLogin') response.error('Forbidden')
  else response.success()
})
AV.Cloud.onVerified('sms', function (request) {
  console.log('verified', request.object.get('username'))
})
AV.Cloud.define('_messageReceived', function (request, response) {
  response.success({ content: 'filtered' })
})
`

// storage is a stand-in for the LeanStorage API, which only answers GET /1.1/users/me here.
func storage(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/1.1/users/me" && r.Header.Get("X-LC-Session") == "good-token" {
			fmt.Fprint(w, `{"objectId":"u1","username":"alice","sessionToken":"good-token","createdAt":"2026-01-01T00:00:00.000Z","updatedAt":"2026-01-01T00:00:00.000Z"}`)
			return
		}
		w.WriteHeader(400)
		fmt.Fprint(w, `{"code":211,"error":"Could not find user."}`)
	}))
	t.Cleanup(s.Close)
	return s
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return a == b
	}
	return reflect.DeepEqual(x, y)
}

func leanFixture(t *testing.T, extraYAML string) *fixture {
	st := storage(t)
	env := map[string]string{
		"LEANCLOUD_APP_ID": "app-id", "LEANCLOUD_APP_KEY": "app-key", "LEANCLOUD_APP_MASTER_KEY": "master-key",
		"LEANCLOUD_APP_HOOK_KEY": "hook-key", "LEANCLOUD_API_SERVER": st.URL,
	}
	f := newFixture(t, map[string]string{"fn.yaml": "name: conf\ndialect: lean\n" + extraYAML, "cloud.js": cloudJS}, bundler.Dev, Config{Env: env, FastReload: true})
	f.storageURL = st.URL
	return f
}

func (f *fixture) lean(req LeanRequest) (int, string) {
	f.t.Helper()
	r := f.e.InvokeLean(context.Background(), req)
	return r.Status, string(r.Body)
}

func TestLeanFunctionsAndErrorsMatchLeanEngine(t *testing.T) {
	f := leanFixture(t, "")
	names := strings.Join(f.e.Functions(), ",")
	for _, want := range []string{"hello", "__before_save_for_Review", "__on_login__User", "__on_verified_sms", "_messageReceived"} {
		if !strings.Contains(names, want) {
			t.Errorf("registry lacks %s: %s", want, names)
		}
	}
	cases := []struct {
		req    LeanRequest
		status int
		body   string
	}{
		{LeanRequest{Kind: LeanFunction, Name: "hello", Params: json.RawMessage(`{"name":"fn"}`)}, 200, `{"result":"Hello fn"}`},
		{LeanRequest{Kind: LeanFunction, Name: "resp", RemoteAddress: "10.0.0.9"}, 200, `{"result":{"style":"response","meta":{"remoteAddress":"10.0.0.9"}}}`},
		{LeanRequest{Kind: LeanFunction, Name: "customErrorCode"}, 400, `{"code":123,"error":"custom error message"}`},
		{LeanRequest{Kind: LeanFunction, Name: "cloudError"}, 400, `{"code":403,"error":"not allowed"}`},
		{LeanRequest{Kind: LeanFunction, Name: "statusError"}, 410, `{"code":4100,"error":"gone"}`},
		{LeanRequest{Kind: LeanFunction, Name: "plainError"}, 500, `{"code":1,"error":"kaput"}`},
		{LeanRequest{Kind: LeanFunction, Name: "stringError"}, 400, `{"code":1,"error":"just text"}`},
		{LeanRequest{Kind: LeanFunction, Name: "missing"}, 404, `{"code":1,"error":"No such cloud function 'missing'"}`},
		{LeanRequest{Kind: LeanFunction, Name: "internalOnly"}, 401, `{"code":401,"error":"Internal cloud function, request from 127.0.0.1"}`},
		{LeanRequest{Kind: LeanFunction, Name: "internalOnly", Master: true}, 200, `{"result":"secret"}`},
		{LeanRequest{Kind: LeanFunction, Name: "runOther"}, 200, `{"result":"Hello inner"}`},
		{LeanRequest{Kind: LeanFunction, Name: "me", SessionToken: "good-token"}, 200, `{"result":{"user":"alice","token":"good-token"}}`},
		{LeanRequest{Kind: LeanFunction, Name: "me", SessionToken: "bad-token"}, 401, `{"code":211,"error":"Verify sessionToken failed, maybe login expired: Could not find user. [400 GET ` + "STORAGE" + `/1.1/users/me]"}`},
		{LeanRequest{Kind: LeanFunction, Name: "noFetch", SessionToken: "bad-token"}, 200, `{"result":{"user":"no"}}`},
		{LeanRequest{Kind: LeanFunction, Name: "_messageReceived"}, 401, `{"code":401,"error":"Hook key check failed, request from 127.0.0.1"}`},
		{LeanRequest{Kind: LeanFunction, Name: "_messageReceived", HookKeyOK: true}, 200, `{"result":{"content":"filtered"}}`},
		// without rpc the object goes through JSON.stringify (AV.Object#toJSON), as in leanengine
		{LeanRequest{Kind: LeanFunction, Name: "obj"}, 200, `{"result":{"title":"T","objectId":"p1"}}`},
		{LeanRequest{Kind: LeanFunction, Name: "obj", RPC: true}, 200, `{"result":{"title":"T","objectId":"p1","__type":"Object","className":"Post"}}`},
		{LeanRequest{Kind: LeanFunction, Name: "nested", RPC: true}, 200, `{"result":{"post":{"__type":"Pointer","className":"Post","objectId":"p2"}}}`},
		{LeanRequest{Kind: LeanFunction, Name: "echoParams", RPC: true, Params: json.RawMessage(`{"__type":"Object","className":"Post","objectId":"x","title":"hi"}`)}, 200, `{"result":{"isObject":true,"className":"Post","title":"hi"}}`},
		{LeanRequest{Kind: LeanClassHook, ClassName: "Review", Hook: "beforeSave", HookKeyOK: true, Params: json.RawMessage(`{"object":{"comment":"` + strings.Repeat("a", 150) + `","stars":5}}`)}, 200, `{"comment":"` + strings.Repeat("a", 137) + `...","stars":5}`},
		{LeanRequest{Kind: LeanClassHook, ClassName: "Review", Hook: "beforeSave", HookKeyOK: true, Params: json.RawMessage(`{"object":{"stars":5}}`)}, 400, `{"code":1,"error":"No comment!"}`},
		{LeanRequest{Kind: LeanClassHook, ClassName: "Review", Hook: "beforeSave", Params: json.RawMessage(`{"object":{"comment":"x"}}`)}, 401, `{"code":401,"error":"Hook key check failed, request from 127.0.0.1"}`},
		{LeanRequest{Kind: LeanClassHook, ClassName: "Comment", Hook: "afterSave", HookKeyOK: true, Params: json.RawMessage(`{"object":{"objectId":"c1"}}`)}, 200, `{"result":"ok"}`},
		{LeanRequest{Kind: LeanClassHook, ClassName: "Album", Hook: "beforeDelete", HookKeyOK: true, Params: json.RawMessage(`{"object":{"objectId":"a1"}}`)}, 400, `{"code":1,"error":"Can't delete album if it still has photos."}`},
		{LeanRequest{Kind: LeanClassHook, ClassName: "Nope", Hook: "afterSave", HookKeyOK: true, Params: json.RawMessage(`{"object":{}}`)}, 404, `{"code":1,"error":"No afterSave hook of 'Nope'"}`},
		{LeanRequest{Kind: LeanUserHook, Hook: "onLogin", HookKeyOK: true, Params: json.RawMessage(`{"object":{"objectId":"u2","username":"noLogin"}}`)}, 400, `{"code":1,"error":"Forbidden"}`},
		{LeanRequest{Kind: LeanUserHook, Hook: "onLogin", HookKeyOK: true, Params: json.RawMessage(`{"object":{"objectId":"u3","username":"bob"}}`)}, 200, `{"result":"ok"}`},
		{LeanRequest{Kind: LeanUserHook, Hook: "onVerified", ClassName: "sms", HookKeyOK: true, Params: json.RawMessage(`{"object":{"objectId":"u3","username":"bob"}}`)}, 200, `{"result":"ok"}`},
	}
	for _, c := range cases {
		name := c.req.Name
		if name == "" {
			name = c.req.ClassName + "." + c.req.Hook
		}
		if c.req.RemoteAddress == "" {
			c.req.RemoteAddress = "127.0.0.1"
		}
		status, body := f.lean(c.req)
		if status != c.status || !jsonEqual(body, strings.ReplaceAll(c.body, "STORAGE", f.storageURL)) {
			t.Errorf("%s:\n got %d %s\nwant %d %s", name, status, body, c.status, c.body)
		}
	}
	if !f.hasLog("LeanEngine: /1.1/functions/plainError: 500: Error: kaput") {
		t.Error("a 500 should be logged with its stack, as leanengine does")
	}
}

func TestLeanTimeoutAndOverlappingLogs(t *testing.T) {
	f := leanFixture(t, "defaults:\n  timeout: 1\n")
	status, body := f.lean(LeanRequest{Kind: LeanFunction, Name: "slow"})
	if status != 503 || body != `{"code":124,"error":"The request timed out on the server."}` {
		t.Fatalf("timeout: %d %s", status, body)
	}
	// the timeout the engine applied: fn.yaml's 1 s, as leanengine words it
	if !f.hasLog("LeanEngine function timeout, url=/1.1/functions/slow, timeout=1000") {
		t.Error("timeout not logged as leanengine words it")
	}
	// Many invocations share one worker; each one's console output stays with it.
	var wg sync.WaitGroup
	results := make([]*LeanResult, 12)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = f.e.InvokeLean(context.Background(), LeanRequest{Kind: LeanFunction, Name: "overlap", Params: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
		}(i)
	}
	wg.Wait()
	if n := len(f.e.Stats().Workers); n != 1 {
		t.Errorf("lean invocations should share one worker, saw %d", n)
	}
	for i, r := range results {
		if r.Status != 200 || string(r.Body) != fmt.Sprintf(`{"result":%d}`, i) {
			t.Fatalf("overlap %d: %d %s", i, r.Status, r.Body)
		}
		recs := f.logsFor(r.RequestID)
		if len(recs) != 2 || recs[0].Message != fmt.Sprintf("start %d", i) || recs[1].Message != fmt.Sprintf("end %d", i) {
			t.Errorf("logs of overlapping invocation %d: %+v", i, recs)
		}
	}
}

func TestLeanDuplicateDefineAndFastReload(t *testing.T) {
	f := leanFixture(t, "")
	f.write("cloud.js", cloudJS+"\nAV.Cloud.define('hello', () => 'again')\n")
	_, err := f.build()
	le, ok := err.(*LoadError)
	if !ok || le.Errors["cloud"] == nil || le.Errors["cloud"].Message != "LeanEngine: hello already defined" || !strings.Contains(le.Errors["cloud"].Stack, "cloud.js:") {
		t.Fatalf("duplicate define: %v", err)
	}
	if status, body := f.lean(LeanRequest{Kind: LeanFunction, Name: "hello"}); status != 200 || body != `{"result":"Hello world"}` {
		t.Fatalf("the old registry should be back after a failed reload: %d %s", status, body)
	}
	f.write("cloud.js", strings.Replace(cloudJS, "'Hello '", "'Hi '", 1))
	rep, err := f.build()
	if err != nil || !rep.Fast {
		t.Fatalf("reload: %+v %v", rep, err)
	}
	if status, body := f.lean(LeanRequest{Kind: LeanFunction, Name: "hello"}); status != 200 || body != `{"result":"Hi world"}` {
		t.Fatalf("after reload: %d %s", status, body)
	}
}

// LeanEngine cloud code sets no per-call environment: its process.env stays Node's own object
// (the wx per-call view is a proxy, which structuredClone cannot copy).
func TestLeanProcessEnvIsNodesOwn(t *testing.T) {
	f := newFixture(t, map[string]string{
		"fn.yaml":  "name: le\ndialect: lean\n",
		"cloud.js": "const AV = require('leanengine')\nAV.Cloud.define('env', async () => ({ cloned: typeof structuredClone(process.env).PATH }))\n",
	}, bundler.Dev, Config{})
	status, body := f.lean(LeanRequest{Kind: LeanFunction, Name: "env", Params: json.RawMessage(`{}`)})
	if status != 200 || !strings.Contains(body, `"cloned":"string"`) {
		t.Fatalf("got %d %s", status, body)
	}
}
