package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/admin"
	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/deployer"
	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/hosting"
	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/localrun"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/server"
)

// devEvents is a silent fn dev observer that says when it is ready.
type devEvents struct{ ready chan string }

func (d devEvents) Ready(i localrun.DevInfo)                    { d.ready <- i.URL }
func (devEvents) Loaded(localrun.LoadInfo)                      {}
func (devEvents) Reload(localrun.ReloadInfo)                    {}
func (devEvents) ReloadFailed(error)                            {}
func (devEvents) Invocation(server.Invocation, []engine.Record) {}
func (devEvents) Log(engine.Record)                             {}

// startDev runs a real fn dev on a free loopback port over a project of files and returns its
// URL and the project directory.
func startDev(t *testing.T, files map[string]string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	for rel, c := range files {
		testutil.WriteFile(t, dir, rel, c)
	}
	testutil.LinkNodeModules(t, dir)
	p, err := project.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ev := devEvents{ready: make(chan string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- localrun.RunDev(ctx, p, localrun.DevOptions{Node: "node", Host: "127.0.0.1", Events: ev})
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case u := <-ev.ready:
		return u, dir
	case err := <-done:
		t.Fatalf("fn dev stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("fn dev did not start")
	}
	return "", ""
}

// serveHost is a real fn serve on a free loopback port.
type serveHost struct {
	url, token string
	rt         *hosting.Runtime
}

const adminToken = "admin-token-console-test"

func startServe(t *testing.T) *serveHost { return startServeSDK(t, "") }

// startServeSDK is startServe with the SDK directory online deploys build against.
func startServeSDK(t *testing.T, sdkDir string) *serveHost {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	rt, _, err := hosting.Open(context.Background(), hosting.Config{DataDir: t.TempDir(), Node: "node", NodeVersion: "v20",
		AdminToken: adminToken, PublicURL: u, SDKDir: sdkDir})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	srv := &http.Server{Handler: rt.Handler(stop)}
	go srv.Serve(ln)
	t.Cleanup(func() { close(stop); srv.Close(); rt.Close(time.Second) })
	return &serveHost{url: u, token: adminToken, rt: rt}
}

// deploy builds a project of files and deploys it to env of app (created when missing).
func (s *serveHost) deploy(t *testing.T, app, env string, files map[string]string) *api.App {
	t.Helper()
	dir := t.TempDir()
	for rel, c := range files {
		testutil.WriteFile(t, dir, rel, c)
	}
	testutil.LinkNodeModules(t, dir)
	p, err := project.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := deployer.New(deployer.Credentials{Server: s.url, Token: s.token})
	ctx := context.Background()
	var a *api.App
	apps, _ := c.Apps(ctx)
	for i := range apps {
		if apps[i].Name == app {
			a = &apps[i]
		}
	}
	if a == nil {
		if a, err = c.CreateApp(ctx, admin.CreateAppRequest{Name: app}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Deploy(ctx, p, deployer.DeployOptions{App: app, Env: env, Message: "test"}); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	return a
}

// call is one admin API request with a bearer token ("" for none); it answers the status and
// the body.
func call(t *testing.T, base, token, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// must is call that expects want and decodes the answer into out.
func must(t *testing.T, want int, base, token, method, path string, body any, out any) []byte {
	t.Helper()
	st, raw := call(t, base, token, method, path, body)
	if st != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, st, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return raw
}

// failsWith expects an error answer of status whose message mentions each of words.
func failsWith(t *testing.T, status int, base, token, method, path string, body any, words ...string) api.ErrorBody {
	t.Helper()
	var e api.ErrorBody
	raw := must(t, status, base, token, method, path, body, &e)
	for _, w := range words {
		if !strings.Contains(e.Error, w) {
			t.Errorf("%s %s: the error %q should mention %q (%s)", method, path, e.Error, w, raw)
		}
	}
	return e
}

// invocation finds a call's invocation record through the logs route.
func invocation(t *testing.T, base, token, app, rid string) api.LogRecord {
	t.Helper()
	var found api.LogRecord
	testutil.Eventually(t, 5*time.Second, "the invocation record of "+rid, func() bool {
		_, raw := call(t, base, token, "GET", "/__fn/apps/"+app+"/logs?requestId="+rid, nil)
		for _, line := range bytes.Split(raw, []byte("\n")) {
			var r api.LogRecord
			if json.Unmarshal(line, &r) == nil && r.Invocation {
				found = r
				return true
			}
		}
		return false
	})
	return found
}
