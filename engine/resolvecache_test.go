package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/internal/testutil"
)

type resolveAnswer struct{ B, Lib, File string }

// callRC starts a new engine (so a new worker) on the fixture's project, calls rc and waits
// until the worker has stopped (its resolutions are written at the first call and at exit).
func callRC(t *testing.T, f *fixture, cfg Config) resolveAnswer {
	t.Helper()
	done := f.swapEngine(cfg)
	res := f.wx("rc", `{}`, nil)
	done()
	if res.Err != nil {
		t.Fatalf("rc failed: %s\n%s", res.Err.Message, res.Err.Stack)
	}
	var got resolveAnswer
	if err := json.Unmarshal(res.Value, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// resolveFiles reads the resolution cache's files: their entries, merged.
func resolveFiles(t *testing.T, dir string) (int, map[string]string) {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "resolve-*.json"))
	all := map[string]string{}
	for _, n := range names {
		var f struct {
			Root    string            `json:"root"`
			Entries map[string]string `json:"entries"`
		}
		b, err := os.ReadFile(n)
		if err != nil || json.Unmarshal(b, &f) != nil {
			t.Fatalf("%s: %v %s", n, err, b)
		}
		for k, v := range f.Entries {
			all[k] = v
		}
	}
	return len(names), all
}

// What packages resolve to is kept per node_modules tree and its install state: the next worker
// takes it from there (it does not see a package shadowed by hand until the next install), an
// install (node_modules/.package-lock.json rewritten) starts over, and a cached file that is
// gone is resolved again.
func TestResolveCacheFollowsInstalls(t *testing.T) {
	nm := "functions/rc/node_modules/"
	f := newFixture(t, map[string]string{
		"fn.yaml":                  "name: rc\ndialect: wx\n",
		nm + "pa/package.json":     `{"name": "pa", "main": "main.js"}`,
		nm + "pa/main.js":          "exports.b = require('pb')\nexports.lib = require('./lib')\nexports.file = require.resolve('pb')\n",
		nm + "pa/lib.js":           "module.exports = 'lib'\n",
		nm + "pb/index.js":         "module.exports = 'pb hoisted'\n",
		nm + ".package-lock.json":  `{"lockfileVersion": 3}`,
		"functions/rc/index.js":    "const pa = require('pa')\nexports.main = async () => ({ b: pa.b, lib: pa.lib, file: pa.file })\n",
		"functions/other/index.js": "exports.main = async () => 1\n",
	}, bundler.Dev, Config{})
	cache := filepath.Join(t.TempDir(), "v8")
	on := Config{CodeCacheDir: cache}
	real, _ := filepath.EvalSymlinks(f.dir)
	hoisted := filepath.Join(real, "functions", "rc", "node_modules", "pb", "index.js")

	first := callRC(t, f, on)
	if first.B != "pb hoisted" || first.Lib != "lib" || first.File != hoisted {
		t.Fatalf("first worker: %+v", first)
	}
	n, entries := resolveFiles(t, cache)
	key := filepath.Join(real, "functions", "rc", "node_modules", "pa") + "\x00pb"
	if n != 1 || entries[key] != hoisted {
		t.Fatalf("the resolution of pb from pa should be kept (%d files): %q", n, entries)
	}
	for k := range entries {
		if !strings.Contains(k, string(filepath.Separator)+"node_modules"+string(filepath.Separator)) {
			t.Fatalf("only requires from inside node_modules are kept: %q", k)
		}
	}

	// a package shadowed by hand, without an install: the cache still answers
	testutil.WriteFile(t, f.dir, nm+"pa/node_modules/pb/index.js", "module.exports = 'pb nested'\n")
	if got := callRC(t, f, on); got.B != "pb hoisted" {
		t.Fatalf("the second worker should take pb's resolution from the cache: %+v", got)
	}
	// without the cache Node finds the nested copy: the cache is what answered above
	if got := callRC(t, f, Config{}); got.B != "pb nested" {
		t.Fatalf("without the cache: %+v", got)
	}
	// an install rewrites node_modules/.package-lock.json: resolved afresh
	testutil.WriteFile(t, f.dir, nm+".package-lock.json", `{"lockfileVersion": 3, "packages": {}}`)
	nested := filepath.Join(real, "functions", "rc", "node_modules", "pa", "node_modules", "pb", "index.js")
	if got := callRC(t, f, on); got.B != "pb nested" || got.File != nested {
		t.Fatalf("after an install: %+v", got)
	}
	if n, _ := resolveFiles(t, cache); n != 2 {
		t.Fatalf("an install starts a new cache file: %d", n)
	}
	// a cached file that is gone is resolved again
	if err := os.RemoveAll(filepath.Join(f.dir, nm, "pa", "node_modules")); err != nil {
		t.Fatal(err)
	}
	if got := callRC(t, f, on); got.B != "pb hoisted" || got.File != hoisted {
		t.Fatalf("after the nested copy went away: %+v", got)
	}
}
