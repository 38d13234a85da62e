// Package project reads and validates a project: its fn.yaml, its local override file and the
// function entries on disk. It never prints; every problem comes back as an error that names the
// file, the field and what is wrong.
package project

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// FileName is the project file at a project's root.
const FileName = "fn.yaml"

// LocalEnvFile holds secrets for local runs; fn init adds it to .gitignore.
const LocalEnvFile = ".env.local"

// StateDir is where fn keeps build output and dev state inside a project.
const StateDir = ".fn"

// Dialect is the function style of a project.
type Dialect string

const (
	// WX is WeChat cloud functions: one directory per function exporting main(event, context).
	WX Dialect = "wx"
	// Lean is LeanEngine cloud code: one entry (cloud.js) that calls AV.Cloud.define.
	Lean Dialect = "lean"
)

// Limits of the platforms that fn.yaml values are checked against.
const (
	MinTimeout, MaxTimeout = 1, 60     // seconds
	MinMemory, MaxMemory   = 128, 4096 // MB
	DefaultWXTimeout       = 3
	DefaultLeanTimeout     = 15
	DefaultMemory          = 256
	DefaultMaxInstances    = 4
	MinNodeMajor           = 18
	DefaultRuntime         = "node18"
	DefaultTimezone        = "Asia/Shanghai"
	DefaultDevPort         = 3000
	DefaultDevHost         = "127.0.0.1"
	MaxTimersPerEnv        = 5
)

// Project is a loaded, validated project.
type Project struct {
	Dir  string // absolute project root
	File string // absolute path of fn.yaml

	Name         string
	Dialect      Dialect
	EnvID        string // environment id (wx TCB_ENV); generated from the name when absent
	FunctionsDir string // wx: directory holding one directory per function, relative to Dir
	Entry        string // lean: cloud code entry, relative to Dir
	Runtime      string // esbuild/node target, e.g. node18
	Timezone     string // time zone timers are evaluated in

	Defaults        FunctionConfig
	Functions       map[string]FunctionConfig // per-function settings as written
	Identities      map[string]Identity
	DefaultIdentity string
	Timers          []Timer
	Build           BuildConfig
	Dev             DevConfig
	Lean            LeanKeys
	WX              WXConfig

	// LocalEnv comes from .env.local and overrides every function's env in local runs.
	LocalEnv map[string]string

	// Detected is a LeanEngine project read without fn.yaml (File is then its leanengine.json
	// or leanengine.yaml, or empty); App is set when it runs its own web server (app mode).
	Detected bool
	App      *AppProcess
	// WXConfigs are the functions' config.json settings (wx), below fn.yaml's own.
	WXConfigs map[string]FunctionConfig
	// AppID is the mini program's app id from project.config.json ("" without one): the fake
	// identity's appid.
	AppID string
}

// FunctionConfig is the runtime configuration of one function.
type FunctionConfig struct {
	Timeout      int `json:"timeout"` // seconds
	Memory       int `json:"memory"`  // MB
	MaxInstances int `json:"maxInstances"`
	// Concurrency is how many invocations one instance takes at once (wx; CloudBase's
	// 单实例多并发). The default 1 is the platform's default: one request per instance.
	Concurrency int               `json:"concurrency,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	// OpenAPI lists the cloud.openapi calls the function declared (config.json
	// permissions.openapi, e.g. "subscribeMessage.send"); nil (JSON null) when it declared
	// nothing, empty when it declared that it makes none.
	OpenAPI []string `json:"openapi"`
	// ModuleDir is the function's folder (wx, local runs): its require() of packages starts
	// there, so each function gets the packages its own folder installs. Not deployed: a
	// production bundle carries its packages.
	ModuleDir string `json:"-"`
}

// Identity is a named fake caller: openid/appid/unionid for wx, a user name for lean.
type Identity struct {
	OpenID  string `json:"openid,omitempty"`
	AppID   string `json:"appid,omitempty"`
	UnionID string `json:"unionid,omitempty"`
	User    string `json:"user,omitempty"`
}

// Timer runs a function on a schedule.
type Timer struct {
	Name         string   `json:"name"`
	Function     string   `json:"function"`
	Cron         string   `json:"cron,omitempty"`
	Interval     int      `json:"interval,omitempty"` // seconds
	Params       string   `json:"params,omitempty"`   // JSON text
	Environments []string `json:"environments"`
	Line         int      `json:"-"`
}

// BuildConfig tunes bundling.
type BuildConfig struct {
	External []string // packages left to node_modules at run time (opt-out for native addons)
	Minify   bool
}

// DevConfig holds fn dev defaults.
type DevConfig struct {
	Port int
	Host string
}

// WXConfig is fn.yaml's wx section: how the WeChat-side services are emulated offline.
type WXConfig struct {
	OpenAPI WXOpenAPIConfig
	// Permissions: each collection's permission for mini-program clients (wx.cloud.database()):
	// creator (the default), read-all, admin, or custom read/write security rules.
	Permissions map[string]CollectionPermission
}

// CollectionPermission is one collection's client permission.
type CollectionPermission struct {
	Mode        string // creator, read-all, admin, custom
	Read, Write string // custom rules
}

// WXOpenAPIConfig tunes the cloud.openapi emulation: words that fail security.msgSecCheck, and
// canned JSON answers of APIs fn does not emulate (by API name, e.g. "wxa.getPaidUnionid").
type WXOpenAPIConfig struct {
	Blocklist []string
	Responses map[string]any
}

// LeanKeys are the dev app's keys for lean projects.
type LeanKeys struct {
	AppID, AppKey, MasterKey, HookKey string
}

// ErrNoProject is returned when no fn.yaml exists in the directory or its parents.
var ErrNoProject = errors.New("no " + FileName + " found")

// NotFoundError says where fn looked for a project.
type NotFoundError struct{ Dir string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no %s found in %s or any parent directory (nor a WeChat %s with cloudfunctionRoot)", FileName, e.Dir, WXProjectFile)
}

func (e *NotFoundError) Unwrap() error { return ErrNoProject }

// Find returns the nearest directory at or above dir that holds fn.yaml, or a WeChat DevTools
// project.config.json that names a cloudfunctionRoot.
func Find(dir string) (string, error) {
	file, err := FindFile(dir)
	if err != nil {
		return "", err
	}
	return filepath.Dir(file), nil
}

// FindFile returns the project file nearest at or above dir: fn.yaml, or else a
// project.config.json with cloudfunctionRoot (a WeChat project run in place).
func FindFile(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		if st, err := os.Stat(filepath.Join(d, FileName)); err == nil && !st.IsDir() {
			return filepath.Join(d, FileName), nil
		}
		if _, ok, err := ReadWXProjectConfig(d); err != nil {
			return "", err
		} else if ok {
			return filepath.Join(d, WXProjectFile), nil
		}
		if filepath.Dir(d) == d {
			return "", &NotFoundError{Dir: abs}
		}
	}
}

// Load finds and reads the project at or above dir: its fn.yaml (or a WeChat DevTools project's
// project.config.json), or else a LeanEngine project as it is (DetectLeanEngine, without the
// platform's environment variables).
func Load(dir string) (*Project, error) { return LoadEnv(dir, nil) }

// LoadEnv is Load with the LEANCLOUD_* variables a detected LeanEngine project reads.
func LoadEnv(dir string, getenv func(string) string) (*Project, error) {
	file, err := FindFile(dir)
	var nf *NotFoundError
	if err != nil && !errors.As(err, &nf) {
		return nil, err // a project file that is there but wrong says so
	}
	if err != nil {
		le, lerr := FindLeanEngine(dir)
		if lerr != nil {
			return nil, lerr
		}
		return DetectLeanEngine(le, getenv)
	}
	return LoadFile(file)
}

// LoadFile reads and validates one project file (fn.yaml, or a WeChat project.config.json), and
// the .env.local beside it.
func LoadFile(file string) (*Project, error) {
	if filepath.Base(file) == WXProjectFile {
		return loadWXProject(file)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	p, err := Parse(filepath.Base(file), data)
	if err != nil {
		return nil, err
	}
	p.File, _ = filepath.Abs(file)
	p.Dir = filepath.Dir(p.File)
	if p.LocalEnv, err = readLocalEnv(filepath.Join(p.Dir, LocalEnvFile)); err != nil {
		return nil, err
	}
	if p.Dialect == WX {
		if cfg, ok, err := ReadWXProjectConfig(p.Dir); err == nil && ok {
			p.AppID = cfg.AppID
		}
	}
	if err := p.readWXFunctionConfigs(); err != nil {
		return nil, err
	}
	if err := p.checkLayout(); err != nil {
		return nil, err
	}
	return p, nil
}

// Function returns the effective configuration of a function: defaults, then its config.json
// (wx), then its fn.yaml settings, then .env.local on top of env.
func (p *Project) Function(name string) FunctionConfig {
	c := p.Defaults
	env := map[string]string{}
	for k, v := range p.Defaults.Env {
		env[k] = v
	}
	layers := []FunctionConfig{}
	if f, ok := p.WXConfigs[name]; ok {
		layers = append(layers, f)
	}
	if f, ok := p.Functions[name]; ok {
		layers = append(layers, f)
	}
	for _, f := range layers {
		if f.OpenAPI != nil {
			c.OpenAPI = append([]string{}, f.OpenAPI...)
		}
		if f.Timeout != 0 {
			c.Timeout = f.Timeout
		}
		if f.Memory != 0 {
			c.Memory = f.Memory
		}
		if f.Concurrency != 0 {
			c.Concurrency = f.Concurrency
		}
		if f.MaxInstances != 0 {
			c.MaxInstances = f.MaxInstances
		}
		if f.OpenAPI != nil {
			c.OpenAPI = f.OpenAPI
		}
		for k, v := range f.Env {
			env[k] = v
		}
	}
	for k, v := range p.LocalEnv {
		env[k] = v
	}
	c.Env = env
	if p.Dialect == WX && p.Dir != "" {
		if dir := filepath.Join(p.Dir, p.FunctionsDir, name); isDir(dir) {
			c.ModuleDir = dir
		}
	}
	return c
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// Identity returns the named identity, or the default one when name is empty. Without any
// configured identity it returns deterministic fake values derived from the project name.
func (p *Project) Identity(name string) (Identity, string, error) {
	if name == "" {
		name = p.DefaultIdentity
	}
	if name == "" {
		if len(p.Identities) == 1 {
			for n, id := range p.Identities {
				return id, n, nil
			}
		}
		return p.fakeIdentity(), "", nil
	}
	id, ok := p.Identities[name]
	if !ok {
		return Identity{}, "", fmt.Errorf("unknown identity %q (known: %s)", name, strings.Join(p.IdentityNames(), ", "))
	}
	return id, name, nil
}

// IdentityNames lists the configured identities, sorted.
func (p *Project) IdentityNames() []string {
	names := make([]string, 0, len(p.Identities))
	for n := range p.Identities {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (p *Project) fakeIdentity() Identity {
	if p.Dialect == Lean {
		return Identity{}
	}
	h := shortHash(p.Name)
	appID := "wx" + h + "fakeappid"
	if p.AppID != "" {
		appID = p.AppID
	}
	return Identity{
		OpenID:  "o" + h + "fakeopenid0000000",
		AppID:   appID,
		UnionID: "u" + h + "fakeunionid0000000",
	}
}

// StatePath joins elem below the project's .fn directory.
func (p *Project) StatePath(elem ...string) string {
	return filepath.Join(append([]string{p.Dir, StateDir}, elem...)...)
}

// BuildDir is where fn build writes bundles and the manifest.
func (p *Project) BuildDir() string { return p.StatePath("build") }
