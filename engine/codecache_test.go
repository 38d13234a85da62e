package engine

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/internal/testutil"
)

// The package the code cache tests load, from the function folder's own node_modules. Line and
// column numbers matter: the stack frames below are checked against them. Files shorter than 2 KB
// are left to Node (padded: long enough to be cached; tiny.js: too short).
var cachePkg = padded(map[string]string{
	"functions/cc/node_modules/ccpkg/package.json": `{"name": "ccpkg", "version": "1.0.0", "main": "index.js"}`,
	"functions/cc/node_modules/ccpkg/index.js": `#!/usr/bin/env node
'use strict';
const lib = require('./lib');
exports.self = this === module.exports;
exports.file = __filename;
exports.dir = __dirname;
exports.id = module.id;
exports.args = arguments.length;
exports.main = require.main === process.mainModule && require.main !== undefined;
exports.resolved = require.resolve('./lib');
exports.cached = require.cache[__filename] === module;
exports.compute = (n) => lib.square(n) + 1;
exports.load = () => require('./dyn').load();
exports.twice = require('./types').twice;
exports.sneaky = () => require('./sneaky').load();
exports.tiny = require('./tiny');
`,
	"functions/cc/node_modules/ccpkg/tiny.js": `module.exports = 'tiny';
`,
	"functions/cc/node_modules/ccpkg/lib.js": `exports.first = () => { throw new Error('first line'); };
exports.square = (n) => n * n;
exports.boom = function boom() {
  throw new Error('boom from lib');
};
`,
	// CommonJS that imports an ES module: Node must compile it (a vm.Script has no loader for it)
	"functions/cc/node_modules/ccpkg/dyn.js": `exports.load = () => import('./esm.mjs').then((m) => m.value);
`,
	"functions/cc/node_modules/ccpkg/esm.mjs": `export const value = 'from esm';
`,
	// JSDoc types name import() but call nothing: cached
	"functions/cc/node_modules/ccpkg/types.js": `/** @type {import('./lib')} */
const lib = require('./lib');
/**
 * @param {import('./lib').N} n
 */
exports.twice = (n) => lib.square(n) * lib.via({ import: (k) => k });
lib.via = (o) => o.import(2); // import, a method name
`,
	// ...unless code follows on the line
	"functions/cc/node_modules/ccpkg/sneaky.js": `/** @type {import('./lib')} */ exports.load = () => import('./esm.mjs').then((m) => m.value + '!');
`,
	"functions/cc/index.js": `const pkg = require('ccpkg')
const stacks = (fn) => { try { fn() } catch (e) { return e.stack.split('\n').slice(0, 2).map((l) => l.trim()) } }
exports.main = async (event) => {
  const stats = globalThis[Symbol.for('fn.codeCacheStats')]
  return {
    value: pkg.compute(event.n),
    self: pkg.self, file: pkg.file, dir: pkg.dir, id: pkg.id, args: pkg.args, main: pkg.main,
    resolved: pkg.resolved, cached: pkg.cached,
    boom: stacks(() => require('ccpkg/lib').boom()),
    first: stacks(() => require('ccpkg/lib').first()),
    esm: await pkg.load(),
    twice: pkg.twice(3),
    sneaky: await pkg.sneaky(),
    tiny: pkg.tiny,
    stats: stats ? stats() : null,
  }
}
`,
})

// padded lengthens the package's files past the cache's 2 KB floor, after their code.
func padded(files map[string]string) map[string]string {
	for name, src := range files {
		if strings.Contains(name, "node_modules") && strings.HasSuffix(name, ".js") && !strings.HasSuffix(name, "tiny.js") {
			files[name] = src + "// " + strings.Repeat("padding ", 256) + "\n"
		}
	}
	return files
}

type cacheAnswer struct {
	Value    int      `json:"value"`
	Self     bool     `json:"self"`
	File     string   `json:"file"`
	Dir      string   `json:"dir"`
	ID       string   `json:"id"`
	Args     int      `json:"args"`
	Main     bool     `json:"main"`
	Resolved string   `json:"resolved"`
	Cached   bool     `json:"cached"`
	Boom     []string `json:"boom"`
	First    []string `json:"first"`
	ESM      string   `json:"esm"`
	Twice    int      `json:"twice"`
	Sneaky   string   `json:"sneaky"`
	Tiny     string   `json:"tiny"`
	Stats    *struct {
		Hits, Misses, Rejected, Corrupt, Skipped, Small, Written, Errors int
	} `json:"stats"`
}

// callCC starts a new engine on the fixture's project (so a new worker) and calls cc.
func callCC(t *testing.T, f *fixture, cfg Config) cacheAnswer {
	t.Helper()
	cfg.Logs = func(r Record) {
		if strings.Contains(r.Message, "Warning") {
			t.Errorf("the worker warned: %s", r.Message)
		}
	}
	defer f.swapEngine(cfg)()
	var got cacheAnswer
	res := f.wx("cc", `{"n": 7}`, nil)
	if res.Err != nil {
		t.Fatalf("cc failed: %s\n%s", res.Err.Message, res.Err.Stack)
	}
	if err := json.Unmarshal(res.Value, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// packs returns the cache directory's packs and their contents.
func packs(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	names, _ := filepath.Glob(filepath.Join(dir, "*.pack"))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = b
	}
	return out
}

// waitPack waits until the cache holds a pack of ccpkg's tree that differs from before.
func waitPack(t *testing.T, dir string, before []byte) (string, []byte) {
	t.Helper()
	var name string
	var data []byte
	testutil.Eventually(t, 10*time.Second, "the code cache pack is written", func() bool {
		for n, b := range packs(t, dir) {
			if !bytes.Equal(b, before) {
				name, data = n, b
				return true
			}
		}
		return false
	})
	return name, data
}

type packEntry struct {
	key                   string
	off, len, sum, usedAt int
}

// readPackIndex parses a pack as runner.js writes it: magic, index length, JSON index, data.
func readPackIndex(t *testing.T, b []byte) ([]packEntry, int) {
	t.Helper()
	const magic = "fnV8pk1\n"
	if !bytes.HasPrefix(b, []byte(magic)) || len(b) < len(magic)+4 {
		t.Fatalf("not a pack: %q", b[:min(len(b), 16)])
	}
	n := int(binary.LittleEndian.Uint32(b[len(magic):]))
	base := len(magic) + 4 + n
	var raw [][]any
	if err := json.Unmarshal(b[len(magic)+4:base], &raw); err != nil {
		t.Fatal(err)
	}
	var out []packEntry
	for _, r := range raw {
		out = append(out, packEntry{key: r[0].(string), off: int(r[1].(float64)), len: int(r[2].(float64)), sum: int(r[3].(float64)), usedAt: int(r[4].(float64))})
	}
	return out, base
}

// withSum rewrites a pack with entry i's checksum replaced.
func withSum(t *testing.T, b []byte, i int, sum uint32) []byte {
	t.Helper()
	const magic = "fnV8pk1\n"
	n := int(binary.LittleEndian.Uint32(b[len(magic):]))
	dec := json.NewDecoder(bytes.NewReader(b[len(magic)+4 : len(magic)+4+n]))
	dec.UseNumber()
	var raw [][]any
	if err := dec.Decode(&raw); err != nil {
		t.Fatal(err)
	}
	raw[i][3] = sum
	index, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	out := binary.LittleEndian.AppendUint32([]byte(magic), uint32(len(index)))
	return append(append(out, index...), b[len(magic)+4+n:]...)
}

// nodeOwnCache reports whether the test's node has its own compile cache (Node 22.1+), which the
// runner then uses instead of its packs: there are no packs and no counters to check, only that
// the answers stay the same and that Node wrote its cache.
var nodeOwnCache = sync.OnceValue(func() bool {
	out, err := exec.Command("node", "-p", "typeof require('module').enableCompileCache === 'function'").Output()
	return err == nil && strings.TrimSpace(string(out)) == "true"
})

// cacheWritten waits until the cache directory holds a file.
func cacheWritten(t *testing.T, dir string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, "Node's compile cache in "+dir, func() bool {
		found := false
		filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
			found = found || (err == nil && !d.IsDir())
			return nil
		})
		return found
	})
}

// same drops what differs between runs by design (the cache's own counters).
func same(a cacheAnswer) cacheAnswer {
	a.Stats = nil
	return a
}

func TestCodeCacheServesPackagesToTheNextWorker(t *testing.T) {
	f := newFixture(t, mergeFiles(map[string]string{"fn.yaml": wxYAML}, cachePkg), bundler.Dev, Config{})
	cache := filepath.Join(t.TempDir(), "v8")
	on := Config{CodeCacheDir: cache, Env: map[string]string{"FN_CODE_CACHE_STATS": "1"}}

	// without the cache: what Node itself gives
	plain := callCC(t, f, Config{Env: on.Env})
	if plain.Stats != nil {
		t.Fatalf("stats without a cache: %+v", plain.Stats)
	}
	pkgDir := filepath.Join(f.dir, "functions", "cc", "node_modules", "ccpkg")
	want := cacheAnswer{Value: 50, Self: true, File: filepath.Join(pkgDir, "index.js"), Dir: pkgDir, ID: filepath.Join(pkgDir, "index.js"),
		Args: 5, Main: true, Resolved: filepath.Join(pkgDir, "lib.js"), Cached: true, ESM: "from esm", Twice: 18, Sneaky: "from esm!", Tiny: "tiny", Boom: plain.Boom, First: plain.First}
	if !reflect.DeepEqual(plain, want) {
		t.Fatalf("without the cache:\n got %+v\nwant %+v", plain, want)
	}
	lib := filepath.Join(pkgDir, "lib.js")
	if len(plain.Boom) != 2 || plain.Boom[0] != "Error: boom from lib" || plain.Boom[1] != "at Object.boom ("+lib+":4:9)" {
		t.Fatalf("boom's stack: %q", plain.Boom)
	}
	if len(plain.First) != 2 || !strings.HasSuffix(plain.First[1], "("+lib+":1:31)") {
		t.Fatalf("first's stack: %q", plain.First)
	}

	// first worker with the cache: every file compiles, and is written once the call is done
	cold := callCC(t, f, on)
	if !reflect.DeepEqual(same(cold), plain) {
		t.Fatalf("cold cache changed the results:\n got %+v\nwant %+v", same(cold), plain)
	}
	if nodeOwnCache() {
		cacheWritten(t, cache)
		if warm := callCC(t, f, on); !reflect.DeepEqual(warm, plain) {
			t.Fatalf("Node's own cache changed the results:\n got %+v\nwant %+v", warm, plain)
		}
		return
	}
	// index.js, lib.js and types.js compile through the cache; dyn.js, sneaky.js and tiny.js are Node's
	if s := cold.Stats; s == nil || s.Hits != 0 || s.Misses != 3 || s.Skipped != 2 || s.Small != 1 || s.Rejected != 0 || s.Corrupt != 0 {
		t.Fatalf("cold stats: %+v", cold.Stats)
	}
	n := cold.Stats.Misses
	name, data := waitPack(t, cache, nil)
	entries, _ := readPackIndex(t, data)
	if len(entries) != n {
		t.Fatalf("the pack holds %d entries, want %d", len(entries), n)
	}

	// the next worker compiles from the cache, with the same results
	warm := callCC(t, f, on)
	if !reflect.DeepEqual(same(warm), plain) {
		t.Fatalf("warm cache changed the results:\n got %+v\nwant %+v", same(warm), plain)
	}
	if s := warm.Stats; s.Hits != n || s.Misses != 0 || s.Rejected != 0 || s.Corrupt != 0 || s.Skipped != cold.Stats.Skipped {
		t.Fatalf("warm stats: %+v", s)
	}

	// a corrupt entry (its bytes no longer match its checksum) is ignored and written again
	bad := bytes.Clone(data)
	e := entries[0]
	_, base := readPackIndex(t, data)
	bad[base+e.off+e.len/2] ^= 0xff
	if err := os.WriteFile(name, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	got := callCC(t, f, on)
	if !reflect.DeepEqual(same(got), plain) {
		t.Fatalf("a corrupt entry changed the results:\n got %+v\nwant %+v", same(got), plain)
	}
	if s := got.Stats; s.Corrupt != 1 || s.Hits != n-1 || s.Misses != 1 {
		t.Fatalf("stats with a corrupt entry: %+v", s)
	}
	_, data = waitPack(t, cache, bad)

	// an entry V8 refuses (right checksum, wrong contents) is compiled and written again
	bad = bytes.Clone(data)
	entries, base = readPackIndex(t, bad)
	e = entries[1]
	junk := bytes.Repeat([]byte{0x5a}, e.len)
	copy(bad[base+e.off:], junk)
	bad = withSum(t, bad, 1, crc32.ChecksumIEEE(junk))
	if err := os.WriteFile(name, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	got = callCC(t, f, on)
	if !reflect.DeepEqual(same(got), plain) {
		t.Fatalf("a rejected entry changed the results:\n got %+v\nwant %+v", same(got), plain)
	}
	if s := got.Stats; s.Rejected != 1 || s.Hits != n-1 || s.Corrupt != 0 {
		t.Fatalf("stats with a rejected entry: %+v", s)
	}
	_, data = waitPack(t, cache, bad)

	// a pack cut short is no pack: everything compiles and the pack is written whole again
	if err := os.WriteFile(name, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	got = callCC(t, f, on)
	if s := got.Stats; !reflect.DeepEqual(same(got), plain) || s.Corrupt != 1 || s.Misses != n || s.Hits != 0 {
		t.Fatalf("a truncated pack: %+v", got)
	}
	waitPack(t, cache, data[:len(data)/2])
	if s := callCC(t, f, on).Stats; s.Hits != n || s.Misses != 0 {
		t.Fatalf("after the rewrite: %+v", s)
	}
}

// An unwritable cache directory costs nothing but the cache.
func TestCodeCacheUnwritableDirectory(t *testing.T) {
	f := newFixture(t, mergeFiles(map[string]string{"fn.yaml": wxYAML}, cachePkg), bundler.Dev, Config{})
	file := testutil.WriteFile(t, t.TempDir(), "not-a-dir", "x")
	on := Config{CodeCacheDir: filepath.Join(file, "v8"), Env: map[string]string{"FN_CODE_CACHE_STATS": "1"}}
	got := callCC(t, f, on)
	if got.Value != 50 || got.ESM != "from esm" || (!nodeOwnCache() && (got.Stats == nil || got.Stats.Misses != 3)) {
		t.Fatalf("with an unwritable cache: %+v", got)
	}
}

func mergeFiles(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// The real wx-server-sdk loads from the cache and answers as it does compiled by Node.
func TestCodeCacheRealSDK(t *testing.T) {
	src := strings.Replace(loginJS, "exports.main = (event, context) => {", `exports.main = (event, context) => {
  const counters = globalThis[Symbol.for('fn.codeCacheStats')]
  if (event.stats) return counters ? counters() : { own: true }`, 1)
	f := newFixture(t, map[string]string{"fn.yaml": wxYAML, "functions/login/index.js": src}, bundler.Dev, Config{})
	cache := filepath.Join(t.TempDir(), "v8")
	on := Config{CodeCacheDir: cache, Env: map[string]string{"FN_CODE_CACHE_STATS": "1"}}
	alice := &WXIdentity{OpenID: "oAlice", AppID: "wxApp1", UnionID: "uAlice"}
	call := func() (login, stats map[string]any) {
		defer f.swapEngine(on)()
		stats = mustOK(t, f.wx("login", `{"stats": true}`, alice))
		login = mustOK(t, f.wx("login", `{"a": 1}`, alice))
		delete(login["context"].(map[string]any), "rid")
		delete(login["context"].(map[string]any), "remaining")
		delete(login["context"].(map[string]any), "environ") // tokens and the sequence id are per call
		return login, stats
	}
	cold, coldStats := call()
	if nodeOwnCache() {
		cacheWritten(t, cache)
		if warm, _ := call(); !reflect.DeepEqual(cold, warm) || warm["openid"] != "oAlice" {
			t.Fatalf("the SDK answered differently with Node's own cache:\ncold %v\nwarm %v", cold, warm)
		}
		return
	}
	if coldStats["misses"].(float64) < 100 || coldStats["hits"].(float64) != 0 {
		t.Fatalf("cold: %v", coldStats)
	}
	waitPack(t, cache, nil)
	warm, warmStats := call()
	if warmStats["hits"] != coldStats["misses"] || warmStats["misses"].(float64) != 0 || warmStats["rejected"].(float64) != 0 {
		t.Fatalf("warm: %v after cold %v", warmStats, coldStats)
	}
	if !reflect.DeepEqual(cold, warm) || warm["openid"] != "oAlice" {
		t.Fatalf("the SDK answered differently from the cache:\ncold %v\nwarm %v", cold, warm)
	}
}

// With CodeCacheBundles a production bundle (the SDK inside) is cached by its content: the next
// worker compiles it from the cache, answers the same, and its errors still map to the sources.
func TestCodeCacheBundles(t *testing.T) {
	src := strings.Replace(loginJS, "exports.main = (event, context) => {", `exports.main = (event, context) => {
  if (event.stats) return globalThis[Symbol.for('fn.codeCacheStats')] ? globalThis[Symbol.for('fn.codeCacheStats')]() : { own: true }
  if (event.boom) throw new Error('boom in the function')`, 1)
	f := newFixture(t, map[string]string{"fn.yaml": wxYAML, "functions/login/index.js": src}, bundler.Production, Config{})
	cache := filepath.Join(t.TempDir(), "v8")
	alice := &WXIdentity{OpenID: "oAlice", AppID: "wxApp1", UnionID: "uAlice"}
	call := func(bundles bool) (stats, login map[string]any, boom *FunctionError) {
		defer f.swapEngine(Config{CodeCacheDir: cache, CodeCacheBundles: bundles, Env: map[string]string{"FN_CODE_CACHE_STATS": "1"}})()
		stats = mustOK(t, f.wx("login", `{"stats": true}`, alice))
		login = mustOK(t, f.wx("login", `{"a": 1}`, alice))
		for _, k := range []string{"rid", "remaining", "environ"} {
			delete(login["context"].(map[string]any), k)
		}
		return stats, login, f.wx("login", `{"boom": true}`, alice).Err
	}
	offStats, plain, plainBoom := call(false)
	if nodeOwnCache() {
		// Node caches what its loader compiles; the answers and mapped stacks stay the same
		_, cold, coldBoom := call(true)
		_, warm, warmBoom := call(true)
		first := func(fe *FunctionError) string { return strings.SplitN(fe.Stack, "\n", 3)[1] }
		if !reflect.DeepEqual(plain, cold) || !reflect.DeepEqual(plain, warm) || plainBoom == nil || coldBoom == nil || warmBoom == nil ||
			first(coldBoom) != first(plainBoom) || first(warmBoom) != first(plainBoom) {
			t.Fatalf("Node's own cache changed the answers:\nplain %v %+v\ncold %v %+v\nwarm %v %+v", plain, plainBoom, cold, coldBoom, warm, warmBoom)
		}
		return
	}
	if offStats["misses"].(float64) != 0 || len(packs(t, cache)) != 0 {
		t.Fatalf("without CodeCacheBundles a bundle was cached: %v", offStats)
	}
	coldStats, cold, coldBoom := call(true)
	if coldStats["misses"].(float64) != 1 || coldStats["hits"].(float64) != 0 {
		t.Fatalf("cold: %v", coldStats)
	}
	waitPack(t, cache, nil)
	warmStats, warm, warmBoom := call(true)
	if warmStats["hits"].(float64) != 1 || warmStats["misses"].(float64) != 0 || warmStats["rejected"].(float64) != 0 {
		t.Fatalf("warm: %v", warmStats)
	}
	if !reflect.DeepEqual(plain, cold) || !reflect.DeepEqual(plain, warm) {
		t.Fatalf("the cache changed the answers:\nplain %v\ncold %v\nwarm %v", plain, cold, warm)
	}
	if plainBoom == nil || !strings.Contains(plainBoom.Stack, filepath.Join("functions", "login", "index.js")+":") {
		t.Fatalf("the error's stack is not mapped to the source: %+v", plainBoom)
	}
	first := func(fe *FunctionError) string { return strings.SplitN(fe.Stack, "\n", 3)[1] }
	if coldBoom == nil || warmBoom == nil || first(coldBoom) != first(plainBoom) || first(warmBoom) != first(plainBoom) {
		t.Fatalf("the cache changed the error's mapped stack:\nplain %+v\ncold %+v\nwarm %+v", plainBoom, coldBoom, warmBoom)
	}
}
