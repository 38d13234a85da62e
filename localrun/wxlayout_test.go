package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/project"
)

// The layouts of WeChat DevTools projects, run in place without an fn.yaml: project.config.json
// names cloudfunctionRoot, each function folder is its own npm package.

const devtoolsProject = `{"miniprogramRoot": "miniprogram/", "cloudfunctionRoot": "cloudfunctions/", "appid": "wx0123456789abcdef", "projectname": "My Shop"}`

// fakeSDK writes a package named wx-server-sdk of the given version into dir/node_modules.
func fakeSDK(t *testing.T, dir, version string) {
	t.Helper()
	testutil.WriteFile(t, dir, "node_modules/wx-server-sdk/package.json", `{"name":"wx-server-sdk","version":"`+version+`","main":"index.js"}`)
	testutil.WriteFile(t, dir, "node_modules/wx-server-sdk/index.js",
		"exports.version = require('./package.json').version\nexports.DYNAMIC_CURRENT_ENV = Symbol('current')\nexports.init = () => {}\n"+
			// wx-server-sdk 1.x's cloud.logger() writes through the runtime's console.__baseLog__
			"exports.logger = () => ({ info: (o) => console.__baseLog__(JSON.stringify(o), 'info') })\n")
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, c := range files {
		testutil.WriteFile(t, dir, rel, c)
	}
}

func invokeOnce(t *testing.T, dir, function, data string) (json.RawMessage, error) {
	t.Helper()
	p, err := project.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Invoke(context.Background(), p, InvokeOptions{Node: "node", Function: function, Data: json.RawMessage(data)})
	if err != nil {
		return nil, err
	}
	if out.Error != nil {
		return nil, errors.New(out.Error.Message)
	}
	return out.Result, nil
}

const versionFn = "const cloud = require('wx-server-sdk')\ncloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })\n" +
	"exports.main = async (event, context) => { cloud.logger().info({ v: cloud.version }); return { sdk: cloud.version, limit: context.time_limit_in_ms } }\n"

// Each function loads the wx-server-sdk its own folder installs, not the project root's.
func TestEachFunctionLoadsItsOwnPackages(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"project.config.json":                  devtoolsProject,
		"cloudfunctions/old/index.js":          versionFn,
		"cloudfunctions/old/package.json":      `{"name":"old","main":"index.js","dependencies":{"wx-server-sdk":"~1.8.3"}}`,
		"cloudfunctions/new/index.js":          versionFn,
		"cloudfunctions/new/package.json":      `{"name":"new","main":"index.js","dependencies":{"wx-server-sdk":"~2.6.3"}}`,
		"cloudfunctions/new/config.json":       `{"timeout": 5}`,
		"cloudfunctions/rootonly/index.js":     versionFn,
		"cloudfunctions/rootonly/package.json": `{"name":"rootonly"}`,
	})
	// its own node_modules, without the SDK: the lookup goes on up to the project's
	os.MkdirAll(filepath.Join(dir, "cloudfunctions/rootonly/node_modules"), 0o755)
	fakeSDK(t, filepath.Join(dir, "cloudfunctions/old"), "1.8.3")
	fakeSDK(t, filepath.Join(dir, "cloudfunctions/new"), "2.6.3")
	fakeSDK(t, dir, "4.0.2") // the project root's, which a function without its own falls back to
	for fn, want := range map[string]string{"old": `{"limit":3000,"sdk":"1.8.3"}`, "new": `{"limit":5000,"sdk":"2.6.3"}`, "rootonly": `{"limit":3000,"sdk":"4.0.2"}`} {
		res, err := invokeOnce(t, dir, fn, `{}`)
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		var got any
		json.Unmarshal(res, &got)
		if gb, _ := json.Marshal(got); string(gb) != want {
			t.Errorf("%s answered %s, want %s", fn, res, want)
		}
	}
}

// A function folder with a package.json and no node_modules says where npm install is needed.
func TestMissingNodeModulesNamesTheFolder(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"project.config.json":               devtoolsProject,
		"cloudfunctions/login/index.js":     versionFn,
		"cloudfunctions/login/package.json": `{"name":"login","dependencies":{"wx-server-sdk":"~2.6.3"}}`,
	})
	_, err := invokeOnce(t, dir, "login", `{}`)
	if err == nil || !strings.Contains(err.Error(), "Cannot find module 'wx-server-sdk'") ||
		!strings.Contains(err.Error(), "cloudfunctions/login has a package.json but no node_modules: run npm install in cloudfunctions/login") {
		t.Fatalf("got %v", err)
	}
}

// A one-shot call builds what it needs: a sibling that does not build does not fail it, and a
// sibling that fails to load answers its nested callers with why.
func TestOneShotCallIsNotFailedBySiblings(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"project.config.json":           devtoolsProject,
		"cloudfunctions/ok/index.js":    "exports.main = async () => 'fine'\n",
		"cloudfunctions/nocfg/index.js": "const config = require('./config')\nexports.main = async () => config\n",
		"cloudfunctions/boom/index.js":  "throw new Error('boom while loading')\n",
		"cloudfunctions/caller/index.js": "const cloud = require('wx-server-sdk')\ncloud.init()\n" +
			"exports.main = async () => { try { await cloud.callFunction({ name: 'boom' }); return 'called' } catch (e) { return e.message } }\n",
	})
	testutil.LinkNodeModules(t, dir)
	if res, err := invokeOnce(t, dir, "ok", `{}`); err != nil || string(res) != `"fine"` {
		t.Fatalf("ok: %s %v", res, err)
	}
	if _, err := invokeOnce(t, dir, "nocfg", `{}`); err == nil || !strings.Contains(err.Error(), `Could not resolve "./config"`) {
		t.Fatalf("nocfg should fail to build naming ./config: %v", err)
	}
	res, err := invokeOnce(t, dir, "caller", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	var msg string
	json.Unmarshal(res, &msg)
	if !strings.Contains(msg, "function boom failed to load: boom while loading") || strings.Contains(msg, "Function not found") {
		t.Fatalf("a nested call to a function that failed to load answered %q", msg)
	}
	if _, err := invokeOnce(t, dir, "boom", `{}`); err == nil || !strings.Contains(err.Error(), "boom while loading") {
		t.Fatalf("boom: %v", err)
	}
}

// tcb-router is a plain npm package in the function's folder; this fake has its routing API
// (use, router with one or more paths, serve answering ctx.body).
const fakeTcbRouter = `class TcbRouter {
  constructor({ event }) { this.event = event; this.mw = []; this.routes = {} }
  use(fn) { this.mw.push(fn) }
  router(paths, ...fns) { for (const p of [].concat(paths)) this.routes[p] = (this.routes[p] || []).concat(fns) }
  async serve() {
    const ctx = { _req: { event: this.event, url: this.event.$url }, data: {}, body: undefined }
    const chain = this.mw.concat(this.routes[this.event.$url] || [])
    const run = (i) => (i < chain.length ? chain[i](ctx, () => run(i + 1)) : Promise.resolve())
    await run(0)
    return ctx.body
  }
}
module.exports = TcbRouter
`

func TestTcbRouterFromTheFunctionFolder(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"project.config.json":                                        devtoolsProject,
		"cloudfunctions/router/package.json":                         `{"name":"router","dependencies":{"tcb-router":"^1.1.2"}}`,
		"cloudfunctions/router/node_modules/tcb-router/index.js":     fakeTcbRouter,
		"cloudfunctions/router/node_modules/tcb-router/package.json": `{"name":"tcb-router","version":"1.1.2"}`,
		"cloudfunctions/router/index.js": `const TcbRouter = require('tcb-router')
exports.main = async (event) => {
  const app = new TcbRouter({ event })
  app.use(async (ctx, next) => { ctx.data.seen = ['mw']; await next() })
  app.router('user', async (ctx, next) => { ctx.data.seen.push('user'); await next() }, async (ctx) => { ctx.body = { route: 'user', seen: ctx.data.seen, name: event.name } })
  app.router(['a', 'b'], async (ctx) => { ctx.body = { route: ctx._req.url } })
  return app.serve()
}
`,
	})
	for data, want := range map[string]string{
		`{"$url":"user","name":"amy"}`: `{"name":"amy","route":"user","seen":["mw","user"]}`,
		`{"$url":"b"}`:                 `{"route":"b"}`,
	} {
		res, err := invokeOnce(t, dir, "router", data)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		json.Unmarshal(res, &v)
		if got, _ := json.Marshal(v); string(got) != want {
			t.Errorf("%s: got %s, want %s", data, res, want)
		}
	}
}

// With FN_TEST_NPM=1 (network to the npm registry), two functions install real, different
// wx-server-sdk versions into their own folders, and each runs with its own.
func TestRealSDKVersionsPerFunction(t *testing.T) {
	if os.Getenv("FN_TEST_NPM") != "1" {
		t.Skip("set FN_TEST_NPM=1 to install real wx-server-sdk versions from the npm registry")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("no npm")
	}
	dir := t.TempDir()
	fn := "const cloud = require('wx-server-sdk')\ncloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })\n" +
		"exports.main = async () => ({ sdk: require('wx-server-sdk/package.json').version, logger: typeof cloud.logger })\n"
	versions := map[string]string{"v183": "1.8.3", "v263": "2.6.3"}
	files := map[string]string{"project.config.json": devtoolsProject}
	for name, v := range versions {
		files["cloudfunctions/"+name+"/index.js"] = fn
		files["cloudfunctions/"+name+"/package.json"] = `{"name":"` + name + `","dependencies":{"wx-server-sdk":"` + v + `"}}`
	}
	writeFiles(t, dir, files)
	for name := range versions {
		cmd := exec.Command(npm, "install", "--no-audit", "--no-fund", "--ignore-scripts")
		cmd.Dir = filepath.Join(dir, "cloudfunctions", name)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm install in %s: %v\n%s", name, err, out)
		}
	}
	for name, v := range versions {
		res, err := invokeOnce(t, dir, name, `{}`)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got struct{ SDK, Logger string }
		json.Unmarshal(res, &got)
		if got.SDK != v {
			t.Errorf("%s ran with wx-server-sdk %s, want its own %s", name, got.SDK, v)
		}
	}
}

// The layout of a tcb-router project: cloudfunctionRoot "cloud/functions/", one function whose
// routes live in controller files that require the SDK themselves, the SDK pinned to 1.8.3 with
// its cloud.logger(), tcb-router from the function's own node_modules.
func TestRouterProjectWithControllersAndAnOldSDK(t *testing.T) {
	dir := t.TempDir()
	main := "cloud/functions/main/"
	writeFiles(t, dir, map[string]string{
		"project.config.json":                         `{"miniprogramRoot": "client/dist/", "cloudfunctionRoot": "cloud/functions/", "appid": "wx1"}`,
		main + "package.json":                         `{"name":"main","dependencies":{"tcb-router":"^1.1.2","wx-server-sdk":"~1.8.3"}}`,
		main + "config.json":                          `{"permissions": {"openapi": []}}`,
		main + "node_modules/tcb-router/index.js":     fakeTcbRouter,
		main + "node_modules/tcb-router/package.json": `{"name":"tcb-router","version":"1.1.2"}`,
		main + "utils/log.js":                         "const cloud = require('wx-server-sdk')\nmodule.exports = cloud.logger()\n",
		main + "controllers/index.js":                 "module.exports = { user: require('./user') }\n",
		main + "controllers/user/index.js":            "module.exports = { selfInfo: require('./selfInfo') }\n",
		main + "controllers/user/selfInfo.js":         "const cloud = require('wx-server-sdk')\nconst log = require('../../utils/log')\nmodule.exports = async (ctx) => { log.info({ route: 'selfInfo' }); ctx.body = { sdk: cloud.version, route: ctx._req.url } }\n",
		main + "index.js": "const cloud = require('wx-server-sdk')\nconst TcbRouter = require('tcb-router')\nconst controllers = require('./controllers')\ncloud.init()\n" +
			"exports.main = async (event) => { const app = new TcbRouter({ event }); app.router('user/selfInfo', controllers.user.selfInfo); return app.serve() }\n",
	})
	fakeSDK(t, filepath.Join(dir, main), "1.8.3")
	res, err := invokeOnce(t, filepath.Join(dir, "cloud"), "main", `{"$url":"user/selfInfo"}`)
	if err != nil {
		t.Fatal(err)
	}
	if string(res) != `{"sdk":"1.8.3","route":"user/selfInfo"}` {
		t.Fatalf("got %s", res)
	}
}

// A project nested in the checkout (WechatMiniProgram/project.config.json) is found from inside it,
// and a checkout root with no project.config.json is not a project.
func TestNestedWXProjectIsFoundFromItsFolder(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"README.md":                                         "a course project\n",
		"WechatMiniProgram/project.config.json":             devtoolsProject,
		"WechatMiniProgram/cloudfunctions/echo/index.js":    "exports.main = async (event) => { delete event.userInfo; return event }\n",
		"WechatMiniProgram/cloudfunctions/echo/config.json": "{\n  // DevTools' template keeps this comment\n  \"permissions\": {\"openapi\": []},\n}\n",
	})
	if _, err := project.Load(dir); !errors.Is(err, project.ErrNoProject) {
		t.Fatalf("the checkout root: %v", err)
	}
	res, err := invokeOnce(t, filepath.Join(dir, "WechatMiniProgram", "cloudfunctions", "echo"), "echo", `{"a":1}`)
	if err != nil || string(res) != `{"a":1}` {
		t.Fatalf("echo: %s %v", res, err)
	}
}

// In fn dev a function that does not build does not hold back its siblings' saves.
func TestDevSaveIsServedWhileASiblingDoesNotBuild(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"project.config.json":           devtoolsProject,
		"cloudfunctions/ok/index.js":    "exports.main = async () => 1\n",
		"cloudfunctions/nocfg/index.js": "const config = require('./config')\nexports.main = async () => config\n",
	})
	p, err := project.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunDev(ctx, p, DevOptions{Node: "node", Host: "127.0.0.1", Events: rec, NoTimers: true, Debounce: 10 * time.Millisecond})
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-rec.ready:
	case err := <-done:
		t.Fatalf("fn dev stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("fn dev did not start")
	}
	call := func() string {
		resp, err := http.Post(rec.url+"/wx/functions/ok", "application/json", strings.NewReader(`{}`))
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		var env struct{ Result json.RawMessage }
		json.NewDecoder(resp.Body).Decode(&env)
		return string(env.Result)
	}
	if got := call(); got != "1" {
		t.Fatalf("ok before the save: %s", got)
	}
	testutil.WriteFile(t, dir, "cloudfunctions/ok/index.js", "exports.main = async () => 2\n")
	testutil.Eventually(t, 10*time.Second, "the save to be served", func() bool { return call() == "2" })
	// a config.json change takes the full path (a fresh build of every function): the same holds
	testutil.WriteFile(t, dir, "cloudfunctions/ok/config.json", `{"envVariables": {"ANSWER": "3"}}`)
	testutil.WriteFile(t, dir, "cloudfunctions/ok/index.js", "exports.main = async () => Number(process.env.ANSWER)\n")
	testutil.Eventually(t, 10*time.Second, "config.json's env to be served", func() bool { return call() == "3" })
}
