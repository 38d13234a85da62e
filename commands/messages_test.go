package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/iostreams"
)

// fakeServer is an fn server's admin API that knows the apps in apps (by name) and records the
// calls it got. It answers as fn serve does: {"error": …} with the status of the error's kind.
type fakeServer struct {
	*httptest.Server
	mu    sync.Mutex
	apps  map[string]bool
	calls []string
	token string
}

func newFakeServer(t *testing.T, token string, apps ...string) *fakeServer {
	t.Helper()
	s := &fakeServer{apps: map[string]bool{}, token: token}
	for _, a := range apps {
		s.apps[a] = true
	}
	fail := func(w http.ResponseWriter, status int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /__fn/whoami", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"role":"admin","apps":1}`)
	})
	mux.HandleFunc("POST /__fn/apps", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Name string }
		json.NewDecoder(r.Body).Decode(&body)
		s.mu.Lock()
		s.apps[body.Name] = true
		s.mu.Unlock()
		fmt.Fprintf(w, `{"appId":"id-%s","name":%q}`, body.Name, body.Name)
	})
	mux.HandleFunc("GET /__fn/apps", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		var list []map[string]string
		for name := range s.apps {
			list = append(list, map[string]string{"name": name, "appId": "id-" + name})
		}
		json.NewEncoder(w).Encode(list)
	})
	mux.HandleFunc("DELETE /__fn/apps/{app}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		delete(s.apps, r.PathValue("app"))
		s.mu.Unlock()
		fmt.Fprint(w, `{}`)
	})
	mux.HandleFunc("GET /__fn/apps/{app}/secrets", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"names":[]}`)
	})
	mux.HandleFunc("PUT /__fn/apps/{app}/secrets/{name}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{}`)
	})
	mux.HandleFunc("POST /__fn/apps/{app}/invoke/{env}/{name}", func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusBadRequest, "nothing is deployed to "+r.PathValue("env")+" yet")
	})
	mux.HandleFunc("POST /__fn/apps/{app}/blobs/missing", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Hashes []string }
		json.NewDecoder(r.Body).Decode(&body)
		json.NewEncoder(w).Encode(map[string]any{"missing": body.Hashes})
	})
	mux.HandleFunc("PUT /__fn/apps/{app}/blobs/{hash}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{}`)
	})
	mux.HandleFunc("POST /__fn/apps/{app}/deploy", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"changed":true,"version":{"id":1,"env":"production"},"added":["hello"]}`)
	})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls = append(s.calls, r.Method+" "+r.URL.Path)
		known := true
		if app := strings.TrimPrefix(r.URL.Path, "/__fn/apps/"); app != r.URL.Path {
			name, _, _ := strings.Cut(app, "/")
			known = s.apps[name]
			if !known {
				s.mu.Unlock()
				fail(w, http.StatusNotFound, "no such app: "+name)
				return
			}
		}
		s.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+s.token {
			fail(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// called counts the calls to exactly this method and path.
func (s *fakeServer) called(call string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c == call {
			n++
		}
	}
	return n
}

// closedURL is a loopback URL nothing listens on.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

// TestMessagesGolden pins the words of the errors a new user meets first: flags, arguments,
// unknown commands, an unreachable server, a missing app, an empty environment.
func TestMessagesGolden(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := newFakeServer(t, "tok", "app")
	down := closedURL(t)
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: app\ndialect: lean\n")
	testutil.WriteFile(t, dir, "cloud.js", "const AV = require('leanengine')\nAV.Cloud.define('hello', () => 'hi')\n")
	testutil.LinkNodeModules(t, dir)

	type tc struct {
		env  map[string]string
		args []string
	}
	up := map[string]string{"FN_SERVER": srv.URL, "FN_TOKEN": "tok"}
	cases := []tc{
		{nil, []string{"doctor", "--port", "abc"}},
		{nil, []string{"invoke"}},
		{nil, []string{"build", "extra"}},
		{nil, []string{"init", "a", "b"}},
		{nil, []string{"apps", "create"}},
		{nil, []string{"timers", "lst"}},
		{nil, []string{"bild"}},
		{nil, []string{"deploy", "--mesage", "x"}},
		{nil, []string{"deploy", "--env"}},
		{nil, []string{"build", "--minify=maybe"}},
		{nil, []string{"deploy", "--env", "prod"}},
		{nil, []string{"deploy"}},
		{nil, []string{"--json", "doctor", "--port", "abc"}},
		{map[string]string{"FN_PORT": "abc"}, []string{"doctor"}},
		{nil, []string{"apps", "list"}},
		{map[string]string{"FN_SERVER": down, "FN_TOKEN": "tok"}, []string{"apps", "list"}},
		{map[string]string{"FN_SERVER": down, "FN_TOKEN": "tok"}, []string{"--json", "secrets", "list"}},
		{up, []string{"secrets", "list", "--app", "shop"}},
		{up, []string{"deploy", "--env", "production", "--app", "shop"}},
		{up, []string{"invoke", "hello", "--remote"}},
		{up, []string{"invoke", "hello", "--remote", "--env", "staging"}},
		{nil, []string{"login", "--server", srv.URL, "--token", "wrong"}},
		{nil, []string{"login", "--server", srv.URL}},
		{nil, []string{"login", "--server", "127.0.0.1:8080", "--token", "x"}},
	}
	var b strings.Builder
	for _, c := range cases {
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		r := fn(t, dir, c.args...)
		for k := range c.env {
			t.Setenv(k, "")
		}
		stderr := strings.ReplaceAll(r.err, srv.URL, "SERVER")
		stderr = strings.ReplaceAll(stderr, down, "DOWN")
		var envs []string
		for k, v := range c.env {
			if k != "FN_TOKEN" {
				envs = append(envs, k+"="+v+" ")
			}
		}
		sort.Strings(envs)
		line := strings.Join(envs, "") + "fn " + strings.Join(c.args, " ")
		line = strings.ReplaceAll(strings.ReplaceAll(line, srv.URL, "SERVER"), down, "DOWN")
		fmt.Fprintf(&b, "$ %s\n%sexit %d\n\n", line, stderr, r.code)
		if c.args[0] == "--json" {
			var e struct {
				Error struct{ Message, Code string }
			}
			if err := json.Unmarshal([]byte(r.err), &e); err != nil || e.Error.Message == "" || e.Error.Code == "" {
				t.Errorf("fn %v: stderr is not a JSON error: %v\n%s", c.args, err, r.err)
			}
		}
		if strings.Contains(r.err, "strconv.") || strings.Contains(r.err, "dial tcp") || strings.Contains(r.err, "accepts 1 arg") {
			t.Errorf("fn %v leaks Go internals:\n%s", c.args, r.err)
		}
	}
	golden(t, "messages.golden", b.String())
	if n := srv.called("POST /__fn/apps/shop/deploy"); n != 0 {
		t.Errorf("a deploy to a missing app went ahead: %d deploy calls", n)
	}
}

func TestSecretsSetJSON(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := newFakeServer(t, "tok", "shop")
	t.Setenv("FN_SERVER", srv.URL)
	t.Setenv("FN_TOKEN", "tok")
	r := fn(t, t.TempDir(), "secrets", "set", "API_KEY", "--value", "s3cret", "--app", "shop", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(r.out), &out); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.out)
	}
	if out["app"] != "shop" || out["name"] != "API_KEY" || out["set"] != true {
		t.Fatalf("secrets set --json: %v", out)
	}
	if strings.Contains(r.out+r.err, "s3cret") {
		t.Fatal("the secret's value was printed")
	}
	if srv.called("PUT /__fn/apps/shop/secrets/API_KEY") != 1 {
		t.Fatal("the secret was not sent")
	}
}

func TestVerboseShowsHTTPCalls(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := newFakeServer(t, "tok", "shop")
	t.Setenv("FN_SERVER", srv.URL)
	t.Setenv("FN_TOKEN", "tok")
	r := fn(t, t.TempDir(), "secrets", "list", "--app", "shop", "--verbose")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	want := "verbose: GET " + srv.URL + "/__fn/apps/shop/secrets → 200 in "
	if !strings.Contains(r.err, want) || !strings.Contains(r.err, " ms\n") {
		t.Fatalf("--verbose should show the call:\n%s", r.err)
	}
	if strings.Contains(r.err, "tok") {
		t.Fatal("--verbose printed the token")
	}
	if r := fn(t, t.TempDir(), "secrets", "list", "--app", "shop"); strings.Contains(r.err, "verbose:") {
		t.Fatalf("without --verbose nothing is traced: %s", r.err)
	}
}

// syncBuffer is a buffer that a spinner's goroutine and the command may write at once.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// leanProject writes a one-function lean project with the SDKs linked in.
func leanProject(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: "+name+"\ndialect: lean\n")
	testutil.WriteFile(t, dir, "cloud.js", "const AV = require('leanengine')\nAV.Cloud.define('hello', () => 'hi')\n")
	testutil.LinkNodeModules(t, dir)
	return dir
}

func TestDeployOnATerminalOffersToCreateTheAppAndShowsProgress(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := newFakeServer(t, "tok")
	t.Setenv("FN_SERVER", srv.URL)
	t.Setenv("FN_TOKEN", "tok")
	t.Setenv("NO_COLOR", "1")
	dir := leanProject(t, "shop")

	ios, in, _, _ := iostreams.Test()
	errOut := &syncBuffer{}
	ios.ErrOut = errOut
	ios.SetTTY(true, false, true)
	in.WriteString("\n\n") // the default environment, then yes to creating the app
	code := Run(context.Background(), []string{"-C", dir, "deploy"}, ios)
	got := errOut.String()
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, got)
	}
	for _, want := range []string{
		"? Environment (staging or production; production is what clients reach by default) [production]: ",
		"? App shop does not exist on " + srv.URL + " yet. Create it now? [Y/n]: ",
		"created app shop",
		"building…", "uploading", "100%", "activating…",
		"deployed version 1 to production of shop",
		"try it: fn invoke <function> --remote\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("stderr lacks %q:\n%q", want, got)
		}
	}
	if srv.called("POST /__fn/apps") != 1 || srv.called("POST /__fn/apps/shop/deploy") != 1 {
		t.Errorf("calls: %v", srv.calls)
	}
}

func TestDeployWithoutATerminalShowsNoProgress(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := newFakeServer(t, "tok", "shop")
	t.Setenv("FN_SERVER", srv.URL)
	t.Setenv("FN_TOKEN", "tok")
	r := fn(t, leanProject(t, "shop"), "deploy", "--env", "staging")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	if strings.ContainsAny(r.err, "\r\033") || strings.Contains(r.err, "building") {
		t.Fatalf("progress without a terminal: %q", r.err)
	}
	if !strings.Contains(r.err, "deployed version 1 to staging of shop") || !strings.Contains(r.err, "try it: fn invoke <function> --remote --env staging") {
		t.Fatalf("deploy output: %s", r.err)
	}
}

func TestAppsDeleteConfirms(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	srv := newFakeServer(t, "tok", "shop")
	t.Setenv("FN_SERVER", srv.URL)
	t.Setenv("FN_TOKEN", "tok")
	t.Setenv("NO_COLOR", "1")
	r := fn(t, t.TempDir(), "apps", "delete", "shop")
	if r.code != ExitUsage || !strings.Contains(r.err, "deleting app shop cannot be undone: add --yes to confirm") {
		t.Fatalf("without a terminal and --yes: exit %d %s", r.code, r.err)
	}
	onTerminal := func(answer string) (ExitCode, string) {
		ios, in, _, errOut := iostreams.Test()
		ios.SetTTY(true, false, true)
		in.WriteString(answer)
		return Run(context.Background(), []string{"apps", "delete", "shop"}, ios), errOut.String()
	}
	code, stderr := onTerminal("shp\n")
	if code != ExitFailure || !strings.Contains(stderr, "Type its name to confirm: ") || !strings.Contains(stderr, `not deleted: you typed "shp", not "shop"`) {
		t.Fatalf("a wrong name: exit %d %s", code, stderr)
	}
	if srv.called("DELETE /__fn/apps/shop") != 0 {
		t.Fatal("deleted without confirmation")
	}
	if code, stderr := onTerminal("shop\n"); code != 0 || !strings.Contains(stderr, "deleted app shop") {
		t.Fatalf("confirmed: exit %d %s", code, stderr)
	}
	srv.apps["again"] = true
	if r := fn(t, t.TempDir(), "apps", "delete", "again", "--yes", "--json"); r.code != 0 || !strings.Contains(r.out, `"deleted": true`) {
		t.Fatalf("--yes: exit %d %s %s", r.code, r.out, r.err)
	}
	if srv.called("DELETE /__fn/apps/shop") != 1 || srv.called("DELETE /__fn/apps/again") != 1 {
		t.Fatalf("calls: %v", srv.calls)
	}
}

func TestVersionSaysWhatWasBuiltAndWhichNode(t *testing.T) {
	oldC, oldD := Commit, BuildDate
	Commit, BuildDate = "0123abc", "2026-03-01T08:00:00Z"
	t.Cleanup(func() { Commit, BuildDate = oldC, oldD })
	dir := t.TempDir()
	node := testutil.WriteFile(t, dir, "node", "#!/bin/sh\necho v20.11.1\n")
	os.Chmod(node, 0o755)
	t.Setenv("FN_NODE", node)
	r := fn(t, dir, "version")
	want := "fn dev\n  commit  0123abc\n  built   2026-03-01T08:00:00Z\n  go      " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n  node    v20.11.1 at " + node + "\n"
	if r.code != 0 || r.out != want {
		t.Fatalf("fn version:\n%s\nwant:\n%s", r.out, want)
	}
	r = fn(t, dir, "version", "--json")
	var v versionInfo
	if err := json.Unmarshal([]byte(r.out), &v); err != nil || v.Commit != "0123abc" || v.Date != "2026-03-01T08:00:00Z" || v.Node == nil || v.Node.Version != "v20.11.1" {
		t.Fatalf("fn version --json: %v\n%s", err, r.out)
	}
	t.Setenv("FN_NODE", filepath.Join(dir, "missing"))
	r = fn(t, dir, "version", "--json")
	if err := json.Unmarshal([]byte(r.out), &v); err != nil || v.Node != nil || !strings.Contains(r.out, `"node": null`) {
		t.Fatalf("without node: %v\n%s", err, r.out)
	}
	if r := fn(t, dir, "version"); r.code != 0 || !strings.Contains(r.out, "  node    not found (install Node.js 18 or newer, or set FN_NODE)\n") {
		t.Fatalf("without node: exit %d\n%s", r.code, r.out)
	}
}

func TestDoctorChecksDependencies(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: shop\ndialect: wx\n")
	testutil.WriteFile(t, dir, "package.json", `{"dependencies":{"wx-server-sdk":"4.0.2"}}`)
	testutil.WriteFile(t, dir, "functions/login/index.js", "const cloud = require('wx-server-sdk')\nexports.main = async () => cloud.getWXContext()\n")
	testutil.WriteFile(t, dir, "functions/sum/package.json", `{"dependencies":{"left-pad-nowhere":"1.0.0"}}`)
	testutil.WriteFile(t, dir, "functions/sum/index.js", "exports.main = async (e) => e.a + e.b\n")
	deps := func(out string) string {
		var lines []string
		keep := false
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "  fix:") && keep {
				lines = append(lines, l)
				continue
			}
			keep = strings.Contains(l, " deps ")
			if keep {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n") + "\n"
	}
	r := fn(t, dir, "doctor", "--port", "0")
	if r.code != ExitFailure {
		t.Fatalf("doctor without node_modules: exit %d\n%s", r.code, r.out)
	}
	got := deps(r.out)
	testutil.LinkNodeModules(t, dir)
	r = fn(t, dir, "doctor", "--port", "0")
	if r.code != ExitFailure {
		t.Fatalf("doctor with a function's dependency missing: exit %d\n%s", r.code, r.out)
	}
	got += "--- after npm install in the project\n" + deps(r.out)
	os.Remove(filepath.Join(dir, "functions/sum/package.json"))
	r = fn(t, dir, "doctor", "--port", "0")
	if r.code != 0 {
		t.Fatalf("doctor with everything installed: exit %d\n%s", r.code, r.out)
	}
	got += "--- all installed\n" + deps(r.out)
	golden(t, "doctor-deps.golden", got)
}

func TestDoctorNamesAnUndeclaredSDK(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: api\ndialect: lean\n")
	testutil.WriteFile(t, dir, "cloud.js", "import AV from 'leanengine'\nAV.Cloud.define('hello', () => 'hi')\n")
	r := fn(t, dir, "doctor", "--port", "0")
	if r.code != ExitFailure || !strings.Contains(r.out, "✗ deps     cloud.js needs leanengine, which Node cannot find from the project\n  fix: npm install leanengine\n") {
		t.Fatalf("exit %d\n%s", r.code, r.out)
	}
}

func TestBuildTypecheck(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: shop\ndialect: wx\n")
	testutil.WriteFile(t, dir, "functions/hello/index.ts", "export const main = async (): Promise<number> => 1\n")
	if r := fn(t, dir, "build", "--typecheck"); r.code != 0 || !strings.Contains(r.err, "nothing to type-check: "+dir+" has no tsconfig.json") {
		t.Fatalf("without tsconfig.json: exit %d %s", r.code, r.err)
	}
	os.RemoveAll(filepath.Join(dir, ".fn"))
	testutil.WriteFile(t, dir, "tsconfig.json", `{"compilerOptions":{"strict":true,"noEmit":true}}`)
	r := fn(t, dir, "build", "--typecheck")
	if r.code != ExitFailure || !strings.Contains(r.err, "error: --typecheck needs the TypeScript compiler, and node_modules has no tsc\nhint: add it to the project: npm install --save-dev typescript @types/node\n") {
		t.Fatalf("without tsc: exit %d %s", r.code, r.err)
	}
	// a stand-in tsc that records its arguments and fails like tsc on a type error
	args := filepath.Join(dir, "tsc-args")
	tsc := testutil.WriteFile(t, dir, "node_modules/.bin/tsc", "#!/bin/sh\necho \"$@\" > "+args+"\necho \"functions/hello/index.ts(1,60): error TS2322: Type 'string' is not assignable to type 'number'.\"\nexit ${TSC_EXIT:-2}\n")
	os.Chmod(tsc, 0o755)
	r = fn(t, dir, "build", "--typecheck")
	if r.code != ExitFailure || !strings.Contains(r.err, "error TS2322") || !strings.Contains(r.err, "error: type check failed: tsc found the errors above (nothing was built)") {
		t.Fatalf("a type error: exit %d %s", r.code, r.err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".fn", "build")); !os.IsNotExist(err) {
		t.Fatalf("a failed type check built anyway: %v", err)
	}
	if b, _ := os.ReadFile(args); strings.TrimSpace(string(b)) != "--noEmit --pretty false -p "+dir {
		t.Fatalf("tsc ran with %q", b)
	}
	t.Setenv("TSC_EXIT", "0")
	if r := fn(t, dir, "build", "--typecheck"); r.code != 0 || !strings.Contains(r.err, "Type-checked with tsc") || !strings.Contains(r.err, "Built 1 bundle(s)") {
		t.Fatalf("a clean type check: exit %d %s", r.code, r.err)
	}
}

// completions runs the shell completion fn's scripts call and returns the names offered.
func completions(t *testing.T, dir string, args ...string) []string {
	t.Helper()
	r := fn(t, dir, append([]string{"__complete"}, args...)...)
	if r.code != 0 {
		t.Fatalf("__complete %v: exit %d %s", args, r.code, r.err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(r.out), "\n") {
		if l != "" && !strings.HasPrefix(l, ":") {
			names = append(names, l)
		}
	}
	return names
}

func TestDynamicCompletion(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	wx := scaffold(t, "wx", "js")
	lean := scaffold(t, "lean", "ts")
	srv := newFakeServer(t, "tok", "shop", "blog")
	cases := []struct {
		dir  string
		env  bool
		args []string
		want string
	}{
		{wx, false, []string{"invoke", ""}, "greet login sum"},
		{lean, false, []string{"invoke", ""}, "averageStars customErrorCode hello log_timer"},
		{wx, false, []string{"invoke", "login", ""}, ""},
		{wx, false, []string{"invoke", "login", "--as", ""}, "alice bob"},
		{wx, false, []string{"deploy", "--env", ""}, "production staging"},
		{wx, false, []string{"logs", "--function", ""}, "greet login sum"},
		{lean, false, []string{"timers", "trigger", ""}, "log_timer"},
		{wx, false, []string{"apps", "delete", ""}, ""}, // not logged in: nothing, no error
		{wx, true, []string{"apps", "delete", ""}, "blog shop"},
		{wx, true, []string{"deploy", "--app", ""}, "blog shop"},
		{t.TempDir(), false, []string{"invoke", ""}, ""},
	}
	for _, c := range cases {
		if c.env {
			t.Setenv("FN_SERVER", srv.URL)
			t.Setenv("FN_TOKEN", "tok")
		}
		got := completions(t, c.dir, c.args...)
		sort.Strings(got)
		if strings.Join(got, " ") != c.want {
			t.Errorf("complete %v: %v, want %q", c.args, got, c.want)
		}
	}
}

func TestInterruptedExits130Quietly(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		ios, _, _, errOut := iostreams.Test()
		f := &Factory{IO: ios, Global: &GlobalOptions{JSON: asJSON}}
		if code := reportError(f, nil, fmt.Errorf("prompt: %w", context.Canceled)); code != ExitInterrupted {
			t.Fatalf("exit %d, want 130", code)
		}
		switch {
		case !asJSON && errOut.Len() != 0:
			t.Fatalf("Ctrl-C is not an error to print: %q", errOut.String())
		case asJSON && strings.TrimSpace(errOut.String()) != "{\n  \"error\": {\n    \"message\": \"interrupted\",\n    \"code\": \"interrupted\"\n  }\n}":
			t.Fatalf("--json: %q", errOut.String())
		}
	}
}
