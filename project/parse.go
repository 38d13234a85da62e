package project

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fnhq/fn/cron"
)

// The project file is decoded from the YAML node tree rather than through viper: viper folds keys
// to lower case (function and identity names are case-sensitive) and forgets line numbers, which
// every validation message carries.

// Problem is one thing wrong in a project file.
type Problem struct {
	Field string // dotted path, e.g. functions.login.timeout
	Line  int
	Msg   string
}

// ValidationError lists every problem found in a file.
type ValidationError struct {
	File     string
	Problems []Problem
}

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		switch {
		case p.Field == "" && p.Line == 0:
			lines[i] = fmt.Sprintf("%s: %s", e.File, p.Msg)
		case p.Field == "":
			lines[i] = fmt.Sprintf("%s: line %d: %s", e.File, p.Line, p.Msg)
		case p.Line > 0:
			lines[i] = fmt.Sprintf("%s: %s: %s (line %d)", e.File, p.Field, p.Msg, p.Line)
		default:
			lines[i] = fmt.Sprintf("%s: %s: %s", e.File, p.Field, p.Msg)
		}
	}
	return strings.Join(lines, "\n")
}

var (
	projectNameRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9-]{0,49}$`) })
	functionNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,59}$`) })
	envNameRE      = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })
	envIDRE        = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`) })
	runtimeRE      = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^node(\d+)$`) })
	reservedEnvRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(WX_|TCB_|SCF_|LEANCLOUD_|LC_|TENCENTCLOUD_|FN_)`) })
)

// ValidateProjectName checks a project name as fn init and fn.yaml accept it.
func ValidateProjectName(name string) error {
	if !projectNameRE().MatchString(name) {
		return fmt.Errorf("invalid project name %q: use 1–50 lower-case letters, digits and '-', starting with a letter", name)
	}
	return nil
}

// ValidateFunctionName checks a function name as the platforms accept it.
func ValidateFunctionName(name string) error {
	if !functionNameRE().MatchString(name) {
		return fmt.Errorf("invalid function name %q: use 1–60 letters, digits, '_' and '-', starting with a letter", name)
	}
	return nil
}

// Parse decodes and validates the text of a project file. file is used in messages only.
func Parse(file string, data []byte) (*Project, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &ValidationError{File: file, Problems: []Problem{syntaxProblem(err)}}
	}
	d := &decoder{}
	p := &Project{
		Runtime:  DefaultRuntime,
		Timezone: DefaultTimezone,
		Defaults: FunctionConfig{Memory: DefaultMemory, MaxInstances: DefaultMaxInstances},
		Dev:      DevConfig{Port: DefaultDevPort, Host: DefaultDevHost},
	}
	if len(doc.Content) == 0 {
		d.fail(&doc, "", "the file is empty: it needs at least name and dialect")
		return nil, &ValidationError{File: file, Problems: d.problems}
	}
	root := doc.Content[0]
	seen := map[string]bool{}
	defaultsTimeoutSet := false
	d.mapping(root, "", func(key string, k, v *yaml.Node) {
		seen[key] = true
		switch key {
		case "name":
			p.Name = d.str(v, key)
			if p.Name != "" {
				if err := ValidateProjectName(p.Name); err != nil {
					d.fail(v, key, "%s", strings.TrimPrefix(err.Error(), "invalid project name "+strconv.Quote(p.Name)+": "))
				}
			}
		case "dialect":
			s := d.str(v, key)
			switch Dialect(s) {
			case WX, Lean:
				p.Dialect = Dialect(s)
			default:
				d.fail(v, key, "must be wx or lean, got %q", s)
			}
		case "env":
			p.EnvID = d.str(v, key)
			if p.EnvID != "" && (!envIDRE().MatchString(p.EnvID) || p.EnvID == "local") {
				d.fail(v, key, "invalid environment id %q: use 2–63 lower-case letters, digits and '-' (and not \"local\")", p.EnvID)
			}
		case "functionsDir":
			p.FunctionsDir = d.relPath(v, key)
		case "entry":
			p.Entry = d.relPath(v, key)
		case "runtime":
			p.Runtime = d.str(v, key)
			if m := runtimeRE().FindStringSubmatch(p.Runtime); m == nil {
				d.fail(v, key, "must look like node18, node20 or node22, got %q", p.Runtime)
			} else if n, _ := strconv.Atoi(m[1]); n < MinNodeMajor {
				d.fail(v, key, "must be node%d or newer, got %q", MinNodeMajor, p.Runtime)
			}
		case "timezone":
			p.Timezone = d.str(v, key)
			if _, err := time.LoadLocation(p.Timezone); err != nil {
				d.fail(v, key, "unknown time zone %q (use an IANA name such as Asia/Shanghai or UTC)", p.Timezone)
			}
		case "defaults":
			var set bool
			p.Defaults, set = d.function(v, key, p.Defaults)
			defaultsTimeoutSet = set
		case "functions":
			p.Functions = map[string]FunctionConfig{}
			d.mapping(v, key, func(name string, k, fv *yaml.Node) {
				field := key + "." + name
				if err := ValidateFunctionName(name); err != nil {
					d.fail(k, field, "invalid function name: use 1–60 letters, digits, '_' and '-', starting with a letter")
				}
				p.Functions[name], _ = d.function(fv, field, FunctionConfig{})
			})
		case "identities":
			p.Identities = map[string]Identity{}
			d.mapping(v, key, func(name string, k, iv *yaml.Node) {
				p.Identities[name] = d.identity(iv, key+"."+name)
			})
		case "defaultIdentity":
			p.DefaultIdentity = d.str(v, key)
		case "timers":
			d.mapping(v, key, func(name string, k, tv *yaml.Node) {
				t := d.timer(tv, key+"."+name)
				t.Name, t.Line = name, k.Line
				p.Timers = append(p.Timers, t)
			})
		case "build":
			d.mapping(v, key, func(bk string, _, bv *yaml.Node) {
				switch bk {
				case "external":
					p.Build.External = d.strList(bv, key+"."+bk)
				case "minify":
					p.Build.Minify = d.boolean(bv, key+"."+bk)
				default:
					d.unknown(bv, key+"."+bk, "external, minify")
				}
			})
		case "dev":
			d.mapping(v, key, func(dk string, _, dv *yaml.Node) {
				switch dk {
				case "port":
					if n, ok := d.integer(dv, key+"."+dk); ok {
						if n < 0 || n > 65535 {
							d.fail(dv, key+"."+dk, "must be 0–65535, got %d", n)
						}
						p.Dev.Port = n
					}
				case "host":
					p.Dev.Host = d.str(dv, key+"."+dk)
				default:
					d.unknown(dv, key+"."+dk, "port, host")
				}
			})
		case "lean":
			d.mapping(v, key, func(lk string, _, lv *yaml.Node) {
				field := key + "." + lk
				switch lk {
				case "appId":
					p.Lean.AppID = d.str(lv, field)
				case "appKey":
					p.Lean.AppKey = d.str(lv, field)
				case "masterKey":
					p.Lean.MasterKey = d.str(lv, field)
				case "hookKey":
					p.Lean.HookKey = d.str(lv, field)
				default:
					d.unknown(lv, field, "appId, appKey, masterKey, hookKey")
				}
			})
		case "wx":
			d.mapping(v, key, func(wk string, _, wv *yaml.Node) {
				field := key + "." + wk
				if wk == "permissions" {
					p.WX.Permissions = map[string]CollectionPermission{}
					d.mapping(wv, field, func(coll string, _, cv *yaml.Node) {
						f := field + "." + coll
						if cv.Kind == yaml.ScalarNode {
							switch cv.Value {
							case "creator", "read-all", "admin":
								p.WX.Permissions[coll] = CollectionPermission{Mode: cv.Value}
							default:
								d.fail(cv, f, "must be creator, read-all, admin or {read: <rule>, write: <rule>}, got %q", cv.Value)
							}
							return
						}
						cp := CollectionPermission{Mode: "custom", Read: "false", Write: "false"}
						d.mapping(cv, f, func(rk string, _, rv *yaml.Node) {
							switch rk {
							case "read":
								cp.Read = rv.Value
							case "write":
								cp.Write = rv.Value
							default:
								d.unknown(rv, f+"."+rk, "read, write")
							}
						})
						p.WX.Permissions[coll] = cp
					})
					return
				}
				if wk != "openapi" {
					d.unknown(wv, field, "openapi, permissions")
					return
				}
				d.mapping(wv, field, func(ok string, _, ov *yaml.Node) {
					f := field + "." + ok
					switch ok {
					case "blocklist":
						p.WX.OpenAPI.Blocklist = d.strList(ov, f)
					case "responses":
						p.WX.OpenAPI.Responses = map[string]any{}
						d.mapping(ov, f, func(api string, _, rv *yaml.Node) {
							var val any
							if err := rv.Decode(&val); err != nil || rv.Kind != yaml.MappingNode {
								d.fail(rv, f+"."+api, "must be a mapping (the JSON the API answers), got %s", kindName(rv))
								return
							}
							p.WX.OpenAPI.Responses[api] = val
						})
					default:
						d.unknown(ov, f, "blocklist, responses")
					}
				})
			})
		default:
			d.unknown(k, key, "name, dialect, env, functionsDir, entry, runtime, timezone, defaults, functions, identities, defaultIdentity, timers, build, dev, lean, wx")
		}
	})
	if root.Kind == yaml.MappingNode {
		if !seen["name"] {
			d.fail(root, "name", "is required")
		}
		if !seen["dialect"] {
			d.fail(root, "dialect", "is required (wx or lean)")
		}
	}
	p.applyDialectDefaults(defaultsTimeoutSet)
	d.crossCheck(p, root)
	if len(d.problems) > 0 {
		return nil, &ValidationError{File: file, Problems: d.problems}
	}
	return p, nil
}

func (p *Project) applyDialectDefaults(timeoutSet bool) {
	if !timeoutSet {
		p.Defaults.Timeout = DefaultWXTimeout
		if p.Dialect == Lean {
			p.Defaults.Timeout = DefaultLeanTimeout
		}
	}
	if p.Dialect == WX && p.FunctionsDir == "" {
		p.FunctionsDir = "functions"
	}
	if p.Dialect == Lean && p.Entry == "" {
		p.Entry = "cloud.js"
	}
	if p.EnvID == "" && p.Name != "" {
		p.EnvID = p.Name + "-" + shortHash(p.Name)[:4]
	}
}

// crossCheck validates what depends on more than one field.
func (d *decoder) crossCheck(p *Project, root *yaml.Node) {
	if p.DefaultIdentity != "" {
		if _, ok := p.Identities[p.DefaultIdentity]; !ok {
			d.fail(findKey(root, "defaultIdentity"), "defaultIdentity", "names identity %q, which is not under identities", p.DefaultIdentity)
		}
	}
	for name, id := range p.Identities {
		n := findKey(findKey(root, "identities"), name)
		switch p.Dialect {
		case WX:
			if id.User != "" {
				d.fail(n, "identities."+name+".user", "is for lean projects; a wx identity has openid, appid and unionid")
			}
			if id.OpenID == "" {
				d.fail(n, "identities."+name+".openid", "is required for a wx identity")
			}
		case Lean:
			if id.User == "" {
				d.fail(n, "identities."+name+".user", "is required for a lean identity (the user's username)")
			}
		}
	}
	if p.Dialect == Lean && p.FunctionsDir != "" {
		d.fail(findKey(root, "functionsDir"), "functionsDir", "is for wx projects; a lean project has one entry (entry: cloud.js)")
	}
	if p.Dialect == WX && p.Entry != "" {
		d.fail(findKey(root, "entry"), "entry", "is for lean projects; a wx project has one directory per function under functionsDir")
	}
	perEnv := map[string]int{}
	for _, t := range p.Timers {
		for _, e := range t.Environments {
			perEnv[e]++
			if perEnv[e] == MaxTimersPerEnv+1 {
				d.problems = append(d.problems, Problem{Field: "timers." + t.Name, Line: t.Line,
					Msg: fmt.Sprintf("too many timers for %s: at most %d per environment", e, MaxTimersPerEnv)})
			}
		}
	}
}

type decoder struct{ problems []Problem }

func (d *decoder) fail(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.problems = append(d.problems, Problem{Field: field, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) unknown(n *yaml.Node, field, known string) {
	d.fail(n, field, "unknown key (known keys here: %s)", known)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!null":
		return "nothing"
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return n.Value
	}
	return strconv.Quote(n.Value)
}

// mapping calls fn for each key of a mapping node, reporting a non-mapping and duplicate keys.
func (d *decoder) mapping(n *yaml.Node, field string, fn func(key string, k, v *yaml.Node)) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, field, "must be a mapping, got %s", kindName(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		sub := key
		if field != "" {
			sub = field + "." + key
		}
		if prev, dup := seen[key]; dup {
			d.fail(k, sub, "is defined twice (first at line %d)", prev)
			continue
		}
		seen[key] = k.Line
		fn(key, k, v)
	}
}

func (d *decoder) str(n *yaml.Node, field string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" || n.Tag == "!!map" {
		d.fail(n, field, "must be a string, got %s", kindName(n))
		return ""
	}
	return n.Value
}

func (d *decoder) relPath(n *yaml.Node, field string) string {
	s := d.str(n, field)
	if s == "" {
		return ""
	}
	if strings.HasPrefix(s, "/") || strings.Contains("/"+s+"/", "/../") {
		d.fail(n, field, "must be a path inside the project, got %q", s)
	}
	return s
}

func (d *decoder) integer(n *yaml.Node, field string) (int, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.fail(n, field, "must be a whole number, got %s", kindName(n))
		return 0, false
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		d.fail(n, field, "must be a whole number, got %s", n.Value)
		return 0, false
	}
	return v, true
}

func (d *decoder) boolean(n *yaml.Node, field string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.fail(n, field, "must be true or false, got %s", kindName(n))
		return false
	}
	return n.Value == "true"
}

func (d *decoder) strList(n *yaml.Node, field string) []string {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, field, "must be a list of strings, got %s", kindName(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		out = append(out, d.str(c, fmt.Sprintf("%s[%d]", field, i)))
	}
	return out
}

func (d *decoder) function(n *yaml.Node, field string, c FunctionConfig) (FunctionConfig, bool) {
	timeoutSet := false
	d.mapping(n, field, func(key string, _, v *yaml.Node) {
		f := field + "." + key
		switch key {
		case "timeout":
			if t, ok := d.integer(v, f); ok {
				if t < MinTimeout || t > MaxTimeout {
					d.fail(v, f, "must be %d–%d seconds, got %d", MinTimeout, MaxTimeout, t)
				}
				c.Timeout, timeoutSet = t, true
			}
		case "memory":
			if m, ok := d.integer(v, f); ok {
				if m < MinMemory || m > MaxMemory {
					d.fail(v, f, "must be %d–%d MB, got %d", MinMemory, MaxMemory, m)
				}
				c.Memory = m
			}
		case "maxInstances":
			if m, ok := d.integer(v, f); ok {
				if m < 1 || m > 1000 {
					d.fail(v, f, "must be 1–1000, got %d", m)
				}
				c.MaxInstances = m
			}
		case "concurrency":
			if m, ok := d.integer(v, f); ok {
				if m < 1 || m > 100 {
					d.fail(v, f, "must be 1–100 invocations per instance, got %d", m)
				}
				c.Concurrency = m
			}
		case "env":
			c.Env = map[string]string{}
			d.mapping(v, f, func(name string, k, ev *yaml.Node) {
				ef := f + "." + name
				switch {
				case !envNameRE().MatchString(name):
					d.fail(k, ef, "invalid variable name: use letters, digits and '_', not starting with a digit")
				case reservedEnvRE().MatchString(name):
					d.fail(k, ef, "is reserved: the runtime sets WX_*, TCB_*, SCF_*, LEANCLOUD_*, LC_*, TENCENTCLOUD_* and FN_* itself")
				}
				if ev.Kind != yaml.ScalarNode || ev.Tag == "!!null" {
					d.fail(ev, ef, "must be a string, number or boolean, got %s", kindName(ev))
					return
				}
				c.Env[name] = ev.Value
			})
		case "openapi":
			c.OpenAPI = d.strList(v, f)
		default:
			d.unknown(v, f, "timeout, memory, maxInstances, concurrency, env, openapi")
		}
	})
	return c, timeoutSet
}

func (d *decoder) identity(n *yaml.Node, field string) Identity {
	var id Identity
	d.mapping(n, field, func(key string, _, v *yaml.Node) {
		f := field + "." + key
		switch key {
		case "openid":
			id.OpenID = d.str(v, f)
		case "appid":
			id.AppID = d.str(v, f)
		case "unionid":
			id.UnionID = d.str(v, f)
		case "user":
			id.User = d.str(v, f)
		default:
			d.unknown(v, f, "openid, appid, unionid (wx); user (lean)")
		}
	})
	return id
}

func (d *decoder) timer(n *yaml.Node, field string) Timer {
	t := Timer{Environments: []string{"production", "staging"}}
	d.mapping(n, field, func(key string, _, v *yaml.Node) {
		f := field + "." + key
		switch key {
		case "function":
			t.Function = d.str(v, f)
		case "cron":
			t.Cron = d.str(v, f)
			if t.Cron != "" {
				if _, err := cron.Parse(t.Cron); err != nil {
					d.fail(v, f, "%s", err)
				}
			}
		case "interval":
			if s, ok := d.integer(v, f); ok {
				if s < 1 {
					d.fail(v, f, "must be at least 1 second, got %d", s)
				}
				t.Interval = s
			}
		case "params":
			var val any
			if err := v.Decode(&val); err != nil {
				d.fail(v, f, "must be JSON-like data: %v", err)
				return
			}
			b, err := json.Marshal(val)
			if err != nil {
				d.fail(v, f, "cannot be turned into JSON: %v", err)
				return
			}
			t.Params = string(b)
		case "environments":
			t.Environments = d.strList(v, f)
			for _, e := range t.Environments {
				if e != "production" && e != "staging" {
					d.fail(v, f, "must list production and/or staging, got %q", e)
				}
			}
		default:
			d.unknown(v, f, "function, cron, interval, params, environments")
		}
	})
	switch {
	case t.Function == "":
		d.fail(n, field+".function", "is required: the function the timer calls")
	case t.Cron == "" && t.Interval == 0:
		d.fail(n, field, "needs either cron (a Quartz expression) or interval (seconds)")
	case t.Cron != "" && t.Interval != 0:
		d.fail(n, field, "has both cron and interval; use one")
	}
	return t
}

func findKey(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return n
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return n
}

var yamlLineRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: line (\d+): (.*)$`) })

func syntaxProblem(err error) Problem {
	msg := err.Error()
	if m := yamlLineRE().FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return Problem{Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])[:12]
}
