package commands

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
)

type serveProc struct {
	cmd *exec.Cmd
	url string
	out *strings.Builder
	mu  sync.Mutex
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServe runs the real fn serve with an admin token and a fake WeChat API.
func startServe(t *testing.T, dataDir, token, wechat string) *serveProc {
	t.Helper()
	return startServePort(t, dataDir, token, wechat, freePort(t))
}

func startServePort(t *testing.T, dataDir, token, wechat string, port int) *serveProc {
	t.Helper()
	cmd := exec.Command(binary(t), "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", dataDir, "--wechat-api", wechat)
	cmd.Env = append(os.Environ(), "FN_ADMIN_TOKEN="+token, "NO_COLOR=1")
	s := &serveProc{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), out: &strings.Builder{}}
	cmd.Stderr = &lockedWriter{w: s.out, mu: &s.mu}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			waitTimeout(cmd, 20*time.Second)
		}
	})
	testutil.Eventually(t, 20*time.Second, "fn serve to listen", func() bool {
		resp, err := http.Get(s.url + "/__fn/whoami")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 401
	})
	return s
}

func TestServeDeployShipLoop(t *testing.T) {
	// a fake WeChat jscode2session: code "c-alice" is alice
	wechat := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/sns/jscode2session" || r.URL.Query().Get("appid") != "wxShop" || r.URL.Query().Get("secret") != "shh" {
			fmt.Fprint(w, `{"errcode":40013,"errmsg":"invalid appid"}`)
			return
		}
		if r.URL.Query().Get("js_code") == "c-alice" {
			fmt.Fprint(w, `{"openid":"oAliceProd","session_key":"k","unionid":"uAliceProd"}`)
			return
		}
		fmt.Fprint(w, `{"errcode":40029,"errmsg":"invalid code"}`)
	}))
	defer wechat.Close()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	s := startServe(t, t.TempDir(), "admintoken-e2e", wechat.URL)

	// login: a wrong token is refused and stores nothing; the right one is stored 0600
	if r := fn(t, ".", "login", "--server", s.url, "--token", "nope"); r.code != ExitFailure || !strings.Contains(r.err, "unauthorized") {
		t.Fatalf("login with a wrong token: %d %s", r.code, r.err)
	}
	if r := fn(t, ".", "login", "--server", s.url, "--token", "admintoken-e2e"); r.code != 0 {
		t.Fatalf("login: %d %s", r.code, r.err)
	}
	cfgPath := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "fn", "credentials.json")
	if st, err := os.Stat(cfgPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", st, err)
	}
	if r := fn(t, ".", "whoami"); r.code != 0 || strings.Contains(r.out+r.err, "admintoken-e2e") {
		t.Fatalf("whoami must work and never print the token: %d %s %s", r.code, r.out, r.err)
	}

	// apps for both templates
	appJSON := func(args ...string) map[string]any {
		r := fn(t, ".", append([]string{"apps", "create", "--json"}, args...)...)
		var m map[string]any
		if err := json.Unmarshal([]byte(r.out), &m); err != nil || r.code != 0 {
			t.Fatalf("apps create %v: %d %s %s", args, r.code, r.out, r.err)
		}
		return m
	}
	lean := appJSON("app")
	wxApp := appJSON("shop", "--wx-appid", "wxShop", "--wx-secret", "shh")

	leanDir := scaffold(t, "lean", "js")
	wxDir := scaffold(t, "wx", "js")
	// deploy both (the lean template's project is named app, the wx one is deployed with --app)
	if r := fn(t, leanDir, "deploy", "--env", "production", "-m", "first", "--json"); r.code != 0 || !strings.Contains(r.out, `"changed": true`) {
		t.Fatalf("deploy lean: %d %s %s", r.code, r.out, r.err)
	}
	if r := fn(t, wxDir, "deploy", "--env", "production", "--app", "shop"); r.code != 0 {
		t.Fatalf("deploy wx: %d %s", r.code, r.err)
	}
	// a no-op deploy
	if r := fn(t, leanDir, "deploy", "--env", "production", "--json"); r.code != 0 || !strings.Contains(r.out, `"changed": false`) {
		t.Fatalf("no-op deploy: %d %s %s", r.code, r.out, r.err)
	}

	// follow the logs while calls happen
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	follow := exec.CommandContext(ctx, binary(t), "logs", "-f", "--json", "--app", "app")
	follow.Env = append(os.Environ(), "FN_SERVER="+s.url, "FN_TOKEN=admintoken-e2e")
	stdout, _ := follow.StdoutPipe()
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); follow.Wait() }()
	lines := make(chan map[string]any, 1000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
	}()

	// the real leancloud-storage client against the deployed lean app
	script := testutil.WriteFile(t, leanDir, "client.cjs", `const AV = require('leancloud-storage')
const [serverURL, appId, appKey] = process.argv.slice(2)
AV.init({ appId, appKey, serverURL })
;(async () => {
  const hello = await AV.Cloud.run('hello')
  await new AV.Object('Review').save({ movie: 'm', stars: 4, comment: 'x'.repeat(150) })
  const review = await new AV.Query('Review').first()
  let err
  try { await new AV.Object('Review').save({ movie: 'm' }) } catch (e) { err = e.code }
  console.log(JSON.stringify({ hello, comment: review.get('comment').length, err }))
})().catch((e) => { console.error(e); process.exit(1) })
`)
	start := time.Now()
	out, err := exec.Command("node", script, s.url, lean["appId"].(string), lean["appKey"].(string)).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != `{"hello":"Hello world!","comment":140,"err":142}` {
		t.Fatalf("leancloud-storage client against fn serve: %v %s", err, out)
	}
	// fn logs -f sees the call within a second
	deadline := time.After(time.Until(start.Add(time.Second)) + 2*time.Second)
	for seen := false; !seen; {
		select {
		case m := <-lines:
			seen = m["function"] == "hello" && m["invocation"] == true
		case <-deadline:
			t.Fatal("fn logs -f did not show the hello call")
		}
	}

	// the wx route with a token from the login exchange; plain identity headers are ignored
	post := func(url, auth, body string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		req.Header.Set("X-WX-OPENID", "oSpoofed")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	wxID := wxApp["appId"].(string)
	if status, _ := post(s.url+"/wx/"+wxID+"/login", "", `{"code":"bad"}`); status != 400 {
		t.Errorf("a refused code: %d", status)
	}
	_, login := post(s.url+"/wx/"+wxID+"/login", "", `{"code":"c-alice"}`)
	token, _ := login["token"].(string)
	if token == "" || login["openid"] != "oAliceProd" {
		t.Fatalf("login exchange: %v", login)
	}
	status, body := post(s.url+"/wx/"+wxID+"/production/functions/login", token, `{"a":1}`)
	res, _ := body["result"].(map[string]any)
	if status != 200 || res["openid"] != "oAliceProd" || res["appid"] != "wxShop" || res["env"] != wxApp["envId"] {
		t.Fatalf("wx call with a token: %d %v", status, body)
	}
	status, body = post(s.url+"/wx/"+wxID+"/production/functions/greet", token, `{}`)
	if res, _ := body["result"].(map[string]any); status != 200 || res["login"].(map[string]any)["openid"] != "oAliceProd" {
		t.Fatalf("cloud.callFunction in fn serve: %d %v", status, body)
	}
	if status, _ := post(s.url+"/wx/"+wxID+"/production/functions/login", "", `{}`); status != 401 {
		t.Errorf("a wx call without a token: %d", status)
	}

	// an app's key used against another app is denied
	req, _ := http.NewRequest(http.MethodPost, s.url+"/1.1/functions/hello", strings.NewReader(`{}`))
	req.Header.Set("X-LC-Id", lean["appId"].(string))
	req.Header.Set("X-LC-Key", wxApp["appKey"].(string))
	resp, _ := http.DefaultClient.Do(req)
	if resp.StatusCode != 401 {
		t.Errorf("another app's key: %d", resp.StatusCode)
	}
	resp.Body.Close()

	// redeploy a change under concurrent load: no request fails; then roll back
	callHello := func() (int, string) {
		req, _ := http.NewRequest(http.MethodPost, s.url+"/1.1/functions/hello", strings.NewReader(`{}`))
		req.Header.Set("X-LC-Id", lean["appId"].(string))
		req.Header.Set("X-LC-Key", lean["appKey"].(string))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cloud, _ := os.ReadFile(filepath.Join(leanDir, "cloud.js"))
	testutil.WriteFile(t, leanDir, "cloud.js", strings.Replace(string(cloud), "'Hello world!'", "'Hello v2!'", 1))
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var failures []string
	var calls int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for loadCtx.Err() == nil {
				status, body := callHello()
				mu.Lock()
				calls++
				if status != 200 {
					failures = append(failures, fmt.Sprint(status, body))
				}
				mu.Unlock()
			}
		}()
	}
	r := fn(t, leanDir, "deploy", "--env", "production", "-m", "v2")
	stopLoad()
	wg.Wait()
	if r.code != 0 {
		t.Fatalf("redeploy: %d %s", r.code, r.err)
	}
	if len(failures) > 0 {
		t.Fatalf("%d of %d calls failed during the deploy, e.g. %s", len(failures), calls, failures[0])
	}
	if _, body := callHello(); body != `{"result":"Hello v2!"}`+"\n" {
		t.Fatalf("after the deploy: %q", body)
	}
	if r := fn(t, leanDir, "rollback", "--env", "production"); r.code != 0 {
		t.Fatalf("rollback: %d %s", r.code, r.err)
	}
	if _, body := callHello(); body != `{"result":"Hello world!"}`+"\n" {
		t.Fatalf("after the rollback: %q", body)
	}

	// a bundle that throws at load is rejected; the running version keeps serving
	testutil.WriteFile(t, leanDir, "cloud.js", string(cloud)+"\nthrow new Error('broken at load')\n")
	if r := fn(t, leanDir, "deploy", "--env", "production"); r.code != ExitFailure || !strings.Contains(r.err, "broken at load") || !strings.Contains(r.err, "running version keeps serving") {
		t.Fatalf("broken deploy: %d %s", r.code, r.err)
	}
	if _, body := callHello(); body != `{"result":"Hello world!"}`+"\n" {
		t.Fatalf("after a rejected deploy: %q", body)
	}
	testutil.WriteFile(t, leanDir, "cloud.js", string(cloud))

	// dry-run, staging, promote
	testutil.WriteFile(t, leanDir, "cloud.js", strings.Replace(string(cloud), "'Hello world!'", "'Hello staged!'", 1))
	if r := fn(t, leanDir, "deploy", "--env", "staging", "--dry-run", "--json"); r.code != 0 || !strings.Contains(r.out, `"added": [`) {
		t.Fatalf("dry-run: %d %s %s", r.code, r.out, r.err)
	}
	if vs := fn(t, leanDir, "versions", "--env", "staging", "--json"); strings.TrimSpace(vs.out) != "[]" {
		t.Fatalf("a dry run deployed something: %s", vs.out)
	}
	if r := fn(t, leanDir, "deploy", "--env", "staging"); r.code != 0 {
		t.Fatalf("staging deploy: %d %s", r.code, r.err)
	}
	req, _ = http.NewRequest(http.MethodPost, s.url+"/1.1/functions/hello", strings.NewReader(`{}`))
	req.Header.Set("X-LC-Id", lean["appId"].(string))
	req.Header.Set("X-LC-Key", lean["appKey"].(string))
	req.Header.Set("X-LC-Prod", "0")
	resp, _ = http.DefaultClient.Do(req)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != `{"result":"Hello staged!"}`+"\n" {
		t.Fatalf("staging: %s", b)
	}
	if r := fn(t, leanDir, "promote"); r.code != 0 {
		t.Fatalf("promote: %d %s", r.code, r.err)
	}
	if _, body := callHello(); body != `{"result":"Hello staged!"}`+"\n" {
		t.Fatalf("after promote: %q", body)
	}

	// secrets reach the functions and are never printed back
	if r := fn(t, wxDir, "secrets", "set", "SUM_LABEL", "--value", "secret-total", "--app", "shop"); r.code != 0 {
		t.Fatalf("secrets set: %d %s", r.code, r.err)
	}
	status, body = post(s.url+"/wx/"+wxID+"/production/functions/sum", token, `{"a":1,"b":2}`)
	if res, _ := body["result"].(map[string]any); status != 200 || res["secret-total"] != 3.0 {
		t.Fatalf("secret as env var: %d %v", status, body)
	}
	if r := fn(t, wxDir, "secrets", "list", "--app", "shop"); r.code != 0 || strings.TrimSpace(r.out) != "SUM_LABEL" || strings.Contains(r.out, "secret-total") {
		t.Fatalf("secrets list: %d %q", r.code, r.out)
	}

	// fn invoke --remote
	if r := fn(t, wxDir, "invoke", "sum", "--remote", "--app", "shop", "--data", `{"a":2,"b":5}`); r.code != 0 || !strings.Contains(r.out, `"secret-total": 7`) {
		t.Fatalf("invoke --remote wx: %d %s %s", r.code, r.out, r.err)
	}
	if r := fn(t, wxDir, "invoke", "sum", "--remote", "--app", "shop", "--data", `{"a":"x"}`); r.code != ExitFailure || !strings.Contains(r.err, "sum needs two numbers") {
		t.Fatalf("invoke --remote failing: %d %s", r.code, r.err)
	}
	if r := fn(t, leanDir, "invoke", "hello", "--remote"); r.code != 0 || strings.TrimSpace(r.out) != `"Hello staged!"` {
		t.Fatalf("invoke --remote lean: %d %s %s", r.code, r.out, r.err)
	}

	// SIGTERM drains and stops every worker
	workers := childNodes(s.cmd.Process.Pid)
	if len(workers) < 2 {
		t.Fatalf("expected node workers under fn serve, found %v", workers)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	waitTimeout(s.cmd, 30*time.Second)
	for _, pid := range workers {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("worker %d survived SIGTERM", pid)
		}
	}
}

func TestServeFirstStartPrintsTheAdminTokenOnce(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	run := func() (*exec.Cmd, map[string]any) {
		cmd := exec.Command(binary(t), "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", dir, "--json")
		cmd.Env = append(os.Environ(), "FN_ADMIN_TOKEN=")
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var ev map[string]any
		json.NewDecoder(out).Decode(&ev)
		return cmd, ev
	}
	cmd, ev := run()
	token, _ := ev["adminToken"].(string)
	cmd.Process.Signal(syscall.SIGTERM)
	waitTimeout(cmd, 10*time.Second)
	if !strings.HasPrefix(token, "fnadm_") {
		t.Fatalf("first start: %v", ev)
	}
	sum := sha256.Sum256([]byte(token))
	var stored strings.Builder
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			stored.Write(b)
		}
		return nil
	})
	if strings.Contains(stored.String(), token) || !strings.Contains(stored.String(), hex.EncodeToString(sum[:])) {
		t.Fatal("only the token's hash may be stored")
	}
	cmd, ev = run()
	defer func() { cmd.Process.Signal(syscall.SIGTERM); waitTimeout(cmd, 10*time.Second) }()
	if ev["adminToken"] != "" {
		t.Fatalf("the token is printed only on the first start: %v", ev)
	}
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/__fn/whoami", port), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the first token still works after a restart: %v %v", err, resp)
	}
	resp.Body.Close()
}

func TestServeRejectsBadInput(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	s := startServe(t, t.TempDir(), "tok", "http://127.0.0.1:1")
	t.Setenv("FN_SERVER", s.url)
	t.Setenv("FN_TOKEN", "tok")
	r := fn(t, ".", "apps", "create", "bad", "--json")
	var app map[string]any
	json.Unmarshal([]byte(r.out), &app)
	appID := app["appId"].(string)
	do := func(method, path, token, body string) (int, string) {
		req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	hashOf := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" // sha256("")
	cases := []struct {
		name, method, path, token, body string
		status                          int
		want                            string
	}{
		{"wrong token", "GET", "/__fn/apps", "nope", "", 401, "unauthorized"},
		{"tampered upload", "PUT", "/__fn/apps/" + appID + "/blobs/" + hashOf, "tok", "not empty", 400, "does not match its content"},
		{"bad hash", "PUT", "/__fn/apps/" + appID + "/blobs/..%2F..%2Fetc", "tok", "x", 400, "invalid artifact hash"},
		{"missing blobs", "POST", "/__fn/apps/" + appID + "/deploy", "tok", `{"env":"production","manifest":{"dialect":"wx","bundles":[{"name":"f","hash":"` + strings.Repeat("a", 64) + `","mapHash":"` + strings.Repeat("b", 64) + `","config":{"timeout":3,"memory":256}}]}}`, 400, "references artifacts the server does not have"},
		{"path in a bundle name", "POST", "/__fn/apps/" + appID + "/deploy", "tok", `{"env":"production","manifest":{"dialect":"wx","bundles":[{"name":"../evil","hash":"` + hashOf + `","mapHash":"` + hashOf + `","config":{"timeout":3,"memory":256}}]}}`, 400, `invalid or repeated bundle name \"../evil`},
		{"unknown env", "POST", "/__fn/apps/" + appID + "/deploy", "tok", `{"env":"prod","manifest":{"dialect":"wx","bundles":[]}}`, 400, `unknown environment \"prod`},
		{"unknown app", "GET", "/__fn/apps/nope/versions", "tok", "", 404, "no such app"},
		{"bad since", "GET", "/__fn/apps/" + appID + "/logs?since=yesterday", "tok", "", 400, "since must be an RFC 3339 time"},
	}
	for _, c := range cases {
		status, body := do(c.method, c.path, c.token, c.body)
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s", c.name, status, body)
		}
	}
	// an oversized upload is refused and nothing is kept
	big := strings.Repeat("x", 51<<20)
	if status, body := do("PUT", "/__fn/apps/"+appID+"/blobs/"+strings.Repeat("c", 64), "tok", big); status != 400 || !strings.Contains(body, "larger than") {
		t.Errorf("oversized upload: %d %s", status, body)
	}
	if status, body := do("POST", "/__fn/apps/"+appID+"/blobs/missing", "tok", `{"hashes":["`+strings.Repeat("c", 64)+`","`+hashOf+`"]}`); status != 200 || strings.Count(body, `"c`) != 1 {
		t.Errorf("after rejected uploads nothing is stored: %d %s", status, body)
	}
	if r := fn(t, ".", "versions", "--app", "bad", "--json"); strings.TrimSpace(r.out) != "[]" {
		t.Errorf("bad input changed the versions: %s", r.out)
	}
	// CLI-side bad input
	if r := fn(t, ".", "logs", "--app", "bad", "--since", "yesterday"); r.code != ExitUsage || !strings.Contains(r.err, `--since "yesterday"`) {
		t.Errorf("--since: %d %s", r.code, r.err)
	}
	if r := fn(t, ".", "deploy", "--app", "bad"); r.code != ExitUsage || !strings.Contains(r.err, "--env is required") {
		t.Errorf("deploy without --env: %d %s", r.code, r.err)
	}
	if r := fn(t, ".", "deploy", "--app", "bad", "--env", "prod"); r.code != ExitUsage {
		t.Errorf("unknown env: %d %s", r.code, r.err)
	}
}

func TestServeRunsTimersPerEnvironment(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	s := startServe(t, t.TempDir(), "tok", "http://127.0.0.1:1")
	t.Setenv("FN_SERVER", s.url)
	t.Setenv("FN_TOKEN", "tok")
	if r := fn(t, ".", "apps", "create", "ticker"); r.code != 0 {
		t.Fatal(r.err)
	}
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: ticker\ndialect: wx\ntimers:\n  tick:\n    function: job\n    cron: '* * * * * ?'\n    environments: [staging]\n")
	testutil.WriteFile(t, dir, "functions/job/index.js", "exports.main = async (e) => { console.log('tick from', process.env.TRIGGER_SRC); return 1 }\n")
	for _, env := range []string{"production", "staging"} {
		if r := fn(t, dir, "deploy", "--env", env); r.code != 0 {
			t.Fatalf("deploy %s: %d %s", env, r.code, r.err)
		}
	}
	count := func(env string) int {
		r := fn(t, dir, "logs", "--json", "--env", env, "--search", "tick from timer")
		return strings.Count(r.out, "\n")
	}
	testutil.Eventually(t, 10*time.Second, "two staging timer runs", func() bool { return count("staging") >= 2 })
	if n := count("production"); n != 0 {
		t.Errorf("the timer is for staging only, yet production ran it %d times", n)
	}
	// remote control of the deployed timers
	if r := fn(t, dir, "timers", "disable", "tick", "--remote", "--env", "staging"); r.code != 0 {
		t.Fatalf("remote disable: %d %s", r.code, r.err)
	}
	r := fn(t, dir, "timers", "list", "--remote", "--env", "staging", "--json")
	var list []timerListing
	if err := json.Unmarshal([]byte(r.out), &list); err != nil || len(list) != 1 || list[0].State != "disabled" {
		t.Fatalf("remote list: %v %s %s", err, r.out, r.err)
	}
	if r := fn(t, dir, "timers", "trigger", "tick", "--remote", "--env", "production"); r.code != ExitFailure || !strings.Contains(r.err, "production has no timers") {
		t.Fatalf("trigger in an environment without timers: %d %s", r.code, r.err)
	}
	before := count("staging")
	if r := fn(t, dir, "timers", "trigger", "tick", "--remote", "--env", "staging"); r.code != 0 {
		t.Fatalf("remote trigger: %d %s", r.code, r.err)
	}
	testutil.Eventually(t, 5*time.Second, "the triggered run", func() bool { return count("staging") > before })
}

// A generated admin token is printed once, and the login hint does not put it on a command line
// (where it would stay in the shell's history).
func TestServeGeneratedTokenHint(t *testing.T) {
	port := freePort(t)
	cmd := exec.Command(binary(t), "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", t.TempDir())
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FN_ADMIN_TOKEN=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "NO_COLOR=1")
	var mu sync.Mutex
	out := &strings.Builder{}
	cmd.Stderr = &lockedWriter{w: out, mu: &mu}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		waitTimeout(cmd, 20*time.Second)
	}()
	read := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	testutil.Eventually(t, 20*time.Second, "the login hint", func() bool { return strings.Contains(read(), "log in with:") })
	text := read()
	m := regexp.MustCompile(`admin token \(shown once, only its hash is kept\): (\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no generated token in:\n%s", text)
	}
	if n := strings.Count(text, m[1]); n != 1 {
		t.Fatalf("the token is printed %d times:\n%s", n, text)
	}
	if hint := text[strings.Index(text, "log in with:"):]; strings.Contains(strings.SplitN(hint, "\n", 2)[0], "--token") {
		t.Fatalf("the login hint puts the token on the command line:\n%s", text)
	}
}
