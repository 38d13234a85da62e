package project

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const minimalWX = "name: shop\ndialect: wx\n"

func TestParseMinimalAppliesDefaults(t *testing.T) {
	p, err := Parse("fn.yaml", []byte(minimalWX))
	if err != nil {
		t.Fatal(err)
	}
	if p.FunctionsDir != "functions" || p.Runtime != "node18" || p.Defaults.Timeout != 3 || p.Defaults.Memory != 256 {
		t.Fatalf("defaults not applied: %+v", p)
	}
	if p.EnvID == "" || p.EnvID == "local" {
		t.Fatalf("env id should be generated, got %q", p.EnvID)
	}
	lean, err := Parse("fn.yaml", []byte("name: api\ndialect: lean\n"))
	if err != nil {
		t.Fatal(err)
	}
	if lean.Entry != "cloud.js" || lean.Defaults.Timeout != 15 {
		t.Fatalf("lean defaults not applied: entry %q timeout %d", lean.Entry, lean.Defaults.Timeout)
	}
}

func TestParseFull(t *testing.T) {
	src := `name: shop
dialect: wx
env: shop-prod
runtime: node20
timezone: UTC
defaults:
  timeout: 10
  env:
    REGION: cn
functions:
  login:
    timeout: 20
    memory: 512
    env:
      MODE: strict
identities:
  alice: {openid: oA, appid: wxA, unionid: uA}
defaultIdentity: alice
timers:
  nightly:
    function: login
    cron: "0 0 2 * * ?"
    params: {full: true}
build:
  external: [sharp]
  minify: true
dev:
  port: 4000
`
	p, err := Parse("fn.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p.LocalEnv = map[string]string{"MODE": "local"}
	c := p.Function("login")
	if c.Timeout != 20 || c.Memory != 512 || c.Env["REGION"] != "cn" || c.Env["MODE"] != "local" {
		t.Fatalf("merged config wrong: %+v", c)
	}
	if other := p.Function("sum"); other.Timeout != 10 || other.Memory != 256 {
		t.Fatalf("defaults for unconfigured function wrong: %+v", other)
	}
	if len(p.Timers) != 1 || p.Timers[0].Params != `{"full":true}` || p.Timers[0].Line != 20 {
		t.Fatalf("timer wrong: %+v", p.Timers)
	}
	if id, name, err := p.Identity(""); err != nil || name != "alice" || id.OpenID != "oA" {
		t.Fatalf("default identity: %+v %q %v", id, name, err)
	}
	if _, _, err := p.Identity("carol"); err == nil || !strings.Contains(err.Error(), `unknown identity "carol"`) {
		t.Fatalf("unknown identity error: %v", err)
	}
	if p.Dev.Port != 4000 || !p.Build.Minify || p.Build.External[0] != "sharp" {
		t.Fatalf("build/dev wrong: %+v %+v", p.Build, p.Dev)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"syntax error has a line", "name: shop\ndialect: wx\nfunctions:\n  login: [\n", []string{"fn.yaml: line ", "invalid YAML"}},
		{"timeout range (issue wording)", minimalWX + "functions:\n  login:\n    timeout: 90\n",
			[]string{"fn.yaml: functions.login.timeout: must be 1–60 seconds, got 90 (line 5)"}},
		{"memory range", minimalWX + "defaults:\n  memory: 64\n", []string{"fn.yaml: defaults.memory: must be 128–4096 MB, got 64 (line 4)"}},
		{"wrong type", minimalWX + "functions:\n  login:\n    timeout: soon\n", []string{`functions.login.timeout: must be a whole number, got "soon"`}},
		{"unknown top-level key", minimalWX + "function:\n  login: {}\n", []string{"fn.yaml: function: unknown key (known keys here: name, dialect"}},
		{"unknown nested key", minimalWX + "functions:\n  login:\n    timeuot: 3\n", []string{"functions.login.timeuot: unknown key (known keys here: timeout, memory, maxInstances, concurrency, env, openapi) (line 5)"}},
		{"bad dialect", "name: shop\ndialect: aws\n", []string{`dialect: must be wx or lean, got "aws"`}},
		{"missing name and dialect", "env: abc\n", []string{"name: is required", "dialect: is required"}},
		{"invalid project name", "name: My Shop\ndialect: wx\n", []string{"name: use 1–50 lower-case letters"}},
		{"duplicate key", minimalWX + "runtime: node18\nruntime: node20\n", []string{"runtime: is defined twice (first at line 3)"}},
		{"old runtime", minimalWX + "runtime: node16\n", []string{`runtime: must be node18 or newer, got "node16"`}},
		{"reserved env", minimalWX + "defaults:\n  env:\n    WX_OPENID: x\n", []string{"defaults.env.WX_OPENID: is reserved"}},
		{"timer needs schedule", minimalWX + "timers:\n  t:\n    function: login\n", []string{"timers.t: needs either cron"}},
		{"timer both", minimalWX + "timers:\n  t:\n    function: login\n    cron: '* * * * * ?'\n    interval: 5\n", []string{"timers.t: has both cron and interval"}},
		{"bad cron field count", minimalWX + "timers:\n  nightly:\n    function: login\n    cron: '0 0 2 * *'\n", []string{"fn.yaml: timers.nightly.cron: a cron expression has 6 or 7 fields"}},
		{"cron out of range", minimalWX + "timers:\n  nightly:\n    function: login\n    cron: '0 0 25 * * ?'\n", []string{`timers.nightly.cron: hour field "25": 25 is out of range 0–23 (line 6)`}},
		{"cron L with a list", minimalWX + "timers:\n  t:\n    function: login\n    cron: '0 0 0 ? * 1,2L'\n", []string{`timers.t.cron: day-of-week field "1,2L": L takes a single weekday`}},
		{"cron W with a range", minimalWX + "timers:\n  t:\n    function: login\n    cron: '0 0 0 1-5W * ?'\n", []string{`timers.t.cron: day-of-month field "1-5W": W takes a single day`}},
		{"cron both ?", minimalWX + "timers:\n  t:\n    function: login\n    cron: '0 0 0 ? * ?'\n", []string{"timers.t.cron: day-of-week field \"?\": '?' cannot be in both"}},
		{"sixth timer", minimalWX + "timers:\n" + strings.Repeat("", 0) + timers(6), []string{"timers.t6: too many timers for production: at most 5 per environment"}},
		{"unknown default identity", minimalWX + "defaultIdentity: bob\n", []string{`defaultIdentity: names identity "bob", which is not under identities`}},
		{"wx identity without openid", minimalWX + "identities:\n  a: {appid: x}\n", []string{"identities.a.openid: is required for a wx identity"}},
		{"lean identity needs user", "name: a1\ndialect: lean\nidentities:\n  a: {openid: x}\n", []string{"identities.a.user: is required"}},
		{"path escapes", minimalWX + "functionsDir: ../x\n", []string{`functionsDir: must be a path inside the project, got "../x"`}},
		{"empty file", "", []string{"the file is empty"}},
		{"not a mapping", "- a\n- b\n", []string{"must be a mapping, got a list"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("fn.yaml", []byte(c.src))
			if err == nil {
				t.Fatalf("expected an error for:\n%s", c.src)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%s", w, err)
				}
			}
		})
	}
}

func timers(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString("  t" + string(rune('0'+i)) + ":\n    function: login\n    interval: 60\n")
	}
	return b.String()
}

func TestLoadFindsProjectAboveAndReadsLocalEnv(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "fn.yaml", minimalWX+"functions:\n  login: {}\n")
	write(t, dir, "functions/login/index.js", "exports.main = async () => 1\n")
	write(t, dir, ".env.local", "SECRET=s3cr3t\n")
	sub := filepath.Join(dir, "functions", "login")
	p, err := Load(sub)
	if err != nil {
		t.Fatal(err)
	}
	if p.Dir != dir || p.Function("login").Env["SECRET"] != "s3cr3t" {
		t.Fatalf("project dir %q env %v", p.Dir, p.Function("login").Env)
	}
	entries, err := p.Entries()
	if err != nil || len(entries) != 1 || entries[0].Name != "login" {
		t.Fatalf("entries %v %v", entries, err)
	}
}

func TestLoadNoProject(t *testing.T) {
	_, err := Load(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "no fn.yaml found in") {
		t.Fatalf("got %v", err)
	}
}

func TestEntriesReportsMissingFunction(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "fn.yaml", minimalWX+"functions:\n  ghost:\n    timeout: 3\n")
	write(t, dir, "functions/login/index.js", "exports.main = async () => 1\n")
	p, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Entries()
	if err == nil || !strings.Contains(err.Error(), "fn.yaml: functions.ghost: no function directory functions/ghost") {
		t.Fatalf("got %v", err)
	}
}

func TestTimerWithUnknownFunction(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "fn.yaml", minimalWX+"timers:\n  nightly:\n    function: nope\n    interval: 60\n")
	write(t, dir, "functions/login/index.js", "exports.main = async () => 1\n")
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), `timers.nightly.function: unknown function "nope"`) {
		t.Fatalf("got %v", err)
	}
}

func write(t *testing.T, dir, rel, content string) {
	t.Helper()
	path := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFakeIdentityWithoutConfiguredOnes(t *testing.T) {
	p1, _ := Parse("fn.yaml", []byte(minimalWX))
	p2, _ := Parse("fn.yaml", []byte(minimalWX))
	a, name, err := p1.Identity("")
	b, _, _ := p2.Identity("")
	if err != nil || name != "" || a.OpenID == "" || a.AppID == "" || a != b {
		t.Fatalf("deterministic fake identity: %+v %+v %v", a, b, err)
	}
	other, _ := Parse("fn.yaml", []byte("name: other\ndialect: wx\n"))
	if c, _, _ := other.Identity(""); c.OpenID == a.OpenID {
		t.Fatal("different projects should get different fake users")
	}
}

func TestParseWXOpenAPI(t *testing.T) {
	src := `name: shop
dialect: wx
functions:
  notify:
    openapi: [subscribeMessage.send, wxacode.get]
wx:
  openapi:
    blocklist: [spam, scam]
    responses:
      wxa.getPaidUnionid: {unionid: u-1}
`
	p, err := Parse("fn.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Functions["notify"].OpenAPI; len(got) != 2 || got[1] != "wxacode.get" {
		t.Fatalf("openapi permissions %v", got)
	}
	if len(p.WX.OpenAPI.Blocklist) != 2 || p.WX.OpenAPI.Responses["wxa.getPaidUnionid"].(map[string]any)["unionid"] != "u-1" {
		t.Fatalf("wx.openapi %+v", p.WX.OpenAPI)
	}
	_, err = Parse("fn.yaml", []byte("name: shop\ndialect: wx\nwx:\n  openapi:\n    responses:\n      a.b: 3\n    blocklst: []\n"))
	if err == nil || !strings.Contains(err.Error(), "wx.openapi.responses.a.b: must be a mapping") || !strings.Contains(err.Error(), "wx.openapi.blocklst: unknown key") {
		t.Fatalf("bad wx section: %v", err)
	}
}
