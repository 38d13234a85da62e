package localrun

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/project"
)

// starterFiles is the platform's Node starter layout (server.js + app.js + cloud.js +
// leanengine.json + routes/ + views/ + functions/), written here for the test.
func starterFiles() map[string]string {
	return map[string]string{
		"package.json": `{"name":"starter-app","main":"server.js","scripts":{"start":"node server.js"},
  "dependencies":{"express":"4","leanengine":"3","leancloud-storage":"4"}}`,
		"leanengine.json": `{}`,
		"server.js": `'use strict'
const AV = require('leanengine')
AV.init({ appId: process.env.LEANCLOUD_APP_ID, appKey: process.env.LEANCLOUD_APP_KEY, masterKey: process.env.LEANCLOUD_APP_MASTER_KEY })
AV.Cloud.useMasterKey()
const app = require('./app')
const PORT = parseInt(process.env.LEANCLOUD_APP_PORT || process.env.PORT || 3000)
app.listen(PORT, () => console.log('Node app is running on port:', PORT))
`,
		"app.js": `'use strict'
const express = require('express')
const path = require('path')
const fs = require('fs')
const AV = require('leanengine')
require('./cloud')
const app = express()
app.use(AV.express())
app.use(express.json())
app.get('/', (req, res) => res.type('html').send(fs.readFileSync(path.join(__dirname, 'views', 'index.html'), 'utf8')))
app.use('/todos', require('./routes/todos'))
module.exports = app
`,
		"cloud.js": `const AV = require('leanengine')
const fs = require('fs')
const path = require('path')
fs.readdirSync(path.join(__dirname, 'functions')).forEach(file => require(path.join(__dirname, 'functions', file)))
AV.Cloud.define('whoami', (req) => ({ pid: process.pid, addr: req.meta.remoteAddress, ua: req.expressReq.headers['user-agent'] }))
AV.Cloud.define('touch', async (req) => {
  const o = AV.Object.createWithoutData('Locked', req.params.id)
  o.set('n', 2)
  await o.save()
  return (await new AV.Query('Locked').get(req.params.id)).get('n')
})
AV.Cloud.beforeSave('Todo', (req) => { req.object.set('checked', true) })
AV.Cloud.define('_messageReceived', (req) => ({ content: req.params.content.toUpperCase(), signed: !!req.params.__sign }))
`,
		"functions/hello.js": "const AV = require('leanengine')\nAV.Cloud.define('hello', () => 'hello v1')\n",
		"routes/todos.js": `const router = require('express').Router()
const AV = require('leanengine')
router.get('/', async (req, res) => {
  const todos = await new AV.Query('Todo').find()
  res.json(todos.map(t => ({ content: t.get('content'), checked: t.get('checked') })))
})
router.post('/', async (req, res) => {
  const t = new AV.Object('Todo')
  t.set('content', req.body.content)
  await t.save()
  res.status(201).json({ id: t.id })
})
module.exports = router
`,
		"views/index.html": "<h1>TODO starter</h1>\n",
	}
}

// The starter runs unchanged under fn dev: no fn.yaml, its own server.js as the app process
// (AV.init and useMasterKey honoured), its express routes through the proxy, its functions and
// hooks inside it, LeanStorage from fn; a save restarts it while requests wait at the gate.
func TestStarterLayoutRunsInAppMode(t *testing.T) {
	dir := t.TempDir()
	for rel, c := range starterFiles() {
		testutil.WriteFile(t, dir, rel, c)
	}
	testutil.LinkNodeModules(t, dir)
	env := map[string]string{"LEANCLOUD_APP_ID": "starter-fnDev", "LEANCLOUD_APP_KEY": "stKey", "LEANCLOUD_APP_MASTER_KEY": "stMaster",
		"LEANCLOUD_APP_HOOK_KEY": "stHook"}
	p, err := project.LoadEnv(dir, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if p.App == nil || strings.Join(p.App.Command, " ") != "node server.js" {
		t.Fatalf("app process: %+v", p.App)
	}
	rec := newRecorder()
	rec.dir = dir
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunDev(ctx, p, DevOptions{Node: "node", Host: "127.0.0.1", Events: rec, NoTimers: true, Getenv: func(k string) string { return env[k] }})
	}()
	select {
	case <-rec.ready:
	case err := <-done:
		t.Fatalf("fn dev stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("fn dev did not start")
	}
	app := map[string]string{"X-LC-Id": "starter-fnDev", "X-LC-Key": "stKey", "Content-Type": "application/json"}
	master := map[string]string{"X-LC-Id": "starter-fnDev", "X-LC-Key": "stMaster,master", "Content-Type": "application/json"}

	// the app's own routes
	if status, body := leanDo(t, "GET", rec.url+"/", nil, ""); status != 200 || body != "<h1>TODO starter</h1>\n" {
		t.Fatalf("GET /: %d %q", status, body)
	}
	// an express route that saves through LeanStorage, with the beforeSave hook run inside the app
	if status, body := leanDo(t, "POST", rec.url+"/todos", map[string]string{"Content-Type": "application/json"}, `{"content":"buy milk"}`); status != 201 {
		t.Fatalf("POST /todos: %d %s", status, body)
	}
	if status, body := leanDo(t, "GET", rec.url+"/todos", nil, ""); status != 200 || body != `[{"content":"buy milk","checked":true}]` {
		t.Fatalf("GET /todos: %d %s", status, body)
	}
	// functions from functions/ (loaded through __dirname) and cloud.js, inside the app process
	if status, body := leanDo(t, "POST", rec.url+"/1.1/functions/hello", app, `{}`); status != 200 || body != `{"result":"hello v1"}` {
		t.Fatalf("hello: %d %s", status, body)
	}
	who := func() (int, string) {
		hd := map[string]string{"X-Real-IP": "203.0.113.5", "User-Agent": "starter-test"}
		for k, v := range app {
			hd[k] = v
		}
		status, body := leanDo(t, "POST", rec.url+"/1.1/functions/whoami", hd, `{}`)
		var out struct {
			Result struct {
				PID  int    `json:"pid"`
				Addr string `json:"addr"`
				UA   string `json:"ua"`
			} `json:"result"`
		}
		json.Unmarshal([]byte(body), &out)
		if status != 200 || out.Result.Addr != "203.0.113.5" || out.Result.UA != "starter-test" {
			t.Fatalf("whoami: %d %s", status, body)
		}
		return out.Result.PID, body
	}
	pid1, _ := who()
	// useMasterKey from server.js: a function updates an object nobody but the master key may write
	status, body := leanDo(t, "POST", rec.url+"/1.1/classes/Locked", master, `{"n":1,"ACL":{}}`)
	if status != 201 {
		t.Fatalf("create Locked: %d %s", status, body)
	}
	var created struct {
		ObjectID string `json:"objectId"`
	}
	json.Unmarshal([]byte(body), &created)
	if status, body := leanDo(t, "POST", rec.url+"/1.1/functions/touch", app, `{"id":"`+created.ObjectID+`"}`); status != 200 || body != `{"result":2}` {
		t.Fatalf("touch under useMasterKey: %d %s", status, body)
	}
	// a client cannot write it: the ACL holds, so the 2 above came from the master key
	if status, _ := leanDo(t, "PUT", rec.url+"/1.1/classes/Locked/"+created.ObjectID, app, `{"n":3}`); status == 200 {
		t.Fatal("a client wrote an object with an empty ACL")
	}
	// the ping is leanengine's own health check inside the app
	if status, body := leanDo(t, "GET", rec.url+"/__engine/1/ping", nil, ""); status != 200 || !strings.Contains(body, `"version":"3.8.0"`) {
		t.Fatalf("ping: %d %s", status, body)
	}
	// a realtime hook needs the hook key, as the realtime service sends it
	if status, _ := leanDo(t, "POST", rec.url+"/1.1/functions/_messageReceived", app, `{"content":"hi"}`); status != 401 {
		t.Fatalf("realtime hook without the hook key: %d", status)
	}

	// a save restarts the app process; requests meanwhile wait instead of failing
	saved := time.Now()
	testutil.WriteFile(t, dir, "functions/hello.js", "const AV = require('leanengine')\nAV.Cloud.define('hello', () => 'hello v2')\n")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	var firstNew time.Duration
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				status, body := leanDo(t, "POST", rec.url+"/1.1/functions/hello", app, `{}`)
				if status != 200 {
					mu.Lock()
					failures = append(failures, strconv.Itoa(status)+" "+body)
					mu.Unlock()
					return
				}
				if body == `{"result":"hello v2"}` {
					mu.Lock()
					if firstNew == 0 {
						firstNew = time.Since(saved)
					}
					mu.Unlock()
					return
				}
			}
			mu.Lock()
			failures = append(failures, "never saw v2")
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("requests during the restart failed: %v", failures)
	}
	pid2, _ := who()
	if pid2 == pid1 {
		t.Fatal("the app process was not restarted")
	}
	rec.mu.Lock()
	var restart ReloadInfo
	for _, r := range rec.reloads {
		restart = r
	}
	rec.mu.Unlock()
	t.Logf("app restart: save → first request served by the new process %v; restart (start → listening) %.1f ms", firstNew, restart.LoadMs)
	testutil.Eventually(t, 10*time.Second, "the old app process to stop", func() bool { return !processAlive(pid1) })
	cancel()
	if err := <-done; err != nil && err != context.Canceled {
		t.Fatal(err)
	}
	if processAlive(pid2) {
		t.Errorf("the app process %d still runs after fn dev stopped", pid2)
	}
}
