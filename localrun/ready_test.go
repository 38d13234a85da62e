package localrun

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/project"
)

// heldRecorder is a recorder whose Ready does not return until the test has looked: whatever
// fn dev does after the banner waits with it, while the first load must go on.
type heldRecorder struct {
	*recorder
	atReady chan []string
	resume  chan struct{}
}

func (h *heldRecorder) Ready(i DevInfo) {
	h.recorder.Ready(i)
	h.mu.Lock()
	seen := append([]string(nil), h.events...)
	h.mu.Unlock()
	h.atReady <- seen
	<-h.resume
}

// The banner does not wait for the functions to load: a function whose module is still loading
// (it waits for a file the test creates after the banner) does not hold it up, a call made
// then waits for the load and is served, another function answers meanwhile, and what did not
// load is reported by Loaded.
func TestDevReadyBeforeFunctionsLoad(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "go-on")
	testutil.WriteFile(t, dir, "fn.yaml", "name: rd\ndialect: wx\n")
	testutil.WriteFile(t, dir, "functions/slow/index.js", `const fs = require('fs')
const tick = new Int32Array(new SharedArrayBuffer(4))
while (!fs.existsSync(`+"`"+flag+"`"+`)) Atomics.wait(tick, 0, 0, 5)
exports.main = async () => 'loaded after the banner'
`)
	testutil.WriteFile(t, dir, "functions/broken/index.js", "throw new Error('broken at load')\n")
	testutil.WriteFile(t, dir, "functions/quick/index.js", "exports.main = async () => 'quick'\n")
	p, err := project.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := &heldRecorder{recorder: newRecorder(), atReady: make(chan []string, 1), resume: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunDev(ctx, p, DevOptions{Node: "node", Host: "127.0.0.1", Events: h}) }()
	t.Cleanup(func() { cancel(); <-done })

	var seen []string
	select {
	case seen = <-h.atReady:
	case err := <-done:
		t.Fatalf("fn dev stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no banner while a function was still loading")
	}
	if strings.Join(seen, ",") != "ready" {
		t.Fatalf("events at the banner: %v (the load cannot have finished: slow waits for %s)", seen, flag)
	}
	// a wx call waits for its own function only: quick answers while slow is still loading
	resp, err := http.Post(h.url+"/wx/functions/quick", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "quick") {
		t.Fatalf("quick while slow loads: %d %s", resp.StatusCode, b)
	}
	answer := make(chan string, 1)
	go func() {
		resp, err := http.Post(h.url+"/wx/functions/slow", "application/json", strings.NewReader(`{}`))
		if err != nil {
			answer <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answer <- string(b)
	}()
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	close(h.resume)
	select {
	case got := <-answer:
		if !strings.Contains(got, "loaded after the banner") {
			t.Fatalf("a call made at the banner: %s", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a call made at the banner was not answered")
	}
	select {
	case <-h.ready:
	case <-time.After(30 * time.Second):
		t.Fatal("no Loaded event")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if msg := h.loaded.Failed["broken"]; !strings.Contains(msg, "broken at load") {
		t.Fatalf("Loaded should name the function that did not load: %+v", h.loaded)
	}
	if _, bad := h.loaded.Failed["slow"]; bad || len(h.loaded.Failed) != 1 {
		t.Fatalf("only broken failed: %+v", h.loaded)
	}
}

// A dependency change (package.json and the package's code, as npm install leaves them) gives
// fresh workers to the functions that load packages only: one that loads nothing from
// node_modules keeps its worker (same pid), the other gets the new package code.
func TestDevDependencyChangeFreshensOnlyPackageUsers(t *testing.T) {
	rec, _ := runDev(t, map[string]string{
		"fn.yaml":                    "name: deps\ndialect: wx\n",
		"functions/dep/package.json": `{"name":"dep","dependencies":{"localdep":"1.0.0"}}`,
		"functions/dep/node_modules/localdep/index.js": "exports.v = 1\n",
		"functions/plain/index.js":                     "const fs = require('fs')\nexports.main = async () => ({ pid: process.pid, fs: typeof fs.readFileSync })\n",
		"functions/dep/index.js":                       "const dep = require('localdep')\nexports.main = async () => ({ pid: process.pid, v: dep.v })\n",
	}, DevOptions{})
	plain := callWX(t, rec.url, "plain", `{}`)
	dep := callWX(t, rec.url, "dep", `{}`)
	if dep["v"] != float64(1) || plain["fs"] != "function" {
		t.Fatalf("before: plain %v dep %v", plain, dep)
	}
	testutil.WriteFile(t, rec.dir, "functions/dep/node_modules/localdep/index.js", "exports.v = 2\n")
	testutil.WriteFile(t, rec.dir, "functions/dep/package.json", `{"name":"dep","dependencies":{"localdep":"2.0.0"}}`)
	testutil.Eventually(t, 10*time.Second, "the new package code", func() bool {
		return callWX(t, rec.url, "dep", `{}`)["v"] == float64(2)
	})
	if after := callWX(t, rec.url, "dep", `{}`); after["pid"] == dep["pid"] {
		t.Fatalf("dep should run in a fresh worker: %v then %v", dep, after)
	}
	if after := callWX(t, rec.url, "plain", `{}`); after["pid"] != plain["pid"] {
		t.Fatalf("plain loads no package and should keep its worker: %v then %v", plain, after)
	}
}
