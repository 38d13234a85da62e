package engine

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/internal/testutil"
)

const strayJS = `const AV = require('leanengine')
AV.Cloud.define('pid', () => ({ pid: process.pid }))
AV.Cloud.define('wait', (request) => new Promise((resolve) => {
  const check = () => (require('fs').existsSync(request.params.flag) ? resolve({ pid: process.pid }) : setTimeout(check, 5))
  check()
}))
AV.Cloud.define('throwLater', () => {
  setTimeout(() => { throw new Error('thrown in a timer') }, 1)
  return 'ok'
})
AV.Cloud.define('rejectLater', () => {
  Promise.reject(new Error('nobody handles me'))
  return 'ok'
})
AV.Cloud.define('spin', (request) => {
  if (request.params.ok) return { pid: process.pid }
  for (;;) {}
})
`

func strayFixture(t *testing.T) *fixture {
	st := storage(t)
	env := map[string]string{"LEANCLOUD_APP_ID": "app-id", "LEANCLOUD_APP_KEY": "app-key", "LEANCLOUD_APP_MASTER_KEY": "master-key",
		"LEANCLOUD_APP_HOOK_KEY": "hook-key", "LEANCLOUD_API_SERVER": st.URL}
	return newFixture(t, map[string]string{"fn.yaml": "name: conf\ndialect: lean\n", "cloud.js": strayJS}, bundler.Dev, Config{Env: env})
}

// An uncaught exception or unhandled rejection in a shared lean worker is logged with its stack;
// the worker and the other invocations in flight carry on.
func TestLeanStrayErrorsDoNotFailOtherInvocations(t *testing.T) {
	f := strayFixture(t)
	status, body := f.lean(LeanRequest{Kind: LeanFunction, Name: "pid"})
	if status != 200 {
		t.Fatalf("pid: %d %s", status, body)
	}
	pid := body
	flag := filepath.Join(t.TempDir(), "go")
	var wg sync.WaitGroup
	var waited *LeanResult
	wg.Add(1)
	go func() {
		defer wg.Done()
		p, _ := json.Marshal(map[string]string{"flag": flag})
		waited = f.e.InvokeLean(context.Background(), LeanRequest{Kind: LeanFunction, Name: "wait", Params: p})
	}()
	testutil.Eventually(t, 5*time.Second, "the waiting invocation to be in flight", func() bool {
		s := f.e.Stats()
		return len(s.Workers) == 1 && s.Workers[0].InFlight == 1
	})
	for _, name := range []string{"throwLater", "rejectLater"} {
		if status, body := f.lean(LeanRequest{Kind: LeanFunction, Name: name}); status != 200 || body != `{"result":"ok"}` {
			t.Fatalf("%s: %d %s", name, status, body)
		}
	}
	testutil.Eventually(t, 5*time.Second, "both errors to be logged", func() bool {
		return f.hasLog("Uncaught exception: Error: thrown in a timer") && f.hasLog("Unhandled promise rejection: Error: nobody handles me")
	})
	testutil.WriteFile(t, filepath.Dir(flag), "go", "")
	wg.Wait()
	if waited.Status != 200 || string(waited.Body) != pid {
		t.Fatalf("the invocation in flight: %d %s (worker was %s)", waited.Status, waited.Body, pid)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.logs {
		if strings.HasPrefix(r.Message, "Uncaught exception:") {
			if r.Level != "error" || !strings.Contains(r.Message, "cloud.js:8:") {
				t.Errorf("the uncaught exception's record: level %s, message %q (want its stack mapped to cloud.js:8)", r.Level, r.Message)
			}
		}
	}
}

// After an invocation blocks the shared worker's event loop past its timeout, only that
// invocation fails: the next one waits for the health check and runs on the replacement.
func TestLeanCallAfterAStuckLoopSucceeds(t *testing.T) {
	f := strayFixture(t)
	status, body := f.lean(LeanRequest{Kind: LeanFunction, Name: "spin", Params: json.RawMessage(`{"ok":true}`)})
	if status != 200 {
		t.Fatalf("spin ok: %d %s", status, body)
	}
	r := f.e.InvokeLean(context.Background(), LeanRequest{Kind: LeanFunction, Name: "spin", Timeout: 300 * time.Millisecond})
	if r.Status != 503 {
		t.Fatalf("the stuck call: %d %s", r.Status, r.Body)
	}
	next := f.e.InvokeLean(context.Background(), LeanRequest{Kind: LeanFunction, Name: "spin", Params: json.RawMessage(`{"ok":true}`)})
	if next.Status != 200 {
		t.Fatalf("the call after the stuck one: %d %s", next.Status, next.Body)
	}
	if string(next.Body) == body {
		t.Errorf("the next call ran on the stuck worker (%s)", body)
	}
}

// A call that arrives while its function's first load runs waits for it instead of failing.
func TestCallDuringTheFirstLoadWaits(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "loaded")
	files := map[string]string{
		"fn.yaml":                 "name: conf\ndialect: wx\n",
		"functions/fast/index.js": "exports.main = async () => ({ ok: true })\n",
	}
	f := newFixture(t, files, bundler.Dev, Config{})
	// a second function whose top level blocks until the test lets it finish
	f.write("functions/slow/index.js", "const fs = require('fs')\nconst cell = new Int32Array(new SharedArrayBuffer(4))\nwhile (!fs.existsSync("+jsQuote(flag)+")) Atomics.wait(cell, 0, 0, 5)\nexports.main = async () => ({ slow: true })\n")
	entries := mustEntries(t, f)
	if err := f.b.SetEntries(entries); err != nil {
		t.Fatal(err)
	}
	loaded := make(chan error, 1)
	go func() { _, err := f.build(); loaded <- err }()
	testutil.Eventually(t, 10*time.Second, "the slow function to be registered", func() bool {
		for _, n := range f.e.Functions() {
			if n == "slow" {
				return true
			}
		}
		return false
	})
	res := make(chan *Result, 1)
	go func() { res <- f.wx("slow", `{}`, nil) }()
	f.e.mu.Lock()
	p := f.e.pools["slow"]
	f.e.mu.Unlock()
	testutil.Eventually(t, 5*time.Second, "the call to wait for the load", func() bool { return p.readyWaiters.Load() == 1 })
	testutil.WriteFile(t, dir, "loaded", "")
	if r := <-res; r.Err != nil || string(r.Value) != `{"slow":true}` {
		t.Fatalf("the call during the load: %+v %s", r.Err, r.Value)
	}
	if err := <-loaded; err != nil {
		t.Fatal(err)
	}
}

func jsQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
