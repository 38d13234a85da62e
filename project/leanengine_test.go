package project

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for rel, c := range files {
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// starterPackage is the package.json of the platform's Node starter layout (written here).
const starterPackage = `{"name": "node-js-getting-started", "main": "server.js",
  "scripts": {"start": "node server.js", "dev": "nodemon server.js"},
  "dependencies": {"express": "^4.18.2", "leanengine": "^3.8.0", "leancloud-storage": "^4.14.0"},
  "engines": {"node": "20.x"}}`

func TestDetectLeanEngineLayouts(t *testing.T) {
	env := map[string]string{"LEANCLOUD_APP_ID": "envApp", "LEANCLOUD_APP_KEY": "envKey",
		"LEANCLOUD_APP_MASTER_KEY": "envMaster", "LEANCLOUD_APP_HOOK_KEY": "envHook", "LEANCLOUD_APP_PORT": "3100"}
	cases := []struct {
		name    string
		files   map[string]string
		getenv  func(string) string
		wantApp *AppProcess
		entry   string
		pname   string
	}{
		{"starter: server.js + app.js + cloud.js + routes/ + views/, npm start is node server.js", map[string]string{
			"package.json": starterPackage, "leanengine.yaml": "functionsMode: strict\n", "server.js": "", "app.js": "", "cloud.js": "",
			"routes/todos.js": "", "views/index.ejs": "", "functions/.gitkeep": ""}, nil,
			&AppProcess{Command: []string{"node", "server.js"}, Source: "package.json scripts.start"}, "cloud.js", "node-js-getting-started"},
		{"leanengine.json run wins over the start script", map[string]string{
			"package.json": starterPackage, "leanengine.json": `{"run": "node ./bin/www.js"}`, "bin/www.js": "", "cloud.js": ""}, nil,
			&AppProcess{Command: []string{"node", "./bin/www.js"}, Source: "leanengine.json run"}, "cloud.js", "node-js-getting-started"},
		{"a start script that is not plain node goes through npm; an old engines.node keeps the default", map[string]string{
			"package.json": `{"name":"@acme/Shop_App","scripts":{"start":"NODE_OPTIONS=--x node index.js"},"dependencies":{"leanengine":"3"},"engines":{"node":"7.x"}}`,
			"index.js":     ""}, nil,
			&AppProcess{Command: []string{"npm", "start"}, Source: "package.json scripts.start"}, "server.js", "shop-app"},
		{"server.js without a start script", map[string]string{
			"package.json": `{"dependencies":{"leanengine":"3"}}`, "server.js": ""}, nil,
			&AppProcess{Command: []string{"node", "server.js"}, Source: "server.js"}, "server.js", ""},
		{"cloud.js only: pure cloud code, the fast path", map[string]string{
			"package.json": `{"name":"fns","dependencies":{"leanengine":"3"}}`, "cloud.js": ""}, func(k string) string { return env[k] },
			nil, "cloud.js", "fns"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeTree(t, c.files)
			p, err := LoadEnv(filepath.Join(dir), c.getenv)
			if err != nil {
				t.Fatal(err)
			}
			if !p.Detected || p.Dialect != Lean || p.Dir != dir {
				t.Fatalf("detected %v dialect %q dir %q", p.Detected, p.Dialect, p.Dir)
			}
			if !reflect.DeepEqual(p.App, c.wantApp) {
				t.Errorf("app process %+v, want %+v", p.App, c.wantApp)
			}
			if p.Entry != c.entry {
				t.Errorf("entry %q, want %q", p.Entry, c.entry)
			}
			if c.pname != "" && p.Name != c.pname {
				t.Errorf("name %q, want %q", p.Name, c.pname)
			}
			if ValidateProjectName(p.Name) != nil {
				t.Errorf("name %q is not a valid project name", p.Name)
			}
			if c.getenv != nil {
				if p.Lean != (LeanKeys{"envApp", "envKey", "envMaster", "envHook"}) || p.Dev.Port != 3100 {
					t.Errorf("env conventions not read: %+v port %d", p.Lean, p.Dev.Port)
				}
			}
			if p.Runtime != DefaultRuntime && p.Runtime != "node20" {
				t.Errorf("runtime %q", p.Runtime)
			}
			if p.Defaults.Timeout != DefaultLeanTimeout {
				t.Errorf("timeout %d", p.Defaults.Timeout)
			}
		})
	}
}

func TestDetectLeanEngineFromASubdirectoryAndRefusals(t *testing.T) {
	dir := writeTree(t, map[string]string{"package.json": starterPackage, "server.js": "", "routes/todos.js": ""})
	p, err := Load(filepath.Join(dir, "routes"))
	if err != nil || p.Dir != dir || p.App == nil {
		t.Fatalf("from routes/: %v %+v", err, p)
	}
	// a Node project that does not use leanengine is not one
	other := writeTree(t, map[string]string{"package.json": `{"dependencies":{"express":"4"}}`, "server.js": ""})
	_, err = Load(other)
	var nl *NotLeanEngineError
	if !errors.As(err, &nl) || !errors.Is(err, ErrNoProject) {
		t.Fatalf("plain node project: %v", err)
	}
	// a LeanEngine project with nothing to run says what it needs
	empty := writeTree(t, map[string]string{"leanengine.json": "{}"})
	if _, err := Load(empty); err == nil {
		t.Fatal("a project with no code loaded")
	}
	bad := writeTree(t, map[string]string{"package.json": starterPackage, "server.js": ""})
	if _, err := LoadEnv(bad, func(k string) string {
		if k == "LEANCLOUD_APP_PORT" {
			return "http"
		}
		return ""
	}); err == nil {
		t.Fatal("a bad LEANCLOUD_APP_PORT was accepted")
	}
	// fn.yaml still wins
	withYAML := writeTree(t, map[string]string{"package.json": starterPackage, "cloud.js": "", FileName: "name: y\ndialect: lean\n"})
	if p, err := Load(withYAML); err != nil || p.Detected || p.Name != "y" {
		t.Fatalf("fn.yaml: %v %+v", err, p)
	}
}
