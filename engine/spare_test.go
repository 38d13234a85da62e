package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/project"
)

func sparePID(e *Engine) int {
	select {
	case w := <-e.spares[0].ch:
		e.spares[0].ch <- w
		return w.pid
	default:
		return 0
	}
}

func TestSpareWorkerIsAdoptedWithTheFunctionsEnv(t *testing.T) {
	f := newFixture(t, map[string]string{
		"fn.yaml":                 "name: sp\ndialect: wx\nfunctions:\n  env:\n    env:\n      COLOR: green\n  big:\n    memory: 512\n",
		"functions/env/index.js":  "const atLoad = process.env.COLOR\nexports.main = async () => ({ atLoad, now: process.env.COLOR, pid: process.pid })\n",
		"functions/big/index.js":  "exports.main = async () => ({ pid: process.pid })\n",
		"functions/boom/index.js": "exports.main = async () => { process.exit(1) }\n",
	}, bundler.Dev, Config{Spare: true})
	// the initial load took the spare for one function; a new spare is there soon after
	var spare int
	testutil.Eventually(t, 10*time.Second, "a spare worker", func() bool { spare = sparePID(f.e); return spare != 0 })
	got := mustOK(t, f.wx("env", `{}`, nil))
	if got["atLoad"] != "green" || got["now"] != "green" {
		t.Fatalf("a function on an adopted worker must see its env at load and at run time: %v", got)
	}
	// a crash is replaced by the spare: the replacement is the spare's process
	f.wx("boom", `{}`, nil)
	testutil.Eventually(t, 10*time.Second, "the crashed worker to be replaced", func() bool {
		for _, w := range f.e.Stats().Workers {
			if w.Bundle == "boom" && w.PID == spare {
				return true
			}
		}
		return false
	})
	// a function with another memory limit never takes the default-memory spare
	pid := mustOK(t, f.wx("big", `{}`, nil))["pid"]
	if int(pid.(float64)) == sparePID(f.e) {
		t.Fatal("big took the spare")
	}
	// Close stops the spare too
	testutil.Eventually(t, 10*time.Second, "a new spare", func() bool { spare = sparePID(f.e); return spare != 0 })
	f.e.Close(time.Second)
	if processAlive(spare) {
		t.Fatalf("the spare %d survived Close", spare)
	}
}

func slotPID(s *spareSlot) int {
	select {
	case w := <-s.ch:
		s.ch <- w
		return w.pid
	default:
		return 0
	}
}

// The SDK spare has wx-server-sdk required already; it goes to a bundle that requires the SDK
// and has no env of its own, which then works as on a fresh worker.
func TestSDKSpareServesOnlyBundlesThatRequireTheSDK(t *testing.T) {
	sdkFn := `const cloud = require('wx-server-sdk')
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })
exports.main = async (event) => {
  if (event.exit) process.exit(1)
  return { openid: cloud.getWXContext().OPENID, color: process.env.COLOR || null, pid: process.pid }
}
`
	f := newFixture(t, map[string]string{
		"fn.yaml":                    "name: sp\ndialect: wx\nfunctions:\n  withenv:\n    env:\n      COLOR: red\n",
		"functions/sdk/index.js":     sdkFn,
		"functions/withenv/index.js": sdkFn,
		"functions/plain/index.js":   "exports.main = async (event) => { if (event.exit) process.exit(1); return { pid: process.pid } }\n",
	}, bundler.Dev, Config{Spare: true, SDKSpare: true})
	if len(f.e.spares) != 2 || f.e.spares[1].preload != "wx-server-sdk" {
		t.Fatalf("no SDK spare slot with the SDK installed: %+v", f.e.spares)
	}
	for _, fn := range []string{"plain", "withenv", "sdk"} {
		var sdkSpare int
		testutil.Eventually(t, 20*time.Second, "an SDK spare", func() bool { sdkSpare = slotPID(f.e.spares[1]); return sdkSpare != 0 })
		f.wx(fn, `{"exit":true}`, nil) // its replacement starts at once
		testutil.Eventually(t, 20*time.Second, fn+" to serve again", func() bool { return f.wx(fn, `{}`, nil).Err == nil })
		got := mustOK(t, f.wx(fn, `{}`, &WXIdentity{OpenID: "o-" + fn, AppID: "wxA"}))
		if fn != "plain" && got["openid"] != "o-"+fn {
			t.Errorf("%s on its new worker: %v", fn, got)
		}
		if fn == "withenv" && got["color"] != "red" {
			t.Errorf("withenv lost its env: %v", got)
		}
		took := false
		for _, w := range f.e.Stats().Workers {
			took = took || (w.Bundle == fn && w.PID == sdkSpare)
		}
		if took != (fn == "sdk") {
			t.Errorf("%s took the SDK spare: %v", fn, took)
		}
	}
}

// slotIdle reports whether slot s has no spare and none being started.
func slotIdle(e *Engine, s *spareSlot) bool {
	e.spareMu.Lock()
	defer e.spareMu.Unlock()
	return !s.starting && len(s.ch) == 0
}

// An SDK spare is kept only while some function would take it: none for a project that has the
// SDK installed but does not require it, one once a function requires it, none again after.
func TestSDKSpareOnlyWhileAFunctionRequiresTheSDK(t *testing.T) {
	plain := "exports.main = async () => ({ pid: process.pid })\n"
	f := newFixture(t, map[string]string{
		"fn.yaml":              "name: sp\ndialect: wx\n",
		"functions/a/index.js": plain,
		"functions/b/index.js": plain,
	}, bundler.Dev, Config{Spare: true, SDKSpare: true})
	if len(f.e.spares) != 2 {
		t.Fatalf("no SDK spare slot with the SDK installed: %+v", f.e.spares)
	}
	sdk := f.e.spares[1]
	// the load has ended and decided the spares: the plain one is started, the SDK one is not
	if slotIdle(f.e, f.e.spares[0]) {
		t.Fatal("no plain spare after the first load")
	}
	if !slotIdle(f.e, sdk) {
		t.Fatal("an SDK spare was started although no function requires wx-server-sdk")
	}
	mustOK(t, f.wx("a", `{}`, nil))
	if !slotIdle(f.e, sdk) {
		t.Fatal("a call started an SDK spare that no function takes")
	}

	f.write("functions/b/index.js", "const cloud = require('wx-server-sdk')\nexports.main = async () => ({ env: typeof cloud.init })\n")
	if _, err := f.build(); err != nil {
		t.Fatal(err)
	}
	var pid int
	testutil.Eventually(t, 20*time.Second, "an SDK spare once b requires the SDK", func() bool { pid = slotPID(sdk); return pid != 0 })
	if got := mustOK(t, f.wx("b", `{}`, nil)); got["env"] != "function" {
		t.Fatalf("b: %v", got)
	}

	f.write("functions/b/index.js", plain)
	if _, err := f.build(); err != nil {
		t.Fatal(err)
	}
	if !slotIdle(f.e, sdk) {
		t.Fatal("the SDK spare was kept after the last function requiring the SDK stopped doing so")
	}
	testutil.Eventually(t, 10*time.Second, "the dropped SDK spare to stop", func() bool { return !processAlive(pid) })
}

func TestRequiresProjectPackageReadsBothBundleForms(t *testing.T) {
	dir := t.TempDir()
	own := filepath.Join(dir, "own")
	testutil.WriteFile(t, own, "node_modules/leanengine/package.json", "{}")
	cases := []struct {
		src, moduleDir string
		want           bool
	}{
		{`var import_wx = require("wx-server-sdk");`, "", false},
		{`const AV = require(require.resolve('leanengine', { paths: [root] }));`, "", true},
		{`const AV = require("leanengine");`, "", true},
		{`const AV = require("leanengine");`, own, false}, // its own copy resolves first
		{`// leanengine is not required here`, "", false},
	}
	for i, c := range cases {
		file := testutil.WriteFile(t, dir, fmt.Sprintf("b%d.js", i), c.src)
		v := &version{file: file, cfg: project.FunctionConfig{ModuleDir: c.moduleDir}}
		if got := requiresProjectPackage(v, "leanengine"); got != c.want {
			t.Errorf("%s (moduleDir %q): %v, want %v", c.src, c.moduleDir, got, c.want)
		}
	}
}

// A prestarted spare starts at New, before anything is built; the first load adopts it (the
// function runs in that process) and, without Spare, no other spare ever starts.
func TestPrestartedSpareIsTheFirstWorker(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: pre\ndialect: wx\n")
	testutil.WriteFile(t, dir, "functions/hi/index.js", "exports.main = async () => ({ pid: process.pid })\n")
	p, err := project.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Node: "node", Dir: dir, Dialect: p.Dialect, EnvID: p.EnvID, RunnerDir: t.TempDir(), Prestart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(2 * time.Second)
	var spare int
	testutil.Eventually(t, 10*time.Second, "the prestarted spare", func() bool { spare = sparePID(e); return spare != 0 })
	entries, _ := p.Entries()
	b, err := bundler.New(bundler.Options{ProjectDir: dir, OutDir: p.StatePath("build"), Dialect: p.Dialect, Target: p.Runtime, Mode: bundler.Dev}, entries)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Dispose()
	m, _, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	a := m.Bundles[0]
	if _, err := e.Load(context.Background(), []Bundle{{Name: a.Name, File: p.StatePath("build", a.File), Hash: a.Hash, Config: p.Function(a.Name)}}, LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	e.spareMu.Lock()
	starting, waiting := e.spares[0].starting, len(e.spares[0].ch)
	e.spareMu.Unlock()
	if starting || waiting != 0 {
		t.Fatalf("without Spare no spare follows the prestarted one (starting %v, ready %d)", starting, waiting)
	}
	res := e.InvokeWX(context.Background(), WXRequest{Function: "hi", Data: json.RawMessage(`{}`)})
	if got := mustOK(t, res)["pid"]; int(got.(float64)) != spare {
		t.Fatalf("hi ran in %v, not in the prestarted worker %d", got, spare)
	}
}
