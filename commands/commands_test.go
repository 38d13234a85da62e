package commands

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/iostreams"
	"github.com/fnhq/fn/localrun"
	"github.com/fnhq/fn/project"
)

var update = flag.Bool("update", false, "rewrite golden files")

type result struct {
	out, err string
	code     ExitCode
}

// fn runs one command line in dir, as no terminal.
func fn(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	code := Run(context.Background(), append([]string{"-C", dir}, args...), ios)
	return result{out.String(), errOut.String(), code}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./commands -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from golden file (go test ./commands -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestHelpGolden(t *testing.T) {
	r := fn(t, ".", "--help")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	golden(t, "help.golden", r.out)
	for _, c := range []string{"init", "build", "doctor", "version", "completion"} {
		if !strings.Contains(r.out, "\n  "+c+" ") {
			t.Errorf("--help does not list %s", c)
		}
	}
}

func TestVersion(t *testing.T) {
	if r := fn(t, ".", "--version"); r.code != 0 || r.out != "fn dev\n" {
		t.Fatalf("--version: %q %d", r.out, r.code)
	}
	r := fn(t, ".", "version", "--json")
	var v versionInfo
	if err := json.Unmarshal([]byte(r.out), &v); err != nil || v.Version != "dev" || v.Go == "" {
		t.Fatalf("version --json: %q %v", r.out, err)
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		r := fn(t, ".", "completion", sh)
		if r.code != 0 || !strings.Contains(r.out, "fn") || len(r.out) < 200 {
			t.Errorf("completion %s: exit %d, %d bytes", sh, r.code, len(r.out))
		}
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("FN_JSON", "true")
	r := fn(t, ".", "version")
	if !strings.HasPrefix(r.out, "{") {
		t.Fatalf("FN_JSON=true should give JSON, got %q", r.out)
	}
	t.Setenv("FN_JSON", "")
	os.Unsetenv("FN_JSON")
	t.Setenv("FN_COLOR", "purple")
	r = fn(t, ".", "version")
	if r.code != ExitUsage || !strings.Contains(r.err, `invalid --color "purple"`) {
		t.Fatalf("FN_COLOR=purple: exit %d %q", r.code, r.err)
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	cases := [][]string{{"bogus"}, {"build", "extra"}, {"--nope"}, {"init", "a", "b"}, {"build", "--minify=maybe"}, {"dev", "--http", "bogus"}}
	for _, args := range cases {
		r := fn(t, ".", args...)
		if r.code != ExitUsage {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, r.code, r.err)
		}
		if strings.Count(r.err, "error:") != 1 || !strings.Contains(r.err, "--help' for usage") {
			t.Errorf("%v: error should be printed once with a usage pointer: %q", args, r.err)
		}
		if r.out != "" {
			t.Errorf("%v: stdout should stay empty, got %q", args, r.out)
		}
	}
}

// scaffold runs fn init --no-install and links the fixture's node_modules.
func scaffold(t *testing.T, template, lang string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "app")
	r := fn(t, ".", "init", dir, "--template", template, "--lang", lang, "--no-install")
	if r.code != 0 {
		t.Fatalf("init: exit %d %s", r.code, r.err)
	}
	testutil.LinkNodeModules(t, dir)
	return dir
}

func TestEveryTemplateBuildsAndLoadsInNode(t *testing.T) {
	for _, tpl := range []string{"wx", "lean"} {
		for _, lang := range []string{"js", "ts"} {
			t.Run(tpl+"-"+lang, func(t *testing.T) {
				t.Parallel()
				dir := scaffold(t, tpl, lang)
				r := fn(t, dir, "build", "--json")
				if r.code != 0 {
					t.Fatalf("build: exit %d\n%s", r.code, r.err)
				}
				var m struct {
					Bundles []struct{ Name, File string }
				}
				if err := json.Unmarshal([]byte(r.out), &m); err != nil {
					t.Fatalf("build --json: %v\n%s", err, r.out)
				}
				var script string
				if tpl == "wx" {
					script = `for (const f of process.argv.slice(1)) { if (typeof require(f).main !== 'function') throw new Error(f + ' has no main') } console.log('ok')`
				} else {
					script = `const AV = require(process.argv[1]); console.log(Object.keys(AV.Cloud.functions).sort().join(','))`
				}
				args := []string{"-e", script}
				for _, b := range m.Bundles {
					args = append(args, filepath.Join(dir, ".fn", "build", b.File))
				}
				out, err := exec.Command("node", args...).Output()
				if err != nil {
					t.Fatalf("bundle does not load in node: %v", err)
				}
				want := "ok"
				if tpl == "lean" {
					want = "__after_save_for_Comment,__before_delete_for_Album,__before_save_for_Review,__on_login__User,averageStars,customErrorCode,hello,log_timer"
				}
				if strings.TrimSpace(string(out)) != want {
					t.Fatalf("node printed %q, want %q", out, want)
				}
			})
		}
	}
}

func TestBuildJSONShapeGolden(t *testing.T) {
	dir := scaffold(t, "wx", "js")
	r := fn(t, dir, "build", "--json")
	if r.code != 0 {
		t.Fatal(r.err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.out), &m); err != nil {
		t.Fatal(err)
	}
	golden(t, "build-json.golden", shape(m, ""))
}

// shape lists the JSON paths and value kinds, so the golden file pins field names, not hashes.
func shape(v any, path string) string {
	var lines []string
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch x := v.(type) {
		case map[string]any:
			for k, vv := range x {
				walk(vv, path+"."+k)
			}
		case []any:
			for _, vv := range x {
				walk(vv, path+"[]")
			}
		case string:
			lines = append(lines, path+": string")
		case float64:
			lines = append(lines, path+": number")
		default:
			lines = append(lines, path+": other")
		}
	}
	walk(v, path)
	sort.Strings(lines)
	uniq := lines[:0]
	for i, l := range lines {
		if i == 0 || l != lines[i-1] {
			uniq = append(uniq, l)
		}
	}
	return strings.Join(uniq, "\n") + "\n"
}

func TestInitAsksOnATerminal(t *testing.T) {
	dir := t.TempDir()
	ios, in, _, errOut := iostreams.Test()
	ios.SetTTY(true, false, true)
	in.WriteString("Bad Name\nshop\nlean\nts\n")
	t.Chdir(dir)
	code := Run(context.Background(), []string{"init", "--no-install"}, ios)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "? Project name") || !strings.Contains(errOut.String(), "invalid project name") {
		t.Errorf("prompts: %s", errOut.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "shop", "fn.yaml"))
	if err != nil || !strings.Contains(string(b), "dialect: lean") || !strings.Contains(string(b), "entry: cloud.ts") {
		t.Fatalf("answers not applied: %v\n%s", err, b)
	}
}

// fn dev's banner comes before its functions load: a wx banner names the functions (from the
// build), a lean one cannot (its cloud code defines them), and the line after the load says
// which serve, or which did not load and why.
func TestDevPrinterBannerThenLoad(t *testing.T) {
	for _, tc := range []struct {
		dialect      project.Dialect
		load         localrun.LoadInfo
		banner, line string
	}{
		{project.WX, localrun.LoadInfo{LoadMs: 291, Functions: []string{"greet", "login"}}, "functions  greet, login", "functions loaded in 291 ms"},
		{project.Lean, localrun.LoadInfo{LoadMs: 253, Functions: []string{"hello", "log_timer"}}, "", "functions  hello, log_timer · loaded in 253 ms"},
		{project.WX, localrun.LoadInfo{LoadMs: 10, Failed: map[string]string{"a": "nope"}}, "functions  a", "✗ a did not load: nope"},
	} {
		ios, _, out, errOut := iostreams.Test()
		pr := &devPrinter{ios: ios, out: out, errOut: errOut, cs: ios.Colors()}
		info := localrun.DevInfo{URL: "http://127.0.0.1:3000", Dialect: tc.dialect, Endpoints: []string{"POST x"}}
		if tc.dialect == project.WX {
			info.Functions = []string{"greet", "login"}
			if tc.load.Failed != nil {
				info.Functions = []string{"a"}
			}
		}
		pr.Ready(info)
		banner := errOut.String()
		pr.Loaded(tc.load)
		after := strings.TrimPrefix(errOut.String(), banner)
		if tc.banner != "" && !strings.Contains(banner, tc.banner) {
			t.Errorf("%s banner lacks %q:\n%s", tc.dialect, tc.banner, banner)
		}
		if tc.dialect == project.Lean && strings.Contains(banner, "functions") {
			t.Errorf("a lean banner cannot list the functions yet:\n%s", banner)
		}
		if !strings.Contains(after, tc.line) || strings.Count(after, "\n") != 1 {
			t.Errorf("%s after the load: %q, want the line %q", tc.dialect, after, tc.line)
		}
	}
}
