package project

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/tailscale/hujson"

	"github.com/fnhq/fn/cron"
)

// A WeChat DevTools project runs in place: its project.config.json names the functions directory
// (cloudfunctionRoot), and each function directory may hold a config.json with its timer trigger,
// the openapi calls it may make, and runtime settings. fn reads both with or without an fn.yaml.

// WXProjectFile is WeChat DevTools' project file.
const WXProjectFile = "project.config.json"

// WXFunctionConfigFile is the per-function configuration file of WeChat DevTools and CloudBase.
const WXFunctionConfigFile = "config.json"

// maxConfigFileSize bounds project.config.json and config.json (real ones are a few KB).
const maxConfigFileSize = 1 << 20

// WXProjectConfig is what fn reads from project.config.json.
type WXProjectConfig struct {
	CloudfunctionRoot string `json:"cloudfunctionRoot"`
	ProjectName       string `json:"projectname"`
	AppID             string `json:"appid"`
}

// ReadWXProjectConfig reads dir/project.config.json. ok is false when the file is absent or has
// no cloudfunctionRoot (a mini program without cloud functions is not a project of fn's).
func ReadWXProjectConfig(dir string) (cfg WXProjectConfig, ok bool, err error) {
	path := filepath.Join(dir, WXProjectFile)
	b, err := readBounded(path)
	if os.IsNotExist(err) {
		return cfg, false, nil
	}
	if err != nil {
		return cfg, false, err
	}
	if err := decodeJSONC(b, &cfg); err != nil {
		return cfg, false, &ValidationError{File: WXProjectFile, Problems: []Problem{{Msg: "invalid JSON: " + err.Error()}}}
	}
	if strings.TrimSpace(cfg.CloudfunctionRoot) == "" {
		return cfg, false, nil
	}
	root, perr := cleanRelDir(cfg.CloudfunctionRoot)
	if perr != "" {
		return cfg, false, &ValidationError{File: WXProjectFile, Problems: []Problem{{Field: "cloudfunctionRoot", Msg: perr}}}
	}
	cfg.CloudfunctionRoot = root
	return cfg, true, nil
}

// cleanRelDir turns "cloudfunctions/" or "./cloud/functions" into a clean path inside the project.
func cleanRelDir(s string) (string, string) {
	s = filepath.ToSlash(strings.TrimSpace(s))
	if strings.HasPrefix(s, "/") || filepath.IsAbs(s) {
		return "", fmt.Sprintf("must be a path inside the project, got %q", s)
	}
	c := filepath.ToSlash(filepath.Clean(s))
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Sprintf("must be a directory inside the project, got %q", s)
	}
	return c, ""
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a directory", path)
	}
	if st.Size() > maxConfigFileSize {
		return nil, fmt.Errorf("%s is %d bytes (at most %d)", path, st.Size(), maxConfigFileSize)
	}
	return os.ReadFile(path)
}

// decodeJSONC decodes JSON that may carry comments and trailing commas: the platform's own
// documentation shows config.json with // comments, and DevTools accepts them.
func decodeJSONC(b []byte, v any) error {
	std, err := hujson.Standardize(b)
	if err != nil {
		return err
	}
	return json.Unmarshal(std, v)
}

var nameCharRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[^a-z0-9-]+`) })

// wxProjectName derives fn's project name from the DevTools project name or the directory.
func wxProjectName(candidates ...string) string {
	for _, c := range candidates {
		n := strings.Trim(nameCharRE().ReplaceAllString(strings.ToLower(c), "-"), "-")
		for len(n) > 0 && (n[0] < 'a' || n[0] > 'z') {
			n = strings.TrimLeft(n[1:], "-")
		}
		if len(n) > 50 {
			n = strings.TrimRight(n[:50], "-")
		}
		if ValidateProjectName(n) == nil {
			return n
		}
	}
	return "wx-project"
}

// WXProjectName is the fn project name of a DevTools project: from its projectname, else from
// the directory's name, else "wx-project".
func WXProjectName(cfg WXProjectConfig, dir string) string {
	return wxProjectName(cfg.ProjectName, filepath.Base(dir))
}

// loadWXProject loads a DevTools project that has no fn.yaml: its project.config.json gives
// the functions directory, the name and the app id; everything else is fn's defaults.
func loadWXProject(file string) (*Project, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(abs)
	cfg, ok, err := ReadWXProjectConfig(dir)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &ValidationError{File: WXProjectFile, Problems: []Problem{{Field: "cloudfunctionRoot",
			Msg: "is missing: fn runs a WeChat project's cloud functions from the directory cloudfunctionRoot names (e.g. \"cloudfunctions/\")"}}}
	}
	src := "name: " + wxProjectName(cfg.ProjectName, filepath.Base(dir)) + "\ndialect: wx\nfunctionsDir: " + strconv.Quote(cfg.CloudfunctionRoot) + "\n"
	p, err := Parse(FileName, []byte(src))
	if err != nil {
		return nil, err
	}
	p.File, p.Dir, p.AppID = abs, dir, cfg.AppID
	if p.LocalEnv, err = readLocalEnv(filepath.Join(p.Dir, LocalEnvFile)); err != nil {
		return nil, err
	}
	if err := p.readWXFunctionConfigs(); err != nil {
		return nil, err
	}
	if err := p.checkLayout(); err != nil {
		return nil, err
	}
	return p, nil
}

// WXFunctionFile is one function's config.json as fn reads it. Unknown keys are ignored: the
// platform's tools add their own.
type WXFunctionFile struct {
	Permissions struct {
		OpenAPI []string `json:"openapi"`
	} `json:"permissions"`
	Triggers []struct {
		Name   string `json:"name"`
		Type   string `json:"type"`
		Config string `json:"config"`
	} `json:"triggers"`
	Timeout      *json.Number      `json:"timeout"`
	MemorySize   *json.Number      `json:"memorySize"`
	EnvVariables map[string]string `json:"envVariables"`
}

var triggerNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,59}$`) })

// readWXFunctionConfigs reads config.json of every function directory: its timeout, memory,
// env and openapi permissions become the function's settings below fn.yaml's, its timer
// trigger becomes a timer.
func (p *Project) readWXFunctionConfigs() error {
	if p.Dialect != WX {
		return nil
	}
	dir := filepath.Join(p.Dir, p.FunctionsDir)
	items, err := os.ReadDir(dir)
	if err != nil {
		return nil // Entries reports the missing directory
	}
	var bad []error // one *ValidationError per config.json with problems
	var timers []Timer
	for _, it := range items {
		if !it.IsDir() || strings.HasPrefix(it.Name(), ".") || it.Name() == "node_modules" {
			continue
		}
		rel := filepath.ToSlash(filepath.Join(p.FunctionsDir, it.Name(), WXFunctionConfigFile))
		b, err := readBounded(filepath.Join(dir, it.Name(), WXFunctionConfigFile))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			bad = append(bad, &ValidationError{File: rel, Problems: []Problem{{Msg: err.Error()}}})
			continue
		}
		cfg, ts, probs := parseWXFunctionFile(it.Name(), b)
		if len(probs) > 0 {
			bad = append(bad, &ValidationError{File: rel, Problems: probs})
			continue
		}
		if p.WXConfigs == nil {
			p.WXConfigs = map[string]FunctionConfig{}
		}
		p.WXConfigs[it.Name()] = cfg
		timers = append(timers, ts...)
	}
	if len(bad) == 1 {
		return bad[0]
	}
	if len(bad) > 1 {
		return errors.Join(bad...)
	}
	names := map[string]bool{}
	for _, t := range p.Timers {
		names[t.Name] = true
	}
	sort.Slice(timers, func(i, j int) bool { return timers[i].Name < timers[j].Name })
	for _, t := range timers {
		if names[t.Name] {
			continue // fn.yaml names this timer itself
		}
		p.Timers = append(p.Timers, t)
	}
	return nil
}

// parseWXFunctionFile decodes one config.json.
func parseWXFunctionFile(fn string, b []byte) (FunctionConfig, []Timer, []Problem) {
	var f WXFunctionFile
	var c FunctionConfig
	if err := decodeJSONC(b, &f); err != nil {
		return c, nil, []Problem{{Msg: "invalid JSON: " + err.Error()}}
	}
	var problems []Problem
	bad := func(field, format string, args ...any) {
		problems = append(problems, Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if f.Timeout != nil {
		if t, err := strconv.Atoi(f.Timeout.String()); err != nil || t < MinTimeout || t > MaxTimeout {
			bad("timeout", "must be %d–%d seconds, got %s", MinTimeout, MaxTimeout, f.Timeout.String())
		} else {
			c.Timeout = t
		}
	}
	if f.MemorySize != nil {
		if m, err := strconv.Atoi(f.MemorySize.String()); err != nil || m < MinMemory || m > MaxMemory {
			bad("memorySize", "must be %d–%d MB, got %s", MinMemory, MaxMemory, f.MemorySize.String())
		} else {
			c.Memory = m
		}
	}
	for k, v := range f.EnvVariables {
		switch {
		case !envNameRE().MatchString(k):
			bad("envVariables."+k, "invalid variable name: use letters, digits and '_', not starting with a digit")
		case reservedEnvRE().MatchString(k):
			bad("envVariables."+k, "is reserved: the runtime sets WX_*, TCB_*, SCF_*, LEANCLOUD_*, LC_*, TENCENTCLOUD_* and FN_* itself")
		default:
			if c.Env == nil {
				c.Env = map[string]string{}
			}
			c.Env[k] = v
		}
	}
	for i, api := range f.Permissions.OpenAPI {
		if api == "" || len(api) > 100 || strings.ContainsAny(api, " \t\r\n") {
			bad(fmt.Sprintf("permissions.openapi[%d]", i), "must name an openapi call such as subscribeMessage.send, got %q", api)
			continue
		}
		c.OpenAPI = append(c.OpenAPI, api)
	}
	if f.Permissions.OpenAPI != nil && c.OpenAPI == nil && len(problems) == 0 {
		c.OpenAPI = []string{} // declared, and empty: no openapi call is allowed
	}
	var timers []Timer
	seen := map[string]bool{}
	for i, t := range f.Triggers {
		field := fmt.Sprintf("triggers[%d]", i)
		if t.Type != "timer" {
			bad(field+".type", "must be \"timer\" (the only trigger type of cloud functions), got %q", t.Type)
			continue
		}
		if !triggerNameRE().MatchString(t.Name) {
			bad(field+".name", "must be 1–60 letters, digits, '-' and '_', starting with a letter, got %q", t.Name)
			continue
		}
		if seen[t.Name] {
			bad(field+".name", "%q is used twice in this function", t.Name)
			continue
		}
		seen[t.Name] = true
		exprs, err := CloudBaseCron(t.Config)
		if err != nil {
			bad(field+".config", "%v", err)
			continue
		}
		for j, e := range exprs {
			name := fn + "." + t.Name
			if j > 0 {
				name += ".weekday"
			}
			timers = append(timers, Timer{Name: name, Function: fn, Cron: e, Environments: []string{"production", "staging"}})
		}
	}
	return c, timers, problems
}

// CloudBaseCron maps a CloudBase timer expression (seven fields: second minute hour day month
// weekday year; weekday 0–6 with 0 = Sunday, or names; day and weekday both given means either
// matches) to Quartz expressions as fn's timers take them (weekday 1–7 with 1 = SUN, one of day
// and weekday is ?). A day-or-weekday expression becomes two: one per field; on a day that
// matches both it fires once for each.
func CloudBaseCron(expr string) ([]string, error) {
	fields := strings.Fields(expr)
	if len(fields) != 7 {
		return nil, fmt.Errorf("a CloudBase cron expression has 7 fields (second minute hour day month weekday year), got %d in %q", len(fields), expr)
	}
	dow, err := cloudBaseWeekday(fields[5])
	if err != nil {
		return nil, fmt.Errorf("weekday field %q of %q: %v", fields[5], expr, err)
	}
	dom := fields[3]
	anyDay := func(s string) bool { return s == "*" || s == "?" }
	var out [][]string
	switch {
	case anyDay(dom) && anyDay(dow):
		out = [][]string{{fields[0], fields[1], fields[2], "*", fields[4], "?", fields[6]}}
	case anyDay(dow):
		out = [][]string{{fields[0], fields[1], fields[2], dom, fields[4], "?", fields[6]}}
	case anyDay(dom):
		out = [][]string{{fields[0], fields[1], fields[2], "?", fields[4], dow, fields[6]}}
	default:
		out = [][]string{
			{fields[0], fields[1], fields[2], dom, fields[4], "?", fields[6]},
			{fields[0], fields[1], fields[2], "?", fields[4], dow, fields[6]},
		}
	}
	res := make([]string, len(out))
	for i, f := range out {
		res[i] = strings.Join(f, " ")
		if _, err := cron.Parse(res[i]); err != nil {
			return nil, fmt.Errorf("%q: %v", expr, err)
		}
	}
	return res, nil
}

var weekdayNumRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\d+$`) })

// cloudBaseWeekday shifts CloudBase's weekday numbers (0 = Sunday) to Quartz's (1 = SUN); names
// and steps stay as they are.
func cloudBaseWeekday(f string) (string, error) {
	if f == "*" || f == "?" {
		return f, nil
	}
	parts := strings.Split(f, ",")
	for i, part := range parts {
		rng, step, hasStep := strings.Cut(part, "/")
		ends := strings.Split(rng, "-")
		if len(ends) > 2 {
			return "", fmt.Errorf("%q is not a value, a range a-b or a step a/n", part)
		}
		for j, e := range ends {
			if !weekdayNumRE().MatchString(e) {
				continue // * or a name such as MON
			}
			n, _ := strconv.Atoi(e)
			if n > 6 {
				return "", fmt.Errorf("weekday %d is out of range 0–6 (0 is Sunday)", n)
			}
			ends[j] = strconv.Itoa(n + 1)
		}
		parts[i] = strings.Join(ends, "-")
		if hasStep {
			parts[i] += "/" + step
		}
	}
	return strings.Join(parts, ","), nil
}
