package security

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/sandbox"
)

// 1. The wx-server-sdk's /admin channel serves only tokens issued to running invocations.
func TestAdminChannelRefusesCallersWithoutAnIssuedToken(t *testing.T) {
	f := shared(t)
	url := f.s.url + "/wx/" + f.wx.ID + "/production/admin"
	for _, body := range []string{
		`{"action":"functions.invokeFunction","function_name":"internal","request_data":"{}"}`,
		`{"action":"functions.invokeFunction","function_name":"internal","request_data":"{}","wxCloudApiToken":"forged-token"}`,
		`{"action":"functions.invokeFunction","function_name":"internal","request_data":"{}","wxCloudApiToken":""}`,
	} {
		status, m, raw := do(t, nil, http.MethodPost, url, nil, body)
		if status != http.StatusUnauthorized || m["code"] != "INVALID_ACCESS_TOKEN" || strings.Contains(raw, "internal-only-result") {
			t.Errorf("%s: %d %s", body, status, raw)
		}
		if msg, _ := m["message"].(string); !strings.Contains(msg, "wxCloudApiToken") {
			t.Errorf("the refusal must say what was wrong: %s", raw)
		}
	}
	// the real SDK inside a running function still calls through it with its own token
	token := wxLogin(t, f.s, f.wx, "alice")
	status, m := wxCall(t, f.s, f.wx, "production", "nested", token, `{}`)
	if res, _ := m["result"].(map[string]any); status != 200 || res["secret"] != "internal-only-result" {
		t.Fatalf("a nested call from a running function: %d %v", status, m)
	}
}

// 2. authData is verified with the platform; other users' private fields are hidden.
func TestAuthDataTakeoverAndPrivateFields(t *testing.T) {
	f := shared(t)
	victim := fmt.Sprintf("victim%d", time.Now().UnixNano())
	status, m := lean(t, f.s, f.lean, http.MethodPost, "/1.1/users", nil,
		`{"username":"`+victim+`","password":"pw-victim","email":"`+victim+`@example.com","mobilePhoneNumber":"18600001111","authData":{"weixin":{"openid":"o`+victim+`","access_token":"real"}}}`)
	if status == 201 || status == 200 {
		// the fake WeChat refuses every access token: signing up with it must fail too
		t.Fatalf("unverifiable authData accepted at sign-up: %d %v", status, m)
	}
	status, m = lean(t, f.s, f.lean, http.MethodPost, "/1.1/users", nil,
		`{"username":"`+victim+`","password":"pw-victim","email":"`+victim+`@example.com","mobilePhoneNumber":"18600001111"}`)
	if status != 201 {
		t.Fatalf("sign-up: %d %v", status, m)
	}
	victimID := m["objectId"].(string)
	// the attacker claims the victim's openid without a valid access token
	status, m = lean(t, f.s, f.lean, http.MethodPost, "/1.1/users", nil, `{"authData":{"weixin":{"openid":"o`+victim+`","access_token":"stolen"}}}`)
	if status < 400 || m["sessionToken"] != nil {
		t.Fatalf("authData without a valid access token: %d %v", status, m)
	}
	// another user reads the victim: no email, phone or authData
	status, m = lean(t, f.s, f.lean, http.MethodPost, "/1.1/users", nil, `{"username":"snoop`+victim+`","password":"pw-snoop"}`)
	if status != 201 {
		t.Fatalf("snoop sign-up: %d %v", status, m)
	}
	snoop := m["sessionToken"].(string)
	status, m = lean(t, f.s, f.lean, http.MethodGet, "/1.1/users/"+victimID, map[string]string{"X-LC-Session": snoop}, "")
	if status != 200 || m["email"] != nil || m["mobilePhoneNumber"] != nil || m["authData"] != nil {
		t.Fatalf("another user's private fields: %d %v", status, m)
	}
}

// 3. Users are deleted only by themselves or the master key; verification flags are the server's.
func TestUsersDeletedOnlyByThemselves(t *testing.T) {
	f := shared(t)
	name := fmt.Sprintf("u%d", time.Now().UnixNano())
	status, m := lean(t, f.s, f.lean, http.MethodPost, "/1.1/users", nil, `{"username":"`+name+`","password":"pw","email":"`+name+`@example.com","emailVerified":true,"mobilePhoneVerified":true}`)
	if status != 201 {
		t.Fatalf("sign-up: %d %v", status, m)
	}
	id, own := m["objectId"].(string), m["sessionToken"].(string)
	status, m = lean(t, f.s, f.lean, http.MethodGet, "/1.1/users/me", map[string]string{"X-LC-Session": own}, "")
	if m["emailVerified"] == true || m["mobilePhoneVerified"] == true {
		t.Errorf("sign-up set server-owned verification flags: %v", m)
	}
	if status, m := lean(t, f.s, f.lean, http.MethodPut, "/1.1/users/"+id, map[string]string{"X-LC-Session": own}, `{"emailVerified":true}`); status < 400 {
		if _, m2 := lean(t, f.s, f.lean, http.MethodGet, "/1.1/users/me", map[string]string{"X-LC-Session": own}, ""); m2["emailVerified"] == true {
			t.Errorf("a user's own PUT set emailVerified: %d %v", status, m)
		}
	}
	_, other := lean(t, f.s, f.lean, http.MethodPost, "/1.1/users", nil, `{"username":"o`+name+`","password":"pw"}`)
	for _, h := range []map[string]string{nil, {"X-LC-Session": other["sessionToken"].(string)}} {
		if status, m := lean(t, f.s, f.lean, http.MethodDelete, "/1.1/classes/_User/"+id, h, ""); status < 400 {
			t.Fatalf("DELETE of another user with %v: %d %v", h, status, m)
		}
	}
	if status, _ := lean(t, f.s, f.lean, http.MethodGet, "/1.1/users/"+id, nil, ""); status != 200 {
		t.Fatalf("the user is gone after refused deletes: %d", status)
	}
	if status, m := lean(t, f.s, f.lean, http.MethodDelete, "/1.1/users/"+id, map[string]string{"X-LC-Session": own}, ""); status != 200 {
		t.Fatalf("the user deleting themself: %d %v", status, m)
	}
	_ = status
}

// 4. An unreachable WeChat never puts the app secret in an answer or a log.
func TestWeChatErrorsNeverCarryTheSecret(t *testing.T) {
	f := shared(t)
	f.s.wechat.hangUp.Store(true)
	status, _, raw := do(t, nil, http.MethodPost, f.s.url+"/wx/"+f.wx.ID+"/login", nil, `{"code":"c-eve"}`)
	f.s.wechat.hangUp.Store(false)
	if status < 400 || strings.Contains(raw, "shh-app-secret") || strings.Contains(raw, "secret=") {
		t.Fatalf("wx login with WeChat unreachable: %d %s", status, raw)
	}
	_, _, logs := do(t, nil, http.MethodGet, f.s.url+"/__fn/apps/"+f.wx.ID+"/logs?limit=200", map[string]string{"Authorization": "Bearer " + adminToken}, "")
	if strings.Contains(logs, "shh-app-secret") || strings.Contains(f.s.stderr.String(), "shh-app-secret") {
		t.Fatal("the app secret reached the logs")
	}
}

// 5. Functions see only their app's environment and files.
func TestFunctionsAreIsolated(t *testing.T) {
	f := shared(t)
	st := sandbox.Check()
	check := func(name string, out map[string]any) {
		t.Helper()
		if leaked, _ := out["leaked"].([]any); len(leaked) > 0 {
			t.Errorf("%s: fn serve's environment leaked: %v", name, leaked)
		}
		if home, _ := out["home"].(string); !strings.Contains(home, filepath.Join("scratch", "production")) {
			t.Errorf("%s: HOME is not the app environment's scratch dir: %v", name, out["home"])
		}
		if cwd, _ := out["cwd"].(string); !strings.Contains(cwd, filepath.Join("versions")) {
			t.Errorf("%s: working directory is not the version's: %v", name, cwd)
		}
		if !st.Enforced {
			t.Logf("sandbox not enforced on this kernel (%s): file isolation not checked", st.Reason)
			return
		}
		for _, k := range []string{"controlDB", "logsDB", "otherApp", "ownData", "environ", "shadow", "versionDir", "tmp", "listData"} {
			if v, _ := out[k].(string); v == "READ" || v == "WROTE" || v == "LISTED" || v == "" {
				t.Errorf("%s: %s = %q (all: %v)", name, k, v, out)
			}
		}
		if out["shell"] != "denied" || out["scratch"] != "WROTE" {
			t.Errorf("%s: a child process read control.db (%v) or the scratch dir was not writable (%v)", name, out["shell"], out["scratch"])
		}
	}
	status, m := f.s.invoke(f.wx.ID, "production", "probe", `{"other":"`+f.oth.ID+`"}`)
	var out map[string]any
	if b, _ := json.Marshal(m["result"]); status != 200 || json.Unmarshal(b, &out) != nil || out == nil {
		t.Fatalf("wx probe: %d %v", status, m)
	}
	check("wx", out)
	status, m = lean(t, f.s, f.lean, http.MethodPost, "/1.1/functions/probe", nil, `{"other":"`+f.oth.ID+`"}`)
	out, _ = m["result"].(map[string]any)
	if status != 200 || out == nil {
		t.Fatalf("lean probe: %d %v", status, m)
	}
	check("lean", out)
	// one app's key opens nothing of another app
	if status, _ := lean(t, f.s, app{ID: f.oth.ID, AppKey: f.lean.AppKey}, http.MethodGet, "/1.1/classes/Private", nil, ""); status != 401 {
		t.Errorf("another app's key read gamma's data: %d", status)
	}
	if status, _ := lean(t, f.s, app{ID: f.oth.ID, AppKey: f.lean.MasterKey + ",master"}, http.MethodGet, "/1.1/classes/Private", nil, ""); status != 401 {
		t.Errorf("another app's master key read gamma's data: %d", status)
	}
	if !strings.Contains(f.s.stderr.String(), "sandbox: ") {
		t.Errorf("fn serve must say at start whether the sandbox is enforced: %s", f.s.stderr)
	}
}

// 6. Every process a function spawns dies with its worker, and with fn serve.
func TestOrphansDieWithTheirWorker(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "data"), newFakeWeChat(t))
	a := s.createApp("orph")
	dir := wxProject(t, "orph", map[string]string{"storm": wxStorm}, "  storm:\n    timeout: 2\n    memory: 128\n")
	s.mustDeploy(dir, "orph", "production")
	spawn := func() []int {
		status, m := s.invoke(a.ID, "production", "storm", `{"mode":"spawn"}`)
		pids, _ := m["result"].([]any)
		if status != 200 || len(pids) != 2 {
			t.Fatalf("spawn: %d %v", status, m)
		}
		return []int{int(pids[0].(float64)), int(pids[1].(float64))}
	}
	pids := spawn()
	for _, p := range pids {
		if !alive(p) {
			t.Fatalf("the spawned process %d is not running", p)
		}
	}
	if status, m := s.invoke(a.ID, "production", "storm", `{"mode":"exit"}`); status != 200 || m["error"] == nil {
		t.Fatalf("a crashing call must fail: %d %v", status, m)
	}
	testutil.Eventually(t, 15*time.Second, "the crashed worker's children to die", func() bool { return !alive(pids[0]) && !alive(pids[1]) })
	pids = spawn()
	s.stop()
	testutil.Eventually(t, 15*time.Second, "the children to die with fn serve", func() bool { return !alive(pids[0]) && !alive(pids[1]) })
}

// 7. Output is bounded: 100 MB without a newline neither bloats fn serve nor its logs.
func TestFloodedOutputIsBounded(t *testing.T) {
	f := shared(t)
	before := rssKB(f.s.cmd.Process.Pid)
	status, m := f.s.invoke(f.wx.ID, "production", "storm", `{"mode":"flood"}`)
	if status != 200 {
		t.Fatalf("flood: %d %v", status, m)
	}
	grown := rssKB(f.s.cmd.Process.Pid) - before
	if grown > 100<<10 {
		t.Errorf("fn serve grew by %d MB for 100 MB of output", grown>>10)
	}
	_, _, raw := do(t, nil, http.MethodGet, f.s.url+"/__fn/apps/"+f.wx.ID+"/logs?limit=1000", map[string]string{"Authorization": "Bearer " + adminToken}, "")
	if len(raw) > 2<<20 {
		t.Fatalf("the log read answered %d bytes", len(raw))
	}
	for _, line := range strings.Split(raw, "\n") {
		if len(line) > 80<<10 {
			t.Fatalf("a log record of %d bytes", len(line))
		}
	}
}

// 8. Concurrent deploys to two environments never share a version id.
func TestConcurrentDeploysGetDistinctVersions(t *testing.T) {
	f := shared(t)
	dir := wxProject(t, "alpha", map[string]string{"internal": wxInternal, "probe": wxProbe, "nested": wxNested, "storm": wxStorm},
		"  storm:\n    timeout: 2\n    memory: 128\n  nested:\n    timeout: 10\n")
	writeFile(t, dir+"/functions/probe/probe.js", probeJS)
	var wg sync.WaitGroup
	res := make([]result, 2)
	for i, env := range []string{"staging", "production"} {
		wg.Add(1)
		go func(i int, env string) {
			defer wg.Done()
			res[i] = f.s.fn(dir, "deploy", "--env", env, "--app", "alpha", "--json", "-m", "race")
		}(i, env)
	}
	wg.Wait()
	ids := map[float64]bool{}
	for _, r := range res {
		var m map[string]any
		if r.code != 0 || json.Unmarshal([]byte(r.out), &m) != nil {
			t.Fatalf("deploy: %d %s %s", r.code, r.out, r.err)
		}
		v, _ := m["version"].(float64)
		if vv, ok := m["version"].(map[string]any); ok {
			v, _ = vv["id"].(float64)
		}
		if ids[v] {
			t.Fatalf("two deploys got version %v: %s", v, r.out)
		}
		ids[v] = true
	}
}

// 9. Reserved secret names are refused before anything is saved.
func TestReservedSecretNamesAreNotSaved(t *testing.T) {
	f := shared(t)
	for _, name := range []string{"NODE_OPTIONS", "LEANCLOUD_APP_KEY", "WX_OPENID", "TCB_ENV", "PATH"} {
		status, _, raw := do(t, nil, http.MethodPut, f.s.url+"/__fn/apps/"+f.lean.ID+"/secrets/"+name,
			map[string]string{"Authorization": "Bearer " + adminToken, "Content-Type": "application/json"}, `{"value":"--require /nonexistent"}`)
		if status != 422 && status != 400 {
			t.Errorf("secret %s: %d %s", name, status, raw)
		}
	}
	_, _, raw := do(t, nil, http.MethodGet, f.s.url+"/__fn/apps/"+f.lean.ID+"/secrets", map[string]string{"Authorization": "Bearer " + adminToken}, "")
	if strings.Contains(raw, "NODE_OPTIONS") {
		t.Fatalf("a refused secret was saved: %s", raw)
	}
	if status, _ := lean(t, f.s, f.lean, http.MethodPost, "/1.1/functions/hello", nil, `{}`); status != 200 {
		t.Fatalf("the app stopped serving: %d", status)
	}
}

// 10. Calls that arrive while functions load wait for them (fn serve loads wx workers lazily).
func TestCallsDuringLoadWait(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "data"), newFakeWeChat(t))
	a := s.createApp("slow", "--wx-appid", "wxSec", "--wx-secret", "shh-app-secret")
	slow := `const until = Date.now() + 300; while (Date.now() < until) {}
exports.main = async () => 'loaded'
`
	dir := wxProject(t, "slow", map[string]string{"slowload": slow}, "")
	s.mustDeploy(dir, "slow", "production")
	token := wxLogin(t, s, a, "bob")
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, m := wxCall(t, s, a, "production", "slowload", token, `{}`)
			if status != 200 || m["result"] != "loaded" {
				errs <- fmt.Sprint(status, m)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error("a call during the first load:", e)
	}
	// wx sessions are kept in the control plane: the token outlives a restart
	s.restart()
	if status, m := wxCall(t, s, a, "production", "slowload", token, `{}`); status != 200 || m["result"] != "loaded" {
		t.Fatalf("a token after a restart: %d %v", status, m)
	}
}

// 11. The data directory and everything in it belong to fn's user only.
func TestDataDirIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	os.MkdirAll(filepath.Join(dir, "apps"), 0o755)
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Join(dir, "apps"), 0o755)
	os.WriteFile(filepath.Join(dir, "apps", "left-over"), []byte("x"), 0o644)
	s := startServe(t, dir, newFakeWeChat(t))
	if !strings.Contains(s.stderr.String(), "warning: data directory") {
		t.Errorf("no warning about a world-readable data directory: %s", s.stderr)
	}
	a := s.createApp("perm")
	d := leanProject(t, "perm", leanCloud)
	writeFile(t, d+"/probe.js", probeJS)
	s.mustDeploy(d, "perm", "production")
	if status, _ := lean(t, s, a, http.MethodPost, "/1.1/users", nil, `{"username":"p","password":"pw"}`); status != 201 {
		t.Fatalf("sign-up: %d", status)
	}
	if status, _ := lean(t, s, a, http.MethodPost, "/1.1/functions/probe", nil, `{}`); status != 200 {
		t.Fatalf("probe: %d", status)
	}
	s.stop()
	var wide []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, _ := d.Info()
		if info.Mode().Perm()&0o077 != 0 {
			wide = append(wide, fmt.Sprintf("%s %04o", strings.TrimPrefix(p, dir), info.Mode().Perm()))
		}
		return nil
	})
	if len(wide) > 0 {
		t.Fatalf("readable by other users: %v", wide)
	}
}

// The default --data-dir is relative (fn-data): workers, which run in their version's
// directory, still find the runner and their bundles, and stay confined.
func TestRelativeDataDir(t *testing.T) {
	cwd := t.TempDir()
	s := &serve{t: t, dataDir: "fn-data", wechat: newFakeWeChat(t), port: freePort(t), cwd: cwd}
	s.url = fmt.Sprintf("http://127.0.0.1:%d", s.port)
	s.start()
	t.Cleanup(s.stop)
	a := s.createApp("rel")
	d := leanProject(t, "rel", leanCloud)
	writeFile(t, d+"/probe.js", probeJS)
	s.mustDeploy(d, "rel", "production")
	status, m := lean(t, s, a, http.MethodPost, "/1.1/functions/probe", nil, `{}`)
	out, _ := m["result"].(map[string]any)
	if status != 200 || out == nil {
		t.Fatalf("a function under a relative data directory: %d %v", status, m)
	}
	if sandbox.Check().Enforced && (out["controlDB"] == "READ" || out["scratch"] != "WROTE") {
		t.Fatalf("confinement under a relative data directory: %v", out)
	}
}
