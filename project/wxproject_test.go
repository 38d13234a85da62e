package project

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fnhq/fn/internal/testutil"
)

func TestWXProjectFoundWithoutFnYAML(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "project.config.json", `{
  // DevTools writes plain JSON; comments and trailing commas are tolerated
  "miniprogramRoot": "miniprogram/",
  "cloudfunctionRoot": "./cloud/functions/",
  "appid": "wx0123456789abcdef",
  "projectname": "我的 Shop_2",
}`)
	testutil.WriteFile(t, dir, "cloud/functions/login/index.js", "exports.main = async () => 1\n")
	testutil.WriteFile(t, dir, "cloud/functions/job/index.js", "exports.main = async () => 1\n")
	testutil.WriteFile(t, dir, "cloud/functions/job/config.json", `{
  // the platform's documented example, comments included
  "permissions": {"openapi": ["subscribeMessage.send", "wxacode.get"]},
  "triggers": [{"name": "myTrigger", "type": "timer", "config": "0 0 2 1 * * *"}],
  "timeout": 20, "memorySize": 512, "envVariables": {"MODE": "cron"}
}`)
	testutil.WriteFile(t, dir, "cloud/functions/login/config.json", `{"permissions": {"openapi": []}}`)
	// found from a subdirectory too
	p, err := Load(filepath.Join(dir, "cloud", "functions", "login"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Dir != dir || p.File != filepath.Join(dir, WXProjectFile) || p.Dialect != WX || p.FunctionsDir != "cloud/functions" {
		t.Fatalf("project %+v", p)
	}
	if p.Name != "shop-2" || p.AppID != "wx0123456789abcdef" {
		t.Errorf("name %q appid %q", p.Name, p.AppID)
	}
	if id, _, _ := p.Identity(""); id.AppID != "wx0123456789abcdef" {
		t.Errorf("the fake identity's appid should be the mini program's, got %q", id.AppID)
	}
	job := p.Function("job")
	if job.Timeout != 20 || job.Memory != 512 || job.Env["MODE"] != "cron" || !reflect.DeepEqual(job.OpenAPI, []string{"subscribeMessage.send", "wxacode.get"}) {
		t.Errorf("job config %+v", job)
	}
	if job.ModuleDir != filepath.Join(dir, "cloud", "functions", "job") {
		t.Errorf("job module dir %q", job.ModuleDir)
	}
	if login := p.Function("login"); login.OpenAPI == nil || len(login.OpenAPI) != 0 || login.Timeout != DefaultWXTimeout {
		t.Errorf("login declared an empty openapi list: %+v", login)
	}
	want := []Timer{{Name: "job.myTrigger", Function: "job", Cron: "0 0 2 1 * ? *", Environments: []string{"production", "staging"}}}
	if !reflect.DeepEqual(p.Timers, want) {
		t.Errorf("timers %+v, want %+v", p.Timers, want)
	}
	entries, err := p.Entries()
	if err != nil || len(entries) != 2 {
		t.Fatalf("entries %v %v", entries, err)
	}
	// reloading the same file (what fn dev does on a change) gives the same project
	p2, err := LoadFile(p.File)
	if err != nil || p2.Name != p.Name || len(p2.Timers) != 1 {
		t.Fatalf("reload: %+v %v", p2, err)
	}
}

func TestFnYAMLPointsAtAWXProjectAndOverridesConfigJSON(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "project.config.json", `{"cloudfunctionRoot": "cloudfunctions/", "appid": "wxabc"}`)
	testutil.WriteFile(t, dir, "fn.yaml", "name: shop\ndialect: wx\nfunctionsDir: cloudfunctions\nfunctions:\n  job:\n    timeout: 9\n")
	testutil.WriteFile(t, dir, "cloudfunctions/job/index.js", "exports.main = async () => 1\n")
	testutil.WriteFile(t, dir, "cloudfunctions/job/config.json", `{"timeout": 20, "memorySize": 512}`)
	p, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.File != filepath.Join(dir, FileName) || p.AppID != "wxabc" {
		t.Fatalf("fn.yaml should win: %s %q", p.File, p.AppID)
	}
	if c := p.Function("job"); c.Timeout != 9 || c.Memory != 512 {
		t.Errorf("fn.yaml's timeout over config.json's, config.json's memory kept: %+v", c)
	}
}

func TestConfigJSONProblemsNameTheFile(t *testing.T) {
	for _, c := range []struct{ config, want string }{
		{`{"triggers":[{"name":"t","type":"timer","config":"0 0 2 * * *"}]}`, "cloudfunctions/job/config.json: triggers[0].config: a CloudBase cron expression has 7 fields"},
		{`{"triggers":[{"name":"t","type":"cos","config":"x"}]}`, `triggers[0].type: must be "timer"`},
		{`{"triggers":[{"name":"1t","type":"timer","config":"0 0 2 1 * * *"}]}`, "triggers[0].name: must be 1–60 letters"},
		{`{"triggers":[{"name":"t","type":"timer","config":"0 0 2 * * 7 *"}]}`, "weekday 7 is out of range 0–6"},
		{`{"triggers":[{"name":"t","type":"timer","config":"0 0 25 * * * *"}]}`, "hour"},
		{`{"timeout": 900}`, "timeout: must be 1–60 seconds, got 900"},
		{`{"memorySize": "lots"}`, "invalid JSON"},
		{`{"envVariables": {"TCB_ENV": "x"}}`, "envVariables.TCB_ENV: is reserved"},
		{`{"permissions": {"openapi": ["send message"]}}`, "permissions.openapi[0]: must name an openapi call"},
		{`not json`, "cloudfunctions/job/config.json: invalid JSON"},
	} {
		dir := t.TempDir()
		testutil.WriteFile(t, dir, "project.config.json", `{"cloudfunctionRoot": "cloudfunctions/"}`)
		testutil.WriteFile(t, dir, "cloudfunctions/job/index.js", "exports.main = async () => 1\n")
		testutil.WriteFile(t, dir, "cloudfunctions/job/config.json", c.config)
		_, err := Load(dir)
		var ve *ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want it to say %q", c.config, err, c.want)
		}
	}
}

func TestProjectConfigWithoutCloudFunctionsIsNoProject(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "project.config.json", `{"miniprogramRoot": "miniprogram/"}`)
	if _, err := Load(dir); !errors.Is(err, ErrNoProject) {
		t.Fatalf("a mini program without cloud functions: %v", err)
	}
	testutil.WriteFile(t, dir, "project.config.json", `{"cloudfunctionRoot": "../elsewhere/"}`)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "cloudfunctionRoot: must be a directory inside the project") {
		t.Fatalf("a root outside the project: %v", err)
	}
}

func TestCloudBaseCron(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"0 0 2 1 * * *", []string{"0 0 2 1 * ? *"}},
		{"*/5 * * * * * *", []string{"*/5 * * * * ? *"}},
		{"0 15 10 * * MON-FRI *", []string{"0 15 10 ? * MON-FRI *"}},
		// weekday numbers: CloudBase 0 = Sunday, Quartz 1 = SUN
		{"0 0 12 * * 0 *", []string{"0 0 12 ? * 1 *"}},
		{"0 0 12 * * 1-5 *", []string{"0 0 12 ? * 2-6 *"}},
		{"0 0 12 * * 0,6 *", []string{"0 0 12 ? * 1,7 *"}},
		{"0 0 12 * * 1/2 *", []string{"0 0 12 ? * 2/2 *"}},
		{"0 0 8,10,12 * * * *", []string{"0 0 8,10,12 * * ? *"}},
		// day and weekday both given: either matches, so one timer per field
		{"0 0 2 1 * 1 *", []string{"0 0 2 1 * ? *", "0 0 2 ? * 2 *"}},
	} {
		got, err := CloudBaseCron(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("CloudBaseCron(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
