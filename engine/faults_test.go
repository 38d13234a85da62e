package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/internal/testutil"
)

func TestTimeouts(t *testing.T) {
	files := map[string]string{
		"fn.yaml":                  "name: conf\ndialect: wx\nfunctions:\n  hang:\n    timeout: 1\n  spin:\n    timeout: 1\n",
		"functions/hang/index.js":  "exports.main = (event) => event.ok ? { pid: process.pid } : new Promise(() => {})\n",
		"functions/spin/index.js":  "exports.main = (event) => { if (event.ok) return { pid: process.pid }; for (;;) {} }\n",
		"functions/other/index.js": "exports.main = async () => ({ pid: process.pid })\n",
	}
	f := newFixture(t, files, bundler.Dev, Config{})
	otherPID := mustOK(t, f.wx("other", `{}`, nil))["pid"]

	// A promise that never settles: the Go deadline answers, the worker stays healthy.
	first := mustOK(t, f.wx("hang", `{"ok":true}`, nil))["pid"]
	start := time.Now()
	r := f.wx("hang", `{}`, nil)
	if r.Err == nil || r.Err.Kind != KindTimeout || r.Err.Message != "Invoking task timed out after 1 seconds" {
		t.Fatalf("hang: %+v", r.Err)
	}
	if el := time.Since(start); el < time.Second || el > 3*time.Second {
		t.Errorf("timeout answered after %v", el)
	}
	testutil.Eventually(t, 5*time.Second, "the healthy worker back in the pool", func() bool {
		for _, w := range f.e.Stats().Workers {
			if float64(w.PID) == first.(float64) && w.InFlight == 0 {
				return true
			}
		}
		return false
	})
	if !processAlive(int(first.(float64))) {
		t.Error("a worker with a never-settling promise should be kept")
	}

	// A synchronous infinite loop: timeout, the worker is killed and replaced; others serve on.
	spinPID := mustOK(t, f.wx("spin", `{"ok":true}`, nil))["pid"]
	r = f.wx("spin", `{}`, nil)
	if r.Err == nil || r.Err.Kind != KindTimeout {
		t.Fatalf("spin: %+v", r.Err)
	}
	if got := mustOK(t, f.wx("other", `{}`, nil))["pid"]; got != otherPID {
		t.Errorf("another function's worker was disturbed: %v → %v", otherPID, got)
	}
	r = f.wx("spin", `{"ok":true}`, nil)
	got := mustOK(t, r)["pid"]
	if got == spinPID {
		t.Errorf("the stuck worker %v should have been replaced", spinPID)
	}
	testutil.Eventually(t, 3*time.Second, "the kill to be logged", func() bool { return f.hasLog("stopped answering after invocation") })
	testutil.Eventually(t, 3*time.Second, "the stuck worker to be gone", func() bool { return !processAlive(int(spinPID.(float64))) })
}

func TestMemoryLimit(t *testing.T) {
	files := map[string]string{
		"fn.yaml": "name: conf\ndialect: wx\nfunctions:\n  hog:\n    memory: 128\n    timeout: 20\n",
		"functions/hog/index.js": `const keep = []
exports.main = async (event) => {
  if (event.ok) return { pid: process.pid }
  for (;;) keep.push(new Array(1e6).fill(Math.random()))
}
`,
	}
	f := newFixture(t, files, bundler.Dev, Config{})
	pid := mustOK(t, f.wx("hog", `{"ok":true}`, nil))["pid"]
	r := f.wx("hog", `{}`, nil)
	if r.Err == nil || r.Err.Kind != KindMemory || !strings.Contains(r.Err.Message, "exceeded its limit of 128 MB") {
		t.Fatalf("memory: %+v", r.Err)
	}
	if got := mustOK(t, f.wx("hog", `{"ok":true}`, nil))["pid"]; got == pid {
		t.Error("the worker should have been replaced")
	}
}

func TestCrashIsolation(t *testing.T) {
	files := map[string]string{
		"fn.yaml": "name: conf\ndialect: wx\n",
		"functions/crash/index.js": `exports.main = async (event) => {
  if (event.how === 'exit') process.exit(3)
  if (event.how === 'throw') setTimeout(() => { throw new Error('thrown later') }, 1)
  if (event.how === 'reject') Promise.reject(new Error('nobody catches me'))
  if (event.how) return new Promise(() => {})
  return { pid: process.pid }
}
`,
		"functions/other/index.js": "exports.main = async () => ({ pid: process.pid })\n",
	}
	f := newFixture(t, files, bundler.Dev, Config{})
	otherPID := mustOK(t, f.wx("other", `{}`, nil))["pid"]
	cases := map[string]string{
		"exit":   "the function called process.exit(3)",
		"throw":  "the worker crashed on an uncaught exception: thrown later",
		"reject": "the worker crashed on an unhandled promise rejection: nobody catches me",
	}
	for how, want := range cases {
		pid := mustOK(t, f.wx("crash", `{}`, nil))["pid"]
		r := f.wx("crash", `{"how":"`+how+`"}`, nil)
		if r.Err == nil || r.Err.Kind != KindCrash || !strings.Contains(r.Err.Message, want) {
			t.Errorf("%s: %+v", how, r.Err)
			continue
		}
		if how == "throw" && !strings.Contains(r.Err.Stack, "functions/crash/index.js:3:") {
			t.Errorf("crash stack not mapped: %s", r.Err.Stack)
		}
		if got := mustOK(t, f.wx("crash", `{}`, nil))["pid"]; got == pid {
			t.Errorf("%s: worker %v should have been replaced", how, pid)
		}
	}
	if got := mustOK(t, f.wx("other", `{}`, nil))["pid"]; got != otherPID {
		t.Errorf("crashes disturbed another function's worker")
	}
}

func TestLoadFailureKeepsPreviousVersion(t *testing.T) {
	f := newFixture(t, map[string]string{"fn.yaml": "name: conf\ndialect: wx\n", "functions/v/index.js": "exports.main = async () => ({ v: 1 })\n"}, bundler.Dev, Config{FastReload: true})
	f.write("functions/v/index.js", "const x = 1\nfunction init() {\n  throw new Error('bad config at load')\n}\ninit()\nexports.main = async () => ({ v: 2 })\n")
	_, err := f.build()
	le, ok := err.(*LoadError)
	if !ok {
		t.Fatalf("want *LoadError, got %v", err)
	}
	fe := le.Errors["v"]
	if fe == nil || fe.Message != "bad config at load" || !strings.Contains(fe.Stack, "functions/v/index.js:3:") {
		t.Fatalf("load error: %+v", fe)
	}
	if got := mustOK(t, f.wx("v", `{}`, nil)); got["v"] != 1.0 {
		t.Fatalf("the previous version should keep serving, got %v", got)
	}
	f.write("functions/v/index.js", "exports.main = async () => ({ v: 3 })\n")
	if _, err := f.build(); err != nil {
		t.Fatal(err)
	}
	if got := mustOK(t, f.wx("v", `{}`, nil)); got["v"] != 3.0 {
		t.Fatalf("the next good version should serve, got %v", got)
	}
}

func TestPoolGrowsToMaxInstancesAndLogsStayAttributed(t *testing.T) {
	files := map[string]string{
		"fn.yaml": "name: conf\ndialect: wx\nfunctions:\n  slow:\n    maxInstances: 3\n",
		"functions/slow/index.js": `exports.main = async (event) => {
  console.log('start', event.i)
  await new Promise((r) => setTimeout(r, 100))
  console.warn('end', event.i)
  return { pid: process.pid, i: event.i }
}
`,
	}
	f := newFixture(t, files, bundler.Dev, Config{})
	var wg sync.WaitGroup
	results := make([]*Result, 8)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = f.wx("slow", fmt.Sprintf(`{"i":%d}`, i), nil)
		}(i)
	}
	wg.Wait()
	pids := map[any]bool{}
	for i, r := range results {
		got := mustOK(t, r)
		pids[got["pid"]] = true
		recs := f.logsFor(r.RequestID)
		if len(recs) != 2 || recs[0].Message != fmt.Sprintf("start %d", i) || recs[1].Message != fmt.Sprintf("end %d", i) || recs[1].Level != "warn" {
			t.Errorf("invocation %d logs: %+v", i, recs)
		}
	}
	if len(pids) != 3 {
		t.Errorf("8 concurrent calls with maxInstances 3 used %d workers", len(pids))
	}
	if n := len(f.e.Stats().Workers); n != 3 {
		t.Errorf("stats list %d workers", n)
	}
}

// Hot swap under concurrent callers: no call fails, each sees one version, never a mix.
func TestHotSwapUnderLoad(t *testing.T) {
	src := func(v int) string {
		return fmt.Sprintf("const V = %d\nexports.main = async () => {\n  const a = V\n  await new Promise((r) => setTimeout(r, 2))\n  return { a, b: V }\n}\n", v)
	}
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast=%v", fast), func(t *testing.T) {
			f := newFixture(t, map[string]string{"fn.yaml": "name: conf\ndialect: wx\nfunctions:\n  v:\n    maxInstances: 4\n", "functions/v/index.js": src(0)}, bundler.Dev, Config{FastReload: fast})
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var mu sync.Mutex
			seen := map[float64]int{}
			var failures []string
			for c := 0; c < 8; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ctx.Err() == nil {
						r := f.e.InvokeWX(context.Background(), WXRequest{Function: "v", Data: json.RawMessage(`{}`)})
						mu.Lock()
						if r.Err != nil {
							failures = append(failures, r.Err.Message)
						} else {
							var got struct{ A, B float64 }
							json.Unmarshal(r.Value, &got)
							if got.A != got.B {
								failures = append(failures, fmt.Sprintf("mixed versions %v/%v", got.A, got.B))
							}
							seen[got.A]++
						}
						mu.Unlock()
					}
				}()
			}
			for v := 1; v <= 10; v++ {
				f.write("functions/v/index.js", src(v))
				rep, err := f.build()
				if err != nil {
					t.Fatal(err)
				}
				if rep.Fast != fast {
					t.Errorf("swap %d: fast=%v, want %v", v, rep.Fast, fast)
				}
			}
			// the last version must be served after the final swap
			r := f.e.InvokeWX(context.Background(), WXRequest{Function: "v", Data: json.RawMessage(`{}`)})
			cancel()
			wg.Wait()
			if got := decode(t, r.Value); got["a"] != 10.0 {
				t.Errorf("after the last swap got %v", got)
			}
			if len(failures) > 0 {
				t.Fatalf("%d calls failed during swaps, e.g. %v", len(failures), failures[0])
			}
			total := 0
			for _, n := range seen {
				total += n
			}
			if total < 20 || len(seen) < 2 {
				t.Errorf("too little traffic to prove anything: %d calls over versions %v", total, seen)
			}
		})
	}
}
