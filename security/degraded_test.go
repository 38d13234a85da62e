package security

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/server"
)

// Slow clients are cut by the read timeouts, one address cannot hold more than its share of
// connections, and a normal client is served meanwhile.
func TestSlowClientsAreCut(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "data"), newFakeWeChat(t),
		"--read-header-timeout", "1s", "--read-timeout", "2s", "--max-conns-per-ip", "20")
	a := s.createApp("slow")
	const n = 100
	var closed atomic.Int32
	stop := make(chan struct{})
	defer close(stop)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", s.url[len("http://"):])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// half dribble their headers, half a body that never ends
		// (with the app's credentials, so that the server reads the body rather than refusing early)
		head := "POST /1.1/classes/Slow HTTP/1.1\r\nHost: x\r\nX-LC-Id: " + a.ID + "\r\nX-LC-Key: " + a.AppKey +
			"\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{\"v\":\""
		if i%2 == 0 {
			c.Write([]byte(head))
		} else {
			c.Write([]byte("POST /1.1/classes/Slow HTTP/1.1\r\n"))
		}
		go func(c net.Conn) {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := c.Write([]byte("X")); err != nil {
						return
					}
				}
			}
		}(c)
		go func(c net.Conn) {
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					closed.Add(1)
					return
				}
			}
		}(c)
	}
	// another address is served while the slow connections are open
	status, _, _ := do(t, clientFrom("127.0.0.2"), http.MethodGet, s.url+"/__fn/whoami", nil, "")
	if status != http.StatusUnauthorized {
		t.Fatalf("a normal client during the attack: %d", status)
	}
	testutil.Eventually(t, 20*time.Second, "every slow connection to be cut", func() bool { return closed.Load() == n })
	status, _, _ = do(t, nil, http.MethodGet, s.url+"/__fn/whoami", nil, "")
	if status != http.StatusUnauthorized {
		t.Fatalf("the attacker's address after the attack: %d", status)
	}
}

// Costly queries are bounded (answered or refused with LeanCloud's 124), never left running.
func TestQueryCostIsBounded(t *testing.T) {
	f := shared(t)
	var reqs []string
	for i := 0; i < 1000; i++ {
		reqs = append(reqs, fmt.Sprintf(`{"method":"POST","path":"/1.1/classes/Costly","body":{"name":"n%d","i":%d}}`, i, i))
	}
	for i := 0; i < len(reqs); i += 50 {
		if status, m := lean(t, f.s, f.lean, http.MethodPost, "/1.1/batch", nil, `{"requests":[`+strings.Join(reqs[i:i+50], ",")+`]}`); status != 200 {
			t.Fatalf("batch: %d %v", status, m)
		}
	}
	in := make([]string, 3000)
	for i := range in {
		in[i] = fmt.Sprintf(`"v%d"`, i)
	}
	for name, where := range map[string]string{
		"26 KB $regex": `{"name":{"$regex":"` + strings.Repeat("(a|b)*c", 3700) + `"}}`,
		"3000 $in":     `{"name":{"$in":[` + strings.Join(in, ",") + `]}}`,
	} {
		status, m := lean(t, f.s, f.lean, http.MethodGet, "/1.1/classes/Costly?where="+url.QueryEscape(where), nil, "")
		code, _ := m["code"].(float64)
		if status != 200 && code != 124 && status != 400 {
			t.Errorf("%s: %d %v", name, status, m)
		}
	}
	if status, _ := lean(t, f.s, f.lean, http.MethodPost, "/1.1/functions/hello", nil, `{}`); status != 200 {
		t.Fatalf("the app after costly queries: %d", status)
	}
}

// Timers that would fire without pause are refused by the server, whatever the client sends.
func TestBadTimerManifestsAreRefused(t *testing.T) {
	f := shared(t)
	auth := map[string]string{"Authorization": "Bearer " + adminToken, "Content-Type": "application/json"}
	upload := func(content string) string {
		sum := sha256.Sum256([]byte(content))
		h := hex.EncodeToString(sum[:])
		if status, _, raw := do(t, nil, http.MethodPut, f.s.url+"/__fn/apps/"+f.lean.ID+"/blobs/"+h, auth, content); status >= 300 {
			t.Fatalf("upload: %d %s", status, raw)
		}
		return h
	}
	js := upload("const AV = require('leanengine'); AV.Cloud.define('tick', async () => 1)\n")
	mp := upload(`{"version":3,"sources":[],"mappings":""}`)
	for _, timer := range []string{`{"name":"t","function":"tick","interval":0}`, `{"name":"t","function":"tick","cron":"bogus"}`} {
		body := `{"env":"staging","message":"x","manifest":{"dialect":"lean","bundles":[{"name":"cloud","hash":"` + js + `","mapHash":"` + mp +
			`","size":70,"config":{"timeout":5,"memory":256}}],"timers":[` + timer + `]}}`
		status, _, raw := do(t, nil, http.MethodPost, f.s.url+"/__fn/apps/"+f.lean.ID+"/deploy", auth, body)
		if status != 422 && status != 400 {
			t.Errorf("timer %s: %d %s", timer, status, raw)
		}
		if !strings.Contains(strings.ToLower(raw), "timer") {
			t.Errorf("the refusal must name the timer: %s", raw)
		}
	}
}

// A 40-function release does not start 40 Node processes: it is checked in at most two
// workers at a time, then each function starts a worker on its first call.
func TestManyFunctionsStartLazily(t *testing.T) {
	f := shared(t)
	a := f.s.createApp("many", "--wx-appid", "wxSec", "--wx-secret", "shh-app-secret")
	fns := map[string]string{}
	for i := 0; i < 40; i++ {
		fns[fmt.Sprintf("f%02d", i)] = fmt.Sprintf("exports.main = async () => %d\n", i)
	}
	dir := wxProject(t, "many", fns, "")
	pid := f.s.cmd.Process.Pid
	base := nodeWorkers(pid)
	var peak atomic.Int32
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if n := int32(nodeWorkers(pid) - base); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	f.s.mustDeploy(dir, "many", "production")
	close(done)
	<-sampled
	if p := peak.Load(); p > 2 {
		t.Errorf("deploying 40 functions ran %d node processes at once", p)
	}
	if n := nodeWorkers(pid) - base; n != 0 {
		t.Errorf("%d workers started before any call", n)
	}
	token := wxLogin(t, f.s, a, "carol")
	for i := 0; i < 3; i++ {
		if status, m := wxCall(t, f.s, a, "production", fmt.Sprintf("f%02d", i), token, `{}`); status != 200 || m["result"] != float64(i) {
			t.Fatalf("f%02d: %d %v", i, status, m)
		}
	}
	if n := nodeWorkers(pid) - base; n != 3 {
		t.Errorf("3 functions called, %d workers", n)
	}
	// calling 20 of them keeps at most 16 workers: idle ones retire to make room
	for i := 3; i < 20; i++ {
		if status, _ := wxCall(t, f.s, a, "production", fmt.Sprintf("f%02d", i), token, `{}`); status != 200 {
			t.Fatalf("f%02d: %d", i, status)
		}
	}
	testutil.Eventually(t, 10*time.Second, "the app environment to keep at most 16 workers", func() bool { return nodeWorkers(pid)-base <= 16 })
	// a broken one among many is refused at deploy, as an eager load would
	fns["f39"] = "throw new Error('broken at load')\n"
	testutil.WriteFile(t, dir, "functions/f39/index.js", fns["f39"])
	if r := f.s.deploy(dir, "many", "production"); r.code == 0 || !strings.Contains(r.err, "broken at load") {
		t.Fatalf("a broken bundle among 40: %d %s", r.code, r.err)
	}
}

// X-LC-Sign: timestamps outside ±15 minutes are refused, and a signed write replayed is refused.
func TestSignWindowAndReplay(t *testing.T) {
	f := shared(t)
	signed := func(method, path string, ts time.Time, body string) int {
		status, _, _ := do(t, nil, method, f.s.url+path, map[string]string{"X-LC-Id": f.lean.ID,
			"X-LC-Sign": server.Sign(f.lean.AppKey, ts.UnixMilli(), false), "Content-Type": "application/json"}, body)
		return status
	}
	now := time.Now()
	if s := signed(http.MethodPost, "/1.1/functions/hello", now.AddDate(-10, 0, 0), `{}`); s != 401 {
		t.Errorf("a 10-year-old signature: %d", s)
	}
	if s := signed(http.MethodPost, "/1.1/functions/hello", now.AddDate(1, 0, 0), `{}`); s != 401 {
		t.Errorf("a signature from next year: %d", s)
	}
	if s := signed(http.MethodPost, "/1.1/functions/hello", now, `{}`); s != 200 {
		t.Errorf("a fresh signature: %d", s)
	}
	captured := now.Add(-time.Minute)
	body := fmt.Sprintf(`{"amount":100,"n":%d}`, now.UnixNano())
	if s := signed(http.MethodPost, "/1.1/classes/Transfer", captured, body); s != 201 {
		t.Fatalf("a signed write: %d", s)
	}
	if s := signed(http.MethodPost, "/1.1/classes/Transfer", captured, body); s != 401 {
		t.Errorf("the same signed write replayed: %d", s)
	}
	// the real SDK fires identical writes in one millisecond: all go through
	script := testutil.WriteFile(t, t.TempDir(), "burst.cjs", `const AV = require('`+filepath.Join(testutil.NodeModules(t), "leancloud-storage")+`')
const [serverURL, appId, appKey] = process.argv.slice(2)
AV.init({ appId, appKey, serverURL })
Promise.all(Array.from({ length: 8 }, () => new AV.Object('Burst').save({ same: 1 }))).then((r) => console.log(r.length), (e) => { console.error(e); process.exit(1) })
`)
	if out, err := exec.Command("node", script, f.s.url, f.lean.ID, f.lean.AppKey).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "8" {
		t.Fatalf("identical concurrent SDK writes: %v %s", err, out)
	}
}

// CORS: any origin, never with credentials; preflights answered 200 (as LeanCloud does).
func TestCORSNeverSharesCredentialedResponses(t *testing.T) {
	f := shared(t)
	status, _, _ := do(t, nil, http.MethodOptions, f.s.url+"/1.1/classes/X", map[string]string{"Origin": "https://evil.example",
		"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-lc-id,x-lc-sign,content-type"}, "")
	if status != 200 {
		t.Errorf("preflight: %d", status)
	}
	req, _ := http.NewRequest(http.MethodOptions, f.s.url+"/1.1/classes/X", nil)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("CORS headers: %v", resp.Header)
	}
}

// fn dev answers loopback Host names only (DNS rebinding) unless --host is given, and keeps
// its loopback /admin tools.
func TestDevRefusesForeignHosts(t *testing.T) {
	startDev := func(args ...string) string {
		dir := wxProject(t, "devhost", map[string]string{"internal": wxInternal,
			"env": "exports.main = async () => process.env.HOST_DB_PASSWORD || 'absent'\n"}, "")
		cmd := exec.Command(fnBin, append([]string{"dev", "--port", "0"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "NO_COLOR=1", hostSecret)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
		var state struct{ URL string }
		testutil.Eventually(t, 30*time.Second, "fn dev to start", func() bool {
			b, err := os.ReadFile(filepath.Join(dir, ".fn", "dev.json"))
			return err == nil && json.Unmarshal(b, &state) == nil && state.URL != ""
		})
		return state.URL
	}
	base := startDev()
	for host, want := range map[string]int{"evil.example": 403, "evil.example:80": 403, "localhost": 200, "127.0.0.1": 200} {
		status, _, raw := do(t, nil, http.MethodPost, base+"/wx/functions/internal", map[string]string{"Host": host}, `{}`)
		if status != want {
			t.Errorf("Host %s: %d %s", host, status, raw)
		}
	}
	status, m, raw := do(t, nil, http.MethodPost, base+"/admin", nil, `{"action":"functions.invokeFunction","function_name":"internal","request_data":"{}"}`)
	if status != 200 || !strings.Contains(raw, "internal-only-result") {
		t.Errorf("fn dev's loopback /admin: %d %v", status, m)
	}
	// fn dev is permissive, but does not hand its own environment to functions
	if status, m, raw := do(t, nil, http.MethodPost, base+"/wx/functions/env", nil, `{}`); status != 200 || m["result"] != "absent" {
		t.Errorf("fn dev's environment reached a function: %d %s", status, raw)
	}
	// with --host the developer chose who may reach it (a tunnel's name, a LAN name)
	chosen := startDev("--host", "127.0.0.1")
	if status, _, raw := do(t, nil, http.MethodPost, chosen+"/wx/functions/internal", map[string]string{"Host": "tunnel.example"}, `{}`); status != 200 {
		t.Errorf("fn dev --host with another Host name: %d %s", status, raw)
	}
}

// Passwords longer than bcrypt's 72 bytes work, and every byte counts.
func TestLongPasswords(t *testing.T) {
	f := shared(t)
	name := fmt.Sprintf("long%d", time.Now().UnixNano())
	pw := strings.Repeat("p", 72) + "-tail-that-matters"
	if status, m := lean(t, f.s, f.lean, http.MethodPost, "/1.1/users", nil, `{"username":"`+name+`","password":"`+pw+`"}`); status != 201 {
		t.Fatalf("sign-up with a 90-byte password: %d %v", status, m)
	}
	if status, _ := lean(t, f.s, f.lean, http.MethodPost, "/1.1/login", nil, `{"username":"`+name+`","password":"`+pw+`"}`); status != 200 {
		t.Fatalf("login: %d", status)
	}
	if status, _ := lean(t, f.s, f.lean, http.MethodPost, "/1.1/login", nil, `{"username":"`+name+`","password":"`+pw[:72]+`"}`); status == 200 {
		t.Fatal("the first 72 bytes alone logged in")
	}
}

// Others' failed logins lock out their address, not the owner.
func TestLockoutIsPerAddress(t *testing.T) {
	f := shared(t)
	name := fmt.Sprintf("lock%d", time.Now().UnixNano())
	if status, _ := lean(t, f.s, f.lean, http.MethodPost, "/1.1/users", nil, `{"username":"`+name+`","password":"right"}`); status != 201 {
		t.Fatal("sign-up")
	}
	attacker := clientFrom("127.0.0.3")
	locked := false
	for i := 0; i < 30 && !locked; i++ {
		_, m, _ := do(t, attacker, http.MethodPost, f.s.url+"/1.1/login", map[string]string{"X-LC-Id": f.lean.ID, "X-LC-Key": f.lean.AppKey},
			`{"username":"`+name+`","password":"wrong"}`)
		locked = m["code"] == float64(219)
	}
	if !locked {
		t.Fatal("30 failed logins never locked the attacker out")
	}
	if status, m := lean(t, f.s, f.lean, http.MethodPost, "/1.1/login", nil, `{"username":"`+name+`","password":"right"}`); status != 200 {
		t.Fatalf("the owner from another address: %d %v", status, m)
	}
}

// After an infinite loop only that call fails; the function serves the next one.
func TestOnlyTheStuckCallFails(t *testing.T) {
	f := shared(t)
	token := wxLogin(t, f.s, f.wx, "dave")
	var wg sync.WaitGroup
	var loopStatus int
	wg.Add(1)
	go func() {
		defer wg.Done()
		loopStatus, _ = wxCall(t, f.s, f.wx, "production", "storm", token, `{"mode":"loop"}`)
	}()
	wg.Wait()
	if loopStatus == 200 {
		t.Fatal("an infinite loop answered 200")
	}
	if status, m := wxCall(t, f.s, f.wx, "production", "storm", token, `{"mode":"calm"}`); status != 200 || m["result"] != "calm" {
		t.Fatalf("the call after the loop: %d %v", status, m)
	}
}
