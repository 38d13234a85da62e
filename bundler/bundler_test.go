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
