package admin_test

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/admin"
	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/internal/testutil"
)

func fileQ(p string) string { return "/__fn/apps/-/source/dev/file?path=" + url.QueryEscape(p) }

// invokeUntil calls a function until its result is want (a save reloads asynchronously).
func invokeUntil(t *testing.T, base, fn, want string) {
	t.Helper()
	var last string
	testutil.Eventually(t, 10*time.Second, fn+" to answer "+want, func() bool {
		var out api.Outcome
		if st, raw := call(t, base, "", "POST", "/__fn/apps/-/invoke/dev/"+fn, api.InvokeRequest{}); st == 200 {
			json.Unmarshal(raw, &out)
			last = string(out.Result)
		}
		return last == want
	})
}

// The source routes of fn dev: list, read, a checked save that hot-reloads, a save with a
// syntax error refused (unless forced), and a new function from a template.
func TestSourceEditingInFnDev(t *testing.T) {
	base, dir := startDev(t, map[string]string{
		"fn.yaml":                  "name: se\ndialect: wx\n",
		"functions/hello/index.js": "exports.main = async () => 'v1'\n",
		"functions/hello/lib.js":   "module.exports = 1\n",
		"notes.js":                 "// not a function's\n",
	})
	var list struct {
		Files []admin.SourceFile `json:"files"`
	}
	must(t, 200, base, "", "GET", "/__fn/apps/-/source/dev", nil, &list)
	if len(list.Files) != 2 || list.Files[0] != (admin.SourceFile{Path: "functions/hello/index.js", Function: "hello"}) || list.Files[1].Path != "functions/hello/lib.js" {
		t.Fatalf("files: %+v", list.Files)
	}
	var f struct{ Path, Content string }
	must(t, 200, base, "", "GET", fileQ("functions/hello/index.js"), nil, &f)
	if f.Content != "exports.main = async () => 'v1'\n" {
		t.Fatalf("read: %+v", f)
	}
	invokeUntil(t, base, "hello", `"v1"`)
	must(t, 200, base, "", "PUT", fileQ("functions/hello/index.js"), map[string]string{"content": "exports.main = async () => 'v2'\n"}, nil)
	invokeUntil(t, base, "hello", `"v2"`)

	// a syntax error: 422 with esbuild's position, the file untouched
	var bf admin.BuildFailed
	must(t, 422, base, "", "PUT", fileQ("functions/hello/index.js"), map[string]string{"content": "exports.main = async () => {\n  return (1 +\n}\n"}, &bf)
	if bf.Code != "build_failed" || len(bf.Errors) == 0 || bf.Errors[0].File != "functions/hello/index.js" || bf.Errors[0].Line != 3 || bf.Errors[0].Column < 1 {
		t.Fatalf("build failure: %+v", bf)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "functions/hello/index.js")); string(b) != "exports.main = async () => 'v2'\n" {
		t.Fatalf("a refused save was written: %q", b)
	}
	// forced, it is written (and the running version keeps serving)
	must(t, 200, base, "", "PUT", fileQ("functions/hello/index.js")+"&force=1", map[string]string{"content": "exports.main = async () => {\n"}, nil)
	if b, _ := os.ReadFile(filepath.Join(dir, "functions/hello/index.js")); string(b) != "exports.main = async () => {\n" {
		t.Fatalf("a forced save: %q", b)
	}
	failsWith(t, 400, base, "", "PUT", fileQ("functions/hello/index.js"), map[string]string{}, "content")
	failsWith(t, 404, base, "", "GET", fileQ("functions/hello/none.js"), nil, "none.js")

	// a new function and a new timer from templates
	var made struct{ Path string }
	must(t, 201, base, "", "POST", "/__fn/apps/-/source/dev/functions", admin.NewFunction{Name: "fresh", Type: "function"}, &made)
	if made.Path != "functions/fresh/index.js" {
		t.Fatalf("created %+v", made)
	}
	testutil.Eventually(t, 10*time.Second, "the new function to load", func() bool {
		var out api.Outcome
		st, raw := call(t, base, "", "POST", "/__fn/apps/-/invoke/dev/fresh", api.InvokeRequest{Data: json.RawMessage(`{"x":1}`)})
		json.Unmarshal(raw, &out)
		return st == 200 && strings.Contains(string(out.Result), `"x":1`)
	})
	must(t, 201, base, "", "POST", "/__fn/apps/-/source/dev/functions", admin.NewFunction{Name: "tick", Type: "timer", Cron: "0 0 * * * ?"}, &made)
	y, _ := os.ReadFile(filepath.Join(dir, "fn.yaml"))
	if !strings.Contains(string(y), "timers:\n  tick:\n    function: tick\n    cron: \"0 0 * * * ?\"\n") {
		t.Fatalf("fn.yaml: %s", y)
	}
	testutil.Eventually(t, 10*time.Second, "the new timer", func() bool {
		_, raw := call(t, base, "", "GET", "/__fn/apps/-/timers/dev", nil)
		return strings.Contains(string(raw), `"name":"tick"`)
	})
	failsWith(t, 409, base, "", "POST", "/__fn/apps/-/source/dev/functions", admin.NewFunction{Name: "fresh", Type: "function"}, "exists")
	for _, c := range []struct {
		body admin.NewFunction
		word string
	}{
		{admin.NewFunction{Name: "9bad", Type: "function"}, "name"},
		{admin.NewFunction{Name: "x", Type: "script"}, "type"},
		{admin.NewFunction{Name: "x", Type: "hook", Class: "Todo", Hook: "beforeSave"}, "wx"},
		{admin.NewFunction{Name: "x", Type: "timer", Cron: "every day"}, "cron"},
		{admin.NewFunction{Name: "x", Type: "timer"}, "cron"},
		{admin.NewFunction{Name: "x", Type: "function", Cron: "0 * * * * ?"}, "cron"},
	} {
		failsWith(t, 400, base, "", "POST", "/__fn/apps/-/source/dev/functions", c.body, c.word)
	}
	if _, err := os.Stat(filepath.Join(dir, "functions/x")); err == nil {
		t.Fatal("a refused create wrote a function")
	}
}

// Paths from the console are hostile: nothing outside the project's function sources is read
// or written, through .., absolute paths, symlinks, node_modules or .fn.
func TestSourcePathsAreConfined(t *testing.T) {
	outside := t.TempDir()
	testutil.WriteFile(t, outside, "secret.js", "module.exports = 'secret'\n")
	base, dir := startDev(t, map[string]string{
		"fn.yaml":                  "name: sc\ndialect: wx\n",
		"functions/hello/index.js": "exports.main = async () => 1\n",
	})
	os.Symlink(filepath.Join(outside, "secret.js"), filepath.Join(dir, "functions/hello/link.js"))
	os.Symlink(outside, filepath.Join(dir, "functions/out"))
	os.MkdirAll(filepath.Join(dir, "functions/hello/node_modules/dep"), 0o755)
	os.WriteFile(filepath.Join(dir, "functions/hello/node_modules/dep/index.js"), []byte("x"), 0o644)
	attacks := []string{
		"", "../secret.js", "functions/../../secret.js", "functions/hello/../../fn.yaml", "/etc/passwd.js",
		filepath.Join(outside, "secret.js"), "functions\\hello\\index.js", "functions/hello/link.js", "functions/out/secret.js",
		"functions/hello/node_modules/dep/index.js", ".fn/dev.json", "functions/.fn/x.js", "fn.yaml", "notes.js",
		"functions/hello/index.sh", "functions/hello//index.js", "functions/./hello/index.js", "functions/index.js",
		"functions/hello/index.js\x00.js", strings.Repeat("a/", 300) + "x.js", "C:/x.js",
	}
	for _, a := range attacks {
		e := failsWith(t, 400, base, "", "GET", fileQ(a), nil, "path")
		if strings.Contains(e.Error, "secret'") {
			t.Errorf("%q leaked: %s", a, e.Error)
		}
		failsWith(t, 400, base, "", "PUT", fileQ(a), map[string]string{"content": "module.exports = 'pwned'\n"}, "path")
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "secret.js")); string(b) != "module.exports = 'secret'\n" {
		t.Fatalf("a file outside the project was written: %q", b)
	}
	if _, err := os.Stat(filepath.Join(outside, "x.js")); err == nil {
		t.Fatal("a file was created outside the project")
	}
	var list struct {
		Files []admin.SourceFile `json:"files"`
	}
	must(t, 200, base, "", "GET", "/__fn/apps/-/source/dev", nil, &list)
	for _, f := range list.Files {
		if f.Path != "functions/hello/index.js" {
			t.Errorf("listed %q", f.Path)
		}
	}
	// a body over the bound
	failsWith(t, 400, base, "", "PUT", fileQ("functions/hello/index.js"), map[string]string{"content": strings.Repeat("x", 2<<20)}, "")
}

// A lean project: cloud code files, new functions and hooks required from the entry.
func TestSourceLeanFunctionsAndHooks(t *testing.T) {
	base, dir := startDev(t, map[string]string{"fn.yaml": leanYAML, "cloud.js": "const AV = require('leanengine')\nAV.Cloud.define('a', async () => 'a')\n"})
	var made struct{ Path string }
	must(t, 201, base, "", "POST", "/__fn/apps/-/source/dev/functions", admin.NewFunction{Name: "greet", Type: "function"}, &made)
	if made.Path != "cloud/greet.js" {
		t.Fatalf("created %+v", made)
	}
	must(t, 201, base, "", "POST", "/__fn/apps/-/source/dev/functions", admin.NewFunction{Type: "hook", Class: "Todo", Hook: "beforeSave"}, &made)
	if made.Path != "cloud/Todo-beforeSave.js" {
		t.Fatalf("created %+v", made)
	}
	entry, _ := os.ReadFile(filepath.Join(dir, "cloud.js"))
	if !strings.Contains(string(entry), "require('./cloud/greet')\nrequire('./cloud/Todo-beforeSave')\n") {
		t.Fatalf("cloud.js: %s", entry)
	}
	invokeUntil(t, base, "greet", `{"params":{},"user":null}`)
	testutil.Eventually(t, 10*time.Second, "the new hook", func() bool {
		st, _ := call(t, base, "", "POST", "/__fn/apps/-/hooks/dev/Todo/beforeSave", map[string]any{"object": map[string]any{}})
		return st == 200
	})
	var list struct {
		Files []admin.SourceFile `json:"files"`
	}
	must(t, 200, base, "", "GET", "/__fn/apps/-/source/dev", nil, &list)
	var paths []string
	for _, f := range list.Files {
		paths = append(paths, f.Path)
	}
	if strings.Join(paths, ",") != "cloud.js,cloud/Todo-beforeSave.js,cloud/greet.js" {
		t.Fatalf("files: %v", paths)
	}
	failsWith(t, 400, base, "", "GET", fileQ("package.json"), nil, "configuration")
}
