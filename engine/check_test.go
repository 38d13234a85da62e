package engine

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/internal/testutil"
)

func TestCheckLoadsEachBundleInBoundedThrowawayWorkers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts processes through /proc")
	}
	f := newFixture(t, map[string]string{"fn.yaml": "name: c\ndialect: wx\n",
		"functions/a/index.js": "exports.main = async () => 'a'\n",
		"functions/b/index.js": "exports.main = async () => 'b'\n"},
		bundler.Dev, Config{IdleTimeout: 200 * time.Millisecond, IdleRetireAll: true})
	m, _, _ := f.b.Build()
	var bundles []Bundle
	for _, a := range m.Bundles {
		bundles = append(bundles, Bundle{Name: a.Name, File: f.p.StatePath("build", a.File), Hash: a.Hash, Config: f.p.Function(a.Name)})
	}
	bad := testutil.WriteFile(t, t.TempDir(), "bad.js", "throw new Error('broken at load')\n")
	bundles = append(bundles, Bundle{Name: "bad", File: bad, Hash: "bad", Config: f.p.Function("a")})
	// the fixture's first load started workers: retire them so that only Check's are counted
	if _, err := f.e.Load(context.Background(), nil, LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the first load's workers to stop", func() bool { return len(f.e.Stats().Workers) == 0 })
	err := f.e.Check(context.Background(), bundles, 1)
	var le *LoadError
	if !errors.As(err, &le) || len(le.Errors) != 1 || le.Errors["bad"] == nil || !strings.Contains(le.Errors["bad"].Message, "broken at load") {
		t.Fatalf("Check must name the broken bundle only: %v", err)
	}
	if n := runnerChildren(); n != 0 {
		t.Fatalf("Check left %d node processes", n)
	}
	var good []Bundle
	for _, b := range bundles {
		if b.Name != "bad" {
			b.Hash += "-lazy"
			good = append(good, b)
		}
	}
	if _, err := f.e.Load(context.Background(), good, LoadOptions{Lazy: true}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.e.Stats().Workers); n != 0 {
		t.Fatalf("a lazy load started %d workers", n)
	}
	if r := f.wx("a", `{}`, nil); r.Err != nil || string(r.Value) != `"a"` || len(f.e.Stats().Workers) != 1 {
		t.Fatalf("the first call: %+v, %d workers", r, len(f.e.Stats().Workers))
	}
	// with IdleRetireAll the first worker retires too, and the next call starts one again
	testutil.Eventually(t, 5*time.Second, "the idle worker to retire", func() bool { return len(f.e.Stats().Workers) == 0 })
	if r := f.wx("a", `{}`, nil); r.Err != nil || string(r.Value) != `"a"` {
		t.Fatalf("a call after retirement: %+v", r)
	}
}

// runnerChildren counts this process's live children that run the runner.
func runnerChildren() int {
	n := 0
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if len(f) > 1 && f[0] != "Z" && f[1] == strconv.Itoa(os.Getpid()) && strings.Contains(string(cmd), "runner-") {
			n++
		}
	}
	return n
}

func TestMaxWorkersRetiresTheLeastRecentlyUsedIdleWorker(t *testing.T) {
	files := map[string]string{"fn.yaml": "name: c\ndialect: wx\n"}
	for _, n := range []string{"a", "b", "c"} {
		files["functions/"+n+"/index.js"] = "exports.main = async () => process.pid\n"
	}
	f := newFixture(t, files, bundler.Dev, Config{MaxWorkers: 2})
	// start again lazily (the cap applies where workers start on demand)
	m, _, _ := f.b.Build()
	var bundles []Bundle
	for _, a := range m.Bundles {
		bundles = append(bundles, Bundle{Name: a.Name, File: f.p.StatePath("build", a.File), Hash: a.Hash + "-lazy", Config: f.p.Function(a.Name)})
	}
	if _, err := f.e.Load(context.Background(), nil, LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Load(context.Background(), bundles, LoadOptions{Lazy: true}); err != nil {
		t.Fatal(err)
	}
	pids := map[string]float64{}
	for _, n := range []string{"a", "b", "c", "a"} {
		r := f.wx(n, `{}`, nil)
		if r.Err != nil {
			t.Fatalf("%s: %v", n, r.Err.Message)
		}
		if w := len(f.e.Stats().Workers); w > 2 {
			t.Fatalf("after calling %s: %d workers with MaxWorkers 2", n, w)
		}
		var pid float64
		json.Unmarshal(r.Value, &pid)
		if n == "a" && pids["a"] != 0 && pid == pids["a"] {
			t.Fatalf("a's first worker was the least recently used and should have been retired")
		}
		pids[n] = pid
	}
}
