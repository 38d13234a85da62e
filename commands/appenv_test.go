package commands

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/deployer"
	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/project"
)

// adminCall is one admin API request with the admin token.
func adminCall(t *testing.T, base, token, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %s", method, path, raw)
		}
	}
	if resp.StatusCode >= 300 && out != nil {
		t.Logf("%s %s → %d %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode
}

// uploadBundle stores a wx function answering marker and returns its manifest.
func uploadBundle(t *testing.T, base, token, app, marker string) api.Manifest {
	t.Helper()
	code := []byte("exports.main = async () => " + fmt.Sprintf("%q", marker) + "\n")
	smap := []byte(`{"version":3,"sources":[],"mappings":""}`)
	hash := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	for _, b := range [][]byte{code, smap} {
		if st := adminCall(t, base, token, "PUT", "/__fn/apps/"+app+"/blobs/"+hash(b), b, nil); st != 200 {
			t.Fatalf("upload: %d", st)
		}
	}
	return api.Manifest{Dialect: "wx", Bundles: []api.Bundle{{Name: "f", Hash: hash(code), MapHash: hash(smap), Size: int64(len(code)),
		Config: projectConfig()}}}
}

func projectConfig() project.FunctionConfig {
	return project.FunctionConfig{Timeout: 3, Memory: 128, MaxInstances: 2}
}

func invokeMarker(t *testing.T, base, token, app, env string) string {
	t.Helper()
	var out api.Outcome
	if st := adminCall(t, base, token, "POST", "/__fn/apps/"+app+"/invoke/"+env+"/f", api.InvokeRequest{}, &out); st != 200 {
		t.Fatalf("invoke %s/%s: %d", app, env, st)
	}
	var s string
	json.Unmarshal(out.Result, &s)
	return s
}

// Concurrent deploys to two environments of one app, and to two apps: distinct version ids, each
// environment serves its own code, and after a SIGKILL and a restart every acknowledged deploy is
// still the active one.
func TestServeConcurrentDeploysSurviveSIGKILL(t *testing.T) {
	dataDir := t.TempDir()
	const token = "admintoken-concurrent"
	s := startServe(t, dataDir, token, "http://127.0.0.1:1")
	for _, name := range []string{"one", "two"} {
		if st := adminCall(t, s.url, token, "POST", "/__fn/apps", map[string]string{"name": name}, &api.App{}); st != 201 {
			t.Fatalf("create app %s: %d", name, st)
		}
	}
	targets := []struct{ app, env string }{{"one", "production"}, {"one", "staging"}, {"two", "production"}, {"two", "staging"}}
	last := map[string]string{} // app/env → marker of the last acknowledged deploy
	ids := map[string]map[int]bool{"one": {}, "two": {}}
	for round := 0; round < 20; round++ {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, tg := range targets {
			marker := fmt.Sprintf("%s-%s-%d", tg.app, tg.env, round)
			m := uploadBundle(t, s.url, token, tg.app, marker)
			wg.Add(1)
			go func() {
				defer wg.Done()
				var res api.DeployResult
				st := adminCall(t, s.url, token, "POST", "/__fn/apps/"+tg.app+"/deploy", api.DeployRequest{Env: tg.env, Manifest: m}, &res)
				if st != 200 || res.Version == nil {
					t.Errorf("deploy %s/%s round %d: %d %+v", tg.app, tg.env, round, st, res)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if ids[tg.app][res.Version.ID] {
					t.Errorf("app %s: version id %d given twice", tg.app, res.Version.ID)
				}
				ids[tg.app][res.Version.ID] = true
				last[tg.app+"/"+tg.env] = marker
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		for _, tg := range targets {
			if got, want := invokeMarker(t, s.url, token, tg.app, tg.env), last[tg.app+"/"+tg.env]; got != want {
				t.Fatalf("round %d: %s/%s serves %q, want %q", round, tg.app, tg.env, got, want)
			}
		}
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
	s2 := startServe(t, dataDir, token, "http://127.0.0.1:1")
	for _, tg := range targets {
		testutil.Eventually(t, 20*time.Second, tg.app+"/"+tg.env+" back up", func() bool {
			var out api.Outcome
			return adminCall(t, s2.url, token, "POST", "/__fn/apps/"+tg.app+"/invoke/"+tg.env+"/f", api.InvokeRequest{}, &out) == 200 && out.Error == nil
		})
		if got, want := invokeMarker(t, s2.url, token, tg.app, tg.env), last[tg.app+"/"+tg.env]; got != want {
			t.Errorf("after SIGKILL and restart %s/%s serves %q, want %q", tg.app, tg.env, got, want)
		}
	}
}

// A follower of fn logs -f stays connected across a restart of fn serve (same address and data)
// and sees every record written after the restart exactly once; fn serve stops promptly with the
// follower connected.
func TestServeLogsFollowAcrossRestart(t *testing.T) {
	dataDir := t.TempDir()
	const token = "admintoken-logs"
	port := freePort(t)
	s := startServeOn(t, dataDir, token, port)
	adminCall(t, s.url, token, "POST", "/__fn/apps", map[string]string{"name": "logs"}, &api.App{})
	code := "exports.main = async (e) => { console.log('mark-' + e.n); return e.n }\n"
	hashOf := func(b string) string { x := sha256.Sum256([]byte(b)); return hex.EncodeToString(x[:]) }
	smap := `{"version":3,"sources":[],"mappings":""}`
	adminCall(t, s.url, token, "PUT", "/__fn/apps/logs/blobs/"+hashOf(code), []byte(code), nil)
	adminCall(t, s.url, token, "PUT", "/__fn/apps/logs/blobs/"+hashOf(smap), []byte(smap), nil)
	m := api.Manifest{Dialect: "wx", Bundles: []api.Bundle{{Name: "f", Hash: hashOf(code), MapHash: hashOf(smap), Config: projectConfig()}}}
	if st := adminCall(t, s.url, token, "POST", "/__fn/apps/logs/deploy", api.DeployRequest{Env: "production", Manifest: m}, &api.DeployResult{}); st != 200 {
		t.Fatalf("deploy: %d", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	seen := map[string]int{}
	invocations := 0
	c := deployer.New(deployer.Credentials{Server: s.url, Token: token})
	go c.Logs(ctx, deployer.AppLogsPath("logs"), deployer.LogQuery{Follow: true}, func(r api.LogRecord) {
		if r.Invocation && r.Function == "f" && r.Status == 200 && r.Version > 0 {
			mu.Lock()
			invocations++
			mu.Unlock()
		}
		if strings.HasPrefix(r.Message, "mark-") {
			mu.Lock()
			seen[r.Message]++
			mu.Unlock()
		}
	})
	call := func(base string, n int) {
		var out api.Outcome
		if st := adminCall(t, base, token, "POST", "/__fn/apps/logs/invoke/production/f", api.InvokeRequest{Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}, &out); st != 200 || out.Error != nil {
			t.Fatalf("invoke %d: %d %+v", n, st, out.Error)
		}
	}
	for n := 0; n < 5; n++ {
		call(s.url, n)
	}
	testutil.Eventually(t, 10*time.Second, "the first records and their invocations to reach the follower", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 5 && invocations == 5
	})
	s.cmd.Process.Signal(syscall.SIGTERM)
	waitTimeout(s.cmd, 12*time.Second)
	if ws, ok := s.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		t.Fatalf("fn serve did not stop with a follower connected\n%s", s.out.String())
	}
	s.mu.Lock()
	stopped := strings.Contains(s.out.String(), "in-flight calls drained")
	s.mu.Unlock()
	if !stopped {
		t.Errorf("fn serve should report a drained stop:\n%s", s.out.String())
	}
	s2 := startServeOn(t, dataDir, token, port)
	testutil.Eventually(t, 20*time.Second, "the app back up", func() bool {
		var out api.Outcome
		return adminCall(t, s2.url, token, "POST", "/__fn/apps/logs/invoke/production/f", api.InvokeRequest{Data: json.RawMessage(`{"n":100}`)}, &out) == 200 && out.Error == nil
	})
	for n := 101; n < 120; n++ {
		call(s2.url, n)
	}
	testutil.Eventually(t, 15*time.Second, "every record after the restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for n := 100; n < 120; n++ {
			if seen[fmt.Sprintf("mark-%d", n)] == 0 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	for msg, count := range seen {
		if count != 1 {
			t.Errorf("%s reached the follower %d times, want once", msg, count)
		}
	}
}

func startServeOn(t *testing.T, dataDir, token string, port int) *serveProc {
	t.Helper()
	return startServePort(t, dataDir, token, "http://127.0.0.1:1", port)
}
