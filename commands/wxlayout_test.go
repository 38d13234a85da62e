package commands

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fnhq/fn/internal/testutil"
)

func devtoolsProjectDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "project.config.json", `{"miniprogramRoot":"miniprogram/","cloudfunctionRoot":"cloudfunctions/","appid":"wx0123456789abcdef","projectname":"todo-app"}`)
	testutil.WriteFile(t, dir, "miniprogram/app.js", "App({})\n")
	testutil.WriteFile(t, dir, "cloudfunctions/todos/index.js", "const cloud = require('wx-server-sdk')\ncloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })\n"+
		"exports.main = async () => (await cloud.database().collection('todos').orderBy('n', 'asc').get()).data.map((d) => d.title)\n")
	testutil.WriteFile(t, dir, "cloudfunctions/todos/package.json", `{"name":"todos","dependencies":{"wx-server-sdk":"~2.6.3"}}`)
	testutil.WriteFile(t, dir, "cloudfunctions/nightly/index.js", "exports.main = async () => 'ran'\n")
	testutil.WriteFile(t, dir, "cloudfunctions/nightly/config.json", `{"triggers":[{"name":"nightly","type":"timer","config":"0 0 2 * * * *"}]}`)
	return dir
}

// fn init in an existing WeChat project writes only an fn.yaml that points at it: no sample
// functions, the project's own files untouched.
func TestInitFromExistingWXProject(t *testing.T) {
	for _, flags := range [][]string{{"--from-existing", "--no-install"}, {"--force", "--no-install"}} {
		dir := devtoolsProjectDir(t)
		args := append([]string{"init", dir}, flags...)
		r := fn(t, dir, args...)
		if r.code != 0 {
			t.Fatalf("%v: %d %s %s", args, r.code, r.out, r.err)
		}
		yml, err := os.ReadFile(filepath.Join(dir, "fn.yaml"))
		if err != nil || !strings.Contains(string(yml), "name: todo-app\ndialect: wx\nfunctionsDir: \"cloudfunctions\"\n") {
			t.Fatalf("%v: fn.yaml %q %v", args, yml, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "functions")); err == nil {
			t.Errorf("%v added the template's sample functions", args)
		}
		items, _ := os.ReadDir(filepath.Join(dir, "cloudfunctions"))
		if len(items) != 2 {
			t.Errorf("%v: cloudfunctions/ now has %d entries", args, len(items))
		}
		if !strings.Contains(r.err, "npm install)") || !strings.Contains(r.err, filepath.Join("cloudfunctions", "todos")+" && npm install") || strings.Contains(r.err, "nightly && npm install") || strings.Contains(r.err, "nightly && npm install") {
			t.Errorf("%v should name the folder that needs npm install:\n%s", args, r.err)
		}
		if gi, _ := os.ReadFile(filepath.Join(dir, ".gitignore")); !strings.Contains(string(gi), ".fn/\n.env.local\n") {
			t.Errorf(".gitignore %q", gi)
		}
		// a second run keeps the fn.yaml
		if r := fn(t, dir, "init", dir, "--from-existing", "--no-install", "--json"); r.code != 0 || !strings.Contains(r.out, `"skipped": [`) || !strings.Contains(r.out, `"fn.yaml"`) {
			t.Errorf("second run: %d %s %s", r.code, r.out, r.err)
		}
	}
	empty := t.TempDir()
	if r := fn(t, empty, "init", empty, "--from-existing"); r.code == 0 || !strings.Contains(r.err, "has no project.config.json with cloudfunctionRoot") {
		t.Errorf("no WeChat project: %d %s", r.code, r.err)
	}
}

// Without any fn.yaml, fn build and fn timers see the project's functions and config.json timers;
// fn data moves a collection in the console's JSON Lines format, and functions read it.
func TestWXProjectWithoutFnYAMLBuildsAndServesImportedData(t *testing.T) {
	dir := devtoolsProjectDir(t)
	testutil.LinkNodeModules(t, filepath.Join(dir, "cloudfunctions", "todos"))
	// cloud.init() without env reads the same database as fn data and DYNAMIC_CURRENT_ENV
	testutil.WriteFile(t, dir, "cloudfunctions/plain/index.js", "const cloud = require('wx-server-sdk')\ncloud.init()\n"+
		"exports.main = async () => (await cloud.database().collection('todos').count()).total\n")
	testutil.LinkNodeModules(t, filepath.Join(dir, "cloudfunctions", "plain"))
	r := fn(t, dir, "build", "--json")
	if r.code != 0 || !strings.Contains(r.out, `"todos"`) || !strings.Contains(r.out, `"nightly"`) {
		t.Fatalf("build: %d %s %s", r.code, r.out, r.err)
	}
	in := testutil.WriteFile(t, dir, "todos.json", "{\"_id\":\"a1\",\"title\":\"first\",\"n\":1,\"due\":{\"$date\":\"2024-05-01T00:00:00.000Z\"}}\n"+
		"{\"_id\":\"a2\",\"title\":\"second\",\"n\":2}\n")
	if r := fn(t, dir, "data", "import", in, "--json"); r.code != 0 || !strings.Contains(r.out, `"imported": 2`) || !strings.Contains(r.out, `"collection": "todos"`) {
		t.Fatalf("import: %d %s %s", r.code, r.out, r.err)
	}
	if r := fn(t, dir, "data", "import", in); r.code == 0 {
		t.Errorf("importing the same _ids again in insert mode should fail: %s", r.err)
	}
	if r := fn(t, dir, "data", "import", in, "--mode", "upsert"); r.code != 0 {
		t.Errorf("upsert: %d %s", r.code, r.err)
	}
	if r := fn(t, dir, "data", "list"); r.code != 0 || strings.TrimSpace(r.out) != "todos" {
		t.Errorf("list: %d %q %s", r.code, r.out, r.err)
	}
	r = fn(t, dir, "data", "export", "todos")
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if r.code != 0 || len(lines) != 2 {
		t.Fatalf("export: %d %q %s", r.code, r.out, r.err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &doc); err != nil || doc["title"] == nil || doc["due"] == nil {
		t.Errorf("export line %q %v", lines[0], err)
	}
	if !strings.Contains(r.out, `"$date"`) {
		t.Errorf("dates should export as {\"$date\": …}: %s", r.out)
	}
	if r := fn(t, dir, "data", "export"); r.code != ExitUsage || !strings.Contains(r.err, "collections in") || !strings.Contains(r.err, "todos") {
		t.Errorf("export without a collection: %d %s", r.code, r.err)
	}
	r = fn(t, dir, "invoke", "todos")
	if r.code != 0 || strings.Join(strings.Fields(r.out), "") != `["first","second"]` {
		t.Fatalf("invoke todos: %d %s %s", r.code, r.out, r.err)
	}
	if r := fn(t, dir, "invoke", "plain"); r.code != 0 || strings.TrimSpace(r.out) != "2" {
		t.Fatalf("invoke plain: %d %s %s", r.code, r.out, r.err)
	}
}

func TestDoctorNamesFunctionFoldersWithoutPackages(t *testing.T) {
	dir := devtoolsProjectDir(t)
	r := fn(t, dir, "doctor", "--json")
	if r.code != ExitFailure || !strings.Contains(r.out, `"name": "packages"`) || !strings.Contains(r.out, "1 of 1 function folders have a package.json but no node_modules: cloudfunctions/todos") ||
		!strings.Contains(r.out, "(cd cloudfunctions/todos \u0026\u0026 npm install)") {
		t.Fatalf("doctor: %d %s %s", r.code, r.out, r.err)
	}
	os.MkdirAll(filepath.Join(dir, "cloudfunctions", "todos", "node_modules"), 0o755)
	if r := fn(t, dir, "doctor", "--json"); !strings.Contains(r.out, "1 function folders have their own packages installed") {
		t.Fatalf("doctor after install: %d %s", r.code, r.out)
	}
}

// fn deploy of a WeChat project without fn.yaml: each function is bundled with the packages of
// its own folder (two versions of one package), and runs on fn serve as it did locally.
func TestDeployWXProjectBundlesEachFunctionsOwnPackages(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	s := startServe(t, t.TempDir(), "admintoken-wx", "")
	if r := fn(t, ".", "login", "--server", s.url, "--token", "admintoken-wx"); r.code != 0 {
		t.Fatalf("login: %d %s", r.code, r.err)
	}
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "project.config.json", `{"cloudfunctionRoot":"cloudfunctions/","projectname":"pinned"}`)
	for name, v := range map[string]string{"old": "1.8.3", "new": "2.6.3"} {
		f := "cloudfunctions/" + name + "/"
		testutil.WriteFile(t, dir, f+"index.js", "const sdk = require('sdk-like')\nexports.main = async (event, context) => ({ v: sdk.version, limit: context.time_limit_in_ms })\n")
		testutil.WriteFile(t, dir, f+"package.json", `{"name":"`+name+`","dependencies":{"sdk-like":"`+v+`"}}`)
		testutil.WriteFile(t, dir, f+"config.json", `{"timeout": 4}`)
		testutil.WriteFile(t, dir, f+"node_modules/sdk-like/package.json", `{"name":"sdk-like","version":"`+v+`"}`)
		testutil.WriteFile(t, dir, f+"node_modules/sdk-like/index.js", "exports.version = '"+v+"'\n")
	}
	if r := fn(t, ".", "apps", "create", "pinned", "--json"); r.code != 0 {
		t.Fatalf("apps create: %d %s %s", r.code, r.out, r.err)
	}
	if r := fn(t, dir, "deploy", "--env", "production"); r.code != 0 {
		t.Fatalf("deploy: %d %s %s", r.code, r.out, r.err)
	}
	for name, v := range map[string]string{"old": "1.8.3", "new": "2.6.3"} {
		r := fn(t, dir, "invoke", name, "--remote", "--env", "production")
		var got struct {
			V     string
			Limit int
		}
		if r.code != 0 || json.Unmarshal([]byte(r.out), &got) != nil || got.V != v || got.Limit != 4000 {
			t.Errorf("%s on fn serve: %d %s %s", name, r.code, r.out, r.err)
		}
	}
}
