package bundler

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/project"
)

func newWX(t *testing.T, dir string, mode Mode) *Bundler {
	t.Helper()
	p, err := project.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := p.Entries()
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{ProjectDir: dir, OutDir: p.BuildDir(), Dialect: p.Dialect, Target: p.Runtime, Mode: mode}, entries)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Dispose)
	return b
}

func wxProject(t *testing.T) string {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: shop\ndialect: wx\n")
	testutil.WriteFile(t, dir, "functions/hello/index.js", "const tiny = require('tiny')\nexports.main = async (event) => ({ hi: tiny(event.name) })\n")
	testutil.WriteFile(t, dir, "functions/sum/index.ts", "export const main = async (e: {a: number, b: number}) => e.a + e.b\n")
	testutil.WriteFile(t, dir, "node_modules/tiny/index.js", "module.exports = (s) => 'tiny:' + s\n")
	return dir
}

func TestBuildWritesBundlesMapsAndManifest(t *testing.T) {
	dir := wxProject(t)
	b := newWX(t, dir, Production)
	m, changed, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Bundles) != 2 || len(changed) != 2 {
		t.Fatalf("bundles %+v changed %v", m.Bundles, changed)
	}
	out := filepath.Join(dir, ".fn", "build")
	js, err := os.ReadFile(filepath.Join(out, "hello.js"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), "tiny:") {
		t.Fatal("production bundle should contain the dependency")
	}
	if !strings.Contains(string(js), "//# sourceMappingURL=hello.js.map") {
		t.Fatal("bundle lacks its source map link")
	}
	read, err := ReadManifest(out)
	if err != nil || len(read.Bundles) != 2 || read.Bundles[0].Hash == "" || read.Bundles[1].Entry != "functions/sum/index.ts" {
		t.Fatalf("manifest %+v %v", read, err)
	}
	// The bundle runs in Node.js as CommonJS.
	res, err := exec.Command("node", "-e", "require("+jsString(filepath.Join(out, "sum.js"))+").main({a:2,b:3}).then(console.log)").CombinedOutput()
	if err != nil || strings.TrimSpace(string(res)) != "5" {
		t.Fatalf("node output %q %v", res, err)
	}
	// An unchanged rebuild reports nothing changed.
	if _, changed, err := b.Build(); err != nil || len(changed) != 0 {
		t.Fatalf("unchanged rebuild: changed %v err %v", changed, err)
	}
}

func TestDevModeLeavesPackagesExternal(t *testing.T) {
	dir := wxProject(t)
	m, _, err := newWX(t, dir, Dev).Build()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := os.ReadFile(filepath.Join(dir, ".fn", "build", m.Bundles[0].File))
	if strings.Contains(string(js), "tiny:") || !strings.Contains(string(js), `require("tiny")`) {
		t.Fatalf("dev bundle should require the package at run time:\n%s", js)
	}
}

func TestSyntaxErrorKeepsPreviousOutput(t *testing.T) {
	dir := wxProject(t)
	b := newWX(t, dir, Production)
	if _, _, err := b.Build(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, ".fn", "build", "hello.js")
	before, _ := os.ReadFile(out)
	testutil.WriteFile(t, dir, "functions/hello/index.js", "exports.main = async (event) => {\n  const a = 1\n  return { a: a b }\n}\n")
	_, _, err := b.Rebuild([]string{"hello"})
	be, ok := err.(*BuildError)
	if !ok {
		t.Fatalf("want *BuildError, got %T %v", err, err)
	}
	text := be.Format(false)
	if !strings.Contains(text, "functions/hello/index.js:3:") || !strings.Contains(text, "Expected") {
		t.Fatalf("formatted error lacks file:line or message:\n%s", text)
	}
	after, _ := os.ReadFile(out)
	if string(before) != string(after) {
		t.Fatal("a failed build changed the previous output")
	}
	// The next good save recovers.
	testutil.WriteFile(t, dir, "functions/hello/index.js", "exports.main = async () => 'fixed'\n")
	if _, changed, err := b.Rebuild([]string{"hello"}); err != nil || len(changed) != 1 {
		t.Fatalf("recovery: %v %v", changed, err)
	}
}

func TestNativeAddonIsRejectedWithPackageName(t *testing.T) {
	dir := wxProject(t)
	testutil.WriteFile(t, dir, "functions/hello/index.js", "const fast = require('fasthash')\nexports.main = async () => fast()\n")
	testutil.WriteFile(t, dir, "node_modules/fasthash/index.js", "module.exports = require('./build/Release/fasthash.node')\n")
	testutil.WriteFile(t, dir, "node_modules/fasthash/build/Release/fasthash.node", "\x7fELF")
	_, _, err := newWX(t, dir, Production).Build()
	if err == nil {
		t.Fatal("expected a native addon error")
	}
	msg := err.Error()
	for _, want := range []string{"fasthash", "native addon", "build.external", "node_modules/fasthash/index.js:1:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if _, statErr := os.Stat(filepath.Join(dir, ".fn", "build", ManifestFile)); statErr == nil {
		t.Error("a failed build wrote a manifest")
	}
}

func TestExternalOptOutLoadsFromNodeModules(t *testing.T) {
	dir := wxProject(t)
	testutil.WriteFile(t, dir, "functions/hello/index.js", "const fast = require('fasthash')\nexports.main = async () => fast\n")
	testutil.WriteFile(t, dir, "node_modules/fasthash/index.js", "module.exports = require('./build/Release/fasthash.node')\n")
	p, _ := project.Load(dir)
	entries, _ := p.Entries()
	b, err := New(Options{ProjectDir: dir, OutDir: p.BuildDir(), Dialect: p.Dialect, Target: "node18", External: []string{"fasthash"}}, entries)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Dispose()
	if _, _, err := b.Build(); err != nil {
		t.Fatalf("external package should not be bundled: %v", err)
	}
}

func TestRemovedFunctionOutputIsDeleted(t *testing.T) {
	dir := wxProject(t)
	b := newWX(t, dir, Production)
	if _, _, err := b.Build(); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, "functions", "sum"))
	p, _ := project.Load(dir)
	entries, _ := p.Entries()
	if err := b.SetEntries(entries); err != nil {
		t.Fatal(err)
	}
	m, _, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Bundle("sum"); ok {
		t.Fatal("manifest still lists the removed function")
	}
	if _, err := os.Stat(filepath.Join(dir, ".fn", "build", "sum.js")); !os.IsNotExist(err) {
		t.Fatal("removed function's bundle is still on disk")
	}
}

func TestPackageOf(t *testing.T) {
	cases := map[string]string{
		"/p/node_modules/a/lib/x.js":                "a",
		"/p/node_modules/@s/b/index.js":             "@s/b",
		"/p/node_modules/a/node_modules/c/index.js": "c",
		"/p/functions/login/index.js":               "your code (index.js)",
	}
	for in, want := range cases {
		if got := packageOf(in); got != want {
			t.Errorf("packageOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// Packages resolve as Node resolves them for require(): "main" over "module", and in "exports"
// the require condition, never the bundler-only "module" condition (underscore, required by
// leancloud-storage 3.x, is shaped like "exports").
func TestPackagesResolveAsNodeRequiresThem(t *testing.T) {
	for _, mode := range []Mode{Production, Dev} {
		dir := t.TempDir()
		testutil.WriteFile(t, dir, "fn.yaml", "name: shop\ndialect: wx\n")
		testutil.WriteFile(t, dir, "functions/pick/index.js", "const fields = require('fields')\nconst cond = require('cond')\nexports.main = async () => ({ fields: fields.which, cond: cond.which })\n")
		testutil.WriteFile(t, dir, "node_modules/fields/package.json", `{"name":"fields","main":"main.js","module":"esm.js"}`)
		testutil.WriteFile(t, dir, "node_modules/fields/main.js", "exports.which = 'main'\n")
		testutil.WriteFile(t, dir, "node_modules/fields/esm.js", "export const which = 'module'\n")
		testutil.WriteFile(t, dir, "node_modules/cond/package.json", `{"name":"cond","main":"main.js","module":"esm.js",
  "exports":{".":{"import":{"module":"./esm.js","default":"./esm.js"},"require":{"module":"./esm.js","node":"./node.cjs","default":"./main.js"},"default":"./main.js"}}}`)
		testutil.WriteFile(t, dir, "node_modules/cond/main.js", "exports.which = 'main'\n")
		testutil.WriteFile(t, dir, "node_modules/cond/node.cjs", "exports.which = 'require-node'\n")
		testutil.WriteFile(t, dir, "node_modules/cond/esm.js", "export const which = 'module'\n")
		m, _, err := newWX(t, dir, mode).Build()
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, ".fn", "build", m.Bundles[0].File)
		res, err := exec.Command("node", "-e", "require("+jsString(file)+").main().then((r) => console.log(JSON.stringify(r)))").CombinedOutput()
		if got := strings.TrimSpace(string(res)); err != nil || got != `{"fields":"main","cond":"require-node"}` {
			t.Errorf("mode %v: the bundle picked %s (%v); want main and the require/node condition", mode, got, err)
		}
	}
}

// leancloud-storage 3.x requires underscore, whose "module" condition is an ES module build: a
// production bundle must still load and work. It installs from the npm registry, so it runs only
// with FN_TEST_NPM_INSTALL=1.
func TestProductionBundleOfLeancloudStorage3(t *testing.T) {
	if os.Getenv("FN_TEST_NPM_INSTALL") != "1" {
		t.Skip("set FN_TEST_NPM_INSTALL=1 to install leancloud-storage@3.15.0 from the npm registry")
	}
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: shop\ndialect: wx\n")
	testutil.WriteFile(t, dir, "package.json", `{"name":"shop","private":true}`)
	testutil.WriteFile(t, dir, "functions/av/index.js", `const AV = require('leancloud-storage')
exports.main = async () => {
  AV.init({ appId: 'a1b2c3d4e5f6g7h8i9j0-gzGzoHsz', appKey: 'k', serverURL: 'http://127.0.0.1:9' })
  const o = new AV.Object('Todo')
  o.set('title', 'x')
  // toFullJSON calls _([...]).each: underscore itself must be the function, not an ES namespace
  return { title: o.get('title'), version: AV.version, full: o.toFullJSON().title }
}
`)
	install := exec.Command("npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "leancloud-storage@3.15.0")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm install: %v\n%s", err, out)
	}
	// as one build, and as cached dependencies plus the function's own code
	whole := buildInto(t, dir, filepath.Join(dir, "whole"), "")
	split := buildInto(t, dir, filepath.Join(dir, "split"), filepath.Join(dir, "cache"))
	// run the bundle away from node_modules: everything must be inside it
	os.RemoveAll(filepath.Join(dir, "node_modules"))
	for _, file := range []string{filepath.Join(dir, "whole", whole.Bundles[0].File), filepath.Join(dir, "split", split.Bundles[0].File)} {
		res, err := exec.Command("node", "-e", "require("+jsString(file)+").main().then((r) => console.log(JSON.stringify(r)))").CombinedOutput()
		if got := strings.TrimSpace(string(res)); err != nil || got != `{"title":"x","version":"3.15.0","full":"x"}` {
			t.Fatalf("the bundle %s of leancloud-storage 3 failed: %s (%v)", file, got, err)
		}
	}
}

// A WeChat project's function folders are npm packages of their own: a production build (fn
// deploy) takes each function's packages from its own folder, so two functions carry two
// versions of the same package.
func TestProductionBundlesEachFunctionsOwnPackages(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "project.config.json", `{"cloudfunctionRoot": "cloudfunctions/"}`)
	for name, version := range map[string]string{"old": "1.8.3", "new": "2.6.3"} {
		testutil.WriteFile(t, dir, "cloudfunctions/"+name+"/package.json", `{"name":"`+name+`","dependencies":{"wx-server-sdk":"`+version+`"}}`)
		testutil.WriteFile(t, dir, "cloudfunctions/"+name+"/index.js", "const sdk = require('wx-server-sdk')\nexports.main = async () => sdk.version\n")
		testutil.WriteFile(t, dir, "cloudfunctions/"+name+"/node_modules/wx-server-sdk/package.json", `{"name":"wx-server-sdk","version":"`+version+`"}`)
		testutil.WriteFile(t, dir, "cloudfunctions/"+name+"/node_modules/wx-server-sdk/index.js", "exports.version = '"+version+"'\n")
	}
	m, _, err := newWX(t, dir, Production).Build()
	if err != nil {
		t.Fatal(err)
	}
	for name, version := range map[string]string{"old": "1.8.3", "new": "2.6.3"} {
		a, _ := m.Bundle(name)
		file := filepath.Join(dir, ".fn", "build", a.File)
		res, err := exec.Command("node", "-e", "require("+jsString(file)+").main().then(console.log)").CombinedOutput()
		if err != nil || strings.TrimSpace(string(res)) != version {
			t.Errorf("%s: %q %v, want its own %s", name, res, err, version)
		}
	}
}
