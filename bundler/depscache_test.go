package bundler

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/go-sourcemap/sourcemap"

	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/project"
)

func buildInto(t *testing.T, dir, out, cache string) *Manifest {
	t.Helper()
	p, err := project.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := p.Entries()
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{ProjectDir: dir, OutDir: out, Dialect: p.Dialect, Target: p.Runtime, Mode: Production, DepsCache: cache}, entries)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Dispose()
	m, _, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func runMain(t *testing.T, file, arg string) string {
	t.Helper()
	res, err := exec.Command("node", "-e", "Promise.resolve(require("+jsString(file)+").main("+arg+")).then((r) => console.log(JSON.stringify(r)))").CombinedOutput()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", file, err, res)
	}
	return strings.TrimSpace(string(res))
}

func cacheEntries(t *testing.T, cache string) []string {
	t.Helper()
	got, _ := filepath.Glob(filepath.Join(cache, "*.json"))
	return got
}

// depsProject has packages with module state (one instance however many requires reach it), a
// package that requires another, an ES module package imported from TypeScript and a builtin.
func depsProject(t *testing.T) string {
	dir := wxProject(t)
	testutil.WriteFile(t, dir, "node_modules/counter/index.js", "let n = 0\nmodule.exports = { next: () => ++n }\n")
	testutil.WriteFile(t, dir, "node_modules/twice/index.js", "const c = require('counter')\nmodule.exports = () => [c.next(), c.next()]\n")
	testutil.WriteFile(t, dir, "node_modules/esm-pkg/package.json", `{"name":"esm-pkg","exports":{"import":"./m.mjs","require":"./c.js"}}`)
	testutil.WriteFile(t, dir, "node_modules/esm-pkg/m.mjs", "export default function hi() { return 'esm' }\nexport const kind = 'import'\n")
	testutil.WriteFile(t, dir, "node_modules/esm-pkg/c.js", "module.exports = { kind: 'require' }\n")
	testutil.WriteFile(t, dir, "functions/state/index.ts", `import hi, { kind } from 'esm-pkg'
import * as path from 'path'
const twice = require('twice')
const counter = require('counter')
export const main = async () => ({ pair: twice(), third: counter.next(), hi: hi(), kind, req: require('esm-pkg').kind,
  base: path.basename('/a/b.js'), strict: (function (this: unknown) { return this === undefined })() })
`)
	return dir
}

func TestCachedDependenciesBehaveAsTheWholeBuild(t *testing.T) {
	dir := depsProject(t)
	whole := buildInto(t, dir, filepath.Join(dir, "whole"), "")
	cache := filepath.Join(dir, "cache")
	split := buildInto(t, dir, filepath.Join(dir, "split"), cache)
	if len(cacheEntries(t, cache)) == 0 {
		t.Fatal("the split build cached no dependency bundle")
	}
	os.RemoveAll(filepath.Join(dir, "node_modules")) // everything must be inside the bundles
	for _, c := range []struct{ name, arg string }{{"hello", `{name: "x"}`}, {"sum", `{a: 2, b: 3}`}, {"state", ""}} {
		a, _ := whole.Bundle(c.name)
		b, _ := split.Bundle(c.name)
		want := runMain(t, filepath.Join(dir, "whole", a.File), c.arg)
		if got := runMain(t, filepath.Join(dir, "split", b.File), c.arg); got != want {
			t.Errorf("%s: split build answers %s, the whole build %s", c.name, got, want)
		}
	}
	a, _ := split.Bundle("state")
	if got := runMain(t, filepath.Join(dir, "split", a.File), ""); got != `{"pair":[1,2],"third":3,"hi":"esm","kind":"import","req":"require","base":"b.js","strict":false}` {
		t.Errorf("state: %s", got)
	}
}

func TestEditRebuildsOnlyOwnCodeAndDependencyChangeRebuildsTheCache(t *testing.T) {
	dir := depsProject(t)
	out, cache := filepath.Join(dir, "out"), filepath.Join(dir, "cache")
	buildInto(t, dir, out, cache)
	entries := cacheEntries(t, cache)
	before := map[string]os.FileInfo{}
	for _, e := range entries {
		fi, _ := os.Stat(e)
		before[e] = fi
	}
	testutil.WriteFile(t, dir, "functions/hello/index.js", "const tiny = require('tiny')\nexports.main = async (event) => ({ edited: tiny(event.name) })\n")
	m := buildInto(t, dir, out, cache)
	a, _ := m.Bundle("hello")
	if got := runMain(t, filepath.Join(out, a.File), `{name: "y"}`); got != `{"edited":"tiny:y"}` {
		t.Fatalf("after the edit: %s", got)
	}
	after := cacheEntries(t, cache)
	if len(after) != len(entries) {
		t.Fatalf("an edit of the function's own code changed the cache: %v → %v", entries, after)
	}
	for _, e := range after {
		fi, _ := os.Stat(e)
		if !os.SameFile(fi, before[e]) {
			t.Errorf("%s was rebuilt after an edit of the function's own code", e)
		}
	}
	// a dependency changes (npm install): its bundle is built again
	testutil.WriteFile(t, dir, "node_modules/tiny/index.js", "module.exports = (s) => 'tiny v2:' + s + '!'\n")
	m = buildInto(t, dir, out, cache)
	a, _ = m.Bundle("hello")
	if got := runMain(t, filepath.Join(out, a.File), `{name: "z"}`); got != `{"edited":"tiny v2:z!"}` {
		t.Fatalf("after the dependency change: %s", got)
	}
	if runtime.GOOS != "linux" {
		return
	}
	// a package manager replaces the file with one of the same size and modification time
	file := filepath.Join(dir, "node_modules/tiny/index.js")
	fi, _ := os.Stat(file)
	tmp := file + ".new"
	testutil.WriteFile(t, dir, "node_modules/tiny/index.js.new", "module.exports = (s) => 'tiny v3:' + s + '?'\n")
	os.Chtimes(tmp, fi.ModTime(), fi.ModTime())
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	m = buildInto(t, dir, out, cache)
	a, _ = m.Bundle("hello")
	if got := runMain(t, filepath.Join(out, a.File), `{name: "z"}`); got != `{"edited":"tiny v3:z?"}` {
		t.Fatalf("after a replacement keeping size and mtime: %s", got)
	}
}

func TestSplitBundleSourceMapPointsIntoBothParts(t *testing.T) {
	dir := depsProject(t)
	out := filepath.Join(dir, "out")
	m := buildInto(t, dir, out, filepath.Join(dir, "cache"))
	a, _ := m.Bundle("hello")
	js, _ := os.ReadFile(filepath.Join(out, a.File))
	data, _ := os.ReadFile(filepath.Join(out, a.SourceMap))
	sm, err := sourcemap.Parse(a.SourceMap, data)
	if err != nil {
		t.Fatal(err)
	}
	for needle, want := range map[string]struct {
		file string
		line int
	}{"hi: tiny(": {"functions/hello/index.js", 2}, "tiny:": {"node_modules/tiny/index.js", 1}} {
		lines := strings.Split(string(js), "\n")
		found := false
		for i, l := range lines {
			col := strings.Index(l, needle)
			if col < 0 {
				continue
			}
			found = true
			file, _, line, _, ok := sm.Source(i+1, col)
			if !ok || !strings.HasSuffix(file, want.file) || line != want.line {
				t.Errorf("%q at %d:%d maps to %s:%d (%v), want %s:%d", needle, i+1, col, file, line, ok, want.file, want.line)
			}
		}
		if !found {
			t.Errorf("%q not in the bundle", needle)
		}
	}
}

func TestUnsplittableBundleFallsBackToTheWholeBuild(t *testing.T) {
	dir := wxProject(t)
	testutil.WriteFile(t, dir, "functions/where/index.js", "exports.main = async () => typeof require.resolve('tiny')\n")
	m := buildInto(t, dir, filepath.Join(dir, "out"), filepath.Join(dir, "cache"))
	for _, name := range []string{"hello", "where"} {
		a, _ := m.Bundle(name)
		if js, _ := os.ReadFile(filepath.Join(dir, "out", a.File)); strings.Contains(string(js), "__fnDeps$") {
			t.Errorf("%s: require.resolve of a package should build the whole project, got a split bundle", name)
		}
	}
	a, _ := m.Bundle("where")
	if got := runMain(t, filepath.Join(dir, "out", a.File), ""); got != `"string"` {
		t.Fatalf("where: %s", got)
	}
}
