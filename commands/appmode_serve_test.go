package commands

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
)

// starterLayout is the platform's Node starter (server.js + app.js + cloud.js + leanengine.json
// + routes/ + views/ + functions/), written here.
func starterLayout(t *testing.T) string {
	dir := t.TempDir()
	files := map[string]string{
		"package.json":    `{"name":"starter","scripts":{"start":"node server.js"},"dependencies":{"express":"4","leanengine":"3","leancloud-storage":"4"}}`,
		"leanengine.json": `{}`,
		".leanignore":     "node_modules/\nsecret.txt\n",
		"secret.txt":      "not shipped\n",
		"server.js": `const AV = require('leanengine')
AV.init({ appId: process.env.LEANCLOUD_APP_ID, appKey: process.env.LEANCLOUD_APP_KEY, masterKey: process.env.LEANCLOUD_APP_MASTER_KEY })
AV.Cloud.useMasterKey()
const app = require('./app')
app.listen(parseInt(process.env.LEANCLOUD_APP_PORT))
`,
		"app.js": `const express = require('express'), path = require('path'), fs = require('fs'), AV = require('leanengine')
require('./cloud')
const app = express()
app.use(AV.express())
app.get('/', (req, res) => res.type('html').send(fs.readFileSync(path.join(__dirname, 'views', 'index.html'), 'utf8')))
app.use('/todos', require('./routes/todos'))
module.exports = app
`,
		"cloud.js": `const AV = require('leanengine'), fs = require('fs'), path = require('path')
fs.readdirSync(path.join(__dirname, 'functions')).forEach(f => require(path.join(__dirname, 'functions', f)))
AV.Cloud.define('env', () => ({ env: process.env.LEANCLOUD_APP_ENV, secret: fs.existsSync(path.join(__dirname, 'secret.txt')) }))
AV.Cloud.beforeSave('Todo', (req) => { req.object.set('checked', true) })
`,
		"functions/hello.js": "require('leanengine').Cloud.define('hello', () => 'hello from functions/')\n",
		"routes/todos.js": `const router = require('express').Router(), AV = require('leanengine')
router.post('/', async (req, res) => { const t = new AV.Object('Todo'); t.set('content', 'x'); await t.save(); const back = await new AV.Query('Todo').get(t.id); res.json({ checked: back.get('checked') }) })
module.exports = router
`,
		"views/index.html": "<h1>deployed starter</h1>",
	}
	for rel, c := range files {
		testutil.WriteFile(t, dir, rel, c)
	}
	// a real node_modules directory (not a link): the deploy ships it
	nm := filepath.Join(dir, "node_modules")
	if err := os.MkdirAll(nm, 0o755); err != nil {
		t.Fatal(err)
	}
	src := testutil.NodeModules(t)
	for _, pkg := range deps(t, src, "express", "leanengine", "leancloud-storage") {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(nm, pkg)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(src, pkg), filepath.Join(nm, pkg)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	return dir
}

// deps lists roots and what they require, transitively, at the top of a flat node_modules (as
// npm installs the fixture; nested node_modules come with their package), so that the deploy
// ships only what the app needs.
func deps(t *testing.T, nm string, roots ...string) []string {
	seen := map[string]bool{}
	var visit func(dir string)
	var top func(name string)
	visit = func(dir string) {
		b, err := os.ReadFile(filepath.Join(dir, "package.json"))
		if err != nil {
			return
		}
		var pkg struct {
			Dependencies         map[string]string `json:"dependencies"`
			OptionalDependencies map[string]string `json:"optionalDependencies"`
		}
		json.Unmarshal(b, &pkg)
	deps:
		for d := range pkg.Dependencies {
			// Node looks in node_modules of the package and of each directory above it
			for up := dir; len(up) > len(nm); up = filepath.Dir(up) {
				if nested := filepath.Join(up, "node_modules", d); fileExists(nested) {
					if !seen[nested] {
						seen[nested] = true
						visit(nested)
					}
					continue deps
				}
			}
			top(d)
		}
	}
	top = func(name string) {
		if seen[name] || !fileExists(filepath.Join(nm, name, "package.json")) {
			return
		}
		seen[name] = true
		visit(filepath.Join(nm, name))
	}
	for _, r := range roots {
		top(r)
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		if !filepath.IsAbs(n) {
			out = append(out, n)
		}
	}
	return out
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// A LeanEngine project without fn.yaml deploys as its tree and runs on fn serve as its app
// process: its own routes by host name or /app/{app}/{env}/, its functions and hooks inside it.
//
// It ships the real leanengine with its dependencies (8 000 files): slow, so it runs with
// FN_SLOW_TESTS=1; TestServeRunsADeployedAppProcessTree covers the same path in CI.
func TestServeRunsADeployedStarterAsItsAppProcess(t *testing.T) {
	if os.Getenv("FN_SLOW_TESTS") == "" {
		t.Skip("ships 8 000 files of node_modules; set FN_SLOW_TESTS=1")
	}
	s := startServe(t, t.TempDir(), "admintoken-app", "http://127.0.0.1:1")
	if r := fn(t, ".", "login", "--server", s.url, "--token", "admintoken-app"); r.code != 0 {
		t.Fatalf("login: %d %s", r.code, r.err)
	}
	if r := fn(t, ".", "apps", "create", "starter", "--app-id", "starterId", "--app-key", "starterKey", "--master-key", "starterMaster", "--hook-key", "starterHook"); r.code != 0 {
		t.Fatalf("apps create: %d %s %s", r.code, r.out, r.err)
	}
	dir := starterLayout(t)
	started := time.Now()
	r := fn(t, dir, "deploy", "--env", "production", "--json")
	if r.code != 0 || !strings.Contains(r.out, `"changed": true`) {
		t.Fatalf("deploy: %d %s %s", r.code, r.out, r.err)
	}
	t.Logf("deploy of the tree: %v", time.Since(started))
	get := func(url, host string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get(s.url+"/app/starter/production/", ""); status != 200 || body != "<h1>deployed starter</h1>" {
		t.Fatalf("the app's page by path: %d %s", status, body)
	}
	if status, body := get(s.url+"/", "starter.example.com"); status != 200 || body != "<h1>deployed starter</h1>" {
		t.Fatalf("the app's page by host: %d %s", status, body)
	}
	app := map[string]string{"X-LC-Id": "starterId", "X-LC-Key": "starterKey", "Content-Type": "application/json"}
	if status, body := postTo(t, s.url+"/1.1/functions/hello", app, `{}`); status != 200 || body != `{"result":"hello from functions/"}` {
		t.Fatalf("hello: %d %s", status, body)
	}
	// .leanignore keeps files out of the deploy, but not node_modules (fn serve installs nothing)
	if status, body := postTo(t, s.url+"/1.1/functions/env", app, `{}`); status != 200 || body != `{"result":{"env":"production","secret":false}}` {
		t.Fatalf("env: %d %s", status, body)
	}
	// an express route saves through fn's LeanStorage; the hook runs in the app process
	req, _ := http.NewRequest("POST", s.url+"/todos", nil)
	req.Host = "starter.example.com"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != `{"checked":true}` {
		t.Fatalf("POST /todos: %d %s", resp.StatusCode, b)
	}
	// a second deploy of the same tree changes nothing
	if r := fn(t, dir, "deploy", "--env", "production", "--json"); r.code != 0 || !strings.Contains(r.out, `"changed": false`) {
		t.Fatalf("no-op deploy: %d %s %s", r.code, r.out, r.err)
	}
}

func postTo(t *testing.T, url string, headers map[string]string, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A LeanEngine-shaped app without npm packages (its own server answers the platform's paths as
// leanengine's middleware does), deployed as its tree to fn serve: the tree lands where the
// process runs (fs reads through __dirname), its routes by host name and path prefix, its
// functions by X-LC-Id, a hook called by fn's LeanStorage over HTTP with the hook key, a new
// version replacing the old process, and bad manifests refused with nothing written.
func TestServeRunsADeployedAppProcessTree(t *testing.T) {
	s := startServe(t, t.TempDir(), "admintoken-tree", "http://127.0.0.1:1")
	if r := fn(t, ".", "login", "--server", s.url, "--token", "admintoken-tree"); r.code != 0 {
		t.Fatalf("login: %d %s", r.code, r.err)
	}
	if r := fn(t, ".", "apps", "create", "tree", "--app-id", "treeAppId1", "--app-key", "treeAppKey1", "--master-key", "treeMaster", "--hook-key", "treeHookKey1"); r.code != 0 {
		t.Fatalf("apps create: %d %s %s", r.code, r.out, r.err)
	}
	dir := t.TempDir()
	server := `const http = require('http'), fs = require('fs'), path = require('path')
const VERSION = 'v1'
const api = process.env.LEANCLOUD_API_SERVER
const headers = { 'X-LC-Id': process.env.LEANCLOUD_APP_ID, 'X-LC-Key': process.env.LEANCLOUD_APP_KEY, 'Content-Type': 'application/json' }
http.createServer(async (req, res) => {
  let body = ''
  for await (const c of req) body += c
  const send = (status, v) => { res.writeHead(status, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(v)) }
  if (req.url === '/') return res.end(fs.readFileSync(path.join(__dirname, 'views', 'index.html'), 'utf8') + ' ' + (req.headers['x-forwarded-prefix'] || ''))
  if (req.url === '/1.1/functions/_ops/metadatas') return send(200, { result: ['hello', '__before_save_for_Todo'] })
  if (req.url === '/1.1/functions/hello') return send(200, { result: 'hello ' + VERSION + ' from ' + req.headers['x-real-ip'] })
  if (req.url === '/1.1/functions/Todo/beforeSave') {
    if (req.headers['x-lc-hook-key'] !== process.env.LEANCLOUD_APP_HOOK_KEY) return send(401, { code: 401, error: 'Hook key check failed' })
    const o = JSON.parse(body).object
    return send(200, Object.assign(o, { checked: true }))
  }
  if (req.url === '/todos' && req.method === 'POST') {
    const r = await fetch(api + '/1.1/classes/Todo?fetchWhenSave=true', { method: 'POST', headers, body: JSON.stringify({ content: 'x' }) })
    const saved = await r.json()
    const back = await (await fetch(api + '/1.1/classes/Todo/' + saved.objectId, { headers })).json()
    return send(200, { checked: back.checked })
  }
  send(404, { code: 1, error: 'no route ' + req.url })
}).listen(parseInt(process.env.LEANCLOUD_APP_PORT))
`
	testutil.WriteFile(t, dir, "package.json", `{"name":"tree","scripts":{"start":"node server.js"},"dependencies":{"leanengine":"3"}}`)
	testutil.WriteFile(t, dir, "server.js", server)
	testutil.WriteFile(t, dir, "views/index.html", "<h1>tree</h1>")
	started := time.Now()
	if r := fn(t, dir, "deploy", "--env", "production", "--json"); r.code != 0 || !strings.Contains(r.out, `"changed": true`) {
		t.Fatalf("deploy: %d %s %s", r.code, r.out, r.err)
	}
	t.Logf("deploy (tree of 3 files, app process start): %v", time.Since(started))
	get := func(url, host string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get(s.url+"/", "tree.apps.example.com"); status != 200 || body != "<h1>tree</h1> " {
		t.Fatalf("by host: %d %q", status, body)
	}
	if status, body := get(s.url+"/app/tree/production/", ""); status != 200 || body != "<h1>tree</h1> /app/tree/production" {
		t.Fatalf("by path: %d %q", status, body)
	}
	if status, _ := get(s.url+"/", "tree-staging.apps.example.com"); status == 200 {
		t.Fatal("staging serves although nothing is deployed there")
	}
	app := map[string]string{"X-LC-Id": "treeAppId1", "X-LC-Key": "treeAppKey1", "Content-Type": "application/json"}
	if status, body := postTo(t, s.url+"/1.1/functions/hello", app, `{}`); status != 200 || body != `{"result":"hello v1 from 127.0.0.1"}` {
		t.Fatalf("hello: %d %s", status, body)
	}
	req, _ := http.NewRequest("POST", s.url+"/app/tree/production/todos", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != `{"checked":true}` {
		t.Fatalf("a save through LeanStorage with the hook in the app process: %d %s", resp.StatusCode, b)
	}
	// a new version replaces the process
	testutil.WriteFile(t, dir, "server.js", strings.Replace(server, "'v1'", "'v2'", 1))
	if r := fn(t, dir, "deploy", "--env", "production", "--json"); r.code != 0 || !strings.Contains(r.out, `"changed": true`) {
		t.Fatalf("second deploy: %d %s %s", r.code, r.out, r.err)
	}
	if status, body := postTo(t, s.url+"/1.1/functions/hello", app, `{}`); status != 200 || body != `{"result":"hello v2 from 127.0.0.1"}` {
		t.Fatalf("hello after the second deploy: %d %s", status, body)
	}
	// hostile manifests: paths out of the tree, a command without files
	admin := map[string]string{"Authorization": "Bearer admintoken-tree", "Content-Type": "application/json"}
	bundle := `"bundles":[{"name":"cloud","hash":"` + strings.Repeat("a", 64) + `","mapHash":"` + strings.Repeat("b", 64) + `","config":{"timeout":15,"memory":256}}]`
	for _, files := range []string{
		`[{"path":"../evil.js","hash":"` + strings.Repeat("c", 64) + `","size":1}]`,
		`[{"path":"/etc/passwd","hash":"` + strings.Repeat("c", 64) + `","size":1}]`,
		`[{"path":"a/./b.js","hash":"` + strings.Repeat("c", 64) + `","size":1}]`,
		`[{"path":"a\\b.js","hash":"` + strings.Repeat("c", 64) + `","size":1}]`,
	} {
		body := `{"env":"production","dryRun":true,"manifest":{"dialect":"lean",` + bundle + `,"files":` + files + `,"app":["node","server.js"]}}`
		if status, out := postTo(t, s.url+"/__fn/apps/tree/deploy", admin, body); status != 400 || !strings.Contains(out, "project file") {
			t.Errorf("files %s: %d %s", files, status, out)
		}
	}
	body := `{"env":"production","dryRun":true,"manifest":{"dialect":"lean",` + bundle + `,"app":["node","server.js"]}}`
	if status, out := postTo(t, s.url+"/__fn/apps/tree/deploy", admin, body); status != 400 || !strings.Contains(out, "needs the project's files") {
		t.Errorf("an app command without files: %d %s", status, out)
	}
}

// Pure cloud code of a LeanEngine project without fn.yaml, deployed: it runs in place from the
// deployed tree, so cloud.js's fs.readdirSync(path.join(__dirname, 'functions')), reads of project
// files and the working directory are the project's. The leanengine package here is a small
// stand-in written for the test (the real one ships 8 000 files; FN_SLOW_TESTS runs that).
func TestServeRunsDeployedCloudCodeInPlace(t *testing.T) {
	s := startServe(t, t.TempDir(), "admintoken-fast", "http://127.0.0.1:1")
	if r := fn(t, ".", "login", "--server", s.url, "--token", "admintoken-fast"); r.code != 0 {
		t.Fatalf("login: %d %s", r.code, r.err)
	}
	if r := fn(t, ".", "apps", "create", "fastcode", "--app-id", "fastAppId01", "--app-key", "fastAppKey01", "--master-key", "fastMaster01", "--hook-key", "fastHookKey01"); r.code != 0 {
		t.Fatalf("apps create: %d %s %s", r.code, r.out, r.err)
	}
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "package.json", `{"name":"fastcode","dependencies":{"leanengine":"3"}}`)
	testutil.WriteFile(t, dir, "node_modules/leanengine/package.json", `{"name":"leanengine","version":"3.8.0","main":"index.js"}`)
	testutil.WriteFile(t, dir, "node_modules/leanengine/index.js", `class CloudError extends Error {
  constructor(message, extra) { super(message); Object.assign(this, extra) }
}
const Cloud = { functions: {}, Error: CloudError }
Cloud.define = (name, fn) => { if (Cloud.functions[name]) throw new Error('defined twice: ' + name); Cloud.functions[name] = fn }
module.exports = { Cloud }
`)
	testutil.WriteFile(t, dir, "cloud.js", `const AV = require('leanengine'), fs = require('fs'), path = require('path')
fs.readdirSync(path.join(__dirname, 'functions')).forEach(f => require(path.join(__dirname, 'functions', f)))
AV.Cloud.define('layout', () => ({
  greeting: JSON.parse(fs.readFileSync(path.join(__dirname, 'config', 'app.json'), 'utf8')).greeting,
  cwdHasPackage: fs.readdirSync('.').includes('package.json'),
  filename: path.basename(__filename),
  resolved: path.relative(__dirname, require.resolve('./lib/util')),
}))
`)
	testutil.WriteFile(t, dir, "functions/hello.js", "require('leanengine').Cloud.define('hello', () => 'hello from ' + require('../lib/util').name)\n")
	testutil.WriteFile(t, dir, "lib/util.js", "exports.name = 'lib/util'\n")
	testutil.WriteFile(t, dir, "config/app.json", `{"greeting":"ni hao"}`)
	if r := fn(t, dir, "deploy", "--env", "production", "--json"); r.code != 0 || !strings.Contains(r.out, `"changed": true`) {
		t.Fatalf("deploy: %d %s %s", r.code, r.out, r.err)
	}
	app := map[string]string{"X-LC-Id": "fastAppId01", "X-LC-Key": "fastAppKey01", "Content-Type": "application/json"}
	if status, body := postTo(t, s.url+"/1.1/functions/hello", app, `{}`); status != 200 || body != `{"result":"hello from lib/util"}`+"\n" {
		t.Fatalf("hello from functions/: %d %q", status, body)
	}
	want := `{"result":{"greeting":"ni hao","cwdHasPackage":true,"filename":"cloud.js","resolved":"lib/util.js"}}` + "\n"
	if status, body := postTo(t, s.url+"/1.1/functions/layout", app, `{}`); status != 200 || body != want {
		t.Fatalf("layout:\n got %d %q\nwant %q", status, body, want)
	}
}
