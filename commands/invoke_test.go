package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/iostreams"
)

// fnStdin runs fn with data on stdin (not a terminal).
func fnStdin(t *testing.T, dir, stdin string, args ...string) result {
	t.Helper()
	ios, in, out, errOut := iostreams.Test()
	in.WriteString(stdin)
	code := Run(context.Background(), append([]string{"-C", dir}, args...), ios)
	return result{out.String(), errOut.String(), code}
}

func TestInvokeWXTemplateFunctions(t *testing.T) {
	dir := scaffold(t, "wx", "js")

	// --data, as the default identity (alice): the seed's login function answers with her openid.
	r := fn(t, dir, "invoke", "login", "--data", `{"hello":"world"}`)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	var login map[string]any
	if err := json.Unmarshal([]byte(r.out), &login); err != nil {
		t.Fatalf("stdout is not only the result JSON: %v\n%s", err, r.out)
	}
	ev := login["event"].(map[string]any)
	if login["openid"] != "oAlice0000000000000000000000" || ev["hello"] != "world" || ev["userInfo"] == nil || login["env"] != "app-dev" {
		t.Fatalf("login result: %v", login)
	}
	if !strings.Contains(r.err, "RequestId: ") || !strings.Contains(r.err, "Memory: 256 MB") || !strings.Contains(r.err, "info  event {") {
		t.Errorf("stderr lacks logs or the report line:\n%s", r.err)
	}

	// --as picks another identity.
	r = fn(t, dir, "invoke", "login", "--as", "bob")
	if r.code != 0 || !strings.Contains(r.out, `"openid": "oBob00000000000000000000000"`) {
		t.Fatalf("--as bob: %d %s %s", r.code, r.out, r.err)
	}

	// --data @file, --event and stdin.
	file := testutil.WriteFile(t, t.TempDir(), "in.json", `{"a": 2, "b": 3}`)
	if r := fn(t, dir, "invoke", "sum", "--data", "@"+file); r.code != 0 || strings.TrimSpace(r.out) != "{\n  \"total\": 5\n}" {
		t.Errorf("--data @file: %d %q %s", r.code, r.out, r.err)
	}
	if r := fn(t, dir, "invoke", "sum", "--event", "answer"); r.code != 0 || !strings.Contains(r.out, `"total": 42`) {
		t.Errorf("--event: %d %q %s", r.code, r.out, r.err)
	}
	if r := fnStdin(t, dir, `{"a":1,"b":1}`, "invoke", "sum"); r.code != 0 || !strings.Contains(r.out, `"total": 2`) {
		t.Errorf("stdin: %d %q %s", r.code, r.out, r.err)
	}

	// greet calls login through cloud.callFunction: login sees alice, without userInfo.
	r = fn(t, dir, "invoke", "greet", "--json")
	var env struct {
		Result struct {
			Message string
			Login   map[string]any
		}
		Logs []map[string]any
	}
	if err := json.Unmarshal([]byte(r.out), &env); err != nil || r.code != 0 {
		t.Fatalf("greet --json: %d %v\n%s\n%s", r.code, err, r.out, r.err)
	}
	if env.Result.Message != "Hello, oAlice0000000000000000000000" || env.Result.Login["openid"] != "oAlice0000000000000000000000" {
		t.Fatalf("greet: %+v", env.Result)
	}
	if _, has := env.Result.Login["event"].(map[string]any)["userInfo"]; has {
		t.Error("a function called by another function must not get userInfo")
	}
	if len(env.Logs) == 0 {
		t.Error("--json should carry the logs")
	}

	// A failing function: exit 1, the error with a stack mapped to the source, nothing on stdout.
	r = fn(t, dir, "invoke", "sum", "--data", `{"a":"x"}`)
	if r.code != ExitFailure || r.out != "" || !strings.Contains(r.err, "sum failed: sum needs two numbers, a and b") ||
		!strings.Contains(r.err, "at exports.main (functions/sum/index.js:5:11)") || strings.Contains(r.err, "runner-") {
		t.Fatalf("failure: %d %q\n%s", r.code, r.out, r.err)
	}
}

func TestInvokeLeanTemplateFunctions(t *testing.T) {
	for _, lang := range []string{"js", "ts"} {
		dir := scaffold(t, "lean", lang)
		if r := fn(t, dir, "invoke", "hello"); r.code != 0 || strings.TrimSpace(r.out) != `"Hello world!"` {
			t.Fatalf("%s hello: %d %q %s", lang, r.code, r.out, r.err)
		}
		r := fn(t, dir, "invoke", "customErrorCode")
		if r.code != ExitFailure || !strings.Contains(r.err, "400 custom error message (code 123)") {
			t.Fatalf("%s customErrorCode: %d %s", lang, r.code, r.err)
		}
		if r := fn(t, dir, "invoke", "log_timer"); r.code != 0 || !strings.Contains(r.err, "Log in timer.") {
			t.Fatalf("%s log_timer: %d %s", lang, r.code, r.err)
		}
		// the template's identity works on an empty store: its user is created on first use
		r = fn(t, dir, "invoke", "hello", "--as", "alice", "--json")
		var out struct {
			Identity string `json:"identity"`
		}
		if json.Unmarshal([]byte(r.out), &out); r.code != 0 || out.Identity != "alice" {
			t.Fatalf("%s hello --as alice: %d %s %s", lang, r.code, r.out, r.err)
		}
	}
}

func TestInvokeBadInput(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: shop\ndialect: wx\n")
	testutil.WriteFile(t, dir, "functions/echo/index.js", "exports.main = async (e) => e\n")
	cases := []struct {
		args  []string
		stdin string
		code  ExitCode
		want  string
	}{
		{[]string{"invoke", "echo", "--data", `{"a":`}, "", ExitUsage, "--data: invalid JSON at line 1, column 5: unexpected end of JSON input"},
		{[]string{"invoke", "echo"}, "{\n  \"a\": 1,\n}", ExitUsage, "stdin: invalid JSON at line 3, column 1"},
		{[]string{"invoke", "echo", "--data", "@" + filepath.Join(dir, "nope.json")}, "", ExitUsage, "nope.json: no such file"},
		{[]string{"invoke", "echo", "--event", "missing"}, "", ExitFailure, "no saved event events/echo/missing.json"},
		{[]string{"invoke", "echo", "--data", "{}", "--event", "x"}, "", ExitUsage, "--data and --event cannot be used together"},
		{[]string{"invoke", "nope"}, "", ExitFailure, `no function named "nope" (functions: echo)`},
		{[]string{"invoke", "echo", "--as", "carol"}, "", ExitFailure, `unknown identity "carol"`},
		{[]string{"invoke", "echo", "--data", "[1]"}, "", ExitFailure, "the call's data must be a JSON object"},
		{[]string{"invoke"}, "", ExitUsage, "fn invoke needs a function name: fn invoke <function>"},
	}
	for _, c := range cases {
		r := fnStdin(t, dir, c.stdin, c.args...)
		if r.code != c.code || !strings.Contains(r.err, c.want) {
			t.Errorf("%v: exit %d (want %d)\n%s", c.args, r.code, c.code, r.err)
		}
		if c.code != 0 && r.out != "" {
			t.Errorf("%v: stdout should be empty, got %q", c.args, r.out)
		}
	}
	// echo returns its event: stdin data reaches it.
	r := fnStdin(t, dir, `{"k":"v"}`, "invoke", "echo")
	var got map[string]any
	json.NewDecoder(bytes.NewReader([]byte(r.out))).Decode(&got)
	if got["k"] != "v" {
		t.Fatalf("echo: %v %s", got, r.err)
	}
}
