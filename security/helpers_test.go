package security

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
)

// fnBin is the real fn binary, built once for the package.
var fnBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fn-security-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// workers running as an app's uid start through this binary (the sandbox trampoline)
	os.Chmod(dir, 0o755)
	fnBin = filepath.Join(dir, "fn")
	if out, err := exec.Command("go", "build", "-o", fnBin, filepath.Join(testutil.RepoRoot(), "cmd", "fn")).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	stopShared()
	os.RemoveAll(dir)
	os.Exit(code)
}

// hostSecret is in fn serve's own environment; no function may see it.
const hostSecret = "HOST_DB_PASSWORD=hunter2-host-only"

const adminToken = "admintoken-security"

// fakeWeChat answers jscode2session for app wxSec/shh: code "c-<name>" is user o<name>. With
// hangUp set it drops every connection (WeChat unreachable).
type fakeWeChat struct {
	*httptest.Server
	hangUp atomic.Bool
}

func newFakeWeChat(t interface{ Cleanup(func()) }) *fakeWeChat {
	f := &fakeWeChat{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.hangUp.Load() {
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
			return
		}
		q := r.URL.Query()
		switch r.URL.Path {
		case "/sns/jscode2session":
			if q.Get("appid") != "wxSec" || q.Get("secret") != "shh-app-secret" || !strings.HasPrefix(q.Get("js_code"), "c-") {
				fmt.Fprint(w, `{"errcode":40029,"errmsg":"invalid code"}`)
				return
			}
			name := strings.TrimPrefix(q.Get("js_code"), "c-")
			fmt.Fprintf(w, `{"openid":"o%s","session_key":"k","unionid":"u%s"}`, name, name)
		default:
			// sns/auth and everything else: the access token is not valid
			fmt.Fprint(w, `{"errcode":40001,"errmsg":"invalid credential, access_token is invalid"}`)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serve is a running fn serve.
type serve struct {
	t       testing.TB
	cmd     *exec.Cmd
	url     string
	port    int
	dataDir string
	wechat  *fakeWeChat
	stderr  *lockedBuf
	flags   []string
	cwd     string // fn serve's working directory (for a relative --data-dir)
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServe runs the real fn serve on a free port with the given data directory and flags.
func startServe(t testing.TB, dataDir string, wechat *fakeWeChat, flags ...string) *serve {
	t.Helper()
	s := &serve{t: t, dataDir: dataDir, wechat: wechat, flags: flags, port: freePort(t)}
	s.url = fmt.Sprintf("http://127.0.0.1:%d", s.port)
	s.start()
	t.Cleanup(s.stop)
	return s
}

// newServe is startServe without a cleanup: the caller stops it.
func newServe(t testing.TB, dataDir string, wechat *fakeWeChat, flags ...string) *serve {
	t.Helper()
	s := &serve{t: t, dataDir: dataDir, wechat: wechat, flags: flags, port: freePort(t)}
	s.url = fmt.Sprintf("http://127.0.0.1:%d", s.port)
	s.start()
	return s
}

func (s *serve) start() {
	s.t.Helper()
	args := append([]string{"serve", "--listen", fmt.Sprintf("127.0.0.1:%d", s.port), "--data-dir", s.dataDir, "--wechat-api", s.wechat.URL}, s.flags...)
	s.cmd = exec.Command(fnBin, args...)
	s.cmd.Dir = s.cwd
	s.cmd.Env = append(os.Environ(), "FN_ADMIN_TOKEN="+adminToken, "NO_COLOR=1", hostSecret)
	s.stderr = &lockedBuf{}
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	testutil.Eventually(s.t, 30*time.Second, "fn serve to listen", func() bool {
		resp, err := http.Get(s.url + "/__fn/whoami")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 401
	})
}

// stop sends SIGTERM and waits for fn serve to exit.
func (s *serve) stop() {
	if s.cmd == nil || s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

func (s *serve) restart() {
	s.t.Helper()
	s.stop()
	s.start()
}

type result struct {
	out, err string
	code     int
}

// fn runs the fn CLI against this server from dir.
func (s *serve) fn(dir string, args ...string) result {
	s.t.Helper()
	cmd := exec.Command(fnBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FN_SERVER="+s.url, "FN_TOKEN="+adminToken, "NO_COLOR=1", "XDG_CONFIG_HOME="+filepath.Join(s.cwd, s.dataDir)+"-cfg")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// app is an app created on the server.
type app struct {
	ID, AppKey, MasterKey, EnvID string
}

func (s *serve) createApp(name string, extra ...string) app {
	s.t.Helper()
	r := s.fn(".", append([]string{"apps", "create", name, "--json"}, extra...)...)
	var m map[string]any
	if err := json.Unmarshal([]byte(r.out), &m); err != nil || r.code != 0 {
		s.t.Fatalf("apps create %s: %d %s %s", name, r.code, r.out, r.err)
	}
	str := func(k string) string { v, _ := m[k].(string); return v }
	return app{ID: str("appId"), AppKey: str("appKey"), MasterKey: str("masterKey"), EnvID: str("envId")}
}

func (s *serve) deploy(dir, appName, env string) result {
	s.t.Helper()
	return s.fn(dir, "deploy", "--env", env, "--app", appName, "-m", "security test")
}

func (s *serve) mustDeploy(dir, appName, env string) {
	s.t.Helper()
	if r := s.deploy(dir, appName, env); r.code != 0 {
		s.t.Fatalf("deploy %s to %s: %d %s\n%s", appName, env, r.code, r.err, s.stderr)
	}
}

// wxProject writes a wx project with the given functions (name → index.js) and fn.yaml extra
// lines under functions:.
func wxProject(t testing.TB, name string, functions map[string]string, config string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	yaml := "name: " + name + "\ndialect: wx\nenv: " + name + "-env\nfunctionsDir: functions\nruntime: node18\n" +
		"defaults:\n  timeout: 3\n  memory: 128\n"
	if config != "" {
		yaml += "functions:\n" + config
	}
	testutil.WriteFile(t, dir, "fn.yaml", yaml)
	testutil.WriteFile(t, dir, "package.json", `{"name":"`+name+`","version":"1.0.0","private":true,"dependencies":{"wx-server-sdk":"4.0.2"}}`)
	for fn, src := range functions {
		testutil.WriteFile(t, dir, "functions/"+fn+"/index.js", src)
	}
	testutil.LinkNodeModules(t, dir)
	return dir
}

// leanProject writes a lean project with cloud.js.
func leanProject(t testing.TB, name, cloud string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	testutil.WriteFile(t, dir, "fn.yaml", "name: "+name+"\ndialect: lean\nentry: cloud.js\nruntime: node18\ndefaults:\n  timeout: 5\n  memory: 256\n")
	testutil.WriteFile(t, dir, "package.json", `{"name":"`+name+`","version":"1.0.0","private":true,"dependencies":{"leancloud-storage":"4.15.2","leanengine":"3.8.0"}}`)
	testutil.WriteFile(t, dir, "cloud.js", cloud)
	testutil.LinkNodeModules(t, dir)
	return dir
}

// do sends a request and decodes a JSON answer.
func do(t testing.TB, client *http.Client, method, url string, headers map[string]string, body string) (int, map[string]any, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if client == nil {
		client = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.StatusCode, m, string(b)
}

// invoke runs a function through the admin API (fn invoke --remote) and returns its result.
func (s *serve) invoke(appID, env, name, event string) (int, map[string]any) {
	s.t.Helper()
	status, m, _ := do(s.t, nil, http.MethodPost, s.url+"/__fn/apps/"+appID+"/invoke/"+env+"/"+name,
		map[string]string{"Authorization": "Bearer " + adminToken, "Content-Type": "application/json"}, `{"data":`+event+`}`)
	return status, m
}

// lean sends a LeanCloud request with the app key.
func lean(t testing.TB, s *serve, a app, method, path string, extra map[string]string, body string) (int, map[string]any) {
	t.Helper()
	h := map[string]string{"X-LC-Id": a.ID, "X-LC-Key": a.AppKey, "Content-Type": "application/json"}
	for k, v := range extra {
		h[k] = v
	}
	status, m, _ := do(t, nil, method, s.url+path, h, body)
	return status, m
}

// wxLogin exchanges a code for an fn serve wx token.
func wxLogin(t testing.TB, s *serve, a app, name string) string {
	t.Helper()
	status, m, raw := do(t, nil, http.MethodPost, s.url+"/wx/"+a.ID+"/login", nil, `{"code":"c-`+name+`"}`)
	token, _ := m["token"].(string)
	if status != 200 || token == "" {
		t.Fatalf("wx login: %d %s", status, raw)
	}
	return token
}

func wxCall(t testing.TB, s *serve, a app, env, name, token, body string) (int, map[string]any) {
	t.Helper()
	status, m, _ := do(t, nil, http.MethodPost, s.url+"/wx/"+a.ID+"/"+env+"/functions/"+name,
		map[string]string{"Authorization": "Bearer " + token}, body)
	return status, m
}

// alive reports whether a process exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// descendants lists the live processes below pid.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+2:])
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], p)
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	return out
}

// nodeWorkers counts the node processes below pid.
func nodeWorkers(pid int) int {
	n := 0
	for _, p := range descendants(pid) {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
		if strings.Contains(string(b), "runner-") {
			n++
		}
	}
	return n
}

func rssKB(pid int) int {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	return 0
}

// clientFrom is an HTTP client whose connections come from a given loopback address.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}
