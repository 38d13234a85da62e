package appenv

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/logsink"
	"github.com/fnhq/fn/project"
)

func node(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	return p
}

// wxEnv serves a wx environment on a loopback listener (so the SDK's nested calls reach it).
func wxEnv(t *testing.T, name string, sink logsink.Sink) *Env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{App: "app", Name: name, Dialect: project.WX, EnvID: "env-1", PublicURL: "http://" + ln.Addr().String(),
		WXAdminPath: "/admin", Node: node(t), NodeVersion: "test", Logs: sink, NoTimers: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e.Handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); e.Close(time.Second) })
	return e
}

func release(t *testing.T, dir string, version int, files map[string]string) *Release {
	t.Helper()
	m := api.Manifest{Dialect: "wx"}
	for name, src := range files {
		testutil.WriteFile(t, dir, name+".js", src)
		m.Bundles = append(m.Bundles, api.Bundle{Name: name, Hash: name + src, Config: project.FunctionConfig{Timeout: 3, Memory: 128, MaxInstances: 2}})
	}
	return &Release{Version: version, Dir: dir, Manifest: m, File: func(b api.Bundle) string { return filepath.Join(dir, b.Name+".js") }}
}

func TestInvokeOutcomeWithLogsOfNestedCalls(t *testing.T) {
	sink := logsink.NewMemory(1000)
	e := wxEnv(t, "production", sink)
	dir := t.TempDir()
	testutil.LinkNodeModules(t, dir)
	rel := release(t, dir, 3, map[string]string{
		"inner": "exports.main = async (event) => { console.log('inner sees', event.x); return event.x * 2 }\n",
		"outer": `const cloud = require('wx-server-sdk')
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })
exports.main = async (event) => { console.log('outer'); const r = await cloud.callFunction({ name: 'inner', data: { x: event.x } }); return r.result }
`,
	})
	if _, err := e.Activate(context.Background(), rel); err != nil {
		t.Fatal(err)
	}
	out := e.Invoke(context.Background(), "outer", json.RawMessage(`{"x":21}`), Caller{WX: &engine.WXIdentity{OpenID: "o1", AppID: "wx1"}, Name: "alice"}, 0)
	if out.Error != nil || string(out.Result) != "42" || out.Version != 3 || out.Env != "production" || out.Identity != "alice" {
		t.Fatalf("outcome: %+v %+v", out, out.Error)
	}
	var msgs []string
	for _, r := range out.Logs {
		msgs = append(msgs, r.Message)
	}
	if strings.Join(msgs, "|") != "outer|inner sees 21" {
		t.Fatalf("the call's logs, its nested call's included: %q", msgs)
	}
	// every invocation (the outer call, and the nested one through /admin) has its record
	recs, _ := sink.Query(context.Background(), logsink.Filter{App: "app"}, 0)
	var invocations []string
	for _, r := range recs {
		if r.Invocation {
			invocations = append(invocations, r.Function)
			if r.Version != 3 || r.Env != "production" {
				t.Errorf("an invocation record without its version and env: %+v", r)
			}
		}
	}
	if strings.Join(invocations, ",") != "inner,outer" {
		t.Fatalf("invocation records: %v", invocations)
	}
	// unknown function: not found, worded for the caller
	if out := e.Invoke(context.Background(), "ghost", nil, Caller{}, 0); out.Error == nil || out.Error.Kind != engine.KindNotFound {
		t.Fatalf("unknown function: %+v", out.Error)
	}
}

func TestFailedActivationKeepsTheServingRelease(t *testing.T) {
	e := wxEnv(t, "staging", nil)
	if out := e.Invoke(context.Background(), "f", nil, Caller{}, 0); out.Error == nil || !strings.Contains(out.Error.Message, "nothing is deployed to staging yet") {
		t.Fatalf("before any release: %+v", out.Error)
	}
	good := release(t, t.TempDir(), 1, map[string]string{"f": "exports.main = async () => 'v1'\n"})
	if _, err := e.Activate(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	bad := release(t, t.TempDir(), 2, map[string]string{"f": "throw new Error('broken at load')\n"})
	_, err := e.Activate(context.Background(), bad)
	var lf *LoadFailed
	var le *engine.LoadError
	if !errors.As(err, &lf) || !errors.As(err, &le) || !strings.Contains(err.Error(), "broken at load") {
		t.Fatalf("a release that does not load: %v", err)
	}
	if out := e.Invoke(context.Background(), "f", nil, Caller{}, 0); string(out.Result) != `"v1"` || e.Release().Version != 1 {
		t.Fatalf("the old release must keep serving: %s %v", out.Result, e.Release().Version)
	}
	next := release(t, t.TempDir(), 3, map[string]string{"f": "exports.main = async () => 'v3'\n"})
	if _, err := e.Activate(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	if out := e.Invoke(context.Background(), "f", nil, Caller{}, 0); string(out.Result) != `"v3"` {
		t.Fatalf("the new release serves: %s", out.Result)
	}
}

func TestSDKEnvAndTimerErrors(t *testing.T) {
	e, err := New(Config{App: "a", Name: "production", Dialect: project.Lean, PublicURL: "http://127.0.0.1:4321",
		Keys: Keys{AppID: "id", AppKey: "k", MasterKey: "m", HookKey: "h"}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(time.Second)
	env := e.SDKEnv()
	want := map[string]string{"LEANCLOUD_APP_ID": "id", "LEANCLOUD_APP_KEY": "k", "LEANCLOUD_APP_MASTER_KEY": "m", "LEANCLOUD_APP_HOOK_KEY": "h",
		"LEANCLOUD_API_SERVER": "http://127.0.0.1:4321", "LEANCLOUD_APP_ENV": "production", "NODE_ENV": "production", "LEANCLOUD_REGION": "CN",
		"LEANCLOUD_APP_PORT": "4321"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if err := e.TimerControl(context.Background(), "x", "trigger"); !errors.Is(err, ErrNoTimers) || err.Error() != "production has no timers" {
		t.Fatalf("no timers: %v", err)
	}
	off, _ := New(Config{App: "a", Name: api.DevEnv, Dialect: project.WX, NoTimers: true})
	defer off.Close(time.Second)
	if _, err := off.Timers(); !errors.Is(err, ErrNoTimers) || !strings.Contains(err.Error(), "--no-timers") {
		t.Fatalf("timers off: %v", err)
	}
	wx, _ := New(Config{App: "a", Name: "staging", Dialect: project.WX, PublicURL: "http://h:1", WXAdminPath: "/wx/a/staging/admin"})
	defer wx.Close(time.Second)
	if got := wx.SDKEnv()["TCB_CONTEXT_CNFG"]; got != `{"URL":"http://h:1/wx/a/staging/admin"}` {
		t.Fatalf("TCB_CONTEXT_CNFG: %s", got)
	}
}
