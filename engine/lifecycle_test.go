package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/internal/testutil"
)

// slowJS holds each call until n calls are in flight at once (a barrier through a file), so
// that the pool must grow to n workers whatever the machine's speed.
const slowJS = `const fs = require('fs')
exports.main = async (event) => {
  if (event.barrier) {
    fs.appendFileSync(event.barrier, 'x')
    const end = Date.now() + 10000
    while (fs.readFileSync(event.barrier, 'utf8').length < event.n && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 5))
    }
  }
  return { pid: process.pid }
}
`

func concurrent(f *fixture, fn string, n int) []*Result {
	barrier := filepath.Join(f.t.TempDir(), "barrier")
	data := fmt.Sprintf(`{"barrier":%q,"n":%d}`, barrier, n)
	var wg sync.WaitGroup
	out := make([]*Result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) { defer wg.Done(); out[i] = f.wx(fn, data, nil) }(i)
	}
	wg.Wait()
	return out
}

func TestIdleWorkersAreRetired(t *testing.T) {
	f := newFixture(t, map[string]string{"fn.yaml": "name: c\ndialect: wx\nfunctions:\n  slow:\n    maxInstances: 3\n", "functions/slow/index.js": slowJS},
		bundler.Dev, Config{IdleTimeout: 300 * time.Millisecond})
	for _, r := range concurrent(f, "slow", 3) {
		mustOK(t, r)
	}
	if n := len(f.e.Stats().Workers); n != 3 {
		t.Fatalf("3 concurrent calls should have grown the pool to 3, got %d", n)
	}
	testutil.Eventually(t, 5*time.Second, "idle workers to be retired down to one", func() bool { return len(f.e.Stats().Workers) == 1 })
	mustOK(t, f.wx("slow", `{}`, nil))
}

func TestManyReloadsFallBackToAFreshWorker(t *testing.T) {
	f := newFixture(t, map[string]string{"fn.yaml": "name: c\ndialect: wx\n", "functions/v/index.js": "exports.main = async () => ({ v: 0, pid: process.pid })\n"},
		bundler.Dev, Config{FastReload: true, MaxReloads: 2})
	first := mustOK(t, f.wx("v", `{}`, nil))["pid"]
	var fast []bool
	for v := 1; v <= 3; v++ {
		f.write("functions/v/index.js", fmt.Sprintf("exports.main = async () => ({ v: %d, pid: process.pid })\n", v))
		rep, err := f.build()
		if err != nil {
			t.Fatal(err)
		}
		fast = append(fast, rep.Fast)
	}
	if fmt.Sprint(fast) != "[true true false]" {
		t.Fatalf("after MaxReloads=2 fast reloads the third swap should start a fresh worker: %v", fast)
	}
	got := mustOK(t, f.wx("v", `{}`, nil))
	if got["v"] != 3.0 || got["pid"] == first {
		t.Fatalf("expected v3 on a new worker, got %v (first pid %v)", got, first)
	}
	// a change of the function's env cannot be reloaded in place either
	rep, err := f.e.Load(context.Background(), []Bundle{{Name: "v", File: f.p.StatePath("build", "v.js"), Hash: "other", Config: withEnv(f.p.Function("v"), "X", "1")}}, LoadOptions{})
	if err != nil || rep.Fast {
		t.Fatalf("env change: %+v %v", rep, err)
	}
}

func TestCloseReapsEveryWorker(t *testing.T) {
	f := newFixture(t, map[string]string{"fn.yaml": "name: c\ndialect: wx\nfunctions:\n  slow:\n    maxInstances: 3\n", "functions/slow/index.js": slowJS,
		"functions/hang/index.js": "exports.main = () => new Promise(() => {})\n"}, bundler.Dev, Config{})
	for _, r := range concurrent(f, "slow", 3) {
		mustOK(t, r)
	}
	hung := make(chan *Result, 1)
	go func() { hung <- f.wx("hang", `{}`, nil) }() // in flight while closing
	testutil.Eventually(t, 5*time.Second, "the hanging call to start", func() bool {
		for _, w := range f.e.Stats().Workers {
			if w.Bundle == "hang" && w.InFlight == 1 {
				return true
			}
		}
		return false
	})
	var pids []int
	for _, w := range f.e.Stats().Workers {
		pids = append(pids, w.PID)
	}
	f.e.Close(300 * time.Millisecond)
	// a call that never settles does not hold Close up: its worker is stopped after the grace
	if r := <-hung; r.Err == nil {
		t.Errorf("the hanging call ended without an error: %s", r.Value)
	}
	for _, pid := range pids {
		if processAlive(pid) {
			t.Errorf("worker %d survived Close", pid)
		}
	}
	if r := f.wx("slow", `{}`, nil); r.Err == nil || !strings.Contains(r.Err.Message, "shutting down") {
		t.Errorf("a call after Close: %+v", r.Err)
	}
}

func TestLeanHotSwapUnderLoad(t *testing.T) {
	f := leanFixture(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	calls := 0
	for c := 0; c < 6; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				r := f.e.InvokeLean(context.Background(), LeanRequest{Kind: LeanFunction, Name: "hello", Params: json.RawMessage(`{}`)})
				mu.Lock()
				calls++
				if r.Status != 200 {
					failures = append(failures, fmt.Sprintf("%d %s", r.Status, r.Body))
				}
				mu.Unlock()
			}
		}()
	}
	for v := 1; v <= 10; v++ {
		f.write("cloud.js", strings.Replace(cloudJS, "'Hello '", fmt.Sprintf("'Hello v%d '", v), 1))
		if _, err := f.build(); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d calls failed during reloads, e.g. %s", len(failures), calls, failures[0])
	}
	if status, body := f.lean(LeanRequest{Kind: LeanFunction, Name: "hello"}); status != 200 || body != `{"result":"Hello v10 world"}` {
		t.Fatalf("after reloads: %d %s", status, body)
	}
}

// Close returns only once every worker is gone, those stopped in the background too (retired by
// a swap, here): a worker runs its exit handlers and writes its caches as it exits, which must
// not outlive the engine.
func TestCloseWaitsForRetiredWorkers(t *testing.T) {
	slowExit := "process.on('exit', () => { const end = Date.now() + 300; while (Date.now() < end); })\n"
	f := newFixture(t, map[string]string{
		"fn.yaml":                 "name: cl\ndialect: wx\n",
		"functions/slow/index.js": slowExit + "exports.main = async () => ({ pid: process.pid })\n",
	}, bundler.Dev, Config{})
	old := int(mustOK(t, f.wx("slow", `{}`, nil))["pid"].(float64))
	f.write("functions/slow/index.js", "exports.main = async () => ({ pid: process.pid, v: 2 })\n") // exits at once
	if _, err := f.build(); err != nil {
		t.Fatal(err)
	}
	got := mustOK(t, f.wx("slow", `{}`, nil))
	if int(got["pid"].(float64)) == old || got["v"] != 2.0 {
		t.Fatalf("the changed bundle did not get a new worker: %v (old pid %d)", got, old)
	}
	f.e.Close(2 * time.Second)
	if processAlive(old) {
		t.Fatalf("the retired worker %d outlived Close", old)
	}
}

// The same for a function a load removed: its pool closes in the background, and Close waits.
func TestCloseWaitsForRemovedFunctions(t *testing.T) {
	slowExit := "process.on('exit', () => { const end = Date.now() + 300; while (Date.now() < end); })\n"
	f := newFixture(t, map[string]string{
		"fn.yaml":                 "name: cl\ndialect: wx\n",
		"functions/gone/index.js": slowExit + "exports.main = async () => ({ pid: process.pid })\n",
		"functions/kept/index.js": "exports.main = async () => ({ pid: process.pid })\n",
	}, bundler.Dev, Config{})
	gone := int(mustOK(t, f.wx("gone", `{}`, nil))["pid"].(float64))
	rep, err := f.e.Load(context.Background(), f.bundlesExcept("gone"), LoadOptions{})
	if err != nil || len(rep.Removed) != 1 {
		t.Fatalf("load without gone: %+v, %v", rep, err)
	}
	f.e.Close(2 * time.Second)
	if processAlive(gone) {
		t.Fatalf("the removed function's worker %d outlived Close", gone)
	}
}
