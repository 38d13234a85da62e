package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fnhq/fn/internal/testutil"
)

// listing returns every file below dir with its content, to prove a failed command wrote nothing.
func listing(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || strings.Contains(p, "node_modules") {
			return nil
		}
		b, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[rel] = string(b)
		return nil
	})
	return files
}

func sameFiles(t *testing.T, before, after map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("files changed: before %d, after %d", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("%s changed", k)
		}
	}
}

func TestInitBadInput(t *testing.T) {
	cases := []struct {
		name  string
		setup func(dir string)
		args  []string
		code  ExitCode
		want  []string
	}{
		{"unknown template", nil, []string{"init", "app", "--template", "aws"}, ExitUsage, []string{`unknown template "aws": choose wx or lean`}},
		{"unknown language", nil, []string{"init", "app", "--template", "wx", "--lang", "py"}, ExitUsage, []string{`unknown language "py": choose js or ts`}},
		{"invalid name", nil, []string{"init", "app", "--template", "wx", "--name", "Bad_Name"}, ExitUsage, []string{`invalid project name "Bad_Name"`}},
		{"name from directory", nil, []string{"init", "My App", "--template", "wx"}, ExitFailure, []string{`invalid project name "my app"`, "give one with --name"}},
		{"no template without a terminal", nil, []string{"init", "app"}, ExitUsage, []string{"--template is required when fn init cannot ask"}},
		{"nothing to go on", nil, []string{"init"}, ExitUsage, []string{"fn init needs a directory"}},
		{"non-empty directory", func(dir string) { testutil.WriteFile(t, dir, "app/keep.txt", "mine") },
			[]string{"init", "app", "--template", "wx"}, ExitFailure, []string{"directory is not empty", "hint:", "--force"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.setup != nil {
				c.setup(dir)
			}
			before := listing(t, dir)
			args := append([]string{}, c.args...)
			if len(args) > 1 {
				args[1] = filepath.Join(dir, args[1])
			}
			r := fn(t, dir, args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, c.code, r.err)
			}
			for _, w := range c.want {
				if !strings.Contains(r.err, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.err)
				}
			}
			sameFiles(t, before, listing(t, dir))
		})
	}
}

func TestBuildBadInput(t *testing.T) {
	good := "name: shop\ndialect: wx\n"
	cases := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"malformed yaml", map[string]string{"fn.yaml": "name: shop\ndialect: wx\n  bad: indent\n"}, []string{"fn.yaml: line 3: invalid YAML: mapping values are not allowed in this context"}},
		{"wrong type", map[string]string{"fn.yaml": good + "defaults:\n  timeout: [3]\n"}, []string{"fn.yaml: defaults.timeout: must be a whole number, got a list (line 4)"}},
		{"unknown key", map[string]string{"fn.yaml": good + "timout: 3\n"}, []string{"fn.yaml: timout: unknown key"}},
		{"bad timeout", map[string]string{"fn.yaml": good + "functions:\n  login:\n    timeout: 90\n"}, []string{"fn.yaml: functions.login.timeout: must be 1–60 seconds, got 90"}},
		{"bad memory", map[string]string{"fn.yaml": good + "functions:\n  login:\n    memory: 99999\n"}, []string{"functions.login.memory: must be 128–4096 MB, got 99999"}},
		{"missing function entry", map[string]string{"fn.yaml": good + "functions:\n  login: {timeout: 3}\n", "functions/login/README.md": "x"},
			[]string{"functions.login: functions/login has no entry file (expected index.ts, index.js"}},
		{"missing lean entry", map[string]string{"fn.yaml": "name: api\ndialect: lean\n"}, []string{"fn.yaml: entry: the cloud code entry cloud.js does not exist"}},
		{"syntax error", map[string]string{"fn.yaml": good, "functions/login/index.js": "exports.main = async () => {\n  return 1 +\n}\n"},
			[]string{"build failed", "functions/login/index.js:3:0", "Unexpected \"}\""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for rel, content := range c.files {
				testutil.WriteFile(t, dir, rel, content)
			}
			before := listing(t, dir)
			r := fn(t, dir, "build")
			if r.code != ExitFailure {
				t.Fatalf("exit %d, want 1; stderr:\n%s", r.code, r.err)
			}
			for _, w := range c.want {
				if !strings.Contains(r.err, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.err)
				}
			}
			if strings.Count(r.err, "error:") != 1 {
				t.Errorf("error printed %d times", strings.Count(r.err, "error:"))
			}
			sameFiles(t, before, listing(t, dir))
		})
	}
}

func TestBuildSyntaxErrorKeepsPreviousBuild(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: shop\ndialect: wx\n")
	testutil.WriteFile(t, dir, "functions/login/index.js", "exports.main = async () => 'v1'\n")
	if r := fn(t, dir, "build"); r.code != 0 {
		t.Fatal(r.err)
	}
	before := listing(t, filepath.Join(dir, ".fn"))
	testutil.WriteFile(t, dir, "functions/login/index.js", "exports.main = async () => 'v2\n")
	if r := fn(t, dir, "build"); r.code != ExitFailure || !strings.Contains(r.err, "Unterminated string literal") {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	sameFiles(t, before, listing(t, filepath.Join(dir, ".fn")))
}

func TestBuildOutsideProject(t *testing.T) {
	r := fn(t, t.TempDir(), "build")
	if r.code != ExitFailure || !strings.Contains(r.err, "no fn.yaml found in") || !strings.Contains(r.err, "hint: create a project with 'fn init'") {
		t.Fatalf("exit %d:\n%s", r.code, r.err)
	}
}

func TestDoctor(t *testing.T) {
	dir := t.TempDir()
	r := fn(t, dir, "doctor", "--json", "--port", "0")
	if r.code != 0 || !strings.Contains(r.out, `"name": "node"`) || !strings.Contains(r.out, `"status": "warn"`) {
		t.Fatalf("doctor outside a project: exit %d\n%s%s", r.code, r.out, r.err)
	}
	t.Setenv("FN_NODE", filepath.Join(dir, "no-such-node"))
	r = fn(t, dir, "doctor")
	if r.code != ExitFailure || !strings.Contains(r.out, "✗ node") || !strings.Contains(r.out, "fix: install Node.js 18 or newer") {
		t.Fatalf("doctor with missing node: exit %d\n%s", r.code, r.out)
	}
	old := testutil.WriteFile(t, dir, "old-node", "#!/bin/sh\necho v16.20.0\n")
	os.Chmod(old, 0o755)
	t.Setenv("FN_NODE", old)
	r = fn(t, dir, "doctor")
	if r.code != ExitFailure || !strings.Contains(r.out, "Node.js v16.20.0 at "+old+" is too old: fn needs Node.js 18 or newer") {
		t.Fatalf("doctor with old node: exit %d\n%s", r.code, r.out)
	}
}
