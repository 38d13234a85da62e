package commands

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/server"
)

var (
	fnBinOnce sync.Once
	fnBin     string
	fnBinErr  error
)

// binary builds cmd/fn once per test run: integration tests run the real thing as a process.
func binary(t *testing.T) string {
	t.Helper()
	fnBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fn-bin-")
		if err != nil {
			fnBinErr = err
			return
		}
		fnBin = filepath.Join(dir, "fn")
		out, err := exec.Command("go", "build", "-o", fnBin, filepath.Join(testutil.RepoRoot(), "cmd", "fn")).CombinedOutput()
		if err != nil {
			fnBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if fnBinErr != nil {
		t.Fatal(fnBinErr)
	}
	return fnBin
}

// devProc is a running `fn dev --json`.
type devProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	events []map[string]any
	stderr *strings.Builder
	done   chan struct{}
}

func startDev(t *testing.T, dir string, args ...string) *devProc {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"dev", "--port", "0", "--json"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	stdout, _ := cmd.StdoutPipe()
	d := &devProc{t: t, cmd: cmd, stderr: &strings.Builder{}, done: make(chan struct{})}
	cmd.Stderr = &lockedWriter{w: d.stderr, mu: &d.mu}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				d.mu.Lock()
				d.events = append(d.events, ev)
				d.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Signal(syscall.SIGINT)
			waitTimeout(d.cmd, 10*time.Second)
		}
	})
	ready := d.waitEvent("ready", 30*time.Second, nil)
	d.url = ready["url"].(string)
	return d
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func waitTimeout(cmd *exec.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		cmd.Process.Kill()
		return <-done
	}
}

// waitEvent polls the event stream until an event of the type (matching pred) arrives.
func (d *devProc) waitEvent(typ string, within time.Duration, pred func(map[string]any) bool) map[string]any {
	d.t.Helper()
	var found map[string]any
	testutil.Eventually(d.t, within, "fn dev event "+typ+"\nstderr: "+d.errText(), func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, ev := range d.events {
			if ev["event"] == typ && (pred == nil || pred(ev)) {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

func (d *devProc) errText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.String()
}

func (d *devProc) count(typ string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, ev := range d.events {
		if ev["event"] == typ {
			n++
		}
	}
	return n
}

func post(t *testing.T, url string, headers map[string]string, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s answered non-JSON %q", url, b)
	}
	return resp.StatusCode, m
}

const devLoginJS = `const cloud = require('wx-server-sdk')
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })
exports.main = async (event) => {
  const c = cloud.getWXContext()
  console.log('login as', c.OPENID)
  return { event, openid: c.OPENID, appid: c.APPID, unionid: c.UNIONID, env: c.ENV, source: c.SOURCE }
}
`

const devCallerJS = `const cloud = require('wx-server-sdk')
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })
exports.main = async () => {
  const res = await cloud.callFunction({ name: 'login', data: { from: 'caller' } })
  let missing
  try { await cloud.callFunction({ name: 'ghost', data: {} }) } catch (e) { missing = e.errMsg || e.message }
  let db
  try {
    const todos = cloud.database().collection('todos')
    const added = await todos.add({ data: { title: 'write tests', done: false } })
    const got = await todos.doc(added._id).get()
    const n = await todos.where({ done: false }).count()
    db = { id: added._id, openid: got.data._openid, title: got.data.title, count: n.total }
  } catch (e) { db = e.errMsg || e.message }
  return { login: res.result, missing, db }
}
`

func wxDevProject(t *testing.T) string {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", `name: devtest
dialect: wx
env: devtest-env
identities:
  alice: {openid: oAlice, appid: wxA, unionid: uAlice}
  bob: {openid: oBob, appid: wxA}
defaultIdentity: alice
`)
	testutil.WriteFile(t, dir, "functions/login/index.js", devLoginJS)
	testutil.WriteFile(t, dir, "functions/caller/index.js", devCallerJS)
	testutil.WriteFile(t, dir, "functions/v/index.js", "exports.main = async () => ({ v: 0 })\n")
	testutil.LinkNodeModules(t, dir)
	return dir
}

func TestDevWXIdentitiesAndCallFunction(t *testing.T) {
	dir := wxDevProject(t)
	d := startDev(t, dir)
	st, err := os.ReadFile(filepath.Join(dir, ".fn", "dev.json"))
	if err != nil || !strings.Contains(string(st), d.url) {
		t.Fatalf(".fn/dev.json: %s %v", st, err)
	}

	status, body := post(t, d.url+"/wx/functions/login", nil, `{"a":1}`)
	res, _ := body["result"].(map[string]any)
	if status != 200 || body["errMsg"] != "cloud.callFunction:ok" || body["requestID"] == "" || res["openid"] != "oAlice" || res["env"] != "devtest-env" {
		t.Fatalf("default identity: %d %v", status, body)
	}
	_, body = post(t, d.url+"/wx/functions/login", map[string]string{"X-Fn-Identity": "bob"}, `{}`)
	if res := body["result"].(map[string]any); res["openid"] != "oBob" || res["unionid"] != nil {
		t.Fatalf("X-Fn-Identity: %v", body)
	}
	_, body = post(t, d.url+"/wx/functions/login", map[string]string{"X-WX-OPENID": "oHeader", "X-WX-APPID": "wxHeader", "X-WX-UNIONID": "uHeader"}, `{}`)
	res = body["result"].(map[string]any)
	ui := res["event"].(map[string]any)["userInfo"].(map[string]any)
	if res["openid"] != "oHeader" || res["appid"] != "wxHeader" || res["unionid"] != "uHeader" || ui["openId"] != "oHeader" || ui["appId"] != "wxHeader" {
		t.Fatalf("X-WX-* headers: %v", body)
	}
	if status, body := post(t, d.url+"/wx/functions/login", map[string]string{"X-Fn-Identity": "carol"}, `{}`); status != 401 || !strings.Contains(body["errMsg"].(string), `unknown identity "carol"`) {
		t.Fatalf("unknown identity: %d %v", status, body)
	}

	// A function calls another through the real SDK: same user, no userInfo, source chained; an
	// unknown function fails with a readable error, no hang; the cloud database works offline.
	_, body = post(t, d.url+"/wx/functions/caller", map[string]string{"X-Fn-Identity": "bob"}, `{}`)
	res = body["result"].(map[string]any)
	login := res["login"].(map[string]any)
	if login["openid"] != "oBob" || login["source"] != "wx_client,scf" {
		t.Fatalf("nested call identity/source: %v", login)
	}
	if _, has := login["event"].(map[string]any)["userInfo"]; has {
		t.Error("the nested call must not carry userInfo")
	}
	if !strings.Contains(fmt.Sprint(res["missing"]), "Function not found [ghost]") {
		t.Errorf("callFunction of an unknown function: %v", res["missing"])
	}
	db, _ := res["db"].(map[string]any)
	if id, _ := db["id"].(string); len(id) != 32 || db["openid"] != "oBob" || db["title"] != "write tests" || db["count"] != 1.0 {
		t.Errorf("the cloud database through the real SDK (add, doc.get with _openid from the caller, where.count): %v", res["db"])
	}

	// The request log carries each call with its console output.
	inv := d.waitEvent("invocation", 5*time.Second, func(ev map[string]any) bool { return ev["identity"] == "bob" && ev["function"] == "caller" })
	if inv["status"] != 200.0 || inv["dialect"] != "wx" {
		t.Errorf("invocation event: %v", inv)
	}
	d.waitEvent("log", 5*time.Second, func(ev map[string]any) bool { return ev["message"] == "login as oBob" && ev["requestId"] != "" })

	// fn invoke finds the running dev server and prints the result and the logs.
	ios := fn(t, dir, "invoke", "login", "--as", "bob", "--data", `{"via":"invoke"}`)
	if ios.code != 0 || !strings.Contains(ios.out, `"openid": "oBob"`) || !strings.Contains(ios.err, "login as oBob") {
		t.Fatalf("fn invoke against dev: %d\n%s\n%s", ios.code, ios.out, ios.err)
	}
	d.waitEvent("invocation", 5*time.Second, func(ev map[string]any) bool {
		return ev["function"] == "login" && ev["identity"] == "bob" && ev["status"] == 200.0
	})
}

func TestDevHotReload(t *testing.T) {
	dir := wxDevProject(t)
	d := startDev(t, dir)
	src := func(v int) string { return fmt.Sprintf("exports.main = async () => ({ v: %d })\n", v) }
	get := func() (int, any) {
		status, body := post(t, d.url+"/wx/functions/v", nil, `{}`)
		if res, ok := body["result"].(map[string]any); ok {
			return status, res["v"]
		}
		return status, body
	}

	// A saved edit is served by the next request.
	testutil.WriteFile(t, dir, "functions/v/index.js", src(1))
	testutil.Eventually(t, 5*time.Second, "the edit to be served", func() bool { _, v := get(); return v == 1.0 })
	rel := d.waitEvent("reload", 5*time.Second, nil)
	if rel["bundles"].([]any)[0] != "v" || rel["fast"] != true {
		t.Errorf("reload event: %v", rel)
	}

	// A syntax error is reported and the last good build keeps serving; the fix recovers.
	testutil.WriteFile(t, dir, "functions/v/index.js", "exports.main = async () => ({ v: 2 \n")
	d.waitEvent("error", 5*time.Second, func(ev map[string]any) bool {
		return strings.Contains(fmt.Sprint(ev["error"]), "functions/v/index.js:")
	})
	if status, v := get(); status != 200 || v != 1.0 {
		t.Fatalf("after a syntax error the old build must serve: %d %v", status, v)
	}
	testutil.WriteFile(t, dir, "functions/v/index.js", src(3))
	testutil.Eventually(t, 5*time.Second, "the fix to be served", func() bool { _, v := get(); return v == 3.0 })
	d.waitEvent("reload", 5*time.Second, func(ev map[string]any) bool { return ev["fixed"] == true })

	// A new function directory is picked up.
	testutil.WriteFile(t, dir, "functions/fresh/index.js", "exports.main = async () => ({ fresh: true })\n")
	testutil.Eventually(t, 5*time.Second, "the new function to be served", func() bool {
		status, _ := post(t, d.url+"/wx/functions/fresh", nil, `{}`)
		return status == 200
	})

	// 200 concurrent requests while the file is edited 20 times: no failures.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, body := post(t, d.url+"/wx/functions/v", nil, `{}`)
			if status != 200 {
				mu.Lock()
				failures = append(failures, fmt.Sprint(status, body))
				mu.Unlock()
			}
		}()
		if i%10 == 0 {
			testutil.WriteFile(t, dir, "functions/v/index.js", src(100+i/10))
		}
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of 200 requests failed during edits, e.g. %s", len(failures), failures[0])
	}
	testutil.Eventually(t, 5*time.Second, "the last edit to be served", func() bool { _, v := get(); return v == 119.0 })

	// fn.yaml changes take the full path (fresh workers with the new env).
	testutil.WriteFile(t, dir, "functions/v/index.js", "exports.main = async () => ({ v: process.env.COLOR })\n")
	testutil.Eventually(t, 5*time.Second, "the env edit", func() bool { _, v := get(); return v == nil })
	yaml, _ := os.ReadFile(filepath.Join(dir, "fn.yaml"))
	testutil.WriteFile(t, dir, "fn.yaml", string(yaml)+"functions:\n  v:\n    env:\n      COLOR: blue\n")
	testutil.Eventually(t, 10*time.Second, "the fn.yaml change", func() bool { _, v := get(); return v == "blue" })
	d.waitEvent("reload", 5*time.Second, func(ev map[string]any) bool { return ev["full"] == true })
	// and a broken fn.yaml keeps serving, with the error named
	testutil.WriteFile(t, dir, "fn.yaml", string(yaml)+"functions:\n  v:\n    timeout: 90\n")
	d.waitEvent("error", 5*time.Second, func(ev map[string]any) bool {
		return strings.Contains(fmt.Sprint(ev["error"]), "functions.v.timeout: must be 1–60 seconds, got 90")
	})
	if _, v := get(); v != "blue" {
		t.Fatalf("a broken fn.yaml must keep the last good version serving, got %v", v)
	}
}

func TestDevLeanAuthAndRealClient(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: leandev\ndialect: lean\nlean:\n  appId: devApp-fnDev\n  appKey: devAppKey\n  masterKey: devMasterKey\n  hookKey: devHookKey\n")
	testutil.WriteFile(t, dir, "cloud.js", `const AV = require('leanengine')
AV.Cloud.define('hello', (req) => 'Hello ' + (req.params.name || 'world'))
AV.Cloud.define('customErrorCode', (req, res) => res.error({ code: 123, message: 'custom error message' }))
AV.Cloud.beforeSave('Review', (req) => { req.object.set('checked', true) })
`)
	testutil.LinkNodeModules(t, dir)
	d := startDev(t, dir)
	if ready := d.waitEvent("ready", 5*time.Second, nil); ready["keysFrom"] != "fn.yaml" {
		t.Errorf("the keys come from fn.yaml: %v", ready["keysFrom"])
	}
	h := func(extra map[string]string) map[string]string {
		m := map[string]string{"X-LC-Id": "devApp-fnDev", "Content-Type": "application/json"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	ts := time.Now().UnixMilli()
	cases := []struct {
		name    string
		path    string
		headers map[string]string
		body    string
		status  int
		want    string
	}{
		{"app key", "/1.1/functions/hello", h(map[string]string{"X-LC-Key": "devAppKey"}), `{"name":"fn"}`, 200, `"result":"Hello fn"`},
		{"signed", "/1.1/functions/hello", h(map[string]string{"X-LC-Sign": server.Sign("devAppKey", ts, false)}), `{}`, 200, `"result":"Hello world"`},
		{"signed master", "/1/functions/hello", h(map[string]string{"X-LC-Sign": server.Sign("devMasterKey", ts, true)}), `{}`, 200, `"result":"Hello world"`},
		{"rpc", "/1.1/call/hello", h(map[string]string{"X-LC-Key": "devAppKey"}), `{}`, 200, `"result":{}`},
		{"wrong key", "/1.1/functions/hello", h(map[string]string{"X-LC-Key": "nope"}), `{}`, 401, `"code":401,"error":"Unauthorized."`},
		{"bad signature", "/1.1/functions/hello", h(map[string]string{"X-LC-Sign": server.Sign("nope", ts, false)}), `{}`, 401, `"Unauthorized."`},
		{"wrong app", "/1.1/functions/hello", map[string]string{"X-LC-Id": "other", "X-LC-Key": "devAppKey"}, `{}`, 401, `"Unauthorized."`},
		{"text/plain body", "/1.1/functions/hello", map[string]string{"Content-Type": "text/plain"}, `{"_ApplicationId":"devApp-fnDev","_ApplicationKey":"devAppKey","name":"plain"}`, 200, `"result":"Hello plain"`},
		{"custom error", "/1.1/functions/customErrorCode", h(map[string]string{"X-LC-Key": "devAppKey"}), `{}`, 400, `"code":123,"error":"custom error message"`},
		{"unknown", "/1.1/functions/nope", h(map[string]string{"X-LC-Key": "devAppKey"}), `{}`, 404, `No such cloud function 'nope'`},
		{"malformed JSON", "/1.1/functions/hello", h(map[string]string{"X-LC-Key": "devAppKey"}), `{"a":`, 400, `"code":107`},
		{"hook with hook key", "/1.1/functions/Review/beforeSave", h(map[string]string{"X-LC-Hook-Key": "devHookKey"}), `{"object":{"stars":1}}`, 200, `"checked":true`},
		{"hook without hook key", "/1.1/functions/Review/beforeSave", h(map[string]string{"X-LC-Key": "devAppKey"}), `{"object":{}}`, 401, `Hook key check failed`},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodPost, d.url+c.path, strings.NewReader(c.body))
		for k, v := range c.headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), c.want) {
			t.Errorf("%s: %d %s (want %d, %s)", c.name, resp.StatusCode, b, c.status, c.want)
		}
	}
	get := func(path string, headers map[string]string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, d.url+path, nil)
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
	if status, body := get("/1.1/functions/_ops/metadatas", h(map[string]string{"X-LC-Key": "devMasterKey,master"})); status != 200 || !strings.Contains(body, `"__before_save_for_Review"`) || !strings.Contains(body, `"hello"`) {
		t.Errorf("metadatas: %d %s", status, body)
	}
	if status, _ := get("/1.1/functions/_ops/metadatas", h(map[string]string{"X-LC-Key": "devAppKey"})); status != 401 {
		t.Errorf("metadatas needs the master key, got %d", status)
	}
	if status, body := get("/__engine/1/ping", nil); status != 200 || !strings.Contains(body, `"version":"3.8.0"`) || !strings.Contains(body, `"runtime":"nodejs-v`) {
		t.Errorf("ping: %d %s", status, body)
	}

	// The real leancloud-storage client, with its default signed requests.
	script := `const AV = require('leancloud-storage')
AV.init({ appId: 'devApp-fnDev', appKey: 'devAppKey', serverURL: process.argv[1] })
Promise.all([AV.Cloud.run('hello', { name: 'sdk' }), AV.Cloud.run('customErrorCode').catch((e) => e.code + ' ' + e.message)])
  .then((r) => console.log(JSON.stringify(r)), (e) => { console.error(e); process.exit(1) })
`
	cmd := exec.Command("node", "-e", script, d.url)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(out)), `["Hello sdk","123 custom error message [400 POST http://127.0.0.1:`) {
		t.Fatalf("leancloud-storage client: %v %s", err, out)
	}
}

func TestDevPortTakenAndCtrlCLeavesNoNode(t *testing.T) {
	dir := wxDevProject(t)
	d := startDev(t, dir)
	port := strings.TrimPrefix(d.url, "http://127.0.0.1:")

	// A second fn dev on the same port says so plainly.
	cmd := exec.Command(binary(t), "dev", "--port", port)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "port 127.0.0.1:"+port+" is already in use") || !strings.Contains(string(out), "--port 0") {
		t.Fatalf("port taken: %v\n%s", err, out)
	}

	// Load every function so that there are several workers.
	for _, f := range []string{"login", "caller", "v"} {
		post(t, d.url+"/wx/functions/"+f, nil, `{}`)
	}
	workers := childNodes(d.cmd.Process.Pid)
	if len(workers) < 3 {
		t.Fatalf("expected at least 3 node workers under fn dev, found %v", workers)
	}
	d.cmd.Process.Signal(syscall.SIGINT)
	waitTimeout(d.cmd, 15*time.Second)
	if code := d.cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("fn dev exit code after Ctrl-C: %d, want 130\n%s", code, d.errText())
	}
	for _, pid := range workers {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("node worker %d survived Ctrl-C", pid)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".fn", "dev.json")); !os.IsNotExist(err) {
		t.Error(".fn/dev.json should be removed on exit")
	}
}

// childNodes lists the node processes whose parent is pid.
func childNodes(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(stat)
		rest := s[strings.LastIndex(s, ")")+2:]
		fields := strings.Fields(rest)
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) && strings.Contains(s, "(node)") {
			out = append(out, child)
		}
	}
	return out
}

func TestDevInspectPassesTheInspectorToWorkers(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: insp\ndialect: wx\n")
	testutil.WriteFile(t, dir, "functions/hi/index.js", "exports.main = async () => 'hi'\n")
	d := startDev(t, dir, "--inspect=hi@127.0.0.1:0")
	if ready := d.waitEvent("ready", 5*time.Second, nil); !strings.HasPrefix(fmt.Sprint(ready["inspector"]), "hi's workers") {
		t.Errorf("the banner names the inspected function: %v", ready["inspector"])
	}
	if status, _ := post(t, d.url+"/wx/functions/hi", nil, `{}`); status != 200 {
		t.Fatalf("call: %d", status)
	}
	// Node's notice is an info line that names the function, not an error
	ev := d.waitEvent("log", 10*time.Second, func(ev map[string]any) bool {
		return strings.HasPrefix(fmt.Sprint(ev["message"]), "inspector for hi: ws://127.0.0.1:")
	})
	if ev["level"] != "info" {
		t.Errorf("the inspector notice is logged as %v", ev["level"])
	}
	// a failing function through fn invoke against dev exits 1 with the error
	testutil.WriteFile(t, dir, "functions/bad/index.js", "exports.main = async () => { throw new Error('nope') }\n")
	testutil.Eventually(t, 5*time.Second, "the new function", func() bool {
		status, _ := post(t, d.url+"/wx/functions/bad", nil, `{}`)
		return status == 500
	})
	r := fn(t, dir, "invoke", "bad")
	if r.code != ExitFailure || !strings.Contains(r.err, "bad failed: nope") || !strings.Contains(r.err, "functions/bad/index.js:1:") {
		t.Fatalf("fn invoke of a failing function against dev: %d\n%s", r.code, r.err)
	}
}

func TestLogsAgainstDev(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: lg\ndialect: wx\n")
	testutil.WriteFile(t, dir, "functions/say/index.js", "exports.main = async (e) => { console.warn('saying', e.word); return e.word }\n")
	d := startDev(t, dir)
	post(t, d.url+"/wx/functions/say", nil, `{"word":"first"}`)
	d.waitEvent("invocation", 5*time.Second, nil)
	r := fn(t, dir, "logs", "--json", "--level", "warn")
	if r.code != 0 || !strings.Contains(r.out, `"message":"saying first"`) || strings.Contains(r.out, `"level":"info"`) {
		t.Fatalf("fn logs against dev: %d %s %s", r.code, r.out, r.err)
	}
	// follow: a new call shows up, pushed
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), "logs", "-f", "--json", "--search", "second")
	cmd.Dir = dir
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	got := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			got <- sc.Text()
		}
	}()
	start := time.Now()
	post(t, d.url+"/wx/functions/say", nil, `{"word":"second"}`)
	select {
	case line := <-got:
		if !strings.Contains(line, "saying second") {
			t.Fatalf("unexpected record %s", line)
		}
		t.Logf("console.warn → fn logs -f: %v", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("fn logs -f did not show the call")
	}
}

// A function whose package is missing is named in the banner with what to run; the others serve.
func TestDevNamesFunctionsThatDidNotLoad(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: miss\ndialect: wx\n")
	testutil.WriteFile(t, dir, "functions/ok/index.js", "exports.main = async () => 'ok'\n")
	testutil.WriteFile(t, dir, "functions/needs/index.js", "const x = require('left-pad-not-installed')\nexports.main = async () => x\n")
	testutil.WriteFile(t, dir, "package.json", `{"name":"miss","dependencies":{"left-pad-not-installed":"1.0.0"}}`)
	d := startDev(t, dir)
	ready := d.waitEvent("loaded", 10*time.Second, nil)
	failed, _ := ready["failed"].(map[string]any)
	if msg := fmt.Sprint(failed["needs"]); !strings.Contains(msg, "left-pad-not-installed is not installed: run npm install in "+dir) {
		t.Fatalf("the banner should name the failed function and the fix: %v", ready)
	}
	if _, bad := failed["ok"]; bad {
		t.Fatalf("only the failing function is listed: %v", failed)
	}
	if status, _ := post(t, d.url+"/wx/functions/ok", nil, `{}`); status != 200 {
		t.Fatalf("the other functions serve: %d", status)
	}
}
