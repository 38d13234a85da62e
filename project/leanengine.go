package project

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// A LeanEngine project moved from LeanCloud runs as it is, without fn.yaml: fn recognises the
// platform's layout (leanengine.json / leanengine.yaml, a package.json that depends on
// leanengine, server.js / app.js / cloud.js) and reads its settings the way the platform does.

// AppProcess is how a LeanEngine project with its own web server starts, as the platform
// starts it: the process listens on LEANCLOUD_APP_PORT and serves the app's own routes, with
// the leanengine middleware inside it serving the cloud functions and hooks.
type AppProcess struct {
	// Command is the program and its arguments; "node" stands for fn's Node.
	Command []string `json:"command"`
	// Source says where the command came from, for messages.
	Source string `json:"source"`
}

// LeanEngineFiles are the platform's own project files.
var LeanEngineFiles = []string{"leanengine.json", "leanengine.yaml"}

// leanEngineConfig is what fn reads of leanengine.json / leanengine.yaml.
type leanEngineConfig struct {
	Run           string `json:"run" yaml:"run"`
	FunctionsMode string `json:"functionsMode" yaml:"functionsMode"`
}

type packageJSON struct {
	Name            string            `json:"name"`
	Main            string            `json:"main"`
	Scripts         map[string]string `json:"scripts"`
	Dependencies    map[string]string `json:"dependencies"`
	DevDependencies map[string]string `json:"devDependencies"`
	Engines         struct {
		Node string `json:"node"`
	} `json:"engines"`
}

// NotLeanEngineError is a directory without fn.yaml that is not a LeanEngine project either.
type NotLeanEngineError struct{ Dir string }

func (e *NotLeanEngineError) Error() string {
	return fmt.Sprintf("no %s found in %s or any parent directory, and it is not a LeanEngine project "+
		"(no leanengine.json, leanengine.yaml or package.json depending on leanengine)", FileName, e.Dir)
}
func (e *NotLeanEngineError) Unwrap() error { return ErrNoProject }

// FindLeanEngine returns the nearest directory at or above dir that is a LeanEngine project.
func FindLeanEngine(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		if isLeanEngineDir(d) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", &NotLeanEngineError{Dir: abs}
		}
	}
}

func isLeanEngineDir(d string) bool {
	for _, f := range LeanEngineFiles {
		if fileExists(filepath.Join(d, f)) {
			return true
		}
	}
	pkg, err := readPackageJSON(d)
	if err != nil || pkg == nil {
		return false
	}
	_, dep := pkg.Dependencies["leanengine"]
	return dep
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

func readPackageJSON(dir string) (*packageJSON, error) {
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pkg packageJSON
	if err := json.Unmarshal(b, &pkg); err != nil {
		return nil, fmt.Errorf("package.json: %w", err)
	}
	return &pkg, nil
}

func readLeanEngineConfig(dir string) (leanEngineConfig, string, error) {
	var c leanEngineConfig
	for _, f := range LeanEngineFiles {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return c, f, err
		}
		if len(strings.TrimSpace(string(b))) == 0 {
			return c, f, nil
		}
		// JSON is YAML: one decoder reads both spellings of the file
		if err := yaml.Unmarshal(b, &c); err != nil {
			return c, f, fmt.Errorf("%s: %v", f, err)
		}
		return c, f, nil
	}
	return c, "", nil
}

var (
	nodeScriptRE = regexp.MustCompile(`^node\s+([A-Za-z0-9_./-]+\.(?:js|cjs|mjs))$`)
	enginesRE    = regexp.MustCompile(`(\d+)`)
	nameCleanRE  = regexp.MustCompile(`[^a-z0-9-]+`)
)

// DetectLeanEngine reads the LeanEngine project at dir (no fn.yaml) as a lean project. getenv
// supplies the platform's variables (LEANCLOUD_APP_ID, _APP_KEY, _APP_MASTER_KEY, _APP_HOOK_KEY:
// the dev app's keys; LEANCLOUD_APP_PORT: fn dev's port); nil reads none.
//
// The app process: leanengine.yaml/json `run`, else package.json `scripts.start`, else
// `node server.js` when server.js exists — as the platform starts a Node app. A `node <file>`
// start script runs with fn's Node directly; anything else through npm start. Without any of
// them the project is pure cloud code (cloud.js, else app.js) and takes the shared-worker path.
func DetectLeanEngine(dir string, getenv func(string) string) (*Project, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if !isLeanEngineDir(abs) {
		return nil, &NotLeanEngineError{Dir: abs}
	}
	pkg, err := readPackageJSON(abs)
	if err != nil {
		return nil, err
	}
	if pkg == nil {
		pkg = &packageJSON{}
	}
	cfg, cfgFile, err := readLeanEngineConfig(abs)
	if err != nil {
		return nil, err
	}
	entry := ""
	for _, c := range []string{"cloud.js", "app.js", "server.js"} {
		if fileExists(filepath.Join(abs, c)) {
			entry = c
			break
		}
	}
	var app *AppProcess
	switch {
	case strings.TrimSpace(cfg.Run) != "":
		app = scriptProcess(strings.TrimSpace(cfg.Run), cfgFile+" run")
	case strings.TrimSpace(pkg.Scripts["start"]) != "":
		app = scriptProcess(strings.TrimSpace(pkg.Scripts["start"]), "package.json scripts.start")
		if app.Command[0] == "sh" {
			app = &AppProcess{Command: []string{"npm", "start"}, Source: "package.json scripts.start"}
		}
	case fileExists(filepath.Join(abs, "server.js")):
		app = &AppProcess{Command: []string{"node", "server.js"}, Source: "server.js"}
	}
	if entry == "" && app == nil {
		return nil, &ValidationError{File: "package.json", Problems: []Problem{{Field: "scripts.start",
			Msg: "a LeanEngine project needs server.js, app.js, cloud.js or a start script"}}}
	}
	if entry == "" {
		entry = "server.js" // only its app process runs; the entry is never bundled in app mode
	}
	pkgName := pkg.Name
	if _, after, scoped := strings.Cut(pkgName, "/"); scoped && strings.HasPrefix(pkgName, "@") {
		pkgName = after
	}
	name := strings.Trim(nameCleanRE.ReplaceAllString(strings.ToLower(pkgName), "-"), "-")
	if ValidateProjectName(name) != nil {
		name = strings.Trim(nameCleanRE.ReplaceAllString(strings.ToLower(filepath.Base(abs)), "-"), "-")
	}
	if len(name) > 50 {
		name = strings.Trim(name[:50], "-")
	}
	if ValidateProjectName(name) != nil {
		name = "leanengine-app"
	}
	runtime := DefaultRuntime
	// engines.node picks the bundle target; older Node versions than fn runs (LeanCloud's 7.x,
	// 12.x apps) keep the default: the code runs on fn's Node either way
	if m := enginesRE.FindStringSubmatch(pkg.Engines.Node); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil && n >= MinNodeMajor && n < 100 {
			runtime = "node" + m[1]
		}
	}
	text := fmt.Sprintf("name: %s\ndialect: lean\nentry: %s\nruntime: %s\n", name, entry, runtime)
	p, err := Parse("leanengine project", []byte(text))
	if err != nil {
		return nil, err
	}
	p.Dir = abs
	p.App = app
	p.Detected = true
	if cfgFile != "" {
		p.File = filepath.Join(abs, cfgFile)
	}
	p.Lean = LeanKeys{AppID: getenv("LEANCLOUD_APP_ID"), AppKey: getenv("LEANCLOUD_APP_KEY"),
		MasterKey: getenv("LEANCLOUD_APP_MASTER_KEY"), HookKey: getenv("LEANCLOUD_APP_HOOK_KEY")}
	if v := getenv("LEANCLOUD_APP_PORT"); v != "" {
		var port int
		if _, err := fmt.Sscanf(v, "%d", &port); err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("LEANCLOUD_APP_PORT=%q is not a port number", v)
		}
		p.Dev.Port = port
	}
	if p.LocalEnv, err = readLocalEnv(filepath.Join(abs, LocalEnvFile)); err != nil {
		return nil, err
	}
	return p, nil
}

// scriptProcess is a start command: `node <file>` runs directly, anything else through sh.
func scriptProcess(script, source string) *AppProcess {
	if m := nodeScriptRE.FindStringSubmatch(script); m != nil {
		return &AppProcess{Command: []string{"node", m[1]}, Source: source}
	}
	return &AppProcess{Command: []string{"sh", "-c", script}, Source: source}
}
